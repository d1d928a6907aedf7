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
    # part 00 alone where the results archive lists no parts (an older pack): the archive is cut short
    _rewrite_provenance(src / files[0].name, files[0], lambda prov: prov.pop("weights_parts"))
    (src / files[1].name).write_bytes(files[1].read_bytes())
    with pytest.raises(ConfigError, match="cannot be read.*Fetch it again"):
        transfer.unpack(src, tmp_path / "out")
    assert not _runs(tmp_path / "out")


def _rewrite_provenance(dest: Path, results: Path, edit) -> None:
    """``results`` (a results archive) written to ``dest`` with its provenance.json changed by ``edit``."""
    with tarfile.open(results) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    prov = json.loads(members["study/provenance.json"])
    edit(prov)
    members["study/provenance.json"] = json.dumps(prov).encode()
    _tgz(dest, members)


def _weights_of(out_root) -> dict[str, set[str]]:
    return {n: {f for f in names if f.endswith(".pt")} for n, names in _runs(out_root).items()}


@pytest.mark.parametrize("cut", ["parts after the first missing", "the last part here cut short"])
def test_the_results_unpack_when_weight_parts_the_pack_listed_are_missing_or_cut(packed, tmp_path, cut, capsys):
    """A pack cut short by the device's time limit brings back its results archive (written first) and
    the weight parts written before the cut: the results and the runs whose weight files all arrived are
    unpacked, the note names the parts not here, and the rest arrive by unpacking again."""
    tmp, _, _, files = packed
    results, parts = files[0], files[1:]
    src = tmp_path / "back"
    src.mkdir()
    with tarfile.open(results) as tar:
        listed = json.load(tar.extractfile("study/provenance.json"))["weights_parts"]
    assert [e["name"] for e in listed] == [p.name for p in parts] and [e["bytes"] for e in listed] == \
        [p.stat().st_size for p in parts]
    half = len(parts) // 2
    assert half >= 2
    for f in [results, *parts[:half]]:
        (src / f.name).write_bytes(f.read_bytes())
    if cut == "the last part here cut short":
        last = src / parts[half - 1].name
        last.write_bytes(last.read_bytes()[:1000])
    missing = [p.name for p in parts[half - (cut != "parts after the first missing"):]]
    (s,) = transfer.unpack(src, tmp_path / "out", write_plan=False)
    assert s["weights_missing"] == missing and all(m in s["weights_note"] for m in missing)
    assert s["placed"] == s["runs"] and f"of {len(parts)} part(s) not here whole" in s["weights_note"]
    got, source = _weights_of(tmp_path / "out"), _weights_of(tmp / "out")
    assert set(got) == set(source)                             # every run's results
    with_weights = {n for n, w in got.items() if w}
    assert 0 < len(with_weights) < 18 and all(got[n] == source[n] for n in with_weights)   # whole runs only
    assert f"the weights of {len(with_weights)} of 18 run(s) unpacked" in s["weights_note"]
    assert transfer.main(["unpack", str(src), "--out", str(tmp_path / "cli")]) == 0
    assert "warning: study: weights:" in capsys.readouterr().err
    for f in parts:                                             # the missing parts fetched: the rest arrive
        (src / f.name).write_bytes(f.read_bytes())
    s = transfer.unpack(src, tmp_path / "out", write_plan=False)[0]
    assert s["weights_missing"] == [] and s["weights_note"] is None and s["completed"] == 18 - len(with_weights)
    got = _weights_of(tmp_path / "out")
    assert sum(bool(w) for w in got.values()) == 18 and all(w == source[n] for n, w in got.items() if w)


