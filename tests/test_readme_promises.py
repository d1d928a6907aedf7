"""The README's reliability promises ("Two commands"; "What lands where": when a run is finished, which
runs a report counts, when a notebook is re-executed, what make accepts, what a grid and a dataset must
hold), each backed by a named test. This module holds the tests no other one checked as written; the rest:

- a broken finished run is named and trained again: test_engine.test_a_broken_finished_run_is_reported_and_retrained,
  test_reliability.test_garbage_weight_and_history_files_make_a_run_broken,
  test_reliability.test_a_wrong_metrics_json_is_listed_as_broken_and_the_report_goes_on;
  the results table: test_results.test_collect_one_row_per_finished_run_and_lists_unfinished_and_broken
- counted runs, with the fields that differ: test_results.test_a_run_made_with_other_parameters_is_not_counted_and_says_why,
  test_results.test_runs_outside_the_grids_cells_are_not_counted, test_report.test_completeness_counts_only_current_runs;
  a code-version mix: test_report.test_scale_block_names_data_order_random_mode_and_a_code_version_mix
- re-execution when parameters change: test_plan.test_make_grid_keeps_failures_aside_and_reexecutes_when_parameters_change,
  test_plan.test_a_subset_of_the_grid_then_the_full_grid_redoes_nothing_for_the_subset,
  test_plan.test_per_setting_notebooks_run_every_cell; broken or missing runs:
  test_reliability.test_make_executes_again_a_notebook_whose_run_is_broken_missing_or_whose_file_is_unreadable,
  test_reliability.test_the_plan_names_an_executed_notebook_whose_real_run_lost_a_weight_file; values exactly:
  test_plan.test_set_values_reach_the_notebook_as_written_and_make_n_runs_nothing,
  test_plan.test_mk_escape_reads_back_literally_and_refuses_line_breaks
- what make accepts: test_reliability.test_grid_targets_refuse_an_out_that_is_empty_or_holds_the_checkout,
  test_reliability.test_a_grid_name_starting_with_a_dot_is_refused,
  test_reliability.test_make_variables_are_not_expanded_by_make_or_the_shell,
  test_reliability.test_make_report_renders_a_copied_root_into_itself, test_reliability.test_make_report_refuses_set,
  test_reliability.test_clean_acts_only_on_an_outputs_root, test_plan.test_clean_runs_refuses_anything_but_an_outputs_root_and_keeps_data,
  test_reliability.test_a_failed_report_withdraws_the_old_page, test_reliability.test_a_failed_report_page_names_the_notebook;
  dry runs: test_make.test_a_dry_run_writes_nothing_and_changes_nothing_the_next_run_sees,
  test_make.test_a_dry_run_writes_nothing_into_a_planned_or_a_new_root; job slots:
  test_make.test_make_j_runs_a_grids_notebooks_in_its_job_slots,
  test_make.test_the_demo_runs_two_notebooks_at_once_unless_jobs_says_otherwise
- grids and datasets: test_plan.test_a_grid_whose_settings_plan_no_run_is_refused_by_the_planner,
  test_params.test_counts_have_generous_upper_bounds,
  test_params.test_subsets_beyond_the_dataset_and_a_warmup_as_long_as_the_run_are_refused,
  test_data.test_check_split_refuses_what_a_dataset_does_not_hold,
  test_data.test_the_loaded_data_is_named_by_its_content_digest
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lthlib as L
from fakeruns import experiment, fake_run
from lthlib import results as R
from lthlib import runs as runs_module
from lthlib.runs import HISTORY_COLUMNS, RunDir
from test_make import SMALL, fake_venv, log_lines, make
from test_settings import _resume_script

ROOT = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict:
    """Every path under ``root`` (symlinks not followed): mtime and content digest of files."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mtime_ns, digest)
    return out


