"""Run folders packed for the trip back from a GPU machine, and unpacked into an outputs root here.

A lent GPU machine has no papermill: it trains a grid with ``python -m lthlib.schedule`` and then packs
what a report needs (``scripts/gpu_check.sh``'s ``lite`` check does both):

    python -m lthlib.transfer pack params/lite_fmnist_resnet20.yaml [key=value ...] --dest DIR
        [--wall-s S] [--rc N] [--part-mib 15] [--max-mib 56]

writes ``DIR/<grid>.results.tgz`` (config.json, history.csv and metrics.json of every finished run of the
plan, and ``<grid>/provenance.json``: the machine, torch, the code version, the parameters, the training's
wall time and exit status, how many of the plan's runs finished) and ``DIR/<grid>.weights.tgz.NN``: every
weight file of the finished runs whose weights the report reads (``weight_groups``: the trajectory runs,
the dense runs, the OMP runs R_p uses), whole run folders in that order, each that still fits in
``--max-mib`` MiB compressed (the results archive aside), in parts of at most ``--part-mib`` MiB (the device tool brings back files of 16 MiB at most);
provenance.json says what was packed. The results archive is written first (each file under a temporary
name, then renamed), listing the weight runs planned (``weights_planned``), and again once the weights
archive is built, naming its parts and their sizes (``weights_parts``), before the parts: a pack killed
part-way (the device's time limit) still brings back every finished run's results. Here:

    python -m lthlib.transfer unpack DIR [--out outputs] [--replace]

reads every archive of DIR, checks each member (a regular file of one grid's run folder with a file name a
run writes, or the grid's provenance.json; a bad member stops it with nothing written), extracts into a
staging folder under the outputs root and moves each run folder into place (a run folder already there is
kept, and given the files it lacks, when the files both hold are the same, and refused when they differ,
unless ``--replace``: then the folder is replaced whole). Weight parts the results archive lists that are
not here whole (the tail of a cut pack) do not stop it: the results are placed, with the weights of the runs
whose weight files all arrived (the parts that did arrive are checked as ever), and a warning names the
missing parts; unpacking again once they are fetched adds the rest. Then it writes the grid's plan (plan.mk
and the notebooks' parameter files, as ``make grid`` does) with the parameters the runs were trained with, so
``make report OUT=...`` renders the grid's report from them without training anything; ``python -m
lthlib.readme publish <grid> --report`` publishes it.
"""
from __future__ import annotations

import argparse
import filecmp
import io
import json
import math
import os
import platform
import re
import shutil
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path, PurePosixPath

from . import layout
from .errors import ConfigError, LTHError
from .runs import RunDir, atomic_write_json, code_version, project_path

PROVENANCE = "provenance.json"
RESULT_FILES = ("config.json", "history.csv", "metrics.json")  # metrics.json last: it marks a run finished
WEIGHT_FILE = re.compile(r"(init|final|mask)\.pt|weights_e\d{3}\.pt")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
MIB = 1 << 20
GZ_LEVEL = 1  # weights are floats: a higher level saves little and costs several times the time


# ----------------------------------------------------------------------------- pack (on the GPU machine)
def _grid_plans(params_file, sets: list[str]):
    from . import settings
    from .params import load, parse_sets
    exp = load(params_file, parse_sets(sets, "command-line overrides"))
    return exp, settings.grid_plans(exp)


def _result_ready(rd: RunDir) -> bool:
    return rd.metrics.exists() and rd.problem(weights=False) is None


