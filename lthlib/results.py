"""Results: the finished runs as one table, which of them a grid counts, and the comparisons its report
states -- the premise check, the ticket verdicts by the paper's definition (conditions ①-⑤ and the
ticket class, ``lthlib.verdicts``) against the best dense model of the full schedule, the LT-vs-RR gaps
with their confidence intervals, LT-RR against training length and data order over the grids the report
pools, the layerwise masks, the θ0-θT correlation and the paper's correlation indicator R_p.

Nothing here trains or draws (figures: ``lthlib.plots``; HTML: ``lthlib.report``). A grid counts a run
only when the run's identity is the one the grid's current parameters give that cell (``current_runs``);
the others are listed as not counted, with the fields that differ. Another grid's runs enter a report
(the training-length axis, the best dense reference) only when the report pools that grid, and then
only the runs that grid counts under its own current parameters (``pooled_runs``).

    python -m lthlib.results render NOTEBOOK.ipynb OUT.html | index [OUT_ROOT]   (see lthlib.report)
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import layout, params, registry
from . import settings as protocol
from . import stats as S
from . import verdicts as V
from .errors import CheckpointError, LTHError
from .models import load_profile
from .pruning import nearest_sparsity
from .report import md_code, md_text
from .runs import RunDir, atomic_write_text, load_json, project_path

DENSE = "pretrain"
RANDOM = "random_prune"
# what may differ between the grids of one study tier (one per training length, a data-order ablation)
FREE_ACROSS_GRIDS = ("lr", "epochs", "data_order")
DEFAULTS = params.Experiment()
SPARSITY_DECIMALS = 3  # IMP 0.5904 and OMP 0.59 are one point, "0.590"
GROUP = ["model", "dataset", "epochs", "lr"]
_profile = load_profile  # (it caches file reads itself; a re-registered model's prunable set is its own)


# ----------------------------------------------------------------------------- collecting
def _row(path: Path, cfg: dict, met: dict) -> dict:
    ident, exp = cfg["identity"], cfg.get("experiment") or {}
    setting, det = ident.get("setting"), cfg.get("determinism") or {}
    return {
        "grid": path.parent.parent.name, "run": path.name, "setting": setting, "label": registry.label(setting),
        "model": ident.get("model"), "dataset": ident.get("dataset"), "lr": ident.get("lr"),
        "epochs": ident.get("epochs"), "seed": exp.get("seed", ident.get("init_seed")),
        "init_seed": ident.get("init_seed"), "data_seed": ident.get("data_seed"), "round": ident.get("round"),
        "target_sparsity": ident.get("sparsity") or 0.0, "sparsity": met["global_sparsity"],
        "data_order": ident.get("data_order", DEFAULTS.data_order),
        "final_acc": met["final_test_acc"], "best_acc": met.get("best_test_acc_secondary"),
        "best_epoch": met.get("best_epoch_secondary"), "wall_time_s": met.get("wall_time_s"),
        "images_per_s": met.get("train_images_per_s"), "n_train": cfg.get("n_train_used"),
        "n_test": cfg.get("n_test_used"), "device": met.get("device"),
        "device_name": cfg.get("device_name"), "threads": met.get("threads"),
        "torch": met.get("torch"), "code_version": cfg.get("code_version"), "amp": ident.get("amp"),
        "tf32": det.get("tf32"), "deterministic": det.get("deterministic"), "path": str(path), "identity": ident,
    }


COLUMNS = list(_row(Path("g/runs/r"), {"identity": {}}, {"global_sparsity": 0, "final_test_acc": 0}))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# config.json fields a row reads: (where, field, what it must be, the check)
_CONFIG_FIELDS = [("identity", "setting", "a setting name", lambda v: isinstance(v, str)),
                  ("identity", "lr", "a number", _is_number),
                  ("identity", "epochs", "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
                  ("identity", "model", "a model name", lambda v: v is None or isinstance(v, str)),
                  ("identity", "dataset", "a dataset name", lambda v: v is None or isinstance(v, str)),
                  ("identity", "sparsity", "a number", lambda v: v is None or _is_number(v)),
                  ("identity", "round", "an integer", lambda v: v is None or isinstance(v, int)),
                  ("identity", "data_order", "a data order", lambda v: v is None or isinstance(v, str)),
                  ("experiment", "seed", "an integer", lambda v: v is None or isinstance(v, int)),
                  ("", "n_train_used", "a number", lambda v: v is None or _is_number(v)),
                  ("", "n_test_used", "a number", lambda v: v is None or _is_number(v))]


def config_problem(cfg: dict) -> str | None:
    """Why a run's config.json (its identity present) cannot make a results row (None when it can): the
    file and the field named, with what it must hold."""
    for part in ("experiment", "determinism"):
        if cfg.get(part) is not None and not isinstance(cfg[part], dict):
            return f"config.json field {part} is not a mapping"
    for part, key, what, ok in _CONFIG_FIELDS:
        holder = cfg[part] if part else cfg
        value = (holder or {}).get(key)
        if not ok(value):
            return f"config.json field {part + '.' if part else ''}{key} is {str(value)[:40]!r}, not {what}"
    return None


def _read_run(rd: RunDir) -> tuple[dict | None, str | None]:
    """(a results row, None) of a finished run folder, or (None, why it cannot count)."""
    if not rd.metrics.exists():
        return None, "not finished"
    problem = rd.problem(weights=False)
    if problem is None:
        try:
            cfg, met = rd.read_config(), rd.read_metrics()
        except CheckpointError as exc:  # changed since it was checked
            return None, str(exc).split(": ", 1)[-1][:160]
        problem = config_problem(cfg)
        if problem is None:
            return _row(rd.path, cfg, met), None
    return None, problem


def collect(out_root="outputs", grid: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per finished run under ``out_root/<grid>/runs/`` (every grid when ``grid`` is None), and
    the names of the unfinished ones (a broken one -- e.g. a missing final.pt, a metrics.json or
    config.json field that is not what the report reads -- with the file, field and reason)."""
    root = layout.root(out_root)
    rows, unfinished = [], []
    for path in sorted(root.glob(f"{grid}/runs/*" if grid else "*/runs/*")):
        if not path.is_dir():
            continue
        rd = RunDir(path)
        row, problem = _read_run(rd)
        if problem == "not finished":
            unfinished.append(rd.name)
        elif problem:
            unfinished.append(f"{rd.name} (broken: {problem})")
        else:
            rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {name: i for i, name in enumerate(registry.NAMES)}
    df = df.assign(_order=df["setting"].map(lambda s: order.get(s, len(order))))
    df = df.sort_values(["grid", "model", "dataset", "epochs", "lr", "_order", "target_sparsity", "seed"])
    return df.drop(columns="_order").reset_index(drop=True), unfinished


