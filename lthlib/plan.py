"""Turn a params grid into a Makefile: one target per executed notebook (setting x lr x seed), with the
study's dependencies, so ``make`` skips what is done and ``make -j N`` runs independent notebooks at once.

    python -m lthlib.plan params/demo.yaml [--out-root outputs] [--set 'key=value ...'] [key=value ...]

writes ``<out-root>/<grid>/plan.mk`` and, beside every notebook target, ``<target>.params.yaml``: the
papermill parameters (``-f``) that notebook is executed with, headed by the resolved parameters and the
run folders it trains as comments. Both are rewritten only when their text changes, and each notebook
target depends on its ``.params.yaml``, so a changed ``SET`` or params file re-executes exactly the notebooks it changes.
``key=value`` pairs (values are YAML: ``seeds=[1]``, ``epochs=1``) override the params file for the
plan and every notebook; ``--set`` takes them as one string split like a shell line (make's ``SET=``).
No value is written into plan.mk unescaped: the overrides travel in the YAML files.

The plan's size (runs, ticket-epochs, images) and an estimate in hours go to stderr; stdout is the path
of plan.mk (the Makefile reads it). ``--dry-run`` (``make -n``) writes nothing: stdout is the plan itself,
with a rule for each parameter file that would change (make reads it from stdin).

An executed notebook whose file is unreadable, or one of whose runs is missing, unfinished or broken
(``executed_but_unfinished``; a results-only folder is not), gets a phony prerequisite in plan.mk, so make
executes it again and the plan says why on stderr.

A report depends on its grid's notebooks and on the runs stamps (``<grid>/notebooks/runs.stamp``, touched
after any of a grid's notebooks ran) of the grids it pools, so it is redone when their runs change.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import engine, layout, registry, settings as protocol
from .data import DATASETS
from .models import MODELS
from .errors import ConfigError
from .params import Experiment, load, load_params_file, parse_sets, read_yaml, split_set, validate
from .runs import atomic_write_text, fmt_num, project_path
from .schedule import estimate_seconds, pack_rate

GRID_SHAPE = ("lrs", "seeds", "settings")  # what a grid spans; one setting notebook runs one (lr, seed)
NB = "$(OUT)/{grid}/notebooks"


# ----------------------------------------------------------------------------- values
def num(x: float) -> str:
    """A number as it appears in target names: short (%g) when that is exact, else repr -- so 0.1 and
    0.10000001 are two targets and existing names stay as they were."""
    short = fmt_num(x)
    return short if float(short) == x else repr(float(x))


def mk_escape(text: str, what: str) -> str:
    """``text`` as make reads it back literally from a variable definition (``$`` -> ``$$``, ``#`` -> ``\\#``)."""
    if any(c in text for c in "\n\r\0"):
        raise ConfigError(f"{what} {text!r}: a line break cannot be written into a Makefile; remove it")
    return text.replace("$", "$$").replace("#", "\\#")


def target_name(setting: str, lr: float | None, seed: int | None) -> str:
    """A setting notebook's target: one (lr, seed) cell, or (lr and seed None) every cell of the grid."""
    if lr is None:
        return layout.notebook_stem(setting, None, None) + ".ipynb"
    return layout.notebook_stem(setting, num(lr), seed) + ".ipynb"


# ----------------------------------------------------------------------------- the plan
# What a setting's runs can be made from, as the plans say (``lthlib.settings``): one run per one-shot
# sparsity, per IMP round, or (SDT) per either; a probe value of each gives a setting its runs.
PLAN_INPUTS = {"sparsities": ("[]", "sparsity", {"sparsities": [0.5]},
                              "give at least one sparsity, e.g. sparsities: [0.59]"),
               "imp_rounds": ("0", "IMP round", {"imp_rounds": 1}, "give at least one round, e.g. imp_rounds: 4")}


def check_plan_inputs(exp: Experiment, source: str, given: dict | None = None) -> None:
    """Every setting the grid lists plans runs in its cells; one that plans none for want of sparsities
    or IMP rounds (``sparsities: []``, ``imp_rounds: 0``, or left at those defaults) is a ConfigError
    naming the file (``given``: key -> where the grid gave it) and the key. A setting the plans leave
    empty for another reason (weight rewinding in a one-epoch run: nothing to rewind to) passes."""
    given, cell = given or {}, protocol.cells(exp)[0]
    empty = [s for s in registry.NAMES if s in exp.settings and not protocol.plan(cell, s)]
    lacks = {key: [s for s in empty if protocol.plan(cell.replace(**probe), s)]
             for key, (_, _, probe, _) in PLAN_INPUTS.items()}
    either = set(lacks["sparsities"]) & set(lacks["imp_rounds"])  # SDT: one run per IMP or one-shot sparsity
    for key in sorted(PLAN_INPUTS, key=lambda k: k not in given):  # what the grid gave first
        need = [f"{s} (needs sparsities or imp_rounds)" if s in either else s for s in lacks[key]]
        if need:
            value, per, _, fix = PLAN_INPUTS[key]
            how = f"is {value}" + ("" if key in given else " (its default: not given)")
            names = ", ".join(n.split(" ")[0] for n in need)
            raise ConfigError(f"{given.get(key, source)}: key {key!r} {how}, but settings {', '.join(need)} "
                              f"train one run per {per}: {fix}, or leave {names} out of 'settings'")


@dataclass
class Plan:
    grid: str
    text: str                 # plan.mk
    params: dict              # path under the output root -> text of a notebook's .params.yaml
    size: dict                # runs, ticket-epochs and images (see ``plan_size``)
    exp: Experiment
    rerun: dict = field(default_factory=dict)  # executed notebook (under the root) -> why it runs again
    run_plans: list = field(default_factory=list)  # every run the notebooks train (for the grid-pack estimate)


def build(params_file: str, sets: dict, out_root: str = "outputs") -> Plan:
    """The plan of ``params_file`` with overrides ``sets`` (validated by the one loader, params.load)."""
    exp = load(params_file, sets)
    given = {**dict.fromkeys(load_params_file(params_file), params_file),
             **dict.fromkeys(sets, f"{params_file} (overrides)")}
    check_plan_inputs(exp, params_file, given)
    settings = [s for s in registry.NAMES if s in exp.settings]
    deps = {s: protocol.depends(exp, s) for s in settings}
    for s in settings:  # a setting needs its dependencies in the grid
        for dep in deps[s]:
            if dep not in settings:
                raise ConfigError(f"{params_file}: key 'settings' lists {s!r} but not {dep!r}, which it needs")
    if exp.notebooks == "per_setting":  # one notebook per setting runs every cell (fewer kernel start-ups)
        cells = [(None, None, s) for s in settings]
    else:
        cells = [(lr, seed, s) for lr in exp.lrs for seed in exp.seeds for s in settings]
    loaded = {(lr, seed): notebook_cell(params_file, sets, out_root, lr, seed) for lr, seed, _ in cells}
    runs = {(lr, seed, s): notebook_runs(loaded[lr, seed][1], s) for lr, seed, s in cells}
    params = {f"{exp.name}/notebooks/{target_name(s, lr, seed)[:-6]}.params.yaml":
              _cell_params(exp, params_file, loaded[lr, seed][0], runs[lr, seed, s], s, lr, seed)
              for lr, seed, s in cells}
    params[f"{exp.name}/reports/analysis.params.yaml"] = _params_text(
        f"notebooks/analysis.py -> {exp.name}/reports/analysis.ipynb",
        {"params_file": params_file, "overrides": {**sets, "out_root": out_root}}, exp.as_dict())
    rerun = executed_but_unfinished(exp.name, out_root, runs)
    text = "\n".join(_header(params_file, exp, settings) + _notebook_rules(exp.name, cells, deps)
                     + _report_rules(exp.name, cells, pooled_grids(exp, sets)) + _rerun_rules(rerun))
    return Plan(exp.name, text, params, plan_size(exp, settings), exp, rerun,
                [p for plans in runs.values() for p in plans])


def executed_but_unfinished(grid: str, out_root: str, runs: dict) -> dict:
    """The executed notebooks of the grid that make must execute again although nothing they are executed
    with changed (notebook path under ``out_root`` -> why): the notebook file is unreadable, or one of the
    runs it trains (``runs``: (lr, seed, setting) -> ``notebook_runs``) is missing, unfinished or broken
    (``engine.unfinished_why``; results-only folders, copied back without weights, are left alone)."""
    out = {}
    for (lr, seed, s), plans in runs.items():
        rel = f"{grid}/notebooks/{target_name(s, lr, seed)}"
        path = Path(out_root) / rel
        if not path.is_file():
            continue  # not executed yet: make executes it anyway
        try:
            ok = isinstance(json.loads(path.read_text(encoding="utf-8")).get("cells"), list)
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            out[rel] = "the executed notebook is unreadable"
            continue
        for plan in plans:
            if (why := engine.unfinished_why(plan)) is not None:
                out[rel] = f"its run {plan.name} {why}"
                break
    return out


def _rerun_rules(rerun: dict) -> list[str]:
    """A phony prerequisite for each notebook of ``rerun``: make executes it again (and what follows it)."""
    if not rerun:
        return []
    return ["# executed notebooks whose runs are missing, unfinished or broken: executed again",
            ".PHONY: lthlib-unfinished-runs", "lthlib-unfinished-runs:",
            *[f"$(OUT)/{rel}: lthlib-unfinished-runs" for rel in rerun], ""]


def describe_rerun(plan: Plan, most: int = 5) -> str:
    """A line per notebook that runs again, and why (``most`` of them, then a count)."""
    lines = [f"  {rel}: executed, but {why}; executing it again" for rel, why in list(plan.rerun.items())[:most]]
    if len(plan.rerun) > most:
        lines.append(f"  ... and {len(plan.rerun) - most} more notebooks whose runs are not all finished")
    return "\n".join(lines)


def pooled_grids(exp: Experiment, sets: dict, params_dir: str = "params") -> list[str]:
    """The other grids whose runs the grid's report may pool (the analysis notebook's ``pool_grids``, by
    default every grid with runs, counts those of the same model and dataset: ``results.pooled_runs``):
    the grids of ``params_dir``'s files (as the notebook finds them) of that model and dataset, with the
    report's overrides ``sets``. Their runs stamps are prerequisites of the report."""
    out = []
    for f in sorted(project_path(params_dir).glob("*.yaml")):
        try:
            values = {**load_params_file(f), **{k: v for k, v in sets.items() if k != "name"}}
        except ConfigError:
            continue  # the report leaves out a grid whose file does not load
        name = values.get("name", Experiment.name)
        same = all(values.get(k, getattr(Experiment, k)) == getattr(exp, k) for k in ("model", "dataset"))
        if same and name != exp.name and name not in out:
            out.append(name)
    return out


def notebook_cell(params_file: str, sets: dict, out_root: str, lr: float | None, seed: int | None) -> tuple:
    """The overrides a setting notebook of cell (``lr``, ``seed``) is executed with (None, None: a
    per-setting notebook, every cell) and the experiment it loads from them (``engine.load_cells``)."""
    every = lr is None  # a per-setting notebook runs every cell: the grid's shape is one of its inputs
    overrides = {**{k: v for k, v in sets.items() if every or k not in GRID_SHAPE}, "out_root": out_root}
    return overrides, engine.load_cells(params_file, overrides, lr, seed)


def notebook_runs(cell: Experiment, setting: str) -> list:
    """The run plans a setting notebook that loaded ``cell`` trains (``engine.run_cells``), in its order."""
    return [p for c in protocol.cells(cell) for p in protocol.plan(c, setting)]


def _cell_params(exp: Experiment, params_file: str, overrides: dict, runs: list, setting: str, lr: float | None,
                 seed: int | None) -> str:
    """The .params.yaml of a setting notebook: what ``notebook_cell`` gives it (``overrides``), the resolved
    parameters and the names of the runs it trains (``runs``)."""
    entry = registry.get(setting)
    every = lr is None
    inputs = {"params_file": params_file, "lr": lr, "seed": seed, **entry.notebook_params, "overrides": overrides}
    resolved = {k: v for k, v in (exp if every else exp.replace(lr=lr, seed=seed)).as_dict().items()
                if every or k not in GRID_SHAPE}
    return _params_text(f"notebooks/{entry.notebook}.py -> {target_name(setting, lr, seed)}", inputs, resolved,
                        [p.name for p in runs])


def _params_text(title: str, inputs: dict, resolved: dict, runs: list[str] = ()) -> str:
    """A notebook's papermill parameters (YAML), headed by the resolved values and the run folders it
    trains (``runs``) as comments: make re-executes the notebook when any of them changes."""
    dump = lambda obj: yaml.safe_dump(obj, sort_keys=False, default_flow_style=None, width=10_000,
                                      allow_unicode=True)
    lines = [f"# {title}",
             "# Written by `python -m lthlib.plan`: papermill reads this file (-f); make re-executes the",
             "# notebook whenever this file changes. Resolved parameters, for the record:"]
    lines += ["#   " + line for line in dump(dict(sorted(resolved.items()))).splitlines()]
    if runs:
        lines += [f"# The {len(runs)} run folders it trains (under <out_root>/<grid>/runs/; a finished one is reused):"]
        lines += [f"#   run: {name}" for name in runs]
    return "\n".join(lines) + "\n" + dump(inputs)


def _header(params_file: str, exp: Experiment, settings: list[str]) -> list[str]:
    return [
        f"# Generated by `python -m lthlib.plan {mk_escape(params_file, 'params file')}` -- edit the "
        f"params file, not this.",
        f"# Grid {exp.name!r}: {len(exp.lrs)} lr x {len(exp.seeds)} seeds x {len(settings)} settings.",
        "OUT ?= outputs",
        f"GRID := {mk_escape(exp.name, 'key name')}",
        f"PARAMS := {mk_escape(params_file, 'params file')}",
        "VENV ?= .venv",
        "PAPERMILL ?= $(VENV)/bin/papermill",
        "PMFLAGS ?= --log-output --no-progress-bar --kernel lthlib",
        "NBRUN ?= $(VENV)/bin/python lthlib/nbrun.py",
        "LAUNCHER ?=",
        "SRC := $(OUT)/.nbsrc",
        "",
        "# Execute notebook $(1) to $(2) with the parameters in $(2:.ipynb=.params.yaml) (through $(LAUNCHER)",
        "# unless $(3), the report): to a temporary name of this job first, renamed only on success; a failure",
        "# leaves $(2:.ipynb=).failed.ipynb to read, and make retries next time. NBRUN (lthlib/nbrun.py) prints",
        "# a line when it starts and one when it ends (trained / reused / rendered, its time) and the epoch",
        "# lines between; the executed notebook keeps the whole log.",
        "define run_nb",
        "@mkdir -p $(dir $(2))",
        "@$(NBRUN) $(notdir $(2)) $(if $(3),--report) -- $(if $(3),,$(LAUNCHER)) $(PAPERMILL) $(1) "
        "$(2).$$$$.tmp.ipynb $(PMFLAGS) -f $(basename $(2)).params.yaml \\",
        "  && mv -f $(2).$$$$.tmp.ipynb $(2) && rm -f $(basename $(2)).failed.ipynb \\",
        "  || { mv -f $(2).$$$$.tmp.ipynb $(basename $(2)).failed.ipynb 2>/dev/null; \\",
        "       echo 'FAILED: $(2) -- read $(basename $(2)).failed.ipynb' >&2; exit 1; }",
        "endef",
        "",
        ".PHONY: all runs report",
        "all: runs report",
    ]


def runs_stamp(grid: str) -> str:
    """The file a grid's plan touches after any of its notebooks was executed: the reports that pool the
    grid's runs depend on it (``pooled_grids``)."""
    return f"{NB.format(grid=grid)}/runs.stamp"


def _notebook_rules(grid: str, cells: list, deps: dict) -> list[str]:
    nb = NB.format(grid=grid)
    targets, rules = [], []
    for lr, seed, s in cells:
        entry = registry.get(s)
        t = f"{nb}/{target_name(s, lr, seed)}"
        need = " ".join(f"{nb}/{target_name(d, lr, seed)}" for d in deps[s])
        rules += [f"{t}: $(SRC)/{entry.notebook}.ipynb {t[:-6]}.params.yaml {need}".rstrip(),
                  "\t$(call run_nb,$<,$@)", ""]
        targets.append(t)
    stamp = ["# newer than every executed notebook of the grid: what the reports pooling its runs depend on",
             f"{runs_stamp(grid)}: " + " \\\n  ".join(targets), "\t@touch $@", ""]
    return ["runs: " + " \\\n  ".join(targets + [runs_stamp(grid)]), ""] + rules + stamp


def _report_rules(grid: str, cells: list, pooled: list[str]) -> list[str]:
    nb, rep = NB.format(grid=grid), f"$(OUT)/{grid}/reports"
    targets = [f"{nb}/{target_name(s, lr, seed)}" for lr, seed, s in cells]
    # the runs of the grids the report pools (those that have run: a wildcard, read when make starts)
    targets += [f"$(wildcard {runs_stamp(g)})" for g in pooled]
    return [
        "# the analysis report: after every run of the grid (report), or now from what exists (report-only)",
        "define render_report",
        f"$(call run_nb,$(SRC)/analysis.ipynb,{rep}/analysis.ipynb,local)",
        f"@$(VENV)/bin/python -m lthlib.results render {rep}/analysis.ipynb {rep}/analysis.html",
        "endef",
        ".PHONY: report-only",
        f"report: {rep}/analysis.html",
        f"{rep}/analysis.html: $(SRC)/analysis.ipynb {rep}/analysis.params.yaml \\\n  "
        + " \\\n  ".join(targets),
        "\t$(render_report)",
        "report-only: $(SRC)/analysis.ipynb",
        "\t$(render_report)",
        "",
        "$(SRC)/%.ipynb: notebooks/%.py",
        "\t@mkdir -p $(@D)",
        "\t@$(VENV)/bin/jupytext --quiet --to ipynb --set-kernel lthlib -o $@.$$$$.tmp.ipynb $< \\",
        "\t  && mv -f $@.$$$$.tmp.ipynb $@",
        "",
    ]


# ----------------------------------------------------------------------------- size and cost
# Ticket-images per second by pack size when `make bench` has not measured them: each model's
# ``default_rates`` (lthlib.models). bench writes outputs/bench/rates.json ({model: {"cpu"|"gpu":
# {"pack_rates": {"1": ..., "16": ...}, ...}}}), which replaces them per device.
EVAL_COST = 1 / 3  # a test image (forward only) costs about a third of a training image


def plan_size(exp: Experiment, settings: list[str]) -> dict:
    """Runs, ticket-epochs and training-equivalent images of the grid (per run and in total)."""
    spec = DATASETS[exp.dataset]
    n_train = min(exp.n_train or spec.train_size, spec.train_size)
    n_test = min(exp.n_test or spec.test_size, spec.test_size)
    per_run = exp.epochs * n_train + math.ceil(exp.epochs / exp.eval_every) * n_test * EVAL_COST
    cells = len(exp.lrs) * len(exp.seeds)
    per_cell = {s: len(protocol.plan(exp, s)) for s in settings}
    runs = cells * sum(per_cell.values())
    notebooks = len(settings) * (1 if exp.notebooks == "per_setting" else cells)
    return {"notebooks": notebooks, "runs": runs, "per_cell": per_cell, "cells": cells,
            "sequential": [s for s in settings if protocol.sequential(exp, s)],
            "ticket_epochs": runs * exp.epochs, "images": runs * per_run, "images_per_run": per_run}


def read_rates(out_root: str, model: str) -> tuple[dict, str]:
    """({"cpu"|"gpu": {pack size: ticket-images/s}} of ``model``, where they come from):
    ``<out_root>/bench/rates.json`` (written by `make bench`) over the defaults."""
    path = layout.bench_rates(out_root)
    rates, source = dict(MODELS[model].default_rates), "defaults from README's benchmark"
    if path.exists():
        try:
            measured = {dev: {int(k): float(v) for k, v in m["pack_rates"].items()}
                        for dev, m in json.loads(path.read_text()).get(model, {}).items()}
        except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
            raise ConfigError(f"{path}: not the rates `make bench` writes ({type(exc).__name__}: {exc}); run "
                              f"`make bench` again or delete the file") from None
        for dev, by_size in measured.items():
            bad = {k: v for k, v in by_size.items() if k < 1 or not math.isfinite(v) or v <= 0}
            if bad or not by_size:
                k, v = next(iter(bad.items())) if bad else ("-", "none")
                raise ConfigError(f"{path}: {model} {dev} pack_rates {k}: {v}: a rate is a positive number "
                                  f"of ticket-images per second at a pack size >= 1; run `make bench` again "
                                  f"or delete the file")
        if measured:
            rates.update(measured)
            source = f"{', '.join(sorted(measured))} measured ({path})"
    return rates, source


def estimate_hours(size: dict, exp: Experiment, rates: dict) -> dict:
    """Hours of the grid run notebook by notebook, per device with a rate (else None): on the GPU the
    runs of a non-sequential setting train as packs of up to ``pack_size`` (unless ``pack: off``); on
    the CPU one at a time."""
    out = {}
    for dev in ("cpu", "gpu"):
        if not rates.get(dev):
            out[dev] = None
            continue
        seconds = 0.0
        for s, k in size["per_cell"].items():
            packs = dev == "gpu" and exp.pack != "off" and s not in size["sequential"]
            n = min(k, exp.pack_size) if packs and k else 1
            seconds += size["cells"] * k * size["images_per_run"] / pack_rate(rates[dev], n)
        out[dev] = seconds / 3600
    return out


def describe_size(plan: Plan, out_root: str) -> str:
    size, exp = plan.size, plan.exp
    rates, source = read_rates(out_root, exp.model)
    hours = estimate_hours(size, exp, rates)
    dur = lambda h: f"~{h * 60:.0f} min" if h < 1 else f"~{h:,.1f} h"
    fmt = lambda h, dev: dur(h) + f" on {dev}" if h is not None else f"no {dev.split()[-1]} rate for {exp.model}"
    grid_packs = grid_pack_hours(exp, size, rates, plan.run_plans)
    return (f"plan {plan.grid}: {size['notebooks']} notebooks, {size['runs']} runs of {exp.model} x "
            f"{exp.epochs} epochs = {size['ticket_epochs']:,} ticket-epochs "
            f"({size['images'] / 1e6:,.1f}M training-image equivalents)\n"
            f"  estimate: {fmt(hours['gpu'], 'one GPU')}" +
            (f" ({dur(grid_packs)} as grid packs, PACK=grid)" if grid_packs is not None else "") +
            f", {fmt(hours['cpu'], 'this CPU')} (rates: {source}; `make bench` measures them)")


def grid_pack_hours(exp: Experiment, size: dict, rates: dict, plans=None) -> float | None:
    """Hours of the grid on one GPU scheduled as grid packs (``schedule.estimate_seconds`` over ``plans``,
    the grid's run plans when the caller has them), or None without a GPU rate or with packing off."""
    if not rates.get("gpu") or exp.pack == "off":
        return None
    return estimate_seconds(exp, rates["gpu"], size["images_per_run"] / exp.epochs, plans=plans) / 3600


# ----------------------------------------------------------------------------- command line
def unchanged(path: Path, text: str) -> bool:
    try:
        return path.read_text() == text
    except (OSError, UnicodeDecodeError):
        return False


def write_if_changed(path: Path, text: str) -> bool:
    if unchanged(path, text):
        return False
    atomic_write_text(path, text)
    return True


def dry_run_text(plan: Plan, root: Path) -> str:
    """plan.mk for ``make -n`` (read from stdin: nothing is written): the plan, plus a rule for every
    parameter file whose text would change, so make lists what that change would re-execute; the files
    themselves are left as they are (a dry run with another SET does not re-execute anything later)."""
    lines = [plan.text, "# make -n: the parameter files this plan would write (a dry run writes nothing)",
             ".PHONY: lthlib-dry-run", "lthlib-dry-run:", ""]
    for rel, text in plan.params.items():
        if not unchanged(root / rel, text):
            lines += [f"$(OUT)/{rel}: lthlib-dry-run", "\t@echo 'new parameters: $@'", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lthlib.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("params_file")
    ap.add_argument("sets", nargs="*", help="key=value overrides (YAML values)")
    ap.add_argument("--set", default="", help="more key=value pairs in one string (make's SET=); these win")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--dry-run", action="store_true", help="write nothing: print the plan (for make -n, which "
                    "reads it from stdin) with rules for the parameter files that would change")
    a = ap.parse_intermixed_args(argv)
    try:
        sets = parse_sets(a.sets, "command-line overrides")
        sets.update(parse_sets(split_set(a.set), "SET"))
        plan = build(a.params_file, sets, a.out_root)
        summary = describe_size(plan, a.out_root)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = Path(a.out_root)
    print(summary, file=sys.stderr)
    if plan.rerun:
        print(describe_rerun(plan), file=sys.stderr)
    if a.dry_run:
        print(dry_run_text(plan, root))
        return 0
    for rel, text in plan.params.items():
        write_if_changed(root / rel, text)
    path = root / plan.grid / "plan.mk"
    write_if_changed(path, plan.text)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
