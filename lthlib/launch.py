"""Run one make job (a papermill command) somewhere else, blocking until it ends so make sees its exit.

    python -m lthlib.launch --executor slurm --folder outputs/slurm [--partition P] [--gpus 1] -- CMD ...
    python -m lthlib.launch --executor local --folder outputs/slurm -- CMD ...     (submitit's local executor)
    python -m lthlib.launch --gpu-slots 4 --lock-dir outputs/.gpu-slots -- CMD ...  (make -j 4 on 4 GPUs)

Slurm jobs go through submitit; when Slurm preempts or times out a job, submitit requeues the same
command, and the runs resume from their per-epoch checkpoints. ``--gpu-slots N`` takes the first free
GPU of N (a file lock per GPU) and runs CMD with CUDA_VISIBLE_DEVICES set to it.

The grid scheduler (``PACK=grid LAUNCH=slurm``) submits Python calls, not commands: ``run_calls`` submits
each pack of a wave as one job (``Call``: a function and its arguments, requeued as itself when Slurm
preempts it or its time runs out) and waits for them all; ``executor`` makes the submitit executor both
paths use (``add_executor_options``: the command-line options they share).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path


class Command:
    """A picklable job for submitit: runs ``argv`` and returns its exit code; requeued on preemption."""

    def __init__(self, argv: list[str], cwd: str, env: dict | None = None):
        self.argv, self.cwd, self.env = argv, cwd, env

    def __call__(self) -> int:
        return subprocess.run(self.argv, cwd=self.cwd, env={**os.environ, **(self.env or {})}).returncode

    def checkpoint(self, *args, **kwargs):  # submitit calls this on preemption / timeout
        import submitit
        return submitit.helpers.DelayedSubmission(Command(self.argv, self.cwd, self.env))


class Call:
    """A picklable job for submitit: ``fn(*args)``; on preemption or timeout submitit requeues the same
    call (``checkpoint``), which must therefore be safe to run again (a pack: finished runs are skipped,
    cut ones resume from their checkpoints)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self):
        return self.fn(*self.args)

    def checkpoint(self, *args, **kwargs):
        import submitit
        return submitit.helpers.DelayedSubmission(Call(self.fn, *self.args))


def executor(kind: str, folder, **params):
    """A submitit executor: ``kind`` "slurm" (``params``: slurm_partition, gpus_per_node, cpus_per_task,
    timeout_min, name; None left out) or "local" (submitit's LocalExecutor: jobs as processes here)."""
    import submitit
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "slurm":
        ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    elif kind == "local":
        ex = submitit.LocalExecutor(folder=str(folder))
        ex.update_parameters(timeout_min=params.get("timeout_min") or 60 * 24)
    else:
        raise ValueError(f"executor: kind {kind!r}; accepted: slurm, local")
    return ex


def run_calls(calls: list[Call], ex, what: str = "job") -> list:
    """Submit every call as one job of ``ex`` (a Slurm job array), wait for all of them and return their
    results in order; a job that fails is raised (as a RuntimeError naming it and its log) after the
    others have ended."""
    with ex.batch():
        jobs = [ex.submit(c) for c in calls]
    print(f"submitted {len(jobs)} {what}{'s' if len(jobs) != 1 else ''} ({', '.join(str(j.job_id) for j in jobs[:8])}"
          f"{' ...' if len(jobs) > 8 else ''}); logs in {ex.folder}", flush=True)
    results, failed = [], []
    for job in jobs:
        try:
            results.append(job.result())
        except Exception as exc:  # the job failed: keep waiting for the others, then say which
            failed.append(f"job {job.job_id} ({_last_error(exc)}; log {job.paths.stderr})")
            results.append(None)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} {what}s failed: " + "; ".join(failed))
    return results