def save_table(df: pd.DataFrame, path) -> None:
    """``df`` as CSV (the identity column, a dict per run, left out: config.json holds it)."""
    atomic_write_text(path, df.drop(columns=["identity"], errors="ignore").to_csv(index=False))


# ----------------------------------------------------------------------------- which runs count
def expected_identity(row: dict, exp: params.Experiment, free=()) -> dict | None:
    """The identity the plan of ``row``'s run gives today: the grid ``exp`` at the run's own lr and seed
    (fields named in ``free`` taken from the run too), the run's setting, round or sparsity. None when
    the protocol has no such run."""
    ident = row["identity"]
    cell = exp.replace(lr=ident.get("lr"), seed=int(row["seed"]) if pd.notna(row["seed"]) else exp.seed,
                       **{f: ident.get(f, getattr(DEFAULTS, f)) for f in free if f != "lr"})
    plan = protocol.plan_for(cell, ident.get("setting"), ident.get("round"), ident.get("sparsity"),
                             ident.get("pretrain_lr"))
    return None if plan is None else plan.identity


def _shown(key: str, value) -> str:
    if value is _ABSENT:
        return repr(getattr(DEFAULTS, key)) + " (default)" if key in params.FIELDS else "absent"
    return repr(value)


_ABSENT = object()


def identity_differences(row: dict, exp: params.Experiment, free=()) -> list[str]:
    """'field: run's value (now: the grid's value)' for every identity field where the run differs from
    what ``exp`` makes of its cell today (empty: the run is current)."""
    found, expected = row["identity"], expected_identity(row, exp, free)
    if expected is None:
        return [f"setting: {found.get('setting')!r} has no run at round {found.get('round')} / sparsity "
                f"{found.get('sparsity')}"]
    out = []
    for key in sorted(set(found) | set(expected)):
        a, b = found.get(key, _ABSENT), expected.get(key, _ABSENT)
        if a != b:
            out.append(f"{key}: {_shown(key, a)} (now {_shown(key, b)})")
    return out


def one_shot_sparsities(exp: params.Experiment) -> dict[str, list[float]]:
    """Per setting of the grid, the sparsities of its runs that have no IMP round, from the protocol's
    plans (the OMP list for the one-shot settings; every IMP round's and the OMP list's for the small
    dense network). A setting whose plans cannot be made for this grid gets the OMP list."""
    out = {}
    for s in exp.settings:
        try:
            out[s] = [p.sparsity for p in protocol.plan(exp, s) if p.round is None and p.sparsity is not None]
        except LTHError:
            out[s] = list(exp.sparsities)
    return out


def grid_membership(row: dict, exp: params.Experiment, sparsities: dict | None = None) -> list[str]:
    """Why the run of ``row`` is not one of the grid's cells (empty when it is); ``sparsities``: the
    grid's ``one_shot_sparsities`` (computed when not given)."""
    ident, out = row["identity"], []
    setting = ident.get("setting")
    if setting not in exp.settings:
        out.append(f"setting: {setting!r} is not in the grid's settings {exp.settings}")
    if not any(math.isclose(ident.get("lr") or 0, lr, rel_tol=1e-12) for lr in exp.lrs + exp.sparse_lrs):
        out.append(f"lr: {ident.get('lr')!r} is not in the grid's lrs {exp.lrs}")
    if row["seed"] not in exp.seeds:
        out.append(f"seed: {row['seed']!r} is not in the grid's seeds {exp.seeds}")
    rnd, sp = ident.get("round"), ident.get("sparsity")
    planned = (sparsities if sparsities is not None else one_shot_sparsities(exp)).get(setting, exp.sparsities)
    if rnd is not None and not 1 <= rnd <= exp.imp_rounds:
        out.append(f"round: {rnd} is beyond the grid's imp_rounds {exp.imp_rounds}")
    elif rnd is None and sp is not None and not any(math.isclose(sp, s, abs_tol=1e-9) for s in planned):
        out.append(f"sparsity: {sp} is not among the grid's sparsities for {setting} {sorted(planned)}")
    return out


