"""make as its users expect (issues 22 and 23; 19, item 8): a dry run writes nothing, make's output is a
line per notebook plus the epoch lines, make -jN shares its job slots with the grids' sub-makes, JOBS
reaches the demo, a report that pools other grids is redone when their runs change (the study tier
renders its reports after every length ran), and two makes on one OUT at once both succeed.

The grids run for real through the Makefile and the plans, with a stand-in papermill (a shell script that
prints what papermill prints, an epoch line for the dense notebooks, and copies its input) and stand-ins
for the report's HTML render and the index: what is tested is make's wiring, in seconds."""
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

PAPERMILL = r"""#!/bin/bash
# papermill IN OUT [flags] -f PARAMS: prints what papermill --log-output prints (cell markers, a kernel
# warning, a display repr), an epoch line for a dense notebook, writes OUT, waits for FAKE_OVERLAP notebooks
# to have started (any make's), sleeps FAKE_SLEEP, checks OUT is
# still its own (another writer of the same path fails it), writes the runs the parameter file lists as
# results-only folders, copies IN to OUT; logs
# "start NAME T" and "end NAME T" to FAKE_LOG; fails for a notebook whose name starts with FAKE_FAIL
in="$1"; out="$2"; name=$(basename "$out"); name="${name%%.ipynb*}"; grid=$(basename "$(dirname "$(dirname "$out")")")
echo "start $grid/$name $(date +%s.%N)" >> "$FAKE_LOG"
echo "Input Notebook:  $in" >&2; echo "Output Notebook: $out" >&2
echo "[IPKernelApp] WARNING | Kernel is running over TCP without encryption." >&2
echo "Executing Cell 1---------------------------------------" >&2
case "$name" in pretrain*) echo "[pretrain-lenet5-fashion_mnist-lr0.1-s1-0123abcd] epoch 1/1 lr 0.1 loss 2.3 | 99 img/s, ETA 00:00";; esac
echo "<IPython.core.display.Markdown object>"
echo "/tmp/ipykernel_1/1.py:1: UserWarning: a kernel warning" >&2
echo "$$" > "$out"   # papermill writes its output notebook as it goes: it must still be this one's at the end
if [ -n "${FAKE_OVERLAP:-}" ]; then   # wait (30 s at most) until FAKE_LOG holds FAKE_OVERLAP starts: runs overlap
  for _ in $(seq 300); do [ "$(grep -c '^start ' "$FAKE_LOG")" -ge "$FAKE_OVERLAP" ] && break; sleep 0.1; done; fi
sleep "${FAKE_SLEEP:-0}"
if [ "$(cat "$out" 2>/dev/null)" != "$$" ]; then echo "fake papermill: $out was overwritten or moved" >&2; exit 1; fi
params="${@: -1}"; runs="$(dirname "$(dirname "$out")")/runs"
# the runs the notebook trains (its parameter file lists them), as results-only folders: make sees them finished
sed -n 's/^#   run: //p' "$params" | while read -r run; do
  [ -s "$runs/$run/metrics.json" ] && continue; mkdir -p "$runs/$run"
  echo '{"identity": {}}' > "$runs/$run/config.json"; echo "epoch,test_acc" > "$runs/$run/history.csv"
  echo '{"final_test_acc": 50.0, "global_sparsity": 0.0}' > "$runs/$run/metrics.json"; done
cp "$in" "$out"
if [ -n "$FAKE_FAIL" ] && [[ "$name" == "$FAKE_FAIL"* ]]; then
  echo "papermill.exceptions.PapermillExecutionError:" >&2; echo "ValueError: boom in $name" >&2; exit 1; fi
echo "end $grid/$name $(date +%s.%N)" >> "$FAKE_LOG"
"""
# the project's python, except the report's HTML render and the index (they are tested elsewhere)
PYTHON = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = lthlib.results ] && [ "$3" = render ]; then
  echo "render $4" >> "$FAKE_LOG"; echo "<html>$4</html>" > "$5"; exit 0; fi
if [ "$1" = -m ] && [ "$2" = lthlib.results ] && [ "$3" = index ]; then exit 0; fi
exec {py} "$@"
"""


def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(PYTHON.format(py=ROOT / ".venv" / "bin" / "python"))
    (venv / "bin" / "jupytext").write_text(f'#!/bin/sh\nexec {ROOT / ".venv" / "bin" / "jupytext"} "$@"\n')
    (venv / "bin" / "papermill").write_text(PAPERMILL)
    for f in (venv / "bin").iterdir():
        f.chmod(0o755)
    (venv / ".installed").touch()
    return venv


def make(*args, cwd=ROOT, env=None, timeout=300):
    return subprocess.run(["make", "--no-print-directory", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**ENV, **(env or {})}, stdin=subprocess.DEVNULL)


def snapshot(root: Path) -> dict:
    """Every path under ``root``: its mtime and content digest (folders: mtime)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else None)
    return out


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# two independent one-run notebooks (a dense run per seed) and their report
SMALL = "model=lenet5 seeds=[1,2] lrs=[0.1] settings=[pretrain] notebooks=per_cell epochs=1"