def _real_files(run: Path) -> None:
    """Whole torch files and an engine-shaped history.csv in a fake run folder."""
    state = {"w": torch.ones(2)}
    for name in ("init", "final", "mask"):
        torch.save(state, run / f"{name}.pt")
    (run / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,0.1,2.0,30,2.1,29,1,1,100\n")


def test_every_test_this_module_names_exists():
    """The list above stays true: each test it names is defined in the module it names."""
    import re
    named = re.findall(r"(test_\w+)\.(test_\w+)", __doc__)
    assert len(named) > 25
    missing = [f"{m}.{n}" for m, n in named if f"def {n}(" not in (ROOT / "tests" / f"{m}.py").read_text()]
    assert not missing, missing


# ----------------------------------------------------------------------------- when a run is finished
def test_a_sparse_run_promises_its_mask_and_every_run_its_config(tmp_path):
    """README: finished = metrics.json and every file the run promises (config.json, init.pt, final.pt,
    history.csv, mask.pt for a sparse run) present and readable; a dense run promises no mask."""
    exp = experiment(tmp_path)
    sparse, dense = fake_run(exp, "lt_omp", 0.1, 1, 80.0, sparsity=0.36), fake_run(exp, "pretrain", 0.1, 1, 90.0)
    for run in (sparse, dense):
        _real_files(run)
    (dense / "mask.pt").unlink()
    assert RunDir(sparse).finished() and RunDir(dense).finished()
    (sparse / "mask.pt").unlink()
    assert not RunDir(sparse).finished() and "mask.pt" in RunDir(sparse).problem()
    (dense / "config.json").unlink()
    assert not RunDir(dense).finished() and "config.json" in RunDir(dense).problem()
    assert RunDir(dense).problem(weights=False) is not None  # a report needs config.json too


def test_every_run_file_is_written_by_rename_and_metrics_json_last(tiny_exp, monkeypatch):
    """README: metrics.json is written last, and every file is written to a temporary name and renamed."""
    writes: list[Path] = []
    real = runs_module.atomic_write_bytes

    def recording(path, data):
        real(path, data)
        writes.append(Path(path))
    monkeypatch.setattr(runs_module, "atomic_write_bytes", recording)
    exp = tiny_exp(epochs=2)
    folders = [L.pretrain(exp), *L.lt_omp(exp)]
    for rd in folders:
        mine = [p for p in writes if p.parent == rd.path]
        assert mine and mine[-1].name == "metrics.json", [p.name for p in mine]
        on_disk = {p.name for p in rd.path.iterdir() if p.name != ".lock"}
        assert on_disk <= {p.name for p in mine}, on_disk - {p.name for p in mine}  # nothing written in place


@contextlib.contextmanager
def metrics_json_cannot_be_renamed(monkeypatch):
    """Within: the rename that lands a run's metrics.json fails as on a full disk."""
    real = os.replace

    def crash(src, dst):
        if Path(dst).name == "metrics.json":
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", crash)
    yield
    monkeypatch.setattr(os, "replace", real)


def test_a_crash_while_marking_a_run_finished_leaves_it_unfinished(tiny_exp, monkeypatch):
    """README: a crash never leaves a folder that looks done (here: the rename of metrics.json fails)."""
    exp = tiny_exp(epochs=1)
    with metrics_json_cannot_be_renamed(monkeypatch), pytest.raises(OSError, match="could not write .*metrics.json"):
        L.pretrain(exp)
    [folder] = (Path(exp.out_root) / exp.name / "runs").iterdir()
    rd = RunDir(folder)
    assert not rd.finished() and not rd.metrics.exists()
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name]
    assert R.collect(Path(exp.out_root), exp.name)[0].empty  # the report does not count it either
    assert L.pretrain(exp).finished()


def test_a_crash_while_marking_a_run_finished_keeps_its_checkpoint_so_the_rerun_resumes(tiny_exp, monkeypatch,
                                                                                        capsys):
    """README ("Two commands"): cut runs resume from their last epoch, also when the cut falls between
    the last epoch and metrics.json: the checkpoint goes only after metrics.json has landed."""
    exp = tiny_exp(epochs=3)
    with metrics_json_cannot_be_renamed(monkeypatch), pytest.raises(OSError):
        L.pretrain(exp)
    [folder] = (Path(exp.out_root) / exp.name / "runs").iterdir()
    assert RunDir(folder).checkpoint.exists()
    capsys.readouterr()
    rd = L.pretrain(exp)
    out = capsys.readouterr().out
    assert "resuming after epoch 2/3" in out and "epoch 1/3" not in out, out[-2000:]
    assert rd.finished() and not rd.checkpoint.exists()