def current_runs(df: pd.DataFrame, exp: params.Experiment) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counted, not counted) runs of grid ``exp.name`` in ``df``: a run counts when it is one of the
    grid's cells and its identity is what the grid's current parameters give that cell. The not counted
    ones carry a ``differs`` column (the fields that differ, with both values)."""
    mine = df[df["grid"] == exp.name]
    planned = one_shot_sparsities(exp) if len(mine) else {}
    why = ["; ".join(grid_membership(r, exp, planned) + identity_differences(r, exp))
           for r in mine.to_dict("records")]
    ok = np.array([not w for w in why], dtype=bool)
    not_counted = mine[~ok].assign(differs=[w for w in why if w])
    return mine[ok].reset_index(drop=True), not_counted.reset_index(drop=True)


def comparable_runs(df: pd.DataFrame, exp: params.Experiment, free=FREE_ACROSS_GRIDS) -> pd.DataFrame:
    """The runs of any grid whose identity agrees with ``exp`` except in the fields ``free`` (by default
    lr, training length and data order): the runs one study tier shares across its grids. A run present
    in two grids (same identity) appears once."""
    same = [not identity_differences(r, exp, free) for r in df.to_dict("records")]
    return df[np.array(same, dtype=bool)].drop_duplicates("run").reset_index(drop=True)


@dataclass
class Collected:
    """What one grid's report reads: every finished run under the output root, the grid's counted and
    not counted runs, and its unfinished ones."""
    everything: pd.DataFrame
    counted: pd.DataFrame
    not_counted: pd.DataFrame
    unfinished: list[str] = field(default_factory=list)


def gather(exp: params.Experiment) -> Collected:
    """Collect every grid under ``exp.out_root`` and split grid ``exp.name`` into counted/not counted."""
    everything, unfinished = collect(exp.out_root)
    counted, not_counted = current_runs(everything, exp)
    mine = [u for u in unfinished if (layout.runs_dir(exp.out_root, exp.name) / u.split(" ")[0]).exists()]
    return Collected(everything, counted, not_counted, mine)


def grid_table(c: Collected, normal_lr: float = 0.0) -> pd.DataFrame:
    """The grid's finished runs, counted ones first, with a ``counted`` column and the grid's ``normal_lr``
    (0 = its largest lr; the README block reads it back for the premise and Table 3) (results.csv)."""
    return pd.concat([c.counted.assign(counted=True), c.not_counted.assign(counted=False)],
                     ignore_index=True).assign(normal_lr=float(normal_lr))


def normal_lr_of(runs: pd.DataFrame) -> float:
    """The normal lr a results.csv was written with (its ``normal_lr`` column; 0 = the largest lr, also
    for a table written before the column existed)."""
    if "normal_lr" not in runs or not len(runs):
        return 0.0
    values = pd.to_numeric(runs["normal_lr"], errors="coerce").dropna().unique()
    if len(values) > 1:
        raise ValueError(f"results table: more than one normal_lr ({', '.join(f'{x:g}' for x in values)}); "
                         f"one grid at a time")
    return float(values[0]) if len(values) else 0.0


# ----------------------------------------------------------------------------- dense models and the premise
def dense_by_lr(df: pd.DataFrame, wc: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dense final accuracy per (model, dataset, epochs, lr): mean, std and n over seeds; with a
    ``weight_correlation`` table, the mean global Pearson r of θ0 and θT too."""
    d = df[df["setting"] == DENSE]
    out = d.groupby(GROUP)["final_acc"].agg(["mean", "std", "count"]).reset_index()
    out = out.rename(columns={"count": "n"})
    if wc is not None and len(wc):
        r = wc[wc["layer"] == "(global)"].groupby(["epochs", "lr"])["pearson r"].mean().reset_index()
        out = out.merge(r.rename(columns={"pearson r": "θ0-θT pearson r"}), on=["epochs", "lr"], how="left")
    return out


def _premise_status(gap: float, spread: float) -> str:
    if math.isnan(spread):
        return "cannot be checked (one seed: no spread)"
    if gap > spread:
        return "holds"
    # fails only when the smaller lr is better by more than the spread, as holds needs the larger one to be
    return "fails" if gap < -spread else "not established (gap within the seed spread)"


