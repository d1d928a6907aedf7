"""The grid scheduler (``make ... PACK=grid``): train a whole grid in packs that span its cells.

It asks the protocol for the plans of every setting of every (lr, seed) cell (``settings.grid_plans``)
and realizes them all at once (``engine.realize``): wave after wave, every run whose dependencies are
finished trains -- all LT-IMP chains one round further, the RR, OMP, retrain and random runs of every
cell -- in the largest packs ``pack_size`` allows, each ticket with its own data order and learning
rate. The run folders are the ones the notebooks would write, so the setting notebooks executed
afterwards find their runs finished and tell the story.

    python -m lthlib.schedule params/demo.yaml [key=value ...] [--set 'key=value ...']
"""
from __future__ import annotations

import argparse
import sys
import time

from . import engine, settings
from .errors import ConfigError, LTHError
from .params import Experiment, load, parse_sets, split_set
from .plans import waves as plan_waves


def run_grid(base: Experiment) -> int:
    """Train every unfinished run of the grid ``base``; returns how many were trained."""
    if base.nproc > 1:
        raise ConfigError("PACK=grid trains in one process; nproc > 1 (torchrun) runs notebook by notebook")
    trained, clock = [], [time.time()]

    def on_wave(k: int, ready: list) -> None:
        if trained:
            print(f"[grid {base.name}] step {k - 1} done in {time.time() - clock[0]:.0f}s", flush=True)
        clock[0] = time.time()
        trained.extend(ready)
        print(f"[grid {base.name}] step {k}: {len(ready)} runs ready "
              f"({', '.join(sorted({p.setting for p in ready}))})", flush=True)
    engine.realize(settings.grid_plans(base), on_wave)
    if trained:
        print(f"[grid {base.name}] last step done in {time.time() - clock[0]:.0f}s", flush=True)
    return len(trained)


def waves(exp: Experiment) -> list[int]:
    """How many runs each scheduler step trains for the grid ``exp`` from scratch (from its plans: a run
    trains in the step after the last of its dependencies)."""
    return [len(w) for w in plan_waves(settings.grid_plans(exp))]


def estimate_seconds(exp: Experiment, rates: dict[int, float], n_images: int) -> float:
    """Training time of the grid ``exp`` scheduled as packs of up to ``pack_size``, from measured
    ticket-images per second by pack size (linear between measured sizes, flat beyond them)."""
    total = 0.0
    for count in waves(exp):
        full, rest = divmod(count, exp.pack_size)
        for k in [exp.pack_size] * full + ([rest] if rest else []):
            total += k * exp.epochs * n_images / pack_rate(rates, k)
    return total


def pack_rate(rates: dict[int, float], k: int) -> float:
    """Ticket-images per second of a pack of ``k`` from ``rates`` measured at some pack sizes."""
    sizes = sorted(rates)
    lo = max((s for s in sizes if s <= k), default=sizes[0])
    hi = min((s for s in sizes if s >= k), default=sizes[-1])
    if lo == hi:
        return rates[lo]
    return rates[lo] + (rates[hi] - rates[lo]) * (k - lo) / (hi - lo)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lthlib.schedule", description=__doc__.split("\n\n")[0])
    ap.add_argument("params_file")
    ap.add_argument("sets", nargs="*", help="key=value overrides (YAML values)")
    ap.add_argument("--set", default="", help="more key=value pairs in one string (make's SET=); these win")
    a = ap.parse_intermixed_args(argv)
    try:
        sets = parse_sets(a.sets, "command-line overrides")
        sets.update(parse_sets(split_set(a.set), "SET"))
        n = run_grid(load(a.params_file, sets))
    except LTHError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"grid {a.params_file}: {n} runs trained in packs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