@pytest.fixture
def fake(tmp_path):
    """(make arguments for a fake venv and a scratch OUT, its log, OUT)."""
    venv, log, out = fake_venv(tmp_path), tmp_path / "log", tmp_path / "out"
    return [f"VENV={venv}", f"OUT={out}"], {"FAKE_LOG": str(log)}, log, out


# ----------------------------------------------------------------------------- a dry run writes nothing
@pytest.mark.slow  # 5 makes; test_a_dry_run_writes_nothing_into_a_planned_or_a_new_root checks the core in CI
def test_a_dry_run_writes_nothing_and_changes_nothing_the_next_run_sees(fake, fmnist_root):
    """make -n with another SET rewrote the notebooks' parameter files (and plan.mk), so the next real run
    re-executed them (measured before: 0 out of date -> a dry run with another SET -> every notebook)."""
    args, env, log, out = fake
    r = make("grid", "GRID=demo", *args, f"SET={SMALL}", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ran = len(log_lines(log))
    assert ran == 3 * 2 + 1  # two notebooks and the report (start, end), and the report's render
    before = snapshot(out)
    r = make("-n", "grid", "GRID=demo", *args, f"SET={SMALL} description=another", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "new parameters:" in r.stdout and r.stdout.count("papermill ") == 3  # what the change would redo
    r = make("-n", "demo", *args, f"DATA={fmnist_root}", "SET=seeds=[7]", env=env)
    assert r.returncode == 0 and "papermill " in r.stdout, r.stderr[-3000:]
    r = make("-n", "grid", "GRID=demo", *args, f"SET={SMALL}", env=env)  # nothing to do: says so, lists none
    assert r.returncode == 0 and "papermill " not in r.stdout, r.stdout[-3000:]
    assert snapshot(out) == before and len(log_lines(log)) == ran
    r = make("grid", "GRID=demo", *args, f"SET={SMALL}", env=env)
    assert r.returncode == 0 and "==>" not in r.stdout, r.stdout  # 0 notebooks out of date
    assert len(log_lines(log)) == ran


def test_a_dry_run_writes_nothing_into_a_planned_or_a_new_root(tmp_path):
    """A planned root (parameter files and plan.mk as `make grid` leaves them) is left as it is by make -n
    with another SET, which lists what that SET would redo; a new root is not created."""
    out = tmp_path / "out"
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "lthlib.plan", "params/demo.yaml", "--out-root",
                        str(out), "--set", SMALL], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before = snapshot(out)
    r = make("-n", "grid", "GRID=demo", f"OUT={out}", f"SET={SMALL} description=another")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("new parameters:") == 3 and r.stdout.count("papermill ") == 3
    assert snapshot(out) == before
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}/new/out", "SET=seeds=[1] lrs=[0.1]")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan demo: 6 notebooks" in r.stderr and "papermill " in r.stdout and "analysis.html" in r.stdout
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("where, expect", [([], "lthlib.schedule params/demo.yaml"),
                                           (["NGPU=2"], "--ngpu 2"),
                                           (["LAUNCH=submitit-local"], "--executor local --folder"),
                                           (["LAUNCH=slurm", "SLURM_ARGS=--partition p"], "--executor slurm")])