def premise(dense: pd.DataFrame, normal_lr: float = 0.0) -> pd.DataFrame:
    """The paper's premise per (model, dataset, epochs), from ``dense_by_lr``: a large lr -- the normal lr
    (``normal_lr``; 0 = the largest) or above -- gives the better dense model. gap = the best mean at or
    above the normal lr - the best mean below it; spread = the larger of the two seed stds. It holds
    only when the gap exceeds the spread, and fails only when it is below minus the spread; in between
    it is not established. A very large lr that trains worse than the normal one does not break it."""
    rows = []
    for (model, dataset, epochs), g in dense.groupby(["model", "dataset", "epochs"]):
        small, large = V.split_lrs(g["lr"], normal_lr)
        best = g.loc[g["mean"].idxmax()]
        on = lambda lrs: g[g["lr"].isin(lrs)]
        if not large:
            rows.append({"model": model, "dataset": dataset, "epochs": epochs, "best lr": best["lr"],
                         "status": f"cannot be checked (no dense run at or above the normal lr {normal_lr:g})"})
            continue
        top = on(large).loc[on(large)["mean"].idxmax()]
        row = {"model": model, "dataset": dataset, "epochs": epochs, "best lr": best["lr"],
               "normal lr": min(large), "large lrs": len(large), "large lr": top["lr"], "large lr acc": top["mean"]}
        if not small:
            rows.append({**row, "status": "cannot be checked (no lr below the normal lr)" if len(g) > 1 else
                         "cannot be checked (one lr)"})
            continue
        other = on(small).loc[on(small)["mean"].idxmax()]
        gap, spread = top["mean"] - other["mean"], np.max([top["std"], other["std"]])
        rows.append({**row, "other lr": other["lr"], "other lr acc": other["mean"], "gap": gap,
                     "seed spread": spread, "status": _premise_status(gap, float(spread))})
    return pd.DataFrame(rows)


def premise_summary(p: pd.DataFrame) -> list[str]:
    """One line per (model, dataset, epochs); a failing premise says so, and what it means."""
    if not len(p):
        return ["**Premise not checked**: no dense run finished yet."]
    lines = []
    for r in p.to_dict("records"):
        where = f"{r['model']}/{r['dataset']}, {r['epochs']} epochs"
        if "gap" not in r or pd.isna(r.get("gap")):
            lines.append(f"**Premise {r['status']}** for {where}.")
            continue
        large = (f"the largest lr {r['large lr']:g}" if r.get("large lrs", 1) == 1 else
                 f"lr {r['large lr']:g} (the best at or above the normal lr {r['normal lr']:g})")
        facts = (f"dense accuracy {r['large lr acc']:.2f}% at {large} vs {r['other lr acc']:.2f}% at lr "
                 f"{r['other lr']:g} (gap {r['gap']:+.2f} points, seed spread {r['seed spread']:.2f})")
        if r["status"] == "holds":
            lines.append(f"**Premise holds** for {where}: {facts}.")
        else:
            so = "therefore not" if r["status"] == "fails" else "perhaps not"
            lines.append(f"**Premise {r['status']}** for {where}: {facts}. The paper's comparison presumes "
                         f"the large lr gives the better dense model; this report's LT-vs-RR comparison is "
                         f"{so} the paper's.")
    return lines


def best_dense_full_schedule(runs: pd.DataFrame, exp: params.Experiment) -> dict | None:
    """The best dense model (SPEC section 2, condition ⑤): the dense model of this recipe at its best lr,
    trained with the full schedule (``full_epochs``, else the grid's epochs), looked up in ``runs`` (the
    pooled runs, ``pooled_runs``); a dict with lr, epochs, mean, std, n, grids and lrs (the lrs it is the
    best of: ⑤ is not established while one of the grid's is missing, ``verdicts``), or None when no such
    run exists -- never a shorter-schedule stand-in."""
    full = exp.full_epochs or exp.epochs
    dense = runs[(runs["setting"] == DENSE) & (runs["epochs"] == full)]
    # one run per (lr, seed): a dense run of another data-order grid is the same training, not a new seed.
    # A table without identities is a published results.csv: the grid's own runs, already counted or not
    dense = comparable_runs(dense, exp) if "identity" in dense else dense[dense["grid"] == exp.name]
    dense = dense.sort_values("grid", key=lambda g: g != exp.name, kind="stable")
    dense = dense.drop_duplicates(["lr", "seed"])
    if not len(dense):
        return None
    g = dense.groupby("lr")["final_acc"].agg(["mean", "std", "count"])
    lr = g["mean"].idxmax()
    return {"lr": float(lr), "epochs": int(full), "mean": float(g.loc[lr, "mean"]), "std": float(g.loc[lr, "std"]),
            "n": int(g.loc[lr, "count"]), "grids": sorted(set(dense.loc[dense["lr"] == lr, "grid"])),
            "lrs": [float(x) for x in g.index]}


