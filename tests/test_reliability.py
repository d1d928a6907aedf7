"""Reliability (the issue of that name): names and paths stay under the output root, make variables
arrive as written, a report renders a copied root into itself and a failed one is withdrawn, text from
files cannot inject HTML, garbage run files count as broken, make executes again a notebook whose runs
are broken or missing, a wrong metrics.json does not crash a
report, YAML cannot exhaust memory, and YAML 1.1's surprises in numbers are caught."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch

import lthlib as L
from fakeruns import experiment, fake_run, lt_rr_grid, stale_copy
from lthlib import params as P
from lthlib import plots
from lthlib import report
from lthlib import results as R
from lthlib.runs import RunDir

ROOT = Path(__file__).resolve().parent.parent
# the header of history.csv, as the training loop writes it (a run trained here is finished with it)
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "train_time_s", "epoch_time_s",
                   "images_per_s")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def make(*args, cwd=ROOT, env=None, timeout=300):
    return subprocess.run(["make", "--no-print-directory", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**ENV, **(env or {})}, stdin=subprocess.DEVNULL)


def files_under(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*"))


def _scratch_project(tmp_path: Path) -> Path:
    """The Makefile in a project folder of its own (code and venv linked): what a refused OUT would have
    written lands under tmp_path."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "Makefile", proj / "Makefile")
    for name in ("lthlib", "notebooks", ".venv", "requirements.txt", "pyproject.toml", "params"):
        (proj / name).symlink_to(ROOT / name)
    return proj


# ----------------------------------------------------------------------------- 1. names and paths
@pytest.mark.parametrize("name", [".", "..", ".nbsrc", ".hidden"])
def test_a_grid_name_starting_with_a_dot_is_refused(tmp_path, name):
    with pytest.raises(L.ConfigError, match=r"key 'name' = .* must match .*not starting with a dot"):
        P.load(None, name=name)
    assert P.load(None, name="a.b-c_1").name == "a.b-c_1"


@pytest.mark.parametrize("bad", ["", ".", "..", "{proj}", "{proj}/", "{proj}/../..", "outputs/../.."])
def test_grid_targets_refuse_an_out_that_is_empty_or_holds_the_checkout(tmp_path, bad):
    proj = _scratch_project(tmp_path)
    bad = bad.format(proj=proj)
    before = files_under(tmp_path)
    r = make("-n", "grid", "GRID=demo", f"OUT={bad}", cwd=proj)
    assert r.returncode != 0 and "error: OUT" in r.stderr, r.stderr
    r = make("-n", "demo", f"OUT={bad}", cwd=proj)
    assert r.returncode != 0 and "error: OUT" in r.stderr, r.stderr
    assert files_under(tmp_path) == before and not Path("/.nbsrc").exists()


def test_report_and_index_refuse_an_empty_out(tmp_path):
    venv = _fake_venv(tmp_path)
    for target in ("report", "index"):
        r = make(target, "OUT=", f"VENV={venv}")
        assert r.returncode != 0 and "error: OUT is empty" in r.stderr, r.stderr


def test_a_grid_target_takes_an_out_that_does_not_exist_yet(tmp_path):
    """(make -n lists the work and creates nothing: tests/test_make.py)"""
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}/new/out", "SET=seeds=[1] lrs=[0.1]")
    assert r.returncode == 0 and "papermill" in r.stdout, r.stderr[-2000:]