def test_pack_grid_trains_the_grid_where_launch_says_before_its_notebooks(tmp_path, where, expect):
    """PACK=grid runs the scheduler (on NGPU GPUs, or through submitit) before the notebooks; it once
    never ran for the default targets (the target list was empty, so 'not only the report' was false)."""
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}/out", "PACK=grid", *where)
    assert r.returncode == 0, r.stderr[-2000:]
    sched = [line for line in r.stdout.splitlines() if line.startswith(".venv/bin/python -m lthlib.schedule")]
    assert len(sched) == 1 and expect in sched[0], r.stdout[-3000:]
    assert r.stdout.index("lthlib.schedule") < r.stdout.index("papermill ")
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}/out", *where)
    assert "lthlib.schedule" not in r.stdout
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- make's output
def test_make_prints_a_line_per_notebook_and_the_epoch_lines(fake):
    """Before: every notebook echoed its ~600-character papermill recipe, then papermill's cell markers,
    kernel warnings and display reprs. A failed notebook shows the end of its log."""
    args, env, log, out = fake
    r = make("grid", "GRID=demo", *args, f"SET={SMALL}", env={**env, "FAKE_FAIL": "pretrain_lr0.1_s2"})
    assert r.returncode != 0
    lines = r.stdout.splitlines()
    assert [re.sub(r"\(\d+s\)", "(T)", line) for line in lines] == [
        "==> pretrain_lr0.1_s1.ipynb started",
        "[pretrain-lenet5-fashion_mnist-lr0.1-s1-0123abcd] epoch 1/1 lr 0.1 loss 2.3 | 99 img/s, ETA 00:00",
        "==> pretrain_lr0.1_s1.ipynb trained (T)",
        "==> pretrain_lr0.1_s2.ipynb started",
        "[pretrain-lenet5-fashion_mnist-lr0.1-s1-0123abcd] epoch 1/1 lr 0.1 loss 2.3 | 99 img/s, ETA 00:00"], r.stdout
    noise = ("Executing Cell", "WARNING", "<IPython", "UserWarning", "papermill ", "jupytext", "Input Notebook")
    assert not any(n in r.stdout for n in noise), r.stdout
    assert "==> pretrain_lr0.1_s2.ipynb FAILED after" in r.stderr and "    ValueError: boom in pretrain_lr0.1_s2" in r.stderr
    assert "FAILED: " in r.stderr and "pretrain_lr0.1_s2.failed.ipynb" in r.stderr
    nb = out / "demo" / "notebooks"
    assert (nb / "pretrain_lr0.1_s1.ipynb").exists() and (nb / "pretrain_lr0.1_s2.failed.ipynb").exists()
    assert not list(nb.glob("*.tmp.ipynb"))
    r = make("grid", "GRID=demo", *args, f"SET={SMALL}", env=env)  # the failed one again, then the report
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.sub(r"\(\d+s\)", "(T)", r.stdout).splitlines()[-3:] == [
        "==> pretrain_lr0.1_s2.ipynb trained (T)", "==> analysis.ipynb started", "==> analysis.ipynb rendered (T)"]


