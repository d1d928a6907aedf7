"""Results: the finished runs as one table, which of them a grid counts, and the comparisons its report
states -- the premise check, the LT-vs-RR gaps with their confidence intervals, the winning-ticket
verdicts C1-C3 (SPEC section 2), LT-RR against training length and data order, the layerwise masks
and the θ0-θT correlation.

Nothing here trains or draws (figures: ``lthlib.plots``; HTML: ``lthlib.report``). A grid counts a run
only when the run's identity is the one the grid's current parameters give that cell (``current_runs``);
the others are listed as not counted, with the fields that differ.

    python -m lthlib.results render NOTEBOOK.ipynb OUT.html | index [OUT_ROOT]   (see lthlib.report)
"""
from __future__ import annotations

import functools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import params, registry
from . import settings as protocol
from . import stats as S
from .engine import RunSpec, run_identity
from .models import load_profile
from .pruning import imp_sparsity
from .runs import RunDir, atomic_write_text, load_json, project_path

DENSE = "pretrain"
RANDOM = "random_prune"
RR_SETTINGS = {rr for _, _, rr in registry.PAIRS}
SOURCES = ("mask_source", "weight_source")
# what may differ between the grids of one study tier (one per training length, a data-order ablation)
FREE_ACROSS_GRIDS = ("lr", "epochs", "data_order")
DEFAULTS = params.Experiment()
SPARSITY_DECIMALS = 3  # IMP 0.5904 and OMP 0.59 are one point, "0.590"
GROUP = ["model", "dataset", "epochs", "lr"]
_profile = functools.lru_cache(maxsize=None)(load_profile)  # read once per model, not once per run


# ----------------------------------------------------------------------------- collecting
def _row(path: Path, cfg: dict, met: dict) -> dict:
    ident, exp = cfg["identity"], cfg.get("experiment") or {}
    setting = ident.get("setting")
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
        "n_test": cfg.get("n_test_used"), "device": met.get("device"), "threads": met.get("threads"),
        "torch": met.get("torch"), "code_version": cfg.get("code_version"), "path": str(path), "identity": ident,
    }


COLUMNS = list(_row(Path("g/runs/r"), {"identity": {}}, {"global_sparsity": 0, "final_test_acc": 0}))