def test_clean_acts_only_on_an_outputs_root(tmp_path):
    junk = [tmp_path / ".nbsrc" / "a.ipynb", tmp_path / "x" / "b.failed.ipynb", tmp_path / "x" / "c.tmp.ipynb"]
    for f in junk:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    r = make("clean", f"OUT={tmp_path}")
    assert r.returncode != 0 and "not an outputs root" in r.stderr and all(f.exists() for f in junk), r.stderr
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "plan.mk").write_text("all:\n")
    r = make("clean", f"OUT={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert not any(f.exists() for f in junk) and (tmp_path / "g" / "plan.mk").exists()


# ----------------------------------------------------------------------------- 3. make variables as written
def test_make_variables_are_not_expanded_by_make_or_the_shell(tmp_path):
    pwned = tmp_path / "pwned"
    out = tmp_path / "o"
    r = make("-n", "grid", "GRID=demo", f"OUT={out}", f"DATA=$(shell touch {pwned}) $HOME;x",
             "SET=seeds=[1] lrs=[0.1]")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"papermill {out}/.nbsrc/analysis.ipynb" in r.stdout and not out.exists()  # a dry run writes nothing
    r = make("grid", "GRID=demo", f"OUT={out}", f"DATA=$(shell touch {pwned}) $HOME;x",
             "SET=seeds=[1] lrs=[0.1] settings=[pretrain] notebooks=per_cell",
             f"VENV={_fake_venv(tmp_path)}", env={"FAKE_LOG": str(tmp_path / "log")})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    params = (out / "demo" / "reports" / "analysis.params.yaml").read_text()
    assert f"data_root: $(shell touch {pwned}) $HOME;x" in params
    refused = {f"OUT=$(shell touch {pwned})": "error: OUT=", f"OUT={tmp_path}/a$x": "error: OUT=",
               f"OUT={tmp_path}/a b": "error: OUT=", f"GRID=demo;touch {pwned}": "error: GRID=",
               f"GRID=$(shell touch {pwned})": "error: GRID=", f"JOBS=1;touch {pwned}": "error: JOBS=",
               "JOBS=0": "give a positive whole number", "JOBS=two": "give a positive whole number",
               "NGPU=-1": "error: NGPU=", f"VENV=$(shell touch {pwned})": "VENV holds a '$'",
               f"FOO=$(shell touch {pwned})": "FOO holds a '$'", "PACK=gird": "PACK=gird: accepted: PACK=grid"}
    for assignment, message in refused.items():
        args = ["-n", "grid", "GRID=demo", f"OUT={out}", assignment]
        r = make(*args)
        assert r.returncode != 0 and message in r.stderr, (assignment, r.stderr)
    assert not pwned.exists() and not (tmp_path / "a").exists() and not list(ROOT.glob("pwned*"))


# ----------------------------------------------------------------------------- 2. and 6. make report
PAPERMILL = """#!/bin/bash
# papermill IN OUT [flags] -f PARAMS: writes the grid's results.csv where the parameters point, like the
# analysis notebook; fails for the report when FAKE_FAIL=1
in="$1"; out="$2"; while [ $# -gt 0 ]; do [ "$1" = -f ] && params="$2"; shift; done
root=$({py} -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['overrides']['out_root'])" "$params")
echo "$params -> $root" >> "$FAKE_LOG"
cp "$in" "$out"
case "$out" in */reports/*) mkdir -p "$root/demo"; echo new > "$root/demo/results.csv";
  [ "$FAKE_FAIL" = 1 ] && exit 1;; esac
exit 0
"""


def _fake_venv(tmp_path: Path) -> Path:
    """A venv whose python and jupytext are the project's and whose papermill is PAPERMILL (no kernel)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "jupytext"):
        (venv / "bin" / name).write_text(f'#!/bin/sh\nexec {ROOT / ".venv" / "bin" / name} "$@"\n')
    (venv / "bin" / "papermill").write_text(PAPERMILL.format(py=ROOT / ".venv" / "bin" / "python"))
    for f in (venv / "bin").iterdir():
        f.chmod(0o755)
    (venv / ".installed").touch()
    return venv


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    """An outputs root planned once for the demo grid (one cell)."""
    root = tmp_path_factory.mktemp("planned") / "out"
    r = subprocess.run([sys.executable, "-m", "lthlib.plan", "params/demo.yaml", "--out-root", str(root), "seeds=[1]",
                        "lrs=[0.1]"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return root


def _copied_root(tmp_path: Path, planned: Path) -> tuple[Path, Path]:
    """An outputs root A planned for the demo grid (as if by `make grid OUT=A`; with an old report) and
    B, a copy of it."""
    a, b = tmp_path / "A", tmp_path / "B"
    shutil.copytree(planned, a)
    for f in a.rglob("*.params.yaml"):
        f.write_text(f.read_text().replace(str(planned), str(a)))
    old = a / "demo" / "reports" / "analysis.html"
    old.write_text("<html>old report</html>")
    os.utime(old, (time.time() - 3600,) * 2)
    shutil.copytree(a, b)
    return a, b


def test_make_report_renders_a_copied_root_into_itself(tmp_path, planned):
    a, b = _copied_root(tmp_path, planned)
    venv, log = _fake_venv(tmp_path), tmp_path / "log"
    r = make("report", f"OUT={b}", f"VENV={venv}", env={"FAKE_LOG": str(log)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert log.read_text().strip().endswith(f"-> {b}")
    assert (b / "demo" / "results.csv").exists() and not (a / "demo" / "results.csv").exists()
    assert "old report" not in (b / "demo" / "reports" / "analysis.html").read_text()
    assert (a / "demo" / "reports" / "analysis.html").read_text() == "<html>old report</html>"
    assert (b / "reports" / "index.html").exists() and not (a / "reports").exists()


def test_make_report_refuses_set(tmp_path):
    r = make("-n", "report", f"OUT={tmp_path}", "SET=seeds=[2]")
    assert r.returncode != 0 and "takes no SET=" in r.stderr and "make grid GRID=<name> SET=" in r.stderr


@pytest.mark.parametrize("target", ["report", pytest.param("grid", marks=pytest.mark.slow)])
def test_a_failed_report_withdraws_the_old_page(tmp_path, target, planned):
    a, b = _copied_root(tmp_path, planned)
    venv, log = _fake_venv(tmp_path), tmp_path / "log"
    extra = ["GRID=demo", "SET=seeds=[1] lrs=[0.1]"] if target == "grid" else []
    r = make(target, f"OUT={b}", f"VENV={venv}", *extra, env={"FAKE_LOG": str(log), "FAKE_FAIL": "1"})
    assert r.returncode != 0
    page = b / "demo" / "reports" / "analysis.html"
    text = page.read_text()
    assert "old report" not in text and "the last report failed" in text and "analysis.failed" in text
    assert page.stat().st_mtime == 0  # make renders the report again next time
    assert (b / "demo" / "reports" / "analysis.failed.ipynb").exists()


def test_retarget_points_the_analysis_parameters_at_the_root(tmp_path, planned):
    a, b = _copied_root(tmp_path, planned)
    params = b / "demo" / "reports" / "analysis.params.yaml"
    assert report.retarget(params, str(b)) and not report.retarget(params, str(b))
    from papermill.iorw import read_yaml_file
    values = read_yaml_file(str(params))
    assert values["overrides"] == {"seeds": [1], "lrs": [0.1], "out_root": str(b)}
    assert f"#   out_root: {b}" in params.read_text() and params.read_text().startswith("# notebooks/analysis.py")
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]\n")
    assert report.main(["retarget", str(bad), str(b)]) == 2


# ----------------------------------------------------------------------------- 4. no HTML from files
def _rendered(tmp_path: Path, markdown: str) -> str:
    """``markdown`` as a notebook output rendered to HTML the way reports are (lthlib.report.render)."""
    out = nbformat.v4.new_output("display_data", data={"text/markdown": markdown, "text/plain": "x"})
    cell = nbformat.v4.new_code_cell("display(x)", outputs=[out])
    nb = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(nb))
    report.render(nb, tmp_path / "nb.html")
    return (tmp_path / "nb.html").read_text()


def test_script_in_a_description_or_a_run_file_is_shown_as_text(tmp_path):
    evil = "<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> a|b"
    exp = experiment(tmp_path, description=evil)
    lt_rr_grid(exp, gap=1.0)
    run = next((tmp_path / "g" / "runs").glob("pretrain-*-lr0.1-s1-*"))
    stale_copy(run, acc=10.0, momentum=evil)
    c = R.gather(exp)
    html = _rendered(tmp_path, report.scale_markdown(exp, c.counted) + "\n\n" +
                     report.not_counted_markdown(c.not_counted) + "\n\n" + report.bullets([evil]))
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript' not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "momentum: &#x27;&lt;script&gt;" in html or "momentum: '&lt;script&gt;" in html


def test_table_cells_are_escaped():
    df = pd.DataFrame({"grid": ["<b>g</b>"], "n": [1]})
    assert "&lt;b&gt;g&lt;/b&gt;" in report.table(df).to_html()


# ----------------------------------------------------------------------------- 5. garbage run files
def _real_files(run: Path) -> None:
    state = {"w": torch.ones(3)}
    for name in ("init", "final", "mask"):
        torch.save(state, run / f"{name}.pt")
    (run / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,0.1,2.0,30,2.1,29,1,1,100\n")


@pytest.mark.parametrize("damage,named", [
    (lambda r: (r / "final.pt").write_bytes(b"garbage, not a checkpoint"), "final.pt is not a torch file"),
    (lambda r: (r / "mask.pt").write_bytes((r / "mask.pt").read_bytes()[:200]), "mask.pt is truncated"),
    (lambda r: (r / "init.pt").write_bytes(b"PK\x03\x04" + b"\0" * 100), "init.pt is truncated"),
    (lambda r: (r / "history.csv").write_text("garbage\n"), "history.csv does not start with the engine's header"),
    (lambda r: (r / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n"), "history.csv holds no epoch"),
    (lambda r: (r / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,0.1\n"), "line 2 is not an epoch"),
])
def test_garbage_weight_and_history_files_make_a_run_broken(tmp_path, damage, named):
    run = fake_run(experiment(tmp_path), "lt_omp", 0.1, 1, 80.0, sparsity=0.36)
    _real_files(run)
    rd = RunDir(run)
    assert rd.finished() and rd.problem() is None
    damage(run)
    assert not rd.finished() and named in rd.problem()
    if "history" not in named:
        assert rd.problem(weights=False) is None  # a report does not open weight files


def test_a_run_with_a_garbage_final_pt_is_named_and_retrained(tiny_exp, capsys):
    exp = tiny_exp(epochs=1)
    pre = L.pretrain(exp)
    acc = pre.read_metrics()["final_test_acc"]
    pre.final.write_bytes(b"garbage")
    again = L.pretrain(exp)
    assert f"{pre.path}: broken run (final.pt is not a torch file" in capsys.readouterr().out
    assert again.finished() and again.read_metrics()["final_test_acc"] == acc
    assert set(again.load_final()) == set(pre.load_init())


# ----------------------------------------------------------------------------- 5. make heals broken runs
HEAL = "model=lenet5 seeds=[1] lrs=[0.1] settings=[pretrain,lt_omp] sparsities=[0.5] notebooks=per_cell epochs=1"


def _started(log: Path, start: int) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split(" ")[1].split("/")[-1] for line in lines[start:] if line.startswith("start ")]


def test_make_executes_again_a_notebook_whose_run_is_broken_missing_or_whose_file_is_unreadable(tmp_path):
    """Item 5: an executed notebook was up to date whatever its runs' state, so a run whose metrics.json
    was emptied (or whose folder was deleted) was neither retrained nor re-reported. Now make executes it
    again (and what depends on it, and the report); a results-only run (no weight file) is left alone.
    (The stand-in papermill writes the runs a notebook's parameter file lists, as results-only folders.)"""
    from test_make import fake_venv
    venv, log, out = fake_venv(tmp_path), tmp_path / "log", tmp_path / "out"
    args, env = ["grid", "GRID=demo", f"VENV={venv}", f"OUT={out}", f"SET={HEAL}"], {"FAKE_LOG": str(log)}
    assert make(*args, env=env).returncode == 0
    n = len(log.read_text().splitlines())
    r = make(*args, env=env)  # the fake runs are results-only folders: nothing to do
    assert r.returncode == 0 and _started(log, n) == [], r.stdout + r.stderr
    runs = out / "demo" / "runs"
    [pre] = runs.glob("pretrain-*")
    [lt] = runs.glob("lt_omp-*")
    for damage, which, why in [(lambda: (pre / "metrics.json").write_text(""), "pretrain", "is broken (metrics.json"),
                               (lambda: shutil.rmtree(lt), "lt_omp", "is missing"),
                               (lambda: (lt / "metrics.json").unlink(), "lt_omp", "is unfinished"),
                               (lambda: (out / "demo/notebooks/lt_omp_lr0.1_s1.ipynb").write_text("{trunc"), "lt_omp",
                                "the executed notebook is unreadable")]:
        damage()
        dry = make("-n", *args, env=env)
        assert why in dry.stderr and "executing it again" in dry.stderr, dry.stderr
        n = len(log.read_text().splitlines())
        r = make(*args, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        expect = ["pretrain_lr0.1_s1", "lt_omp_lr0.1_s1"] if which == "pretrain" else ["lt_omp_lr0.1_s1"]
        assert _started(log, n) == expect + ["analysis"], (which, log.read_text())
        n = len(log.read_text().splitlines())
        assert make(*args, env=env).returncode == 0 and _started(log, n) == []  # healed: nothing left to do


def test_the_plan_names_an_executed_notebook_whose_real_run_lost_a_weight_file(tiny_exp, tmp_path):
    """Item 5, on runs the engine trained: a garbage final.pt (or a kept weight file deleted) makes the
    plan execute the notebook again; deleting every weight file (results only) does not."""
    import yaml
    from lthlib.plan import build
    exp = tiny_exp(epochs=1, settings=["pretrain"], notebooks="per_cell")
    params = tmp_path / "grid.yaml"
    params.write_text(yaml.safe_dump({k: v for k, v in exp.as_dict().items() if k != "out_root"}))
    pre = L.pretrain(exp)
    nb = Path(exp.out_root) / exp.name / "notebooks"
    nb.mkdir(parents=True)
    cell = f"{exp.name}/notebooks/pretrain_lr{exp.lr:g}_s{exp.seed}.ipynb"
    (Path(exp.out_root) / cell).write_text(json.dumps({"cells": []}))
    plan = lambda: build(str(params), {"lrs": [exp.lr], "seeds": [exp.seed]}, exp.out_root)
    assert plan().rerun == {}
    good = pre.final.read_bytes()
    pre.final.write_bytes(b"garbage")
    p = plan()
    assert p.rerun == {cell: f"its run {pre.name} is broken (final.pt is not a torch file (it does not start as one))"}
    assert f"$(OUT)/{cell}: lthlib-unfinished-runs" in p.text and ".PHONY: lthlib-unfinished-runs" in p.text
    pre.final.write_bytes(good)
    assert plan().rerun == {}
    pre.final.unlink()
    pre.init.unlink()
    assert plan().rerun == {}  # results only: the report counts it, a setting needing its weights retrains it


# ----------------------------------------------------------------------------- 6. a wrong metrics.json
def test_a_wrong_metrics_json_is_listed_as_broken_and_the_report_goes_on(tmp_path):
    exp = experiment(tmp_path, sparsities=[0.36])
    lt_rr_grid(exp, gap=1.0)
    bad = {"acc": fake_run(exp, "lt_omp", 0.1, 1, 80.0, sparsity=0.36),
           "missing": fake_run(exp, "lt_omp", 0.1, 2, 80.0, sparsity=0.36),
           "layers": fake_run(exp, "lt_omp", 0.1, 3, 80.0, sparsity=0.36),
           "lr": fake_run(exp, "rr_omp", 0.1, 1, 80.0, sparsity=0.36)}
    edit = {"acc": lambda m: {**m, "final_test_acc": "abc"}, "missing": lambda m: m.pop("final_test_acc") and m,
            "layers": lambda m: {**m, "layer_sparsity": [0.5, 0.5]}}
    for key, change in edit.items():
        met = json.loads((bad[key] / "metrics.json").read_text())
        (bad[key] / "metrics.json").write_text(json.dumps(change(met)))
    cfg = json.loads((bad["lr"] / "config.json").read_text())
    cfg["identity"]["lr"] = "x"
    (bad["lr"] / "config.json").write_text(json.dumps(cfg))
    c = R.gather(exp)
    why = {u.split(" ")[0]: u for u in c.unfinished}
    assert "metrics.json field final_test_acc is 'abc', not a finite number" in why[bad["acc"].name]
    assert "metrics.json lacks final_test_acc" in why[bad["missing"].name]
    assert "metrics.json field layer_sparsity is not a mapping" in why[bad["layers"].name]
    assert "config.json field identity.lr is 'x', not a number" in why[bad["lr"].name]
    assert not set(c.counted["run"]) & {p.name for p in bad.values()}
    R.lt_rr_gaps(c.counted)
    plots.plot_accuracy_vs_sparsity(c.counted, None)
    R.layerwise_table(c.counted, 0.1, 1, [0.36])
    report.completeness(exp, c.counted, c.unfinished, c.not_counted)


def test_a_failed_report_page_names_the_notebook(tmp_path):
    reports = tmp_path / "g" / "reports"
    reports.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# boom")]),
                   str(reports / "analysis.failed.ipynb"))
    (reports / "analysis.html").write_text("old")
    assert report.main(["failed", str(reports / "analysis.failed.ipynb"), str(reports / "analysis.html")]) == 0
    page = (reports / "analysis.html").read_text()
    assert "g: the last report failed" in page and 'href="analysis.failed.html"' in page
    assert (reports / "analysis.failed.html").exists() and (reports / "analysis.html").stat().st_mtime == 0


# ----------------------------------------------------------------------------- 7. YAML bombs, short errors
def _bomb(levels: int) -> str:
    lines = ['a0: &a0 [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nlrs: *a{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_before_it_is_built(tmp_path):
    text = _bomb(6)  # 9**6 = 531,441 values from a few hundred bytes
    assert len(text) < 1000
    f = tmp_path / "bomb.yaml"
    f.write_text(text)
    t0 = time.time()
    with pytest.raises(L.ConfigError, match=r"bomb\.yaml: line \d+: the YAML expands to more than 10,000") as e:
        P.load_params_file(f)
    assert time.time() - t0 < 2 and len(str(e.value)) < 300
    with pytest.raises(L.ConfigError, match="refers to the value that holds it"):
        P.read_yaml("a: &x [*x]\n", "self.yaml")
    with pytest.raises(L.ConfigError, match="nested too deeply"):
        P.read_yaml("[" * 3000 + "]" * 3000, "deep.yaml")


def test_error_messages_never_hold_a_huge_value():
    for bad in ({"epochs": "x" * 1_000_000}, {"lrs": [[0.1] * 1000] * 1000}, {"x" * 100_000: 1},
                {"name": "/" * 1_000_000}, {"model": "m" * 1_000_000}):
        with pytest.raises(L.ConfigError) as e:
            P.load(None, bad)
        assert len(str(e.value)) < 1500, str(e.value)[:200]
    with pytest.raises(L.ConfigError) as e:
        P.parse_sets(["x" * 1_000_000])
    assert len(str(e.value)) < 500


# ----------------------------------------------------------------------------- 8. YAML 1.1 numbers, odd files
def test_yaml_11_numbers_binary_files_and_non_scalar_keys(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("lr: 1e-3\nlrs: [1e-2, 5.0e3, 2E-1]\nweight_decay: 5e-4\n")
    exp = P.load(f)
    assert exp.lr == 0.001 and exp.lrs == [0.01, 5000.0, 0.2] and exp.weight_decay == 0.0005
    assert P.parse_sets(["lr=1e-3"]) == {"lr": 0.001}
    for text, match in [("epochs: 010\n", r"g\.yaml: line 1: '010' has a leading zero, .* octal number 8"),
                        ("seeds: [1, 02]\n", "'02' has a leading zero"),
                        ("epochs: 09\n", "key 'epochs' = '09' has a leading zero"),
                        ("epochs: 1:30\n", "base-60 number"),
                        ("? [a, b]\n: 1\n", r"g\.yaml: line 1: a key must be a plain name, got a list"),
                        ("{epochs: 1}: 2\n", "a key must be a plain name, got a mapping"),
                        ("n_train: 1e3\n", "key 'n_train' must be a int")]:
        f.write_text(text)
        with pytest.raises(L.ConfigError, match=match):
            P.load(f)
    with pytest.raises(L.ConfigError, match="SET epochs=010: line 1: '010' has a leading zero"):
        P.parse_sets(["epochs=010"])
    f.write_bytes(b"epochs: 1\n\xff\xfe\x00\x89PNG")
    with pytest.raises(L.ConfigError, match=r"g\.yaml: not a text file \(UTF-8\)"):
        P.load(f)
    f.write_bytes(b"epochs: 1\x00\n")
    with pytest.raises(L.ConfigError, match=r"g\.yaml: not valid YAML"):
        P.load(f)
    with pytest.raises(L.ConfigError, match="cannot read the params file"):
        P.load_params_file(tmp_path)
