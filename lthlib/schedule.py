"""The grid scheduler (``make ... PACK=grid``): train a whole grid in packs that span its cells.

Round after round, every setting of every (lr, seed) cell is asked for its runs with training
deferred (``engine.collecting``): the runs whose dependencies are finished are collected -- all LT-IMP
chains one round further, the RR, OMP, retrain and random runs of every cell -- and trained in the
largest packs ``pack_size`` allows, each ticket with its own data order and learning rate. The run
folders are the ones the notebooks would write, so the setting notebooks executed afterwards find
their runs finished and tell the story.

    python -m lthlib.schedule params/demo.yaml [key=value ...] [--set 'key=value ...']
"""
from __future__ import annotations

import argparse
import sys
import time

from . import engine, registry
from .errors import ConfigError, LTHError
from .params import Experiment, load, parse_sets, split_set


def pending(base: Experiment) -> list[engine.Job]:
    """The unfinished runs of the grid whose dependencies are finished (one per folder)."""
    jobs: list[engine.Job] = []
    with engine.collecting(jobs):
        for lr in base.lrs:
            for seed in base.seeds:
                exp = base.replace(lr=lr, seed=seed)
                for name in (s for s in registry.NAMES if s in base.settings):
                    try:
                        _run(exp, name)
                    except engine.Deferred:
                        pass
    unique = {job.rd.path: job for job in jobs}
    return list(unique.values())


def _run(exp: Experiment, name: str) -> None:
    from .settings import run_setting  # settings -> engine; the scheduler sits above both
    run_setting(exp, name)


def run_grid(base: Experiment) -> int:
    """Train every run of the grid ``base``; returns how many were trained."""
    if base.nproc > 1:
        raise ConfigError("PACK=grid trains in one process; nproc > 1 (torchrun) runs notebook by notebook")
    trained, step = 0, 0
    while jobs := pending(base):
        step += 1
        t0 = time.time()
        print(f"[grid {base.name}] step {step}: {len(jobs)} runs ready "
              f"({', '.join(sorted({j.spec.setting for j in jobs}))})", flush=True)
        engine.train_jobs(jobs)
        left = [j for j in jobs if not j.rd.finished()]
        if left:
            raise LTHError(f"{left[0].rd.path}: still unfinished after training its pack; see the output above")
        trained += len(jobs)
        print(f"[grid {base.name}] step {step} done: {len(jobs)} runs in {time.time() - t0:.0f}s", flush=True)
    return trained


def waves(exp: Experiment) -> list[int]:
    """How many runs each scheduler step trains for the grid ``exp`` (from the registry: a setting
    starts once its dependencies have ended; a sequential setting advances one run per step)."""
    cells = len(exp.lrs) * len(exp.seeds)
    end: dict[str, int] = {}
    counts: dict[int, int] = {}
    for s in (registry.get(n) for n in registry.NAMES if n in exp.settings):
        start = max((end[d] + 1 for d in s.depends), default=0)
        n = s.runs_per_cell(exp)
        steps = range(start, start + n) if s.sequential else [start]
        for k in steps:
            counts[k] = counts.get(k, 0) + cells * (1 if s.sequential else n)
        end[s.name] = steps[-1] if n else start - 1
    return [counts[k] for k in sorted(counts)]


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