def collect(out_root="outputs", grid: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per finished run under ``out_root/<grid>/runs/`` (every grid when ``grid`` is None), and
    the names of the unfinished ones (a broken one, e.g. a missing final.pt, with the reason)."""
    root = project_path(out_root)
    rows, unfinished = [], []
    for path in sorted(root.glob(f"{grid}/runs/*" if grid else "*/runs/*")):
        if not path.is_dir():
            continue
        rd = RunDir(path)
        problem = rd.problem(weights=False) if rd.metrics.exists() else "not finished"
        if problem == "not finished":
            unfinished.append(rd.name)
        elif problem:
            unfinished.append(f"{rd.name} (broken: {problem})")
        else:
            rows.append(_row(path, rd.read_config(), rd.read_metrics()))
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {name: i for i, name in enumerate(registry.NAMES)}
    df = df.assign(_order=df["setting"].map(lambda s: order.get(s, len(order))))
    df = df.sort_values(["grid", "model", "dataset", "epochs", "lr", "_order", "target_sparsity", "seed"])
    return df.drop(columns="_order").reset_index(drop=True), unfinished


def save_table(df: pd.DataFrame, path) -> None:
    """``df`` as CSV (the identity column, a dict per run, left out: config.json holds it)."""
    atomic_write_text(path, df.drop(columns=["identity"], errors="ignore").to_csv(index=False))


# ----------------------------------------------------------------------------- which runs count
def expected_identity(row: dict, exp: params.Experiment, free=()) -> dict:
    """The identity the run of ``row`` would have if it were made now from ``exp`` for the run's own lr,
    seed, sparsity/round and sources; fields named in ``free`` are taken from the run too."""
    ident = row["identity"]
    cell = exp.replace(lr=ident.get("lr"), seed=int(row["seed"]) if pd.notna(row["seed"]) else exp.seed,
                       **{f: ident.get(f, getattr(DEFAULTS, f)) for f in free if f != "lr"})
    setting, rnd = ident.get("setting"), ident.get("round")
    if setting == DENSE:
        init_seed, data_seed = cell.seed, cell.seed
    elif setting in RR_SETTINGS:
        init_seed, data_seed = protocol.rr_seeds(cell)
    else:
        init_seed, data_seed = cell.seed, protocol.lt_data_seed(cell)
    sparsity = round(imp_sparsity(rnd, cell.imp_rate), 6) if rnd is not None else ident.get("sparsity")
    sources = {k: ident[k] for k in SOURCES if k in ident}
    if setting == RANDOM and "mask_source" in sources:  # random_mode enters the identity through its mask
        sources["mask_source"] = {**sources["mask_source"], "kind": f"random_{cell.random_mode}"}
    spec = RunSpec(setting, init_seed, data_seed, start=None, sparsity=sparsity, round_=rnd, sources=sources)
    return json.loads(json.dumps(run_identity(cell, spec, _profile(cell.model)), default=str))


def _shown(key: str, value) -> str:
    if value is _ABSENT:
        return repr(getattr(DEFAULTS, key)) + " (default)" if key in params.FIELDS else "absent"
    return repr(value)


_ABSENT = object()


def identity_differences(row: dict, exp: params.Experiment, free=()) -> list[str]:
    """'field: run's value (now: the grid's value)' for every identity field where the run differs from
    what ``exp`` makes of its cell today (empty: the run is current)."""
    found, expected = row["identity"], expected_identity(row, exp, free)
    out = []
    for key in sorted(set(found) | set(expected)):
        a, b = found.get(key, _ABSENT), expected.get(key, _ABSENT)
        if a != b:
            out.append(f"{key}: {_shown(key, a)} (now {_shown(key, b)})")
    return out


def grid_membership(row: dict, exp: params.Experiment) -> list[str]:
    """Why the run of ``row`` is not one of the grid's cells (empty when it is)."""
    ident, out = row["identity"], []
    if ident.get("setting") not in exp.settings:
        out.append(f"setting: {ident.get('setting')!r} is not in the grid's settings {exp.settings}")
    if not any(math.isclose(ident.get("lr") or 0, lr, rel_tol=1e-12) for lr in exp.lrs):
        out.append(f"lr: {ident.get('lr')!r} is not in the grid's lrs {exp.lrs}")
    if row["seed"] not in exp.seeds:
        out.append(f"seed: {row['seed']!r} is not in the grid's seeds {exp.seeds}")
    rnd, sp = ident.get("round"), ident.get("sparsity")
    if rnd is not None and not 1 <= rnd <= exp.imp_rounds:
        out.append(f"round: {rnd} is beyond the grid's imp_rounds {exp.imp_rounds}")
    elif rnd is None and sp is not None and not any(math.isclose(sp, s, abs_tol=1e-9) for s in exp.sparsities):
        out.append(f"sparsity: {sp} is not in the grid's sparsities {exp.sparsities}")
    return out


def current_runs(df: pd.DataFrame, exp: params.Experiment) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counted, not counted) runs of grid ``exp.name`` in ``df``: a run counts when it is one of the
    grid's cells and its identity is what the grid's current parameters give that cell. The not counted
    ones carry a ``differs`` column (the fields that differ, with both values)."""
    mine = df[df["grid"] == exp.name]
    why = ["; ".join(grid_membership(r, exp) + identity_differences(r, exp)) for r in mine.to_dict("records")]
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
    mine = [u for u in unfinished if (project_path(exp.out_root) / exp.name / "runs" / u.split(" ")[0]).exists()]
    return Collected(everything, counted, not_counted, mine)


def grid_table(c: Collected) -> pd.DataFrame:
    """The grid's finished runs, counted ones first, with a ``counted`` column (results.csv)."""
    return pd.concat([c.counted.assign(counted=True), c.not_counted.assign(counted=False)], ignore_index=True)


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
    return "fails" if gap <= 0 else "not established (gap within the seed spread)"


def premise(dense: pd.DataFrame) -> pd.DataFrame:
    """The paper's premise per (model, dataset, epochs), from ``dense_by_lr``: the largest lr gives the
    better dense model. gap = mean(largest lr) - mean(best other lr); spread = the larger of the two
    seed stds. It holds only when the gap exceeds the spread."""
    rows = []
    for (model, dataset, epochs), g in dense.groupby(["model", "dataset", "epochs"]):
        g = g.sort_values("lr", ascending=False)
        best = g.loc[g["mean"].idxmax()]
        row = {"model": model, "dataset": dataset, "epochs": epochs, "best lr": best["lr"],
               "large lr": g["lr"].iloc[0], "large lr acc": g["mean"].iloc[0]}
        if len(g) < 2:
            rows.append({**row, "status": "cannot be checked (one lr)"})
            continue
        other = g.iloc[1:].loc[g.iloc[1:]["mean"].idxmax()]
        gap, spread = g["mean"].iloc[0] - other["mean"], np.max([g["std"].iloc[0], other["std"]])
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
        facts = (f"dense accuracy {r['large lr acc']:.2f}% at the largest lr {r['large lr']:g} vs "
                 f"{r['other lr acc']:.2f}% at lr {r['other lr']:g} (gap {r['gap']:+.2f} points, seed spread "
                 f"{r['seed spread']:.2f})")
        if r["status"] == "holds":
            lines.append(f"**Premise holds** for {where}: {facts}.")
        else:
            lines.append(f"**Premise {r['status']}** for {where}: {facts}. The paper's comparison presumes "
                         f"the large lr gives the better dense model; this report's LT-vs-RR comparison is "
                         f"therefore not the paper's.")
    return lines


def c3_reference(everything: pd.DataFrame, exp: params.Experiment) -> dict | None:
    """C3's reference (SPEC section 2): the best-lr dense model of this recipe trained with the full
    schedule (``full_epochs``, else the grid's epochs), looked up in every grid; None when no such run
    exists -- never a shorter-schedule stand-in."""
    full = exp.full_epochs or exp.epochs
    dense = everything[(everything["setting"] == DENSE) & (everything["epochs"] == full)]
    # one run per (lr, seed): a dense run of another data-order grid is the same training, not a new seed
    dense = comparable_runs(dense, exp).sort_values("grid", key=lambda g: g != exp.name, kind="stable")
    dense = dense.drop_duplicates(["lr", "seed"])
    if not len(dense):
        return None
    g = dense.groupby("lr")["final_acc"].agg(["mean", "std", "count"])
    lr = g["mean"].idxmax()
    return {"lr": float(lr), "epochs": int(full), "mean": float(g.loc[lr, "mean"]), "std": float(g.loc[lr, "std"]),
            "n": int(g.loc[lr, "count"]), "grids": sorted(set(dense.loc[dense["lr"] == lr, "grid"]))}


def reference_summary(reference: dict | None, exp: params.Experiment) -> str:
    full = exp.full_epochs or exp.epochs
    if reference is None:
        return (f"**C3 reference missing**: no dense `{exp.model}` run of this recipe with the full {full}-epoch "
                f"schedule under `{exp.out_root}/`; C3 (and so the full verdict) is not evaluated.")
    return (f"C3 reference: dense `{exp.model}` at its best lr {reference['lr']:g} with the full {full}-epoch "
            f"schedule, {reference['mean']:.2f}% (std {reference['std']:.2f}, n = {reference['n']}; grid "
            f"{', '.join(reference['grids'])}).")


# ----------------------------------------------------------------------------- LT vs RR
def lt_rr_gaps(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per (model, dataset, epochs, data order, lr, family IMP/OMP, sparsity): LT and RR mean/std/n over
    their seeds, and the paired LT-RR gap over the seeds both have (``stats.paired_gap``). Sparsities
    are rounded to 3 decimals, so IMP and OMP points at one sparsity share a label."""
    keys = ["model", "dataset", "epochs", "data_order", "lr", "sparsity"]
    d = df.assign(sparsity=df["target_sparsity"].round(SPARSITY_DECIMALS))[keys + ["setting", "seed", "final_acc"]]
    rows = []
    for family, lt_s, rr_s in registry.PAIRS:
        lt, rr = (d[d["setting"] == s].drop(columns="setting") for s in (lt_s, rr_s))
        both = lt.merge(rr, on=keys + ["seed"], how="outer", suffixes=(" LT", " RR"))
        for key, g in both.groupby(keys):
            paired = g.dropna(subset=["final_acc LT", "final_acc RR"])
            rows.append({**dict(zip(keys, key)), "family": family,
                         **{f"{w} {f}": getattr(g[f"final_acc {w}"], f)() for w in ("LT", "RR") for f in
                            ("mean", "std", "count")},
                         **S.paired_gap(paired["final_acc LT"], paired["final_acc RR"], alpha)})
    out = pd.DataFrame(rows)
    return out.rename(columns={"LT count": "LT n", "RR count": "RR n"}) if len(out) else out


def verdicts(df: pd.DataFrame, reference: dict | None, tol: float = 0.0, alpha: float = 0.05) -> pd.DataFrame:
    """The LT-RR gaps of ``df`` (one grid's counted runs) with the three conditions of SPEC section 2:
    C1 LT >= dense at the same lr - tol; C2 LT beats RR (one-sided paired t-test, p < alpha);
    C3 LT >= the full-schedule best-lr dense model (``reference``) - tol, NA when it is missing.
    ``wins`` = C1 and C2 and C3 (NA when C3 is)."""
    v = lt_rr_gaps(df, alpha)
    if not len(v):
        return v
    dense = dense_by_lr(df)[GROUP + ["mean"]].rename(columns={"mean": "dense same lr"})
    v = v.merge(dense, on=GROUP, how="left")
    v["C1 matching"] = (v["LT mean"] >= v["dense same lr"] - tol).astype("boolean")
    v["C2 beats RR"] = (v["p LT>RR"] < alpha).astype("boolean")
    ref = reference["mean"] if reference else math.nan
    v["dense best lr (full schedule)"] = ref
    v["C3 jackpot"] = pd.array([pd.NA] * len(v), dtype="boolean") if reference is None else \
        (v["LT mean"] >= ref - tol).astype("boolean")
    v["wins"] = v["C1 matching"] & v["C2 beats RR"] & v["C3 jackpot"]
    return v


def _ci(r: dict) -> str:
    if not math.isfinite(r["CI low"]):
        return f"n = {r['n']}, no CI"
    return f"n = {r['n']}, CI [{r['CI low']:+.2f}, {r['CI high']:+.2f}]"


def _list(xs) -> str:
    return ", ".join(f"{x:.3f}" for x in xs) or "none"


def verdict_summary(v: pd.DataFrame) -> list[str]:
    """One plain-language line per (model, dataset, epochs, lr, family): where LT beats RR, where RR beats
    LT, what is not resolved (with its CI), and where a ticket wins (C1+C2+C3)."""
    if not len(v):
        return ["no LT/RR pair finished yet: no verdicts"]
    lines = []
    for (model, dataset, epochs, lr, fam), g in v.groupby(["model", "dataset", "epochs", "lr", "family"]):
        lt_wins, rr_wins = g[g["result"].str.startswith("LT beats")], g[g["result"].str.startswith("RR beats")]
        open_ = g[g["result"].str.startswith("not resolved")]
        text = [f"LT beats RR at {len(lt_wins)} of {len(g)} sparsities ({_list(lt_wins['sparsity'])})"]
        if len(rr_wins):
            text.append(f"RR beats LT at {_list(rr_wins['sparsity'])}")
        if len(open_):
            text.append("not resolved at " + "; ".join(f"{r['sparsity']:.3f} ({_ci(r)})"
                                                        for r in open_.to_dict("records")))
        if g["C3 jackpot"].isna().all():
            text.append("C3 not evaluated (no full-schedule dense reference)")
        else:
            text.append("winning tickets (C1+C2+C3) at " + _list(g.loc[g["wins"].fillna(False), "sparsity"]))
        n = int(g["n"].min())
        power = f"; underpowered: n = {n}" if n < S.UNDERPOWERED_BELOW else ""
        lines.append(f"{model}/{dataset}, {epochs} epochs, lr {lr:g}, {fam}: {'; '.join(text)} "
                     f"[{n} paired seed{'s' if n != 1 else ''}{power}].")
    return lines


def length_table(everything: pd.DataFrame, exp: params.Experiment, alpha: float = 0.05) -> pd.DataFrame:
    """LT-RR gaps with their CIs from every grid of this study tier (same recipe but lr, training length
    and data order): the training-length axis and the data-order ablation."""
    return lt_rr_gaps(comparable_runs(everything, exp), alpha)


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
def correlation_sparsity(exp: params.Experiment) -> float:
    """The sparsity the top-k overlap of |θ0| and |θT| is measured at: the grid's highest OMP sparsity,
    else its last IMP round's."""
    return max(exp.sparsities, default=imp_sparsity(max(1, exp.imp_rounds), exp.imp_rate))



def _overlap(a: np.ndarray, b: np.ndarray, sparsity: float) -> tuple[float, float]:
    k = max(1, int(round((1 - sparsity) * len(a))))
    top_a = np.argsort(-np.abs(a), kind="stable")[:k]
    top_b = np.argsort(-np.abs(b), kind="stable")[:k]
    return len(np.intersect1d(top_a, top_b)) / k, k / len(a)


def weight_correlation(df: pd.DataFrame, sparsity: float) -> pd.DataFrame:
    """Per dense run, per prunable layer and globally: Pearson r of θ0 and θT, and the overlap of the
    top-(1-s) positions of |θ0| and |θT| (ours: the paper's exact metric is not known). Chance overlap
    for independent rankings is 1-s."""
    rows = []
    for r in df[df["setting"] == DENSE].to_dict("records"):
        rd = RunDir(r["path"])
        t0, tT = rd.load_init(), rd.load_final()
        pools = [(n, t0[n].flatten().double().numpy(), tT[n].flatten().double().numpy())
                 for n in _profile(r["model"])]
        pools.append(("(global)", np.concatenate([p[1] for p in pools]), np.concatenate([p[2] for p in pools])))
        for n, a, b in pools:
            overlap, chance = _overlap(a, b, sparsity)
            rows.append({"lr": r["lr"], "seed": r["seed"], "epochs": r["epochs"], "layer": n,
                         "pearson r": float(np.corrcoef(a, b)[0, 1]), "top-k overlap": overlap,
                         "chance overlap": chance})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    """The command line lives in ``lthlib.report`` (render, index); this name keeps working."""
    from .report import main as report_main
    return report_main(argv, prog="python -m lthlib.results")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["collect", "save_table", "expected_identity", "identity_differences", "grid_membership",
           "current_runs", "comparable_runs", "Collected", "gather", "grid_table", "correlation_sparsity", "dense_by_lr", "premise",
           "premise_summary", "c3_reference", "reference_summary", "lt_rr_gaps", "verdicts", "verdict_summary",
           "length_table", "layerwise_table", "weight_correlation"]
