"""Run one make job (papermill executing a notebook) and say in a line or two what it did, the epoch
lines in between: make's output stays readable while the full log is kept in the executed notebook.

    python lthlib/nbrun.py NAME [--report] -- papermill IN OUT ... --log-output

prints ``==> NAME started``, then every line of the command's output that is training progress
(``[run] epoch 3/10 ...``, ``[run] resuming after epoch ...``, ``... broken run (...)``, a launcher's
``submitted job ...``), then ``==> NAME trained (1m05s)`` -- or ``reused its finished runs`` when it
printed no epoch line, ``rendered`` for a report. Everything else (papermill's cell markers, kernel
warnings, display reprs) is dropped here: the executed notebook holds it. When the command fails, its
last lines are shown (papermill's exception names the cell and the error) and its exit status returned.

Standard library only, run by path (not ``-m``, which would import lthlib and torch): it starts in
milliseconds, once per notebook.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import deque

PROGRESS = re.compile(r"^\[[^\]]+\] (epoch \d+/\d+|resuming after epoch)|: broken run \(|^submitted job ")
TRAINED = re.compile(r"^\[[^\]]+\] epoch \d+/\d+")
TAIL = 40  # lines of a failed command's output shown
RECENT = 64  # progress lines remembered to drop their echoes


def elapsed(seconds: float) -> str:
    """'7s', '1m05s', '2h03m'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def relay(lines, out=sys.stdout) -> tuple[bool, deque]:
    """Print the progress lines of ``lines`` as they come, each once; (whether any epoch was trained, the
    last ``TAIL`` other lines). A line of a CPU worker process (``workers > 1``) reaches papermill twice:
    the kernel captures the worker's output as the cell's stream and also echoes it to its own stdout; a
    progress line names its run and epoch, so a repeat of a recent one is that echo."""
    trained, tail, recent = False, deque(maxlen=TAIL), deque(maxlen=RECENT)
    for line in lines:
        line = line.rstrip("\n")
        if PROGRESS.search(line):
            if line in recent:
                continue
            recent.append(line)
            print(line, file=out, flush=True)
            trained = trained or bool(TRAINED.search(line))
        elif line.strip():
            tail.append(line)
    return trained, tail


def run(name: str, cmd: list[str], report: bool = False) -> int:
    print(f"==> {name} started", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                errors="replace")
    except OSError as exc:
        print(f"==> {name} FAILED: cannot run {cmd[0]} ({exc.strerror or exc})", file=sys.stderr, flush=True)
        return 127
    try:
        trained, tail = relay(proc.stdout)
        rc = proc.wait()
    except KeyboardInterrupt:  # make passes the interrupt to the whole job: let the command end first
        proc.wait()
        return 130
    took = elapsed(time.monotonic() - t0)
    if rc:
        print(f"==> {name} FAILED after {took} (exit {rc}); the last lines of its log:", file=sys.stderr)
        print("\n".join(f"    {line}" for line in tail), file=sys.stderr, flush=True)
        return rc
    what = "rendered" if report else "trained" if trained else "reused its finished runs (nothing to train)"
    print(f"==> {name} {what} ({took})", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == 0 or argv.index("--") == len(argv) - 1:
        print("usage: python lthlib/nbrun.py NAME [--report] -- COMMAND ...", file=sys.stderr)
        return 2
    i = argv.index("--")
    name, flags = argv[0], argv[1:i]
    return run(name, argv[i + 1:], report="--report" in flags)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