def test_the_weight_parts_that_arrive_are_checked_when_others_are_missing(packed, tmp_path):
    tmp, params, _, _ = packed
    src, run = tmp_path / "back", "study/runs/r1"
    src.mkdir()
    _tgz(src / "study.weights.tgz.00", {f"{run}/metrics.json": b"{}"})      # a result file in a weights part
    size = (src / "study.weights.tgz.00").stat().st_size
    parts = [{"name": "study.weights.tgz.00", "bytes": size}, {"name": "study.weights.tgz.01", "bytes": 5}]
    _tgz(src / "study.results.tgz", {"study/provenance.json": _provenance(params, weights_parts=parts,
                                                                        weights_planned={"r1": 1}),
                                     f"{run}/metrics.json": b"{}"})
    with pytest.raises(ConfigError, match="is not a file of a run folder"):
        transfer.unpack(src, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []
    _tgz(src / "study.results.tgz", {"study/provenance.json": _provenance(params, weights_parts=[{"name": "x"}]),
                                     f"{run}/metrics.json": b"{}"})
    with pytest.raises(ConfigError, match="has weights_parts"):
        transfer.unpack(src, tmp_path / "out")
    (src / "study.weights.tgz.01").write_bytes(b"x")                # a part the pack did not list
    _tgz(src / "study.results.tgz", {"study/provenance.json": _provenance(params, weights_parts=parts[:1]),
                                     f"{run}/metrics.json": b"{}"})
    with pytest.raises(ConfigError, match="not a part this pack wrote"):
        transfer.unpack(src, tmp_path / "out")


@pytest.mark.parametrize("fails", ["the weights archive", "its parts"])
def test_pack_writes_the_results_before_the_weights(packed, tmp_path, monkeypatch, fails):
    """Cut short while writing the weights (the device's time limit), a pack leaves its results archive
    (written first, atomically), which says what weights were planned; unpack places the results."""
    tmp, params, _, _ = packed
    write_tar, order = transfer._write_tar, []

    def fail(path, *a):
        order.append(path.name)
        if fails == "its parts" or not path.name.endswith(".weights.tgz"):
            return write_tar(path, *a)
        raise KeyboardInterrupt("killed")

    def split(path, part_bytes):
        order.append("split")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(transfer, "_write_tar", fail)
    if fails == "its parts":
        monkeypatch.setattr(transfer, "_split", split)
    with pytest.raises(KeyboardInterrupt):
        transfer.pack(params, [f"out_root={tmp / 'out'}"], tmp_path / "back", part_mib=0.05)
    assert order[:2] == ["study.results.tgz", "study.weights.tgz"]
    assert order[2:] == ([] if fails == "the weights archive" else ["study.results.tgz", "split"])
    assert not list((tmp_path / "back").glob("study.weights.tgz.*"))
    assert not [p for p in (tmp_path / "back").iterdir() if ".tmp" in p.name]
    with tarfile.open(tmp_path / "back" / "study.results.tgz") as tar:
        prov = json.load(tar.extractfile("study/provenance.json"))
    assert len(prov["weights_planned"]) == 18 and set(prov["weights_planned"].values()) <= {2, 3}
    assert ("weights_parts" in prov) == (fails == "its parts")
    (s,) = transfer.unpack(tmp_path / "back", tmp_path / "out", write_plan=False)
    assert s["placed"] == s["runs"] > 18 and not any(_weights_of(tmp_path / "out").values())
    assert ("planned the weights of 18 run(s) but wrote no part" in s["weights_note"]) == (fails != "its parts")
    assert fails != "its parts" or s["weights_missing"] == [e["name"] for e in prov["weights_parts"]]


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


# ----------------------------------------------------------------------------- scripts/gpu_check.sh's lite check
STUB_PYTHON = r'''#!/usr/bin/env bash
# python3 as scripts/gpu_check.sh calls it, stubbed: each call's arguments one a line in calls.log
{ echo "--- call"; printf '%s\n' "$@"; } >> "$STUB/calls.log"
case "$1 $2" in
  "-c "*) echo "torch stub" ;;
  "-m lthlib.data") echo "fashion_mnist: ready (stub)" ;;
  "-m lthlib.schedule")
    n=$(( $(cat "$STUB/schedule.n" 2>/dev/null || echo 0) + 1 )); echo $n > "$STUB/schedule.n"
    what=$(echo "$STUB_SCHEDULE" | cut -d, -f$n)
    echo "schedule try $n: $what"
    case "$what" in
      fail) echo "RuntimeError: CUDA graph capture failed (stub)"; exit 1 ;;
      fail_after_a_run|ok) mkdir -p outputs/lite_fmnist_resnet20/runs/r1
        echo '{}' > outputs/lite_fmnist_resnet20/runs/r1/metrics.json; [ "$what" = ok ] || exit 1 ;;
      timeout) exit 124 ;;
      sleep) exec sleep 30 ;;
    esac ;;
  "-m lthlib.transfer")
    dest=$(printf '%s\n' "$@" | sed -n '/^--dest$/{n;p}')
    echo results > "$dest/lite_fmnist_resnet20.results.tgz"; echo "$dest/lite_fmnist_resnet20.results.tgz" ;;
esac
'''


def _gpu_check(tmp_path, schedule: str, data=True, **env):
    """scripts/gpu_check.sh's lite check run in a copy of what it reads, with python3 and nvidia-smi
    stubbed (``schedule``: what each try of the scheduler does, comma-separated); (result, $OUT, the
    python3 calls as argument lists)."""
    import os
    import subprocess
    work, stub, out = tmp_path / "work", tmp_path / "stub", tmp_path / "out"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "gpu_check.sh", work / "scripts")
    if data:                                                   # as lthlib.data leaves it prepared
        raw = work / "outputs" / "data" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte"):
            (raw / f).write_bytes(b"idx")
    (work / "seeds=1").write_text("")                           # what an unquoted seeds=[1,2] would glob to
    stub.mkdir()
    for name, text in (("python3", STUB_PYTHON), ("nvidia-smi", "#!/bin/sh\necho 'name, memory.total'\n")):
        (stub / name).write_text(text)
        (stub / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "STUB": str(stub), "STUB_SCHEDULE": schedule,
           "OUT": str(out), "CHECKS": "lite", "FMNIST_DEBIAN": str(tmp_path / "no-debian"),
           "LITE_SET": "n_train=200 seeds=[1,2]", **env}
    r = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    log = (stub / "calls.log").read_text() if (stub / "calls.log").exists() else ""
    calls = [c.strip("\n").split("\n") for c in log.split("--- call\n")[1:]]
    return r, out, calls