def test_nbrun_relays_progress_and_keeps_the_tail(capsys):
    import io
    import sys
    sys.path.insert(0, str(ROOT / "lthlib"))
    try:
        import nbrun
    finally:
        sys.path.pop(0)
    out = io.StringIO()
    trained, tail = nbrun.relay(["Executing Cell 1---\n", "[r-s1] epoch 3/10 lr 0.1 loss 1 | 9 img/s, ETA 00:01\n",
                                 "[r-s1] resuming after epoch 2/10 from x\n", "x: broken run (final.pt); training it\n",
                                 "<IPython.core.display.Markdown object>\n", "\n"], out)
    assert trained and out.getvalue().count("\n") == 3 and "Executing" not in out.getvalue()
    echoed = io.StringIO()  # a worker's line, as the cell's stream and as the kernel's echo of it
    nbrun.relay(["[a] epoch 1/2 lr 0.1 | 9 img/s\n", "[b] epoch 1/2 lr 0.1 | 9 img/s\n",
                 "[a] epoch 1/2 lr 0.1 | 9 img/s\n", "[a] epoch 2/2 lr 0.1 | 9 img/s\n"], echoed)
    assert echoed.getvalue().splitlines() == ["[a] epoch 1/2 lr 0.1 | 9 img/s", "[b] epoch 1/2 lr 0.1 | 9 img/s",
                                              "[a] epoch 2/2 lr 0.1 | 9 img/s"]
    assert list(tail) == ["Executing Cell 1---", "<IPython.core.display.Markdown object>"]
    assert nbrun.relay(["[r] resuming after epoch 10/10 from x\n"], io.StringIO())[0] is False
    assert [nbrun.elapsed(s) for s in (7, 65, 7380)] == ["7s", "1m05s", "2h03m"]
    assert nbrun.main(["x"]) == 2 and nbrun.main(["x", "--", "false"]) == 1
    capsys.readouterr()
    assert nbrun.main(["nb.ipynb", "--", "echo", "[r-s1] resuming after epoch 4/4 from x"]) == 0
    assert capsys.readouterr().out.splitlines() == ["==> nb.ipynb started", "[r-s1] resuming after epoch 4/4 from x",
                                                    "==> nb.ipynb reused its finished runs (nothing to train) (0s)"]
    assert nbrun.main(["analysis.ipynb", "--report", "--", "true"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "==> analysis.ipynb rendered (0s)"
    assert nbrun.main(["nb", "--", "/nonexistent/papermill"]) == 127


# ----------------------------------------------------------------------------- job slots
def _overlap(log: Path) -> bool:
    """Whether two notebooks of the log ran at the same time."""
    spans, open_ = [], {}
    for line in log_lines(log):
        what, name, *t = line.split(" ")
        if what == "start":
            open_[name] = float(t[0])
        elif what == "end":
            spans.append((open_.pop(name), float(t[0])))
    return any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(spans) for b0, b1 in spans[i + 1:])


@pytest.mark.parametrize("jflag,jobs,parallel", [("-j2", None, True), pytest.param(None, "2", True, marks=pytest.mark.slow),
                                                 pytest.param(None, None, False, marks=pytest.mark.slow)])
def test_make_j_runs_a_grids_notebooks_in_its_job_slots(fake, jflag, jobs, parallel):
    """make -j2 grid warned "-j1 forced in submake" and ran the notebooks one at a time."""
    args, env, log, out = fake
    extra = [a for a in (jflag, jobs and f"JOBS={jobs}") if a]
    r = make(*extra, "grid", "GRID=demo", *args, f"SET={SMALL}", env={**env, "FAKE_SLEEP": "1.5"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "forced in submake" not in r.stderr and "jobserver unavailable" not in r.stderr, r.stderr
    assert _overlap(log) == parallel


@pytest.mark.slow
@pytest.mark.parametrize("jobs,parallel", [(None, True), ("1", False)])
def test_the_demo_runs_two_notebooks_at_once_unless_jobs_says_otherwise(fake, fmnist_root, jobs, parallel):
    """The demo hard-coded two notebooks at once and ignored JOBS."""
    args, env, log, out = fake
    extra = [f"JOBS={jobs}"] if jobs else []
    r = make("demo", *extra, *args, f"DATA={fmnist_root}", f"SET={SMALL}", env={**env, "FAKE_SLEEP": "1.5"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert _overlap(log) == parallel


# ----------------------------------------------------------------------------- reports that pool grids
def _scratch_project(tmp_path: Path, grids: dict) -> Path:
    """The Makefile in a project of its own (code linked) whose params/ holds ``grids`` (name -> values)."""
    proj = tmp_path / "proj"
    (proj / "params").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", proj / "Makefile")
    for name in ("lthlib", "notebooks", "requirements.txt", "pyproject.toml"):
        (proj / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "params" / "profiles", proj / "params" / "profiles")
    for name, values in grids.items():
        (proj / "params" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **values}))
    return proj


def _renders(log: Path) -> list[str]:
    return [line.split("/")[-3] for line in log_lines(log) if line.startswith("render ")]


def test_a_report_depends_on_the_runs_of_the_grids_it_pools(tmp_path):
    """The report rule of a grid names the runs stamps of the other grids of its model and dataset (those
    its analysis pools), which each grid's plan touches after its notebooks ran."""
    from lthlib.plan import build, pooled_grids
    from lthlib.params import load
    plan = build("params/fmnist_resnet20_10ep.yaml", {"seeds": [1], "lrs": [0.1], "settings": ["pretrain"]},
                 str(tmp_path))
    rule = plan.text[plan.text.index("reports/analysis.html: "):].split("\n\t")[0]
    for g in ("fmnist_resnet20_40ep", "fmnist_resnet20_160ep", "fmnist_resnet20_40ep_fresh"):
        assert f"$(wildcard $(OUT)/{g}/notebooks/runs.stamp)" in rule
    assert "fmnist_resnet20_10ep/notebooks/runs.stamp" not in rule and "demo/" not in rule and "cifar" not in rule
    assert re.search(r"^runs: .*\$\(OUT\)/fmnist_resnet20_10ep/notebooks/runs.stamp$", plan.text, re.M | re.S)
    assert re.search(r"^\$\(OUT\)/fmnist_resnet20_10ep/notebooks/runs.stamp: \$\(OUT\)/fmnist_resnet20_10ep/notebooks/"
                     r"pretrain_lr0.1_s1.ipynb\n\t@touch \$@", plan.text, re.M)
    assert pooled_grids(load("params/demo.yaml"), {}) == []
    assert "fmnist_resnet20_10ep" in pooled_grids(load("params/demo.yaml", {"model": "resnet20"}), {"model": "resnet20"})


@pytest.mark.slow  # 7 makes
def test_a_report_is_redone_when_a_grid_it_pools_ran(fake, tmp_path):
    """Before: a report depended on its own grid's notebooks only, so after another length of the same
    model ran its report kept the old pool ("C3 not evaluated") until make report."""
    args, env, log, out = fake
    one = {"model": "lenet5", "dataset": "fashion_mnist", "seeds": [1], "lrs": [0.1], "settings": ["pretrain"],
           "notebooks": "per_cell"}
    proj = _scratch_project(tmp_path, {"short": {**one, "epochs": 1}, "long": {**one, "epochs": 2},
                                       "other": {**one, "model": "resnet20", "epochs": 1}})
    for g in ("short", "long", "other"):
        r = make("grid", f"GRID={g}", *args, cwd=proj, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert _renders(log) == ["short", "long", "other"]
    r = make("grid", "GRID=short", *args, cwd=proj, env=env)  # long ran after short's report: redo it
    assert r.returncode == 0 and _renders(log)[3:] == ["short"], r.stdout[-3000:]
    assert "==> analysis.ipynb rendered" in r.stdout and "pretrain" not in r.stdout  # no notebook re-executed
    for g in ("short", "long", "other"):  # now every report is newer than what it pools
        r = make("grid", f"GRID={g}", *args, cwd=proj, env=env)
        assert r.returncode == 0 and "==>" not in r.stdout, (g, r.stdout[-3000:])
    assert (out / "long" / "notebooks" / "runs.stamp").exists()


@pytest.mark.slow
def test_reproduce_fmnist_renders_every_report_after_every_length_ran(fake, tmp_path, fmnist_root):
    args, env, log, out = fake
    one = {"model": "lenet5", "dataset": "fashion_mnist", "seeds": [1], "lrs": [0.1], "settings": ["pretrain"],
           "notebooks": "per_cell"}
    grids = ["fmnist_resnet20_10ep", "fmnist_resnet20_40ep", "fmnist_resnet20_160ep", "fmnist_resnet20_40ep_fresh"]
    proj = _scratch_project(tmp_path, {g: {**one, "epochs": 1 + i} for i, g in enumerate(grids)})
    r = make("reproduce-fmnist", *args, f"DATA={fmnist_root}", cwd=proj, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    events = [line.split(" ")[0] for line in log_lines(log)]
    assert events == ["start", "end"] * 4 + ["start", "end", "render"] * 4  # the notebooks, then the reports
    assert _renders(log) == grids
    r = make("reproduce-fmnist", *args, f"DATA={fmnist_root}", cwd=proj, env=env)
    assert r.returncode == 0 and "==>" not in r.stdout, r.stdout[-3000:]


def test_the_lite_study_asks_before_it_trains_on_a_cpu(tmp_path, fmnist_root):
    """On a machine without a CUDA GPU, make reproduce-lite prints the planner's estimate and refuses to
    train unattended (no terminal, no CONFIRM=yes); a dry run lists its work without asking."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: the lite study would run")
    out = tmp_path / "out"
    r = make("reproduce-lite", f"OUT={out}", f"DATA={fmnist_root}")
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "plan lite_fmnist_resnet20: 54 notebooks, 360 runs" in r.stderr and "on this CPU" in r.stderr
    assert "CONFIRM=yes" in r.stderr and "papermill" not in r.stdout
    assert not out.exists()
    r = make("-n", "reproduce-lite", f"OUT={out}", f"DATA={fmnist_root}")
    assert r.returncode == 0 and "lthlib.schedule params/lite_fmnist_resnet20.yaml" in r.stdout, r.stderr[-2000:]
    assert not out.exists()


# ----------------------------------------------------------------------------- two makes on one OUT
def test_two_makes_on_one_out_at_once_both_succeed(fake):
    """Issue 23, item 8: two makes on one OUT shared a temporary notebook name, so one's rename took the
    other's notebook and the other failed. Each make's temporary names are its own (the shell's pid)."""
    args, env, log, out = fake
    cmd = ["make", "--no-print-directory", "grid", "GRID=demo", *args, f"SET={SMALL}"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**ENV, **env, "FAKE_SLEEP": "1.5", "FAKE_OVERLAP": "2"},
                              stdin=subprocess.DEVNULL) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    nb = out / "demo" / "notebooks"
    assert sorted(p.name for p in nb.glob("pretrain_*.ipynb")) == ["pretrain_lr0.1_s1.ipynb", "pretrain_lr0.1_s2.ipynb"]
    assert not list(nb.glob("*.tmp.ipynb")) and not list(nb.glob("*.failed.ipynb"))
    lines = [line.split() for line in log_lines(log) if line.startswith(("start ", "end "))]
    first_end = next(i for i, line in enumerate(lines) if line[0] == "end")
    assert sum(line[0] == "start" for line in lines[:first_end]) >= 2, lines  # they did run at the same time