def test_a_results_only_run_counts_in_the_report_and_is_retrained_when_its_weights_are_needed(tiny_exp, capsys):
    """README: a report needs only metrics.json, config.json and history.csv, so run folders copied back
    without their weight files still count, and are retrained if a setting needs their weights."""
    exp = tiny_exp(epochs=1, settings=["pretrain", "lt_omp"])
    pre = L.pretrain(exp)
    acc = pre.read_metrics()["final_test_acc"]
    pre.init.unlink()
    pre.final.unlink()
    assert pre.name in set(R.gather(exp).counted["run"])
    capsys.readouterr()
    [lt] = L.lt_omp(exp)
    assert f"{pre.path}: broken run" in capsys.readouterr().out
    assert pre.finished() and pre.read_metrics()["final_test_acc"] == acc and lt.finished()


# ----------------------------------------------------------------------------- killed, run again
def test_killed_and_run_again_keeps_finished_runs_and_resumes_the_cut_one_from_its_last_epoch(tiny_exp, capsys):
    """README ("Two commands"): killing it and running it again keeps every finished run and resumes cut
    ones from their last epoch (not from the start)."""
    exp = tiny_exp(epochs=3, settings=["pretrain", "lt_omp"])
    pre = L.pretrain(exp)
    before = tree(pre.path)
    proc = subprocess.run([sys.executable, "-c", _resume_script(exp, "lt_omp", 2)],  # killed after epoch 2's checkpoint
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert "epoch 2/3" in proc.stdout and "pretrain" not in proc.stdout  # the dense run was not retrained
    capsys.readouterr()
    [lt] = L.lt_omp(exp)
    out = capsys.readouterr().out
    assert "resuming after epoch 2/3" in out and "epoch 3/3" in out
    assert "epoch 1/3" not in out and "epoch 2/3 lr" not in out  # only the epoch the kill cut off
    assert lt.finished() and len(lt.history.read_text().strip().splitlines()) == 4
    assert tree(pre.path) == before


# ----------------------------------------------------------------------------- make: re-running
def _project(tmp_path: Path, grids: dict | None = None) -> Path:
    """The Makefile in a project folder of its own (code, notebooks and venv linked; params/ copied, plus
    ``grids``): whatever make writes by default (OUT=outputs) lands under it."""
    import yaml
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "Makefile", proj / "Makefile")
    for name in ("lthlib", "notebooks", ".venv", "requirements.txt", "pyproject.toml"):
        (proj / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "params", proj / "params")
    for name, values in (grids or {}).items():
        (proj / "params" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **values}))
    return proj


def _ran(log: Path, start: int) -> list[str]:
    """The notebooks started since line ``start`` of the fake papermill's log."""
    return [line.split(" ")[1].split("/")[-1] for line in log_lines(log)[start:] if line.startswith("start ")]


