"""The grid scheduler (``make ... PACK=grid``): train a whole grid in packs that span its cells.

It asks the protocol for the plans of every setting of every (lr, seed) cell (``settings.grid_plans``)
and realizes them all at once (``engine.realize``): wave after wave, every run whose dependencies are
finished trains -- all LT-IMP chains one round further, the RR, OMP, retrain and random runs of every
cell -- in the largest packs ``pack_size`` allows, each ticket with its own data order and learning
rate. The run folders are the ones the notebooks would write, so the setting notebooks executed
afterwards find their runs finished and tell the story.

    python -m lthlib.schedule params/demo.yaml [key=value ...] [--set 'key=value ...']
        [--ngpu N | --executor slurm|local [--folder F] [--partition P] [--gpus G] [--cpus C] [--timeout-min M]]

Where a wave's packs train: here, one after another (default); ``--ngpu N`` in N worker processes, each
holding one device slot (its own GPU: ``make ... PACK=grid NGPU=N``; on a CPU, N processes); ``--executor
slurm`` each pack as one Slurm job through submitit (``LAUNCH=slurm``; ``local``: submitit's local
executor), requeued when preempted -- the requeued pack skips its finished runs and resumes its cut ones
from their checkpoints. The scheduler waits for a wave's packs before the next wave, and every path
writes the same run folders (bitwise the serial results on a CPU).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import engine, launch, settings
from .errors import ConfigError, LTHError
from .params import Experiment, load, parse_sets, split_set
from .plans import waves as plan_waves
from .variants import pack_rate  # noqa: F401  (lthlib.plan reads it from here)


def device_slots(n: int):
    """A dispatch (``engine.realize``) training a wave's packs in ``n`` processes, one device slot each."""
    import torch
    if n < 1:
        raise ConfigError(f"NGPU={n}: the number of GPUs (device slots) must be >= 1")
    if torch.cuda.is_available() and n > torch.cuda.device_count():
        raise ConfigError(f"NGPU={n}: this machine shows {torch.cuda.device_count()} GPU(s) "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}); give at most that many")
    return lambda chunks: engine.train_in_workers(chunks, n, slots=True)


def submitit_jobs(ex):
    """A dispatch submitting each pack of a wave as one job of the submitit executor ``ex`` and waiting
    for them all (``launch.run_calls``); a preempted pack is requeued as itself."""
    def dispatch(chunks):
        try:
            launch.run_calls([launch.Call(engine.train_chunk, c) for c in chunks], ex, "pack")
        except RuntimeError as exc:
            raise LTHError(str(exc)) from None
    return dispatch


def run_grid(base: Experiment, dispatch=None) -> int:
    """Train every unfinished run of the grid ``base`` (through ``dispatch``: see ``engine.realize``;
    ``device_slots``, ``submitit_jobs``); returns how many were trained."""
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
    engine.realize(settings.grid_plans(base), on_wave, dispatch)
    if trained:
        print(f"[grid {base.name}] last step done in {time.time() - clock[0]:.0f}s", flush=True)
    return len(trained)


def waves(exp: Experiment) -> list[int]:
    """How many runs each scheduler step trains for the grid ``exp`` from scratch (from its plans: a run
    trains in the step after the last of its dependencies)."""
    return [len(w) for w in plan_waves(settings.grid_plans(exp))]


def packs(exp: Experiment, packed: bool = True, plans=None) -> list[tuple[int, int]]:
    """The packs the scheduler forms for the grid ``exp`` from scratch, as (tickets, epochs each trains):
    wave by wave, the runs that can train together (``engine.pack_key``: one architecture, one length)
    in packs of up to ``pack_size`` -- or every run alone (``packed`` False). ``plans``: the grid's run
    plans when the caller has them (else ``settings.grid_plans``)."""
    out = []
    for wave in plan_waves(settings.grid_plans(exp) if plans is None else plans):
        groups: dict = {}
        for p in wave:
            groups.setdefault(engine.pack_key(engine.Job(p)) if packed else p.name, []).append(p)
        for g in groups.values():
            for i in range(0, len(g), exp.pack_size):
                out.append((len(g[i:i + exp.pack_size]), exp.epochs - g[i].first_epoch))
    return out


def estimate_seconds(exp: Experiment, rates: dict[int, float], n_images: float, packed: bool = True,
                     plans=None) -> float:
    """Training time of the grid ``exp`` scheduled as packs (``packs``) from measured ticket-images per
    second by pack size (``pack_rate``); ``n_images``: the training-image equivalents of one epoch of
    one run (evaluation included when the caller counts it)."""
    return sum(k * epochs * n_images / pack_rate(rates, k) for k, epochs in packs(exp, packed, plans))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lthlib.schedule", description=__doc__.split("\n\n")[0])
    ap.add_argument("params_file")
    ap.add_argument("sets", nargs="*", help="key=value overrides (YAML values)")
    ap.add_argument("--set", default="", help="more key=value pairs in one string (make's SET=); these win")
    ap.add_argument("--ngpu", type=int, help="train each wave's packs in N processes, one GPU (device slot) each")
    launch.add_executor_options(ap)
    a = ap.parse_intermixed_args(argv)
    if a.ngpu is not None and a.executor:
        ap.error("--ngpu and --executor: give one (Slurm jobs get their GPUs from --gpus)")
    try:
        sets = parse_sets(a.sets, "command-line overrides")
        sets.update(parse_sets(split_set(a.set), "SET"))
        exp = load(a.params_file, sets)
        n = run_grid(exp, _dispatch(a, exp))
    except LTHError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"grid {a.params_file}: {n} runs trained in packs")
    return 0


def _dispatch(a: argparse.Namespace, exp: Experiment):
    if a.executor:
        return submitit_jobs(launch.executor(a.executor, a.folder, name=f"lthlib-{exp.name}",
                                             **launch.executor_params(a)))
    if a.ngpu is not None and exp.device.startswith("cuda:"):
        raise ConfigError(f"key 'device' {exp.device!r} with NGPU={a.ngpu}: each pack takes the GPU of its own "
                          f"slot; set device: auto (or cuda)")
    return device_slots(a.ngpu) if a.ngpu is not None else None


if __name__ == "__main__":
    sys.exit(main())