@pytest.mark.parametrize("schedule, retried", [("fail,ok", True), ("fail_after_a_run", False),
                                               ("timeout", False), ("ok", False)])
def test_gpu_check_lite_trains_again_without_cuda_graphs_when_the_first_try_fails_before_any_run(
        tmp_path, schedule, retried):
    r, out, calls = _gpu_check(tmp_path, schedule)
    assert r.returncode == 0, r.stdout + r.stderr
    tries = [c for c in calls if c[:2] == ["-m", "lthlib.schedule"]]
    (pack,) = [c for c in calls if c[:2] == ["-m", "lthlib.transfer"]]
    assert len(tries) == 1 + retried and all("seeds=[1,2]" in c and "n_train=200" in c for c in tries + [pack])
    assert ("cuda_graph=false" in tries[-1]) == retried == ("cuda_graph=false" in pack)
    assert "cuda_graph=false" not in tries[0]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(["gpu.txt", "lite.log", "lite_fmnist_resnet20.results.tgz"] + ["lite1.log"] * retried)
    assert len(files) <= 8 - 4                                   # room for 4 weight parts
    log = (out / "lite.log").read_text()
    first = (out / "lite1.log").read_text() if retried else log
    assert re.search(r"lite: scheduler limit \d+s \(LITE_DEADLINE 570s", first) and "lite: pack limit" in log
    if retried:
        assert "capture failed" in first and "once more with cuda_graph=false" in first
        assert "second try, cuda_graph=false" in log and "schedule try 2: ok" in log
    assert pack[pack.index("--rc") + 1] == {"fail,ok": "0", "fail_after_a_run": "1", "timeout": "124", "ok": "0"}[schedule]


def test_gpu_check_lite_keeps_to_its_deadline_and_an_explicit_limit_wins(tmp_path):
    r, out, _ = _gpu_check(tmp_path / "a", "ok", LITE_DEADLINE="100")
    log = (out / "lite.log").read_text()
    limit = int(re.search(r"scheduler limit (\d+)s", log)[1])
    assert 60 <= limit <= 70 and "- LITE_PACK_RESERVE 30s" in log, log
    assert 25 <= int(re.search(r"pack limit (\d+)s", log)[1]) <= 100
    r, out, calls = _gpu_check(tmp_path / "b", "sleep", LITE_LIMIT="1")   # the scheduler is stopped at its limit
    log = (out / "lite.log").read_text()
    assert "scheduler limit 1s (LITE_LIMIT)" in log and "lite rc=124" in log and not (out / "lite1.log").exists()
    assert [c[:2] for c in calls].count(["-m", "lthlib.transfer"]) == 1      # and the pack still runs


def test_gpu_check_stops_at_once_without_fashion_mnist(tmp_path):
    r, out, calls = _gpu_check(tmp_path, "ok", data=False)
    assert r.returncode == 2 and "neither in" in r.stderr and ".gpudata" in r.stderr
    assert "error: Fashion-MNIST is neither" in (out / "gpu.txt").read_text()
    assert not [c for c in calls if c[:1] == ["-m"]]                        # no python3 -m at all


def test_gpu_check_takes_fashion_mnist_from_gpudata(tmp_path):
    """Carried .gpudata/ (Debian's .gz files) where Debian's folder cannot be written: gunzipped where
    lthlib.data reads them."""
    import gzip
    work = tmp_path / "work" / ".gpudata"
    work.mkdir(parents=True)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):
        (work / f"{f}.gz").write_bytes(gzip.compress(f.encode()))
    blocked = tmp_path / "ro"
    blocked.write_text("a file, so no folder can be made under it")
    r, out, calls = _gpu_check(tmp_path, "ok", data=False, FMNIST_DEBIAN=str(blocked / "fashion-mnist"))
    assert r.returncode == 0, r.stdout + r.stderr
    raw = tmp_path / "work" / "outputs" / "data" / "FashionMNIST" / "raw"
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == b"t10k-labels-idx1-ubyte"
    assert ["-m", "lthlib.data", "prepare", "fashion_mnist", "outputs/data"] in calls