def reference_summary(reference: dict | None, exp: params.Experiment) -> str:
    """One sentence: the best dense model of the full schedule ⑤ is judged against, or that it is missing."""
    full = exp.full_epochs or exp.epochs
    if reference is None:
        return (f"**Best dense model (full schedule) missing**: no dense `{exp.model}` run of this recipe with the "
                f"full {full}-epoch schedule in the pooled grids; condition ⑤ (and so the Jackpot / secondary "
                f"prize class) is not evaluated.")
    return (f"Best dense model (full schedule): dense `{exp.model}` at its best lr {reference['lr']:g} with the "
            f"full {full}-epoch schedule, {reference['mean']:.2f}% (std {reference['std']:.2f}, n = "
            f"{reference['n']}; grid {', '.join(reference['grids'])}).")


# ----------------------------------------------------------------------------- the paper's verdicts
def ticket_verdicts(counted: pd.DataFrame, reference: dict | None, exp: params.Experiment, similar=None,
                    clear=None, sdt_gap=None, nontrivial: float = 0.6, alpha: float = S.ALPHA) -> pd.DataFrame:
    """``verdicts.verdict_table`` of one grid's counted runs: conditions ①-⑤, the ticket class and "at
    the boundary" per (model, dataset, epochs, family, sparsity, lr), with ⑤ judged against
    ``reference`` (``best_dense_full_schedule``) and ① against the grid's full schedule. Thresholds:
    ``verdicts.thresholds`` (None = the paper's for the dataset)."""
    if not len(counted):
        return pd.DataFrame()
    return V.verdict_table(counted, exp.full_epochs or exp.epochs, reference, nontrivial, similar, clear, sdt_gap,
                           alpha, rr_lrs=exp.sparse_lrs or exp.lrs, dense_lrs=exp.lrs)


def ticket_summary(v: pd.DataFrame, counted: pd.DataFrame, alpha: float = S.ALPHA,
                   normal_lr: float = 0.0) -> pd.DataFrame:
    """The paper's Table 3 for ``v`` (``verdicts.table3``): per network, Jackpot? secondary prize? with
    the number of candidate tickets and the Holm-corrected count, and the paper's own entry."""
    return V.table3(v, counted, alpha, normal_lr) if len(v) else pd.DataFrame()