def test_make_demo_again_executes_nothing_and_a_changed_data_redoes_it(tmp_path, fmnist_root):
    """README: running `make demo` again does no training (no notebook is executed again); a changed
    DATA= that reaches the notebooks rewrites their parameters and make redoes them and the report."""
    venv, log, out = fake_venv(tmp_path), tmp_path / "log", tmp_path / "out"
    args = [f"VENV={venv}", f"OUT={out}", f"SET={SMALL}"]
    env = {"FAKE_LOG": str(log)}
    r = make("demo", *args, f"DATA={fmnist_root}", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(_ran(log, 0)) == ["analysis", "pretrain_lr0.1_s1", "pretrain_lr0.1_s2"]
    n, files = len(log_lines(log)), tree(out / "demo" / "notebooks")
    r = make("demo", *args, f"DATA={fmnist_root}", env=env)
    assert r.returncode == 0 and "==>" not in r.stdout, r.stdout[-3000:]
    assert len(log_lines(log)) == n and tree(out / "demo" / "notebooks") == files
    other = tmp_path / "data2"
    other.symlink_to(fmnist_root)
    r = make("demo", *args, f"DATA={other}", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(_ran(log, n)) == ["analysis", "pretrain_lr0.1_s1", "pretrain_lr0.1_s2"]
    assert f"data_root: {other}" in (out / "demo" / "notebooks" / "pretrain_lr0.1_s1.params.yaml").read_text()


def test_a_seed_subset_then_the_full_grid_redoes_nothing_for_the_subset_and_a_params_file_change_redoes_all(
        tmp_path):
    """README: SET='seeds=[1]' followed by the full grid redoes nothing for seed 1 (unchanged notebooks
    are kept); a params-file value that reaches the notebooks rewrites their parameters, and make redoes
    them and the report."""
    grid = {"model": "lenet5", "dataset": "fashion_mnist", "lrs": [0.1], "seeds": [1, 2], "settings": ["pretrain"],
            "notebooks": "per_cell", "epochs": 1}
    proj = _project(tmp_path, {"g": grid})
    venv, log, out = fake_venv(tmp_path), tmp_path / "log", tmp_path / "out"
    args, env = ["grid", "GRID=g", f"VENV={venv}", f"OUT={out}"], {"FAKE_LOG": str(log)}
    r = make(*args, "SET=seeds=[1]", cwd=proj, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(_ran(log, 0)) == ["analysis", "pretrain_lr0.1_s1"]
    n, s1 = len(log_lines(log)), out / "g" / "notebooks" / "pretrain_lr0.1_s1.ipynb"
    kept = s1.stat().st_mtime_ns
    r = make(*args, cwd=proj, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(_ran(log, n)) == ["analysis", "pretrain_lr0.1_s2"] and s1.stat().st_mtime_ns == kept
    n = len(log_lines(log))
    (proj / "params" / "g.yaml").write_text((proj / "params" / "g.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    r = make(*args, cwd=proj, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(_ran(log, n)) == ["analysis", "pretrain_lr0.1_s1", "pretrain_lr0.1_s2"]


# ----------------------------------------------------------------------------- make: what it accepts
def test_make_n_demo_lists_the_work_and_writes_nothing_not_even_a_plan(tmp_path, fmnist_root):
    """README: `make -n <target>` lists the notebooks (and the parameter files) a target would execute and
    writes nothing, not even a plan: `make -n demo` in a project creates no outputs root."""
    proj = _project(tmp_path)
    before = tree(proj)
    r = make("-n", "demo", f"DATA={fmnist_root}", "SET=seeds=[1] lrs=[0.1]", cwd=proj)
    assert r.returncode == 0 and "papermill " in r.stdout and "new parameters:" in r.stdout, r.stderr[-2000:]
    assert tree(proj) == before and not (proj / "outputs").exists()


def test_make_n_of_any_target_writes_nothing_into_a_planned_root(tmp_path, fmnist_root):
    """README: `make -n <target>` writes nothing: demo, grid (with another SET), report, index and clean,
    on a project's default outputs root as `make grid` leaves it."""
    proj = _project(tmp_path)
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "lthlib.plan", "params/demo.yaml", "--out-root",
                        "outputs", "--set", "seeds=[1] lrs=[0.1]"], cwd=proj, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    before = tree(proj)
    for target in (["demo", f"DATA={fmnist_root}", "SET=seeds=[2]"], ["grid", "GRID=demo", "SET=seeds=[2]"],
                   ["report"], ["index"], ["clean"]):
        r = make("-n", *target, cwd=proj)
        assert r.returncode == 0, (target, r.stderr[-2000:])
        assert tree(proj) == before, target
        if target[0] in ("demo", "grid"):  # another SET: it lists what it would execute
            assert "new parameters:" in r.stdout and "papermill " in r.stdout, (target, r.stdout[-2000:])


def test_out_may_not_be_the_filesystem_root_and_a_plain_path_with_a_plus_is_taken(tmp_path):
    """README: OUT must be a plain path (letters, digits, ._/+-) that is neither / nor the checkout nor a
    folder above it; GRID a params name."""
    for bad in ("/", "//", "/."):
        r = make("-n", "grid", "GRID=demo", f"OUT={bad}", "SET=seeds=[1] lrs=[0.1]")
        assert r.returncode != 0 and "error: OUT" in r.stderr, (bad, r.stderr[-2000:])
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}/a+b_c-d.e/out", "SET=seeds=[1] lrs=[0.1]")
    assert r.returncode == 0 and "papermill " in r.stdout, r.stderr[-2000:]
    r = make("-n", "grid", "GRID=no_such_grid", f"OUT={tmp_path}/o")
    assert r.returncode != 0 and "no_such_grid" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "a+b_c-d.e").exists() and not (tmp_path / "o").exists()
