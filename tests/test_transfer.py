"""Run folders packed on a GPU machine and unpacked here (lthlib.transfer): what travels, what is refused."""
from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

import lthlib
from lthlib import layout, settings, transfer
from lthlib.errors import ConfigError
from lthlib.runs import HISTORY_COLUMNS
from fakeruns import fake_study

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The fake study's 16-epoch grid (seed 3 results-only) packed into parts of 0.05 MiB."""
    tmp = tmp_path_factory.mktemp("transfer")
    params = fake_study(tmp) / "study.yaml"
    for run in (layout.grid_dir(tmp / "out", "study") / "runs").iterdir():   # a history the engine would write
        (run / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1" + ",0.5" * (len(HISTORY_COLUMNS) - 1) + "\n")
        for f in run.glob("*.pt"):                                  # and torch files for the placeholders
            if f.read_bytes() == b"placeholder":
                torch.save({"w": torch.zeros(3)}, f)
    sets = [f"out_root={tmp / 'out'}"]
    files = transfer.pack(params, sets, tmp / "back", wall_s=12.5, rc=0, part_mib=0.05)
    exp = lthlib.load(params, {"out_root": str(tmp / "out")})
    return tmp, params, exp, files


def _runs(out_root, grid="study") -> dict[str, set[str]]:
    runs = layout.grid_dir(out_root, grid) / "runs"
    return {r.name: {p.name for p in r.iterdir()} for r in runs.iterdir()} if runs.is_dir() else {}


def test_pack_writes_the_results_of_every_finished_run_and_the_weights_the_report_reads(packed):
    tmp, params, exp, files = packed
    assert files[0].name == "study.results.tgz" and len(files) > 2, files   # results, then weights in parts
    assert [f.name for f in files[1:]] == [f"study.weights.tgz.{i:02d}" for i in range(len(files) - 1)]
    assert all(f.stat().st_size <= 0.05 * transfer.MIB for f in files[1:])
    with tarfile.open(files[0]) as tar:
        names = tar.getnames()
        prov = json.load(tar.extractfile("study/provenance.json"))
    plans = settings.grid_plans(exp)
    assert len({n.split("/")[2] for n in names if "/runs/" in n}) == len(plans)
    assert not [n for n in names if n.endswith(".pt")]
    assert prov["runs_planned"] == prov["runs_finished"] == len(plans)
    assert prov["training_wall_s"] == 12.5 and prov["training_rc"] == 0 and prov["sets"] == []
    assert prov["machine"]["device"] and prov["machine"]["torch"] and prov["code_version"]
    # weights: every dense run with weights (seeds 1, 2; seed 3 is results-only) and OMP at s = 0.832
    assert re.search(r"dense weights: 6 of 6 runs; OMP weights at s = 0.832: 12 of 12 runs", prov["weights_packed"])


def test_unpack_rebuilds_the_run_folders_and_the_plan(packed, tmp_path):
    tmp, params, exp, files = packed
    (summary,) = transfer.unpack(tmp / "back", tmp_path / "here")
    assert summary["grid"] == "study" and summary["placed"] == summary["runs"] == len(settings.grid_plans(exp))
    there, here = _runs(tmp / "out"), _runs(tmp_path / "here")
    assert set(here) == set(there)
    for name, files_here in here.items():
        src = layout.grid_dir(tmp / "out", "study") / "runs" / name
        assert set(transfer.RESULT_FILES) <= files_here <= there[name]
        assert all((src / f).read_bytes() == (tmp_path / "here" / "study" / "runs" / name / f).read_bytes()
                   for f in files_here)
    dense = [p for p in settings.grid_plans(exp.replace(out_root=str(tmp_path / "here")))
             if p.setting == "pretrain" and p.cell.seed != 3]
    assert dense and all(p.folder.final.exists() and p.folder.init.exists() for p in dense)
    assert (tmp_path / "here" / "study" / "plan.mk").exists()
    assert not list((tmp_path / "here").glob(".unpack-*"))


def test_unpacking_again_keeps_identical_folders_and_refuses_differing_ones(packed, tmp_path):
    tmp, _, _, _ = packed
    transfer.unpack(tmp / "back", tmp_path, write_plan=False)
    again = transfer.unpack(tmp / "back", tmp_path, write_plan=False)[0]
    assert again["placed"] == 0 and again["kept"] == again["runs"]
    run = next((tmp_path / "study" / "runs").iterdir())
    (run / "metrics.json").write_text("{}")                     # a folder that holds another run's results
    before = _runs(tmp_path)
    with pytest.raises(ConfigError, match="already there hold other files.*--replace"):
        transfer.unpack(tmp / "back", tmp_path, write_plan=False)
    assert _runs(tmp_path) == before and (run / "metrics.json").read_text() == "{}"
    assert transfer.unpack(tmp / "back", tmp_path, replace=True, write_plan=False)[0]["placed"] == 1
    assert json.loads((run / "metrics.json").read_text())["final_test_acc"] > 0


def test_a_results_only_folder_here_gets_the_weights_that_arrive(packed, tmp_path):
    tmp, _, _, files = packed
    (tmp_path / "results_only").mkdir()
    (tmp_path / "results_only" / files[0].name).write_bytes(files[0].read_bytes())
    transfer.unpack(tmp_path / "results_only", tmp_path / "out", write_plan=False)
    assert not any(n.endswith(".pt") for names in _runs(tmp_path / "out").values() for n in names)
    s = transfer.unpack(tmp / "back", tmp_path / "out", write_plan=False)[0]
    assert s["placed"] == 0 and s["completed"] == 18     # the dense and OMP runs with weights
    got = {n: {f for f in names if f.endswith(".pt")} for n, names in _runs(tmp_path / "out").items()}
    source = _runs(tmp / "out")
    assert sum(bool(w) for w in got.values()) == 18
    assert all(w == {f for f in source[n] if f.endswith(".pt")} for n, w in got.items() if w)


def _weight_members(folder: Path, grid: str) -> list[str]:
    """The member names of ``grid``'s weights archive in ``folder`` (its parts read as one)."""
    data = b"".join(p.read_bytes() for p in sorted(folder.glob(f"{grid}.weights.tgz.*")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def _tgz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("bad", ["study/runs/../../evil.txt", "study/runs/x/run.sh", "/abs/metrics.json",
                                 "other/runs/x/metrics.json"])
def test_a_member_outside_a_run_folder_stops_the_unpack_with_nothing_written(tmp_path, bad):
    src = tmp_path / "back"
    src.mkdir()
    _tgz(src / "study.results.tgz", {"study/provenance.json": b"{}", "study/runs/r1/metrics.json": b"{}", bad: b"x"})
    with pytest.raises(ConfigError, match="is not a file of a run folder.*nothing was unpacked"):
        transfer.unpack(src, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [] and not (tmp_path / "evil.txt").exists()


def test_a_missing_part_or_a_truncated_archive_is_named(packed, tmp_path):
    tmp, _, _, files = packed
    src = tmp_path / "back"
    src.mkdir()
    for f in files:
        if not f.name.endswith(".01"):
            (src / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError, match=r"parts of study.weights.tgz are \[0, 2.*one is missing"):
        transfer.unpack(src, tmp_path / "out")
    for f in files[1:]:
        (src / f.name).unlink(missing_ok=True)
    (src / files[1].name).write_bytes(files[1].read_bytes())       # part 00 alone: the archive is cut short
    with pytest.raises(ConfigError, match="cannot be read.*Fetch it again"):
        transfer.unpack(src, tmp_path / "out")
    assert not _runs(tmp_path / "out")


def test_a_small_budget_packs_whole_run_folders_and_says_what_it_left(packed, tmp_path):
    tmp, params, exp, _ = packed
    transfer.pack(params, [f"out_root={tmp / 'out'}"], tmp_path, max_mib=0.4)   # room for a few dense runs
    with tarfile.open(tmp_path / "study.results.tgz") as tar:
        prov = json.load(tar.extractfile("study/provenance.json"))
    taken = int(re.search(r"dense weights: (\d) of 6 runs \(the rest over the budget\)", prov["weights_packed"])[1])
    assert 0 < taken < 6 and sum(f.stat().st_size for f in tmp_path.glob("study.weights.tgz.*")) <= 0.4 * transfer.MIB
    transfer.unpack(tmp_path, tmp_path / "out", write_plan=False)
    source = _runs(tmp / "out")
    got = {n: {f for f in names if f.endswith(".pt")} for n, names in _runs(tmp_path / "out").items()}
    packed_runs = {n.split("/")[2] for n in _weight_members(tmp_path, "study")}
    assert {n for n, w in got.items() if w} == packed_runs and len(packed_runs) >= taken
    assert all(w in (set(), {f for f in source[n] if f.endswith(".pt")}) for n, w in got.items())  # all or none


def test_the_rp_sparsity_is_the_analysis_notebooks():
    text = (ROOT / "notebooks" / "analysis.py").read_text()
    assert float(re.search(r"^rp_sparsity(?::\s*float)?\s*=\s*([0-9.]+)", text, re.M).group(1)) == transfer.RP_SPARSITY


def test_code_version_is_the_environments_when_given(monkeypatch):
    from lthlib.runs import code_version
    monkeypatch.setenv("LTHLIB_CODE_VERSION", "v1.2-3-gabc")
    assert code_version() == "v1.2-3-gabc"
    monkeypatch.delenv("LTHLIB_CODE_VERSION")
    import subprocess
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT)
    assert code_version() == (git.stdout.strip() if git.returncode == 0 else "unknown")


def test_pack_results_holds_every_finished_run_folder_of_the_grid_without_weights(packed, tmp_path):
    tmp, _, exp, files = packed
    n = transfer.pack_results(tmp / "out", "study", tmp_path / "study.results.tgz")
    assert n == len(settings.grid_plans(exp))
    with tarfile.open(tmp_path / "study.results.tgz") as tar, tarfile.open(files[0]) as packed_tar:
        assert sorted(tar.getnames()) == sorted(packed_tar.getnames())
    with pytest.raises(ConfigError, match="provenance.json: missing"):
        transfer.pack_results(tmp / "out", "nogrid", tmp_path / "x.tgz")


@pytest.mark.slow
def test_the_gpu_to_published_report_flow_regenerates_the_same_verdicts(tmp_path, fmnist_root, monkeypatch):
    """The README's flow at a tiny size: train the lite grid with the scheduler, pack, unpack elsewhere, make
    report, publish --report; the published folder unpacked again renders the same verdicts (~3 min)."""
    import subprocess
    import pandas as pd
    from lthlib import readme, schedule
    from lthlib.runs import atomic_write_text
    sets = [f"data_root={fmnist_root}", "download=false", "n_train=300", "n_test=200", "epochs=2", "full_epochs=2",
            "seeds=[1]", "lrs=[0.1,0.01]", "imp_rounds=2", "sparsities=[0.59]", "trajectory_points=1",
            "trajectory_sparsity=0.59", "device=cpu"]
    params, grid = "params/lite_fmnist_resnet20.yaml", "lite_fmnist_resnet20"
    assert schedule.main([params, *sets, f"out_root={tmp_path / 'gpu'}"]) == 0
    transfer.pack(params, sets + [f"out_root={tmp_path / 'gpu'}"], tmp_path / "back", wall_s=30, rc=0)
    transfer.unpack(tmp_path / "back", tmp_path / "here")

    def report(out):
        r = subprocess.run(["make", "--no-print-directory", "report", f"OUT={out}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return pd.read_csv(layout.verdicts_csv(out, grid))

    first = report(tmp_path / "here")
    monkeypatch.setattr(readme, "published", lambda g: tmp_path / "results" / g)
    md = tmp_path / "README.md"
    atomic_write_text(md, readme.BEGIN.format(grid=grid) + "\n" + readme.END.format(grid=grid) + "\n")
    dest = readme.publish(grid, str(tmp_path / "here"), md, with_report=True)
    assert (dest / "figures" / "trajectories.svg").exists() and "| wall time | 30s of training" in \
        (dest / "README.md").read_text()
    assert not list(dest.rglob("*.pt")) and sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) < 4e6
    transfer.unpack(dest, tmp_path / "again")
    again = report(tmp_path / "again")
    pd.testing.assert_frame_equal(first, again)


def test_a_repack_leaves_no_part_of_the_earlier_pack_and_bad_sizes_are_refused(packed, tmp_path):
    tmp, params, _, files = packed
    sets = [f"out_root={tmp / 'out'}"]
    transfer.pack(params, sets, tmp_path, part_mib=0.05)
    assert len(list(tmp_path.glob("study.weights.tgz.*"))) == len(files) - 1
    transfer.pack(params, sets, tmp_path, max_mib=0.001)                 # no run's weights fit now
    assert not list(tmp_path.glob("study.weights.tgz*"))
    for kw, msg in (({"part_mib": 0}, "--part-mib 0: give a positive"), ({"max_mib": -1}, "--max-mib -1"),
                    ({"part_mib": 0.001}, r"1\d\d\d parts of .* MiB; at most 100 are numbered")):
        with pytest.raises(ConfigError, match=msg):
            transfer.pack(params, sets, tmp_path, **kw)
    assert not list(tmp_path.glob("study.weights.tgz*"))


def _provenance(params, **kw) -> bytes:
    return json.dumps({"grid": "study", "params_file": str(params), "sets": [], "machine": {}, **kw}).encode()


@pytest.mark.parametrize("case", ["weights archive with a result file", "a member twice", "unreadable provenance",
                                  "provenance of another grid", "no params_file", "a second grid that is bad"])
def test_a_bad_archive_of_any_grid_stops_the_unpack_before_anything_is_placed(packed, tmp_path, case):
    tmp, params, _, files = packed
    src, run = tmp_path / "back", "study/runs/r1"
    src.mkdir()
    results = {"study/provenance.json": _provenance(params), f"{run}/metrics.json": b"{}"}
    weights = {f"{run}/final.pt": b"w"}
    if case == "weights archive with a result file":
        weights[f"{run}/metrics.json"] = b"{}"
    elif case == "a member twice":
        weights[f"{run}/final.pt"] = b"w"
        _tgz(src / "study.weights.tgz.00", weights)
        with tarfile.open(src / "study.weights.tgz.00", "w:gz") as tar:   # the same name twice in one archive
            for data in (b"a", b"b"):
                info = tarfile.TarInfo(f"{run}/final.pt")
                info.size = 1
                tar.addfile(info, io.BytesIO(data))
    elif case == "unreadable provenance":
        results["study/provenance.json"] = b"{not json"
    elif case == "provenance of another grid":
        results["study/provenance.json"] = _provenance(params, grid="other")
    elif case == "no params_file":
        results["study/provenance.json"] = _provenance(params, params_file=None)
    else:
        _tgz(src / "zzz.results.tgz", {"zzz/runs/x/run.sh": b"x"})
    _tgz(src / "study.results.tgz", results)
    if case != "a member twice":
        _tgz(src / "study.weights.tgz.00", weights)
    match = {"weights archive with a result file": "is not a file of a run folder",
             "a member twice": "appears twice", "unreadable provenance": "not readable JSON",
             "provenance of another grid": "names grid 'other', the archive 'study'",
             "no params_file": "has no params_file", "a second grid that is bad": "zzz.results.tgz: member"}[case]
    with pytest.raises(ConfigError, match=match):
        transfer.unpack(src, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []           # no grid placed, no staging left
    assert transfer.main(["unpack", str(src), "--out", str(tmp_path / "out")]) == 2   # an error, no traceback


def test_a_file_where_a_run_folder_belongs_is_refused(packed, tmp_path):
    tmp, _, _, _ = packed
    transfer.unpack(tmp / "back", tmp_path, write_plan=False)
    run = next((tmp_path / "study" / "runs").iterdir())
    shutil.rmtree(run)
    run.write_text("not a folder")
    with pytest.raises(ConfigError, match="a file where a run folder belongs"):
        transfer.unpack(tmp / "back", tmp_path, write_plan=False)
    assert run.read_text() == "not a folder"