# ----------------------------------------------------------------------------- LT vs RR
def lt_rr_gaps(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per (model, dataset, epochs, data order, lr, family IMP/OMP, sparsity): the paired LT-RR gap over
    the seeds both have (``stats.paired_gap``) and LT's and RR's mean and std over **those same seeds**,
    so LT mean - RR mean is the gap; n = the paired seeds, "LT n" / "RR n" = the runs of each side and
    "note" says when they differ. Sparsities are rounded to 3 decimals, so IMP and OMP points at one
    sparsity share a label."""
    keys = ["model", "dataset", "epochs", "data_order", "lr", "sparsity"]
    d = df.assign(sparsity=df["target_sparsity"].round(SPARSITY_DECIMALS))[keys + ["setting", "seed", "final_acc"]]
    rows = []
    for family, lt_s, rr_s in registry.PAIRS:
        lt, rr = (d[d["setting"] == s].drop(columns="setting") for s in (lt_s, rr_s))
        both = lt.merge(rr, on=keys + ["seed"], how="outer", suffixes=(" LT", " RR"))
        for key, g in both.groupby(keys):
            paired = g.dropna(subset=["final_acc LT", "final_acc RR"])
            counts = {w: int(g[f"final_acc {w}"].notna().sum()) for w in ("LT", "RR")}
            note = "" if counts["LT"] == counts["RR"] == len(paired) else \
                f"means and gap over the {len(paired)} seeds both have (LT {counts['LT']} runs, RR {counts['RR']})"
            rows.append({**dict(zip(keys, key)), "family": family,
                         **{f"{w} {f}": getattr(paired[f"final_acc {w}"], f)() for w in ("LT", "RR")
                            for f in ("mean", "std")},
                         "LT n": counts["LT"], "RR n": counts["RR"], "note": note,
                         **S.paired_gap(paired["final_acc LT"], paired["final_acc RR"], alpha)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- pooling other grids
@dataclass
class Pool:
    """The runs a report takes from the grids it pools (each grid's counted runs of this recipe, a run
    in two grids once) and, per grid considered, what it contributed or why not (``grids``)."""
    runs: pd.DataFrame
    grids: pd.DataFrame


def _pretrain_lr(row) -> float | None:
    ident = row.get("identity") if isinstance(row.get("identity"), dict) else {}
    return ident.get("pretrain_lr")


def _mean_text(acc: pd.Series) -> str:
    return f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f} (n={len(acc)})" if len(acc) > 1 else \
        (f"{acc.iloc[0]:.2f} (n=1)" if len(acc) else "—")


def sparse_lr_table(df: pd.DataFrame, exp: params.Experiment, sparsity: float = V.PAPER_TABLE4_SPARSITY
                    ) -> tuple[pd.DataFrame, str]:
    """The paper's Table 4 for a grid with ``sparse_lrs``: per pretraining lr (the grid's lrs) and
    sparse-training lr, the dense accuracy at the pretraining lr and LT-IMP / LT-OMP at the grid sparsity
    nearest ``sparsity`` (mean ± std over seeds, n), with the paper's numbers beside where SPEC section 6
    has them; (table, a line saying what was compared). Empty without ``sparse_lrs``."""
    if not exp.sparse_lrs or not len(df):
        return pd.DataFrame(), ""
    sub = df[df["setting"].isin(["lt_imp", "lt_omp"])]
    s = nearest_sparsity(sub["target_sparsity"].round(SPARSITY_DECIMALS), sparsity) if len(sub) else None
    paper = V.PAPER_TABLE4.get((exp.model, exp.dataset), {})
    rows = []
    for pre in exp.lrs:
        dense = df[(df["setting"] == DENSE) & np.isclose(df["lr"], pre)]["final_acc"]
        pdense, paper_lt = paper.get(pre, (None, {}))
        for lr in exp.sparse_lrs:
            row = {"pretraining lr": pre, "dense": _mean_text(dense), "sparse-training lr": lr}
            for setting, col in (("lt_imp", "LT-IMP"), ("lt_omp", "LT-OMP")):
                d = sub[(sub["setting"] == setting) & np.isclose(sub["lr"], lr)
                        & (sub["target_sparsity"].round(SPARSITY_DECIMALS) == s)]
                d = d[np.array([_pretrain_lr(r) is not None and math.isclose(_pretrain_lr(r), pre)
                                for r in d.to_dict("records")], dtype=bool)]
                row[col] = _mean_text(d["final_acc"])
            known = paper_lt.get(lr)
            row["paper dense"] = pdense
            row["paper LT-IMP / LT-OMP"] = f"{known[0]:.1f} / {known[1]:.1f}" if known else None
            rows.append(row)
    where = (f"LT at s = {s:.3f} (the grid's sparsity nearest {sparsity:g}); the paper's numbers are at s = "
             f"{V.PAPER_TABLE4_SPARSITY} for ResNet-20 on CIFAR-10" if s is not None else "no LT run finished yet")
    return pd.DataFrame(rows), where


def _grid_params(params_dir) -> dict[str, Path]:
    """{grid name: params file} of every readable params/*.yaml (the first file naming a grid wins)."""
    found = {}
    for f in sorted(project_path(params_dir).glob("*.yaml")):
        try:
            found.setdefault(str(params.load_params_file(f).get("name", DEFAULTS.name)), f)
        except LTHError:
            continue
    return found


def pool_experiments(exp: params.Experiment, names=None, overrides: dict | None = None,
                     params_dir="params") -> tuple[list[params.Experiment], list[str]]:
    """The grids a report pools, as experiments at their current parameters: ``exp`` itself first, then
    each grid of ``names`` (None: every grid with runs under ``exp.out_root``) from the params file that
    names it, with the report's ``overrides`` (SET=, out_root; not ``name``). Returns (experiments,
    notes): a grid with no params file, or whose file does not load, is left out and noted."""
    if names is None:
        names = sorted(p.parent.name for p in layout.root(exp.out_root).glob("*/runs") if p.is_dir())
    files, extra = _grid_params(params_dir), {k: v for k, v in (overrides or {}).items() if k != "name"}
    out, notes = [exp], []
    for name in dict.fromkeys(n for n in names if n != exp.name):
        if name not in files:
            notes.append(f"grid `{name}`: no params file in `{params_dir}/` names it; not pooled")
            continue
        try:
            out.append(params.load(files[name], {**extra, "out_root": exp.out_root}))
        except LTHError as exc:
            notes.append(f"grid `{name}` ({files[name].name}): does not load ({str(exc)[:160]}); not pooled")
    return out, notes


def _sorted_text(values) -> str:
    return ", ".join(f"{v:g}" for v in sorted(set(values))) or "-"


def _pool_row(g: params.Experiment, counted: pd.DataFrame, same: pd.DataFrame, own: bool) -> dict:
    why = "" if len(same) else ("no counted runs" if not len(counted) else "another recipe")
    versions = ", ".join(f"{v} ({n})" for v, n in same["code_version"].fillna("unknown").value_counts().items())
    return {"grid": g.name + (" (this grid)" if own else ""), "epochs": g.epochs, "data order": g.data_order,
            "runs pooled": len(same), "seeds": _sorted_text(same["seed"]), "lrs": _sorted_text(same["lr"]),
            "settings": ", ".join(registry.label(s) for s in registry.NAMES if s in set(same["setting"])),
            "code versions": versions or "-", "not pooled because": why}


def pooled_runs(everything: pd.DataFrame, exp: params.Experiment, grids: list[params.Experiment]) -> Pool:
    """The runs of ``grids`` (``pool_experiments``) a report pools with grid ``exp``: of each grid the runs
    it counts under its own current parameters (``current_runs``: its seeds, lrs, identity) that share
    ``exp``'s recipe except lr, training length and data order (``comparable_runs``). A smoke run left in
    a grid's folder, or a grid the report does not name, adds nothing."""
    frames, rows = [], []
    for g in grids:
        counted, _ = current_runs(everything, g)
        same = comparable_runs(counted, exp) if len(counted) else counted
        frames.append(same)
        rows.append(_pool_row(g, counted, same, g.name == exp.name))
    runs = pd.concat(frames, ignore_index=True).drop_duplicates("run").reset_index(drop=True)
    return Pool(runs, pd.DataFrame(rows))