def _last_error(exc: Exception) -> str:
    """The error a job raised, in one line: the last line of the traceback submitit reports."""
    text = str(exc)
    parts = text.split("-" * 22)  # submitit frames the job's traceback between two such rules
    lines = [line.strip() for line in (parts[1] if len(parts) >= 3 else text).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:500]


def add_executor_options(ap: argparse.ArgumentParser) -> None:
    """The submitit options ``python -m lthlib.launch`` and ``python -m lthlib.schedule`` share."""
    ap.add_argument("--executor", choices=("slurm", "local"), help="submit through submitit: to Slurm, or "
                    "as local processes (its LocalExecutor)")
    ap.add_argument("--folder", default="outputs/slurm", help="submitit's folder: job scripts and logs")
    ap.add_argument("--partition")
    ap.add_argument("--gpus", type=int, help="GPUs per Slurm job")
    ap.add_argument("--cpus", type=int, help="CPUs per Slurm task")
    ap.add_argument("--timeout-min", type=int, default=60 * 24)


def executor_params(a: argparse.Namespace) -> dict:
    return dict(slurm_partition=a.partition, gpus_per_node=a.gpus, cpus_per_task=a.cpus, timeout_min=a.timeout_min)


def submit(argv: list[str], folder, kind: str = "slurm", **params) -> int:
    """Run the command ``argv`` as one job and wait for it; its exit code (1 when the job itself failed)."""
    ex = executor(kind, folder, **params)
    job = ex.submit(Command(argv, os.getcwd()))
    print(f"submitted job {job.job_id} ({kind}): {' '.join(argv[:3])} ...; logs in {folder}", flush=True)
    try:
        rc = job.result()
    except Exception as exc:  # the job itself failed (not the command): show submitit's report
        print(f"job {job.job_id} failed: {exc}", file=sys.stderr)
        return 1
    out = job.stdout() or ""
    if out:
        sys.stdout.write(out[-20000:])
    return int(rc)


@contextlib.contextmanager
def gpu_slot(n: int, lock_dir):
    """Hold the first free of ``n`` (>= 1) GPU locks; yields its index."""
    if n < 1:
        raise ValueError(f"gpu_slot: n = {n}; the number of GPUs to share must be >= 1")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(n):
            f = open(lock_dir / f"gpu{i}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield i
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
            return
        time.sleep(0.5)


USAGE = "python -m lthlib.launch [options] -- COMMAND ..."


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(options, command) of ``argv``; usage errors exit 2 with a message saying what to give."""
    ap = argparse.ArgumentParser(prog="python -m lthlib.launch", usage=USAGE)
    add_executor_options(ap)
    ap.add_argument("--gpu-slots", type=int, help="run locally on the first free of N (>= 1) GPUs")
    ap.add_argument("--lock-dir", default="outputs/.gpu-slots")
    if "--" not in argv:
        ap.error("no '--': put the command to run after it, e.g. -- papermill in.ipynb out.ipynb")
    cut = argv.index("--")
    a, cmd = ap.parse_args(argv[:cut]), argv[cut + 1:]
    if not cmd:
        ap.error("nothing after '--': give the command to run, e.g. -- papermill in.ipynb out.ipynb")
    if a.gpu_slots is not None and a.gpu_slots < 1:
        ap.error(f"--gpu-slots {a.gpu_slots}: the number of GPUs to share must be >= 1 "
                 f"(make: NGPU=N with N >= 1, or leave NGPU out to run without pinning)")
    return a, cmd


def main(argv=None) -> int:
    a, cmd = parse(sys.argv[1:] if argv is None else argv)
    if a.executor:
        return submit(cmd, a.folder, a.executor, **executor_params(a))
    if a.gpu_slots is not None:
        with gpu_slot(a.gpu_slots, a.lock_dir) as i:
            print(f"[gpu slot {i}] {' '.join(cmd[:3])} ...", flush=True)
            return subprocess.run(cmd, env={**os.environ, "CUDA_VISIBLE_DEVICES": str(i)}).returncode
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