def machine() -> dict:
    """This machine, in words and numbers (for provenance.json)."""
    import torch
    from .engine import device_name
    cuda = torch.cuda.is_available()
    return {"device": device_name("cuda" if cuda else "cpu"), "gpus": torch.cuda.device_count() if cuda else 0,
            "host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None, "python": platform.python_version()}


def _write_tar(path: Path, files: list[tuple[Path, str]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=GZ_LEVEL) as tar:
            for f, arc in files:
                tar.add(f, arcname=arc, recursive=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


MAX_PARTS = 100  # parts are numbered .00 to .99


def _remove_parts(path: Path) -> None:
    """An earlier pack's ``path`` and its parts (``unpack`` would read them as this pack's)."""
    for stale in path.parent.glob(f"{path.name}*"):
        if stale.name == path.name or re.fullmatch(r"\.\d+", stale.name[len(path.name):]):
            stale.unlink()


def _parts(path: Path, part_bytes: int) -> list[dict]:
    """The parts ``_split`` cuts ``path`` into, as provenance.json lists them: ``{name, bytes}`` each;
    more than MAX_PARTS are refused (``path`` removed)."""
    size = path.stat().st_size
    sizes = [min(part_bytes, size - i) for i in range(0, size, part_bytes)]
    if len(sizes) > MAX_PARTS:
        path.unlink()
        raise ConfigError(f"{path}: {len(sizes)} parts of {part_bytes / MIB:.3g} MiB; at most {MAX_PARTS} are "
                          f"numbered. Give a larger --part-mib or a smaller --max-mib")
    return [{"name": f"{path.name}.{i:02d}", "bytes": b} for i, b in enumerate(sizes)]


def _split(path: Path, part_bytes: int) -> list[Path]:
    """``path`` cut into ``path.00``, ``path.01``, ... of at most ``part_bytes`` each (``path`` removed)."""
    _parts(path, part_bytes)
    parts = []
    with open(path, "rb") as f:
        while chunk := f.read(part_bytes):
            part = path.with_name(f"{path.name}.{len(parts):02d}")
            tmp = part.with_name(f".{part.name}.tmp{os.getpid()}")
            tmp.write_bytes(chunk)
            tmp.replace(part)
            parts.append(part)
    path.unlink()
    return parts


def _run_files(rd: RunDir, weights: bool) -> list[tuple[Path, str]]:
    grid = rd.path.parent.parent.name
    names = sorted(p.name for p in rd.path.iterdir() if WEIGHT_FILE.fullmatch(p.name)) if weights else list(RESULT_FILES)
    return [(rd.path / n, f"{grid}/runs/{rd.name}/{n}") for n in names]


# the sparsity the report's R_p is measured at (notebooks/analysis.py's rp_sparsity; a test holds them equal)
RP_SPARSITY = 0.832


def weight_groups(plans, rp_sparsity: float = RP_SPARSITY) -> list[tuple[str, list]]:
    """The finished runs whose weight files the report reads, most needed first, as (what for, plans):
    the runs that keep a trajectory (the loss-surface figure), the dense runs (θ0-θT correlation; θ0 and θT
    of R_p), and the LT-OMP / RR-OMP runs at the OMP sparsity nearest ``rp_sparsity`` (R_p's mask m and
    RR's θ0'). A run is packed with all its weight files or none, so a folder here is complete or holds
    results only (both of which ``make`` leaves alone)."""
    from .engine import done
    from .pruning import nearest_sparsity
    fin = [p for p in plans if done(p)]
    omp = [p for p in fin if p.setting in ("lt_omp", "rr_omp")]
    at = nearest_sparsity([p.identity.get("sparsity") for p in omp], rp_sparsity)
    groups = [("trajectories", [p for p in fin if p.keep_epochs]),
              ("dense weights", [p for p in fin if p.setting == "pretrain"]),
              (f"OMP weights at s = {at}", [p for p in omp if p.identity.get("sparsity") == at])]
    seen, out = set(), []
    for what, ps in groups:
        ps = [p for p in sorted(ps, key=lambda p: p.name) if p.name not in seen]
        seen |= {p.name for p in ps}
        if ps:
            out.append((what, ps))
    return out


def _gz_size(files: list[tuple[Path, str]]) -> int:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=GZ_LEVEL) as tar:
        for f, arc in files:
            tar.add(f, arcname=arc, recursive=False)
    return buf.tell()


def select_weights(plans, budget: int) -> tuple[list[tuple[Path, str]], list[str]]:
    """The weight files to pack within ``budget`` compressed bytes, group by group in ``weight_groups``'s
    order, run by run; (files, one line per group saying how many of its runs were packed)."""
    files, notes, used = [], [], 0
    for what, ps in weight_groups(plans):
        taken = 0
        for p in ps:
            run = _run_files(p.folder, True)
            size = _gz_size(run)
            if used + size > budget:
                continue
            files += run
            used += size
            taken += 1
        notes.append(f"{what}: {taken} of {len(ps)} runs" + ("" if taken == len(ps) else " (the rest over the budget)"))
    return files, notes


def pack(params_file, sets: list[str], dest, wall_s: float | None = None, rc: int | None = None,
         part_mib: float = 15, max_mib: float = 56) -> list[Path]:
    """Pack the finished runs of the grid ``params_file`` + ``sets`` into ``dest`` (see the module doc);
    returns the files written. The results archive comes first, so a pack cut short (the device's time
    limit) still brings back every run's results: ``<grid>.results.tgz`` with the planned weight runs
    (``weights_planned``: run folder -> its number of weight files), then the weights archive, then the
    results archive again naming its parts and their sizes (``weights_parts``), then the parts."""
    for name, v in (("--part-mib", part_mib), ("--max-mib", max_mib)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} {v}: give a positive number of MiB")
    exp, plans = _grid_plans(params_file, sets)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _remove_parts(dest / f"{exp.name}.weights.tgz")
    finished = sorted((p for p in plans if _result_ready(p.folder)), key=lambda p: p.name)
    weights, notes = select_weights(finished, int(max_mib * MIB))
    planned = dict(Counter(PurePosixPath(arc).parts[2] for _, arc in weights))   # run folder -> weight files
    prov = {"grid": exp.name, "params_file": str(params_file),
            "sets": [s for s in sets if not s.startswith("out_root=")], "code_version": code_version(),
            "machine": machine(), "training_wall_s": wall_s, "training_rc": rc,
            "runs_planned": len(plans), "runs_finished": len(finished), "weights_planned": planned,
            "weights_packed": "; ".join(notes + (["its parts not written yet"] if weights else []))
            or "none (no run the report reads weights of has finished)",
            "packed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    prov_path = layout.grid_dir(exp.out_root, exp.name) / PROVENANCE
    results = dest / f"{exp.name}.results.tgz"
    rundirs = [p.folder for p in finished]

    def write_results() -> None:                           # each write atomic: a temporary name, then renamed
        atomic_write_json(prov_path, prov)
        _results_tar(results, exp.name, prov_path, rundirs)

    write_results()                                        # the results first: they come back if the rest is cut
    written = []
    if weights:
        tgz = dest / f"{exp.name}.weights.tgz"
        _write_tar(tgz, weights)
        part_bytes = int(part_mib * MIB)
        prov["weights_parts"] = _parts(tgz, part_bytes)
        prov["weights_packed"] = "; ".join(notes + [f"{tgz.stat().st_size / MIB:.1f} MiB in "
                                                     f"{len(prov['weights_parts'])} part(s)"])
        write_results()                                    # now naming the parts unpack is to find
        written = _split(tgz, part_bytes)
    return [results, *written]


def _results_tar(path: Path, grid: str, prov_path: Path, rundirs: list[RunDir]) -> None:
    _write_tar(path, [(prov_path, f"{grid}/{PROVENANCE}")] + [f for rd in rundirs for f in _run_files(rd, False)])


def pack_results(out_root, grid: str, path) -> int:
    """``path``: the results (config.json, history.csv, metrics.json; no weights) of every finished run
    folder of ``grid`` under ``out_root`` with the grid's provenance.json, as ``unpack`` reads them (for a
    published report, which regenerates from them); returns how many run folders it holds."""
    grid_dir = layout.grid_dir(out_root, grid)
    prov = grid_dir / PROVENANCE
    if not prov.exists():
        raise ConfigError(f"{prov}: missing; it says where and how the runs were trained. Write it with `python -m "
                          f"lthlib.transfer pack <params file> [key=value ...] out_root={out_root} --dest <folder>` "
                          f"on the machine that trained them (or unpack the grid's archives here)")
    runs = layout.runs_dir(out_root, grid)
    rundirs = sorted((RunDir(p) for p in runs.iterdir() if p.is_dir() and _result_ready(RunDir(p))),
                     key=lambda rd: rd.name) if runs.is_dir() else []
    _results_tar(Path(path), grid, prov, rundirs)
    return len(rundirs)


# ----------------------------------------------------------------------------- unpack (here)
class _Chain(io.RawIOBase):
    """The parts of one archive read as one stream."""

    def __init__(self, paths: list[Path]):
        self._files = [open(p, "rb") for p in paths]
        self._i = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._i < len(self._files):
            n = self._files[self._i].readinto(b)
            if n:
                return n
            self._i += 1
        return 0

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _member_target(name: str, grid: str, where: str, weights: bool) -> PurePosixPath:
    """Where a member of one of ``grid``'s archives goes under the staging folder; a results archive holds
    run folders' result files and the grid's provenance.json, a weights archive their weight files only."""
    parts = PurePosixPath(name).parts
    run_file = len(parts) == 4 and parts[0] == grid and parts[1] == "runs" and SAFE_NAME.fullmatch(parts[2]) \
        and (bool(WEIGHT_FILE.fullmatch(parts[3])) if weights else parts[3] in RESULT_FILES)
    if not (run_file or (not weights and parts == (grid, PROVENANCE))):
        kinds = "<init|final|mask|weights_eNNN>.pt" if weights else f"<{'|'.join(RESULT_FILES)}> or its {PROVENANCE}"
        raise ConfigError(f"{where}: member {name!r} is not a file of a run folder of grid {grid!r} "
                          f"({grid}/runs/<run>/{kinds}); nothing was unpacked. Pack it with `python -m "
                          f"lthlib.transfer pack`")
    return PurePosixPath(*parts)


class _Unreadable(Exception):
    """A member's data could not be read (a cut or corrupt archive)."""


def _copy_member(src, target: Path, where: str, name: str) -> None:
    with open(target, "wb") as dst:
        while True:
            try:
                chunk = src.read(MIB)
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise _Unreadable(exc) from exc
            if not chunk:
                return
            try:
                dst.write(chunk)
            except OSError as exc:
                raise ConfigError(f"{target}: cannot be written ({exc}); nothing was unpacked. Free space under "
                                  f"the outputs root or unpack into another --out") from exc


def _extract(stream, where: str, grid: str, stage: Path, weights: bool, seen: set,
             cut: bool = False) -> list[PurePosixPath]:
    """Extract one archive into ``stage``, member by member, refusing anything but regular files at the
    names ``_member_target`` allows, each once across the grid's archives (``seen``); returns the members
    extracted. ``cut``: the archive is known to be cut short (parts missing), so where its data ends it
    stops, dropping the member it was reading, instead of refusing the whole unpack."""
    got: list[PurePosixPath] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for m in tar:
                if not m.isfile():
                    raise ConfigError(f"{where}: member {m.name!r} is not a regular file (a link, folder or "
                                      f"device); nothing was unpacked")
                rel = _member_target(m.name, grid, where, weights)
                if rel in seen:
                    raise ConfigError(f"{where}: member {m.name!r} appears twice in the archives of {grid!r}; "
                                      f"nothing was unpacked. Pack the grid again")
                seen.add(rel)
                target = stage / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    _copy_member(tar.extractfile(m), target, where, m.name)
                except _Unreadable as exc:
                    target.unlink(missing_ok=True)
                    if cut:
                        return got
                    raise ConfigError(f"{where}: member {m.name!r} cannot be read ({exc}); nothing was "
                                      f"unpacked. Fetch it again (all its parts, for a .weights.tgz.NN)") from exc
                got.append(rel)
    except (tarfile.TarError, EOFError, OSError) as exc:     # gzip's errors are OSErrors
        if cut:
            return got
        raise ConfigError(f"{where}: not a readable archive ({exc}); nothing was unpacked. Fetch it again "
                          f"(all its parts, for a .weights.tgz.NN)") from exc
    return got


def _agree(a: Path, b: Path) -> bool:
    """Every file the run folders ``a`` and ``b`` both hold is the same in both."""
    return all(filecmp.cmp(p, b / p.name, shallow=False) for p in a.iterdir() if (b / p.name).exists())


def archives(source) -> dict[str, dict]:
    """The archives of the folder ``source`` by grid: {grid: {"results": path, "weights": [parts]}}."""
    src = Path(source)
    if not src.is_dir():
        raise ConfigError(f"{src}: no such folder; give the folder the packed archives were fetched into")
    found: dict[str, dict] = {}
    for p in sorted(src.glob("*.results.tgz")):
        found[p.name[:-len(".results.tgz")]] = {"results": p, "weights": []}
    for p in sorted(src.glob("*.weights.tgz.[0-9][0-9]")):
        grid = p.name[:-len(".weights.tgz.00")]
        if grid not in found:
            raise ConfigError(f"{p}: a weights part without its {grid}.results.tgz in {src}; fetch that too")
        found[grid]["weights"].append(p)
    if not found:
        raise ConfigError(f"{src}: no <grid>.results.tgz here; pack the grid with `python -m lthlib.transfer "
                          f"pack` on the machine that trained it")
    for grid, f in found.items():
        if not SAFE_NAME.fullmatch(grid):
            raise ConfigError(f"{f['results']}: {grid!r} is not a grid name")
        numbers = [int(p.name[-2:]) for p in f["weights"]]
        if numbers != list(range(len(numbers))):
            raise ConfigError(f"{src}: the parts of {grid}.weights.tgz are {numbers}: one is missing (they are "
                              f"numbered from 00 without a gap); fetch every part")
    return found


def read_provenance(path: Path, what: str, fix: str) -> dict:
    """The provenance.json at ``path`` as a mapping, else a ConfigError ``"<what> is not readable JSON
    ...; <fix>"`` (or ``... holds a list, not a mapping ...``)."""
    try:
        prov = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} is not readable JSON ({exc}); {fix}") from exc
    if not isinstance(prov, dict):
        raise ConfigError(f"{what} holds a {type(prov).__name__}, not a mapping of field: value; {fix}")
    return prov


def _check_provenance(path: Path, grid: str, where: str) -> dict:
    """The staged provenance.json of ``grid``, checked before anything is placed: a mapping naming this
    grid, with a params_file of this checkout whose grid (with its sets) is ``grid``."""
    from .params import load, parse_sets
    if not path.exists():
        raise ConfigError(f"{where}: no {grid}/{PROVENANCE} in it; nothing was unpacked. Pack it with `python -m "
                          f"lthlib.transfer pack`")
    prov = read_provenance(path, f"{where}: its {PROVENANCE}", "nothing was unpacked. Pack the grid again")
    bad = lambda what: ConfigError(f"{where}: its {PROVENANCE} {what}; nothing was unpacked. Pack the grid again "
                                   f"with `python -m lthlib.transfer pack`")
    if prov.get("grid") != grid:
        raise bad(f"names grid {prov.get('grid')!r}, the archive {grid!r}")
    params, sets = prov.get("params_file"), prov.get("sets", [])
    if not isinstance(params, str) or not params:
        raise bad("has no params_file (the grid's parameters, which the plan is written from)")
    if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
        raise bad(f"has sets {sets!r}, not a list of key=value strings")
    if not isinstance(prov.get("machine", {}), dict):
        raise bad("has a machine that is not a mapping")
    planned, parts = prov.get("weights_planned", {}), prov.get("weights_parts")
    if not (isinstance(planned, dict) and all(isinstance(n, int) and n > 0 for n in planned.values())):
        raise bad(f"has weights_planned {planned!r}, not a mapping of run folder: number of weight files")
    part_name = re.compile(re.escape(grid) + r"\.weights\.tgz\.\d\d")
    if parts is not None and not (isinstance(parts, list) and all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and part_name.fullmatch(e["name"])
            and isinstance(e.get("bytes"), int) and e["bytes"] > 0 for e in parts)):
        raise bad(f"has weights_parts {parts!r}, not a list of {{name: {grid}.weights.tgz.NN, bytes: N}}")
    try:
        exp = load(project_path(params), parse_sets(sets, f"{PROVENANCE} sets"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: its params_file {params} with {sets} does not load here ({exc}); nothing was "
                          f"unpacked. Unpack it in a checkout of the revision that trained it "
                          f"({prov.get('code_version')})") from exc
    if exp.name != grid:
        raise bad(f"has parameters of grid {exp.name!r}, not {grid!r}")
    return prov


def _listed_parts(prov: dict, f: dict, where: str) -> tuple[list[Path], list[str]] | None:
    """The weight parts that arrived whole, in order, up to the first one the pack listed
    (``weights_parts``) that is missing or of another size, and a line per part not here whole; None
    when the provenance lists no parts (a pack before the weights were written, or an older one)."""
    listed = prov.get("weights_parts")
    if listed is None:
        return None
    arrived = {p.name: p for p in f["weights"]}
    extra = sorted(set(arrived) - {e["name"] for e in listed})
    if extra:
        raise ConfigError(f"{arrived[extra[0]]}: not a part this pack wrote (its {PROVENANCE} lists "
                          f"{len(listed)}); nothing was unpacked. Fetch the parts of one pack")
    whole, missing = [], []
    for e in listed:
        p = arrived.get(e["name"])
        size = p.stat().st_size if p else None
        if size != e["bytes"]:
            missing.append(e["name"] + ("" if p is None else f" ({size:,} bytes, packed {e['bytes']:,})"))
        elif not missing:
            whole.append(p)
    return whole, missing


def _stage(grid: str, f: dict, stage: Path) -> tuple[int, dict, list[str], str | None]:
    """Stage ``grid``'s archives; (files staged, provenance, the weight parts not here whole, a line
    saying what that left out, or None). When parts the pack listed are missing or cut, the results
    are staged all the same, with the weights of the runs whose weight files all arrived whole."""
    seen: set = set()
    where = str(f["results"])
    with open(f["results"], "rb") as stream:
        files = len(_extract(stream, where, grid, stage, False, seen))
    prov = _check_provenance(stage / grid / PROVENANCE, grid, where)
    planned = prov.get("weights_planned") or {}
    listing = _listed_parts(prov, f, where)
    if listing is None or not listing[1]:
        if f["weights"]:
            with _Chain(f["weights"]) as stream:
                where_w = f"{f['weights'][0]} (and its other parts)"
                files += len(_extract(stream, where_w, grid, stage, True, seen))
        if listing is None and planned and not f["weights"]:
            return files, prov, [], (f"weights: the pack planned the weights of {len(planned)} run(s) but wrote "
                                     f"no part of them (it was cut short before): results only")
        return files, prov, [], None
    whole, missing = listing
    got: list[PurePosixPath] = []
    if whole:
        with _Chain(whole) as stream:
            got = _extract(stream, f"{whole[0]} (and the parts after it)", grid, stage, True, seen, cut=True)
    counts = Counter(rel.parts[2] for rel in got)
    cut_runs = {r for r, n in counts.items() if n != planned.get(r)}
    for rel in got:
        if rel.parts[2] in cut_runs:                       # a run folder gets all its weight files or none
            (stage / rel).unlink()
    kept = len(counts) - len(cut_runs)
    note = (f"weights: {len(missing)} of {len(prov['weights_parts'])} part(s) not here whole "
            f"({', '.join(missing)}): the weights of {kept} of {len(planned)} run(s) unpacked, the other "
            f"runs hold results only. Fetch the missing parts into {Path(where).parent} and unpack again to "
            f"add them")
    files += sum(n for r, n in counts.items() if r not in cut_runs)
    return files, prov, [m.split(" ")[0] for m in missing], note


def unpack(source, out_root="outputs", replace: bool = False, write_plan: bool = True) -> list[dict]:
    """Unpack every archive of ``source`` into ``out_root`` (see the module doc); one summary per grid.
    Every grid is staged and checked, and every conflict found, before any run folder is placed."""
    found = archives(source)
    root = layout.root(out_root)
    root.mkdir(parents=True, exist_ok=True)
    staged, stages = [], []
    try:
        for grid, f in found.items():
            for old in root.glob(f".unpack-{grid}-*"):          # left by a killed unpack
                shutil.rmtree(old, ignore_errors=True)
            stage = root / f".unpack-{grid}-{os.getpid()}"
            stage.mkdir()
            stages.append(stage)
            staged.append((grid, stage, *_stage(grid, f, stage)))
        differ = [_conflicts(stage / grid, layout.grid_dir(root, grid), replace) for grid, stage, *_ in staged]
        done = []
        for (grid, stage, files, prov, missing, note), dif in zip(staged, differ):
            done.append({**_place(stage / grid, layout.grid_dir(root, grid), set(dif)), "grid": grid,
                         "files": files, "provenance": prov, "weights_missing": missing, "weights_note": note})
            if write_plan:
                _write_plan(prov, root)
        return done
    finally:
        for stage in stages:
            shutil.rmtree(stage, ignore_errors=True)


def _conflicts(staged: Path, grid_dir: Path, replace: bool) -> list[str]:
    """The staged run folders that differ from the folder already at their place (refused unless
    ``replace``); a file where a run folder belongs is refused."""
    runs = sorted((staged / "runs").iterdir()) if (staged / "runs").is_dir() else []
    there = [(r, grid_dir / "runs" / r.name) for r in runs if (grid_dir / "runs" / r.name).exists()]
    odd = [str(d) for _, d in there if not d.is_dir()]
    if odd:
        raise ConfigError(f"{odd[0]}: a file where a run folder belongs; nothing was unpacked. Remove it, or "
                          f"unpack into another --out")
    differ = [r.name for r, d in there if not _agree(r, d)]
    if differ and not replace:
        raise ConfigError(f"{grid_dir / 'runs'}: {len(differ)} run folder(s) already there hold other files "
                          f"(e.g. {differ[0]}); nothing was unpacked. Unpack into another --out, or give "
                          f"--replace to replace those folders whole")
    return differ


def _place(staged: Path, grid_dir: Path, differ: set) -> dict:
    """Move the staged run folders into ``grid_dir/runs``. A folder already there whose files agree with
    the staged one gets the files it lacks (weights for a results-only folder) and keeps its own; one whose
    files differ (``differ``: the names ``_conflicts`` found, allowed by --replace) is replaced whole. The
    grid's provenance.json is replaced when some folder changed or there is none."""
    runs = sorted((staged / "runs").iterdir()) if (staged / "runs").is_dir() else []
    (grid_dir / "runs").mkdir(parents=True, exist_ok=True)
    moved = added = 0
    for r in runs:
        dest = grid_dir / "runs" / r.name
        if dest.exists() and r.name not in differ:
            new = [p for p in r.iterdir() if not (dest / p.name).exists()]
            for p in sorted(new, key=lambda p: p.name == "metrics.json"):   # metrics.json, if new, last
                os.replace(p, dest / p.name)
            added += bool(new)
            continue
        if dest.exists():                                  # aside first, so a run folder is always whole
            aside = staged / f".replaced-{r.name}"
            os.replace(dest, aside)
        os.replace(r, dest)
        moved += 1
    if moved or added or not (grid_dir / PROVENANCE).exists():
        os.replace(staged / PROVENANCE, grid_dir / PROVENANCE)
    return {"runs": len(runs), "placed": moved, "completed": added, "kept": len(runs) - moved - added}


def _write_plan(prov: dict, root: Path) -> None:
    from .plan import main as plan_main
    params = prov["params_file"]
    if plan_main([str(project_path(params)), *prov.get("sets", []), "--out-root", str(root)]) != 0:
        raise ConfigError(f"the plan of {prov.get('grid')!r} ({params} {' '.join(prov.get('sets', []))}) could "
                          f"not be written: see the error above")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lthlib.transfer", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack a grid's finished runs (on the machine that trained them)")
    p.add_argument("params_file")
    p.add_argument("sets", nargs="*", help="the key=value overrides the grid was trained with")
    p.add_argument("--dest", required=True, help="folder the archives are written to")
    p.add_argument("--wall-s", type=float, help="the training's wall time, for provenance.json")
    p.add_argument("--rc", type=int, help="the training's exit status, for provenance.json")
    p.add_argument("--part-mib", type=float, default=15)
    p.add_argument("--max-mib", type=float, default=56)
    u = sub.add_parser("unpack", help="unpack fetched archives into an outputs root and write the grid's plan")
    u.add_argument("source")
    u.add_argument("--out", default="outputs")
    u.add_argument("--replace", action="store_true", help="replace run folders that differ")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "pack":
            for f in pack(a.params_file, a.sets, a.dest, a.wall_s, a.rc, a.part_mib, a.max_mib):
                print(f"{f} ({f.stat().st_size / MIB:.2f} MiB)")
            return 0
        for s in unpack(a.source, a.out, a.replace):
            pr = s["provenance"]
            print(f"{s['grid']}: {s['runs']} run folders ({s['placed']} placed, {s['completed']} given the files they "
                  f"lacked, {s['kept']} already there) from "
                  f"{pr.get('machine', {}).get('device', 'an unrecorded machine')}, code "
                  f"{pr.get('code_version', 'unrecorded')}; render its report: make report "
                  f"OUT={a.out}")
            if s["weights_note"]:
                print(f"warning: {s['grid']}: {s['weights_note']}", file=sys.stderr)
        return 0
    except LTHError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