def length_table(pooled: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """LT-RR gaps with their CIs over the pooled runs (``pooled_runs(...).runs``): the training-length
    axis and the data-order ablation."""
    return lt_rr_gaps(pooled, alpha)


# ----------------------------------------------------------------------------- layerwise sparsity
def layerwise_table(df: pd.DataFrame, lr: float, seed: int, sparsities) -> pd.DataFrame:
    """Per-layer sparsity of the IMP, OMP and random masks nearest to each global sparsity asked for."""
    rows = []
    sub = df[np.isclose(df["lr"], lr) & (df["seed"] == seed)]
    kinds = [(lt, fam) for fam, lt, _ in registry.PAIRS] + [(RANDOM, "random")]
    for target in sparsities:
        for setting, kind in kinds:
            s = sub[sub["setting"] == setting]
            if not len(s):
                continue
            i = (s["target_sparsity"] - target).abs().idxmin()
            if abs(s.loc[i, "target_sparsity"] - target) > 0.02:
                continue
            met = load_json(Path(s.loc[i, "path"]) / "metrics.json")
            rows += [{"global sparsity": f"{s.loc[i, 'target_sparsity']:.{SPARSITY_DECIMALS}f}", "mask": kind,
                      "layer": layer, "sparsity (%)": 100 * sp} for layer, sp in met["layer_sparsity"].items()]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- init vs trained weights
def _weights(path, kinds: tuple[str, ...]) -> tuple[list[dict] | None, str]:
    """The files ``kinds`` ('init', 'final', 'mask') of the run at ``path``, loaded; or (None, why) when
    one is missing (a results-only run folder copied back from a GPU machine) or unreadable."""
    rd = RunDir(path)
    files = {"init": rd.init, "final": rd.final, "mask": rd.mask}
    missing = [files[k].name for k in kinds if not files[k].exists()]
    if missing:
        return None, f"{md_code(rd.name)}: {', '.join(missing)} missing (a results-only run folder)"
    try:
        return [{"init": rd.load_init, "final": rd.load_final, "mask": rd.load_mask}[k]() for k in kinds], ""
    except CheckpointError as exc:  # the reason is shown as markdown: as text, never HTML
        return None, f"{md_code(rd.name)}: {md_text(str(exc).split(': ', 1)[-1][:140])}"


def weight_correlation(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per dense run of ``df``, per prunable layer and over all of them ("(global)"): the Pearson r of θ0
    and θT (ours; the paper's indicator is ``correlation_indicator``). Returns (table, skipped): a run
    whose init.pt/final.pt is missing or unreadable is skipped and named, never a crash."""
    rows, skipped = [], []
    for r in df[df["setting"] == DENSE].to_dict("records"):
        states, why = _weights(r["path"], ("init", "final"))
        if states is None:
            skipped.append(why)
            continue
        t0, tT = states
        pools = [(n, t0[n].flatten().double().numpy(), tT[n].flatten().double().numpy())
                 for n in _profile(r["model"])]
        pools.append(("(global)", np.concatenate([p[1] for p in pools]), np.concatenate([p[2] for p in pools])))
        rows += [{"lr": r["lr"], "seed": r["seed"], "epochs": r["epochs"], "layer": n,
                  "pearson r": float(np.corrcoef(a, b)[0, 1])} for n, a, b in pools]
    return pd.DataFrame(rows, columns=["lr", "seed", "epochs", "layer", "pearson r"]), skipped


# ----------------------------------------------------------------------------- the correlation indicator R_p
def top_positions(x: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` largest |x| (ties: the lower index first)."""
    return np.argsort(-np.abs(x), kind="stable")[:k]


def correlation_indicator(a: dict, b: dict, masks: dict, p: float) -> float:
    """The paper's R_p(a ⊙ m, b ⊙ m) (App. G; SPEC section 8.7) over the layers of ``masks`` (name ->
    bool tensor; its keys are the prunable layers): Σ_l |T_p(a^l) ∩ T_p(b^l)| / (p · Σ_l N_l), N_l the
    weights m keeps in layer l and T_p(x^l) the round(p · N_l) positions of the largest |x| among them
    (p is relative to the remaining weights). R_p ≈ p means no correlation; 1 the same top positions."""
    hits, total = 0, 0
    for name, m in masks.items():
        keep = m.flatten().bool().numpy()
        x, y = a[name].flatten().double().numpy()[keep], b[name].flatten().double().numpy()[keep]
        k = int(round(p * len(x)))
        hits += len(np.intersect1d(top_positions(x, k), top_positions(y, k)))
        total += len(x)
    return hits / (p * total) if total else math.nan


def nearest_omp_sparsity(df: pd.DataFrame, wanted: float) -> tuple[float | None, str]:
    """The LT-OMP sparsity of ``df`` R_p is measured at: ``wanted`` when the grid has it, else the
    nearest one, and a sentence saying which; (None, why) when there is no LT-OMP run."""
    lt = registry.FAMILIES["OMP"][0]
    have = sorted(set(df.loc[df["setting"] == lt, "target_sparsity"].round(SPARSITY_DECIMALS)))
    if not have:
        return None, "No LT-OMP run: R_p is not computed (it needs the one-shot mask m)."
    used = min(have, key=lambda s: (abs(s - wanted), s))
    if math.isclose(used, wanted, abs_tol=5e-4):
        return used, f"R_p at sparsity {used:.3f}."
    return used, (f"Sparsity {wanted:g} is not among the grid's OMP sparsities ({_list3(have)}): R_p is measured "
                  f"at the nearest, {used:.3f}.")


def _list3(xs) -> str:
    return ", ".join(f"{x:.3f}" for x in xs)


def _run_at(df: pd.DataFrame, setting: str, r: dict, sparsity: float | None = None) -> dict | None:
    """The run of ``setting`` at the lr, seed and epochs of row ``r`` (and ``sparsity``), or None."""
    m = (df["setting"] == setting) & np.isclose(df["lr"], r["lr"]) & (df["seed"] == r["seed"]) & \
        (df["epochs"] == r["epochs"])
    if sparsity is not None:
        m &= np.isclose(df["target_sparsity"].round(SPARSITY_DECIMALS), sparsity)
    hit = df[m]
    return hit.iloc[0].to_dict() if len(hit) else None


def _indicator_row(df: pd.DataFrame, r: dict, sparsity: float, p: float, skipped: list) -> dict | None:
    """R_p(θ0 ⊙ m, θT ⊙ m) and R_p(θ0' ⊙ m, θT ⊙ m) of the LT-OMP run ``r``; None (and a note in
    ``skipped``) when the dense run's θ0/θT or the mask cannot be read; θ0' NaN (noted) without RR-OMP."""
    dense = _run_at(df, DENSE, r)
    if dense is None:
        skipped.append(f"`{r['run']}`: no dense run at lr {r['lr']:g}, seed {r['seed']}")
        return None
    (states, why), (mask, why_m) = _weights(dense["path"], ("init", "final")), _weights(r["path"], ("mask",))
    if states is None or mask is None:
        skipped.append(why or why_m)
        return None
    (t0, tT), (m,) = states, mask
    out = {"epochs": r["epochs"], "lr": r["lr"], "seed": r["seed"], "sparsity": sparsity, "p": p,
           "R_p(θ0⊙m, θT⊙m)": correlation_indicator(t0, tT, m, p), "R_p(θ0'⊙m, θT⊙m)": math.nan}
    rr = _run_at(df, registry.FAMILIES["OMP"][1], r, sparsity)
    fresh, why_rr = _weights(rr["path"], ("init",)) if rr else (None, f"no RR-OMP run at lr {r['lr']:g}, seed "
                                                                      f"{r['seed']}: θ0' not measured")
    if fresh is None:
        skipped.append(why_rr)
    else:
        out["R_p(θ0'⊙m, θT⊙m)"] = correlation_indicator(fresh[0], tT, m, p)
    return out


def indicator_table(df: pd.DataFrame, sparsity: float | None, p: float = 0.1) -> tuple[pd.DataFrame, list[str]]:
    """Per LT-OMP run of ``df`` at ``sparsity`` (``nearest_omp_sparsity``), i.e. per (epochs, lr, seed):
    R_p(θ0 ⊙ m, θT ⊙ m) and R_p(θ0' ⊙ m, θT ⊙ m) with m its mask, θ0/θT the dense run's init.pt/final.pt
    and θ0' ⊙ m the RR-OMP run's init.pt (the paper's Figure 6). Returns (table, skipped): runs whose
    weight files are missing or unreadable are skipped and named, never a crash."""
    cols = ["epochs", "lr", "seed", "sparsity", "p", "R_p(θ0⊙m, θT⊙m)", "R_p(θ0'⊙m, θT⊙m)"]
    if sparsity is None:
        return pd.DataFrame(columns=cols), []
    lt = df[(df["setting"] == registry.FAMILIES["OMP"][0]) &
            np.isclose(df["target_sparsity"].round(SPARSITY_DECIMALS), sparsity)]
    skipped: list[str] = []
    rows = [_indicator_row(df, r, sparsity, p, skipped) for r in lt.to_dict("records")]
    return pd.DataFrame([r for r in rows if r is not None], columns=cols), skipped


def main(argv=None) -> int:
    """The command line lives in ``lthlib.report`` (render, index); this name keeps working."""
    from .report import main as report_main
    return report_main(argv, prog="python -m lthlib.results")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["collect", "save_table", "expected_identity", "identity_differences", "one_shot_sparsities",
           "grid_membership", "current_runs", "comparable_runs", "Collected", "gather", "grid_table", "normal_lr_of",
           "dense_by_lr", "premise",
           "premise_summary", "best_dense_full_schedule", "reference_summary", "ticket_verdicts", "ticket_summary",
           "lt_rr_gaps", "Pool", "pool_experiments", "pooled_runs", "length_table", "layerwise_table",
           "weight_correlation", "top_positions", "correlation_indicator", "nearest_omp_sparsity",
           "indicator_table"]
