"""The ticket verdicts by the paper's definition (SPEC section 2; section 8 items 4 and 5), as pure
functions over a table of finished runs (one row per run; no files, no training).

Input columns: ``setting`` (pretrain = dense, lt_imp, rr_imp, lt_omp, rr_omp, sdt = small-dense network
of the subnetwork's parameter count, wr_imp, wr_omp = weight rewinding), ``model``, ``dataset``,
``epochs`` (the schedule length T; a WR run trains T - t of it), ``lr``, ``seed``, ``target_sparsity``
(0 for dense; for sdt the sparsity it matches) and ``final_acc`` (percent). Sparsities are grouped to 3
decimals, so IMP's 0.5904 and OMP's 0.59 are both "0.590". One run per (setting, model, dataset, epochs,
sparsity, lr, seed) is required.

A ticket is one (model, dataset, epochs, family, sparsity, lr); families pair a ticket setting with the
RR setting it is judged against (``registry.FAMILIES``; the small-dense setting is
``registry.SMALL_DENSE``). Its five conditions, on seed means:

- ① (c1) sparsity >= ``nontrivial`` (0.6) and epochs >= ``full_epochs``. A too-short schedule makes ①
  False (it is the paper's own condition), not "not evaluated".
- ② (c2) LT - SDT (same sparsity and lr) > the SDT gap (the paper gives none: the clear gap is used).
- ③ (c3) LT - best RR > the clear gap; best RR = the RR lr at the same sparsity and epochs, over the
  LRs present, that is hardest to beat: the smallest LT - RR gap over the seeds both have (the highest
  RR mean when the seeds are the same). With one RR lr ③ is still evaluated and the row notes
  "RR swept over 1 lr". Given the grid's RR lrs (``rr_lrs``), a ③ that holds while RR has not finished
  at one of them is NA ("RR at any lr" is not yet established; a missing lr can only make ③ easier).
- ④ (c4) LT >= dense at the same lr and epochs - similar.
- ⑤ (c5) LT >= the best dense model (``reference``) - similar. Likewise NA when it holds while the
  reference's dense lrs (its "lrs", when it names them) miss one of the grid's (``dense_lrs``).

Gaps are rounded to ``GAP_DECIMALS`` (4) before they are compared with a threshold: accuracies are
float32 percentages, whose rounding (~1e-5) would otherwise decide a gap of exactly the threshold
at random; the finest real step of a 3-seed mean on a 10,000-image test set is 0.0033 points.
A run whose final_acc is NaN is not a finished run: ``prepare`` drops it (its condition reads as a
missing input, never as a failure).
A condition whose input is missing (no SDT, RR or dense run; no reference, or one trained shorter than
``full_epochs``) is NA, never False. Class (Kleene logic: a class is decided as soon as the known
conditions fix it): "none" when any of ①-④ is False, even if others are NA; else "not evaluated" when
any of ①-⑤ is NA; else "Jackpot" (⑤ holds) or "secondary prize" (⑤ fails).

Beside each decision: the gap, its paired 95% CI over the seeds both sides have (⑤: paired too when
the reference is this table's own dense runs at its lr and epochs, else Welch's interval against the
reference's mean/std/n), n and words from ``stats`` that agree with the interval; and the
same test against the threshold ("vs threshold", "p vs threshold"). "At the boundary": some set of
conditions whose CI of (gap - threshold) contains 0 would, flipped, change the class; NA when no set
does but a condition that alone would change it has no CI (n < 2, no spread); NA for "not evaluated".
"""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd

from . import registry
from . import stats as S

SPARSITY_DECIMALS = 3
DENSE = "pretrain"
REQUIRED = ("setting", "model", "dataset", "epochs", "lr", "seed", "target_sparsity", "final_acc")
RUN_KEY = ["setting", "model", "dataset", "epochs", "sparsity", "lr", "seed"]
KEYS = ["model", "dataset", "epochs", "family", "sparsity", "lr"]
SYMBOL = {"c1": "①", "c2": "②", "c3": "③", "c4": "④", "c5": "⑤"}
RANK = {"none": 0, "secondary prize": 1, "Jackpot": 2}
NOT_EVALUATED = "not evaluated"
GAP_DECIMALS = 4

# dataset -> (similar drop in points, where it comes from)
SIMILAR = {
    "cifar10": (0.5, "paper: similar = within a 0.5% drop on CIFAR-10"),
    "fashion_mnist": (0.5, "fashion_mnist is not in the paper: CIFAR-10's thresholds are used"),
    "cifar100": (1.0, "paper: similar = within a 1% drop on CIFAR-100"),
    "tiny_imagenet": (1.0, "paper: similar = within a 1% drop on Tiny-ImageNet"),
    "imagenet": (1.5, "paper: similar = within a 1.5% drop on ImageNet-1K"),
}
CLEAR_GAP = 0.5
CLEAR_NOTE = "clear gap (③) = over 0.5% (paper)"
SDT_NOTE = "② has no number in the paper: the clear gap is used"


def thresholds(dataset: str, similar: float | None = None, clear: float | None = None,
               sdt: float | None = None) -> dict:
    """The thresholds for ``dataset``: a dict with similar (④⑤ drop allowed), clear (③ gap), sdt (②
    gap) and note (where each comes from). Arguments override the table; a dataset not in ``SIMILAR``
    needs ``similar`` given."""
    if similar is None and dataset not in SIMILAR:
        raise ValueError(f"thresholds: no 'similar' threshold known for dataset {dataset!r} (known: "
                         f"{', '.join(SIMILAR)}); pass similar=")
    notes = []
    if similar is None:
        similar, note = SIMILAR[dataset]
        notes.append(note)
    else:
        notes.append(f"similar = {similar:g} (given)")
    notes.append(CLEAR_NOTE if clear is None else f"clear gap = {clear:g} (given)")
    clear = CLEAR_GAP if clear is None else clear
    notes.append(SDT_NOTE if sdt is None else f"② gap = {sdt:g} (given)")
    sdt = clear if sdt is None else sdt
    return {"dataset": dataset, "similar": float(similar), "clear": float(clear), "sdt": float(sdt),
            "note": "; ".join(notes)}


def prepare(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``runs`` with ``sparsity`` = target_sparsity rounded to 3 decimals (a measured
    ``sparsity`` column, if any, is replaced) and without runs whose final_acc is NaN (not finished
    runs). Raises ValueError on missing columns or on two runs of one (setting, model, dataset, epochs,
    sparsity, lr, seed)."""
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"verdicts: the runs table lacks column(s) {', '.join(missing)}")
    runs = runs[pd.to_numeric(runs["final_acc"], errors="coerce").notna()]
    d = runs.assign(sparsity=runs["target_sparsity"].astype(float).round(SPARSITY_DECIMALS))
    dup = d[d.duplicated(RUN_KEY, keep=False)]
    if len(dup):
        first = dup[RUN_KEY].head(2).to_dict("records")
        raise ValueError(f"verdicts: {len(dup)} runs share (setting, model, dataset, epochs, sparsity, lr, "
                         f"seed), e.g. {first}; pass one grid/data order at a time")
    return d


def _acc(d: pd.DataFrame, setting: str, model: str, dataset: str, epochs, sparsity=None, lr=None) -> pd.Series:
    """final_acc of the matching runs, indexed by seed (sorted)."""
    m = (d["setting"] == setting) & (d["model"] == model) & (d["dataset"] == dataset) & (d["epochs"] == epochs)
    if sparsity is not None:
        m &= np.isclose(d["sparsity"], sparsity)
    if lr is not None:
        m &= np.isclose(d["lr"], lr)
    hit = d.loc[m, ["seed", "final_acc"]]
    return pd.Series(hit["final_acc"].to_numpy(dtype=float), index=hit["seed"].to_numpy()).sort_index()


def best_rr(d: pd.DataFrame, rr_setting: str, model: str, dataset: str, epochs, sparsity,
            against: pd.Series | None = None) -> tuple:
    """(per-seed accuracies, lr, the lrs present) of the best RR lr at this sparsity and epochs; (empty,
    nan, []) when there is no RR run. Best = the highest mean; given the ticket's per-seed accuracies
    (``against``), the smallest ticket - RR gap over the seeds both have (the gap ``compare_paired``
    decides on, so the RR that is hardest to beat on those seeds is the one judged; an lr sharing no
    seed with the ticket counts by its mean). Equal: the smaller lr."""
    m = (d["setting"] == rr_setting) & (d["model"] == model) & (d["dataset"] == dataset) & \
        (d["epochs"] == epochs) & np.isclose(d["sparsity"], sparsity)
    lrs = sorted(float(x) for x in d.loc[m, "lr"].unique())
    if not lrs:
        return pd.Series(dtype=float), math.nan, []
    per_lr = {lr: _acc(d, rr_setting, model, dataset, epochs, sparsity, lr) for lr in lrs}

    def hardness(lr: float) -> float:  # higher = harder to beat
        rr = per_lr[lr]
        common = rr.index.intersection(against.index) if against is not None else rr.index[:0]
        if not len(common):
            return rr.mean() - (against.mean() if against is not None and len(against) else 0.0)
        return float((rr[common] - against[common]).mean())

    lr = max(lrs, key=lambda x: (round(hardness(x), GAP_DECIMALS), -x))
    return per_lr[lr], lr, lrs


def _missing_lrs(expected, present) -> list[float]:
    """The lrs of ``expected`` (None: no check) that ``present`` lacks."""
    return [lr for lr in (expected or []) if not any(math.isclose(lr, p) for p in present)]


def _not_established(comp: dict, missing: list[float], side: str, sym: str) -> dict:
    """A comparison that holds over the lrs present while ``side`` misses ``missing``: NA, with why."""
    if not missing or comp["pass"] is not True:
        return comp
    lrs = ", ".join(f"{lr:g}" for lr in missing)
    note = f"{sym} holds over the lrs present, not established: {side} not finished at lr {lrs}"
    return {**comp, "pass": pd.NA, "note": "; ".join(n for n in (comp["note"], note) if n)}


def _shifted_ci(shifted: dict) -> tuple[float, float]:
    """The CI of (gap - threshold) rounded as the gap is before its decision (``GAP_DECIMALS``), so the
    words and the decision never disagree at a float-rounding tie."""
    return round(shifted["CI low"], GAP_DECIMALS), round(shifted["CI high"], GAP_DECIMALS)


def _threshold_words(shifted: dict, threshold: float) -> str:
    if not math.isfinite(shifted["CI low"]):
        return "no CI"
    low, high = _shifted_ci(shifted)
    if low > 0:
        return f"CI clears {threshold:+g}"
    if high < 0:
        return f"CI below {threshold:+g}"
    return f"within seed noise of {threshold:+g}"


def _missing(note: str) -> dict:
    """A comparison that cannot be made: NA condition, NaN statistics, the reason in ``note``."""
    return {"mean": math.nan, "n runs": 0, "gap": math.nan, "CI low": math.nan, "CI high": math.nan, "n": 0,
            "p": math.nan, "result": NOT_EVALUATED, "vs threshold": NOT_EVALUATED, "p vs threshold": math.nan,
            "pass": pd.NA, "within noise": pd.NA, "note": note}


def _comparison(b_mean, b_n, gap, g, shifted, threshold, strict, note) -> dict:
    within = pd.NA if not math.isfinite(shifted["CI low"]) else bool(_shifted_ci(shifted)[0] <= 0 <= _shifted_ci(shifted)[1])
    decided = round(float(gap), GAP_DECIMALS)  # float32 rounding must not decide a tie (module doc)
    return {"mean": float(b_mean), "n runs": int(b_n), "gap": float(gap), "CI low": g["CI low"],
            "CI high": g["CI high"], "n": g["n"], "p": g["p"], "result": g["result"],
            "vs threshold": _threshold_words(shifted, threshold), "p vs threshold": shifted["p"],
            "pass": bool(decided > threshold) if strict else bool(decided >= threshold), "within noise": within,
            "note": note}


def compare_paired(a: pd.Series, b: pd.Series, threshold: float, names: tuple, alpha: float, strict: bool,
                   missing: str) -> dict:
    """Condition "mean(a) - mean(b) > threshold" (``strict``) or ">= threshold", a and b per-seed
    accuracies indexed by seed. Returns the condition's fields (see ``_missing``); the gap, CI, n, p and
    words are ``stats.paired_gap`` over the seeds both have (so the decision and its interval never
    disagree on an incomplete grid; the gap of unpaired means only when they share no seed), "vs threshold"/"p vs threshold" the same
    test of the gap against the threshold. No runs in ``b``: NA with ``missing`` as the note."""
    if not len(b) or not len(a):
        return _missing(missing)
    common = a.index.intersection(b.index)
    x, y = a[common].to_numpy(), b[common].to_numpy()
    g = S.paired_gap(x, y, alpha, names)
    shifted = S.paired_gap(x - threshold, y, alpha, names)
    note = "" if len(common) == len(a) == len(b) else \
        f"gap and CI over the {len(common)} seeds both have ({names[0]} n={len(a)}, {names[1]} n={len(b)})" \
        if len(common) else f"no seed in common: the gap is of unpaired means, no CI"
    # the decision and its interval over the same seeds: the gap is the paired mean difference
    gap = float((x - y).mean()) if len(common) else a.mean() - b.mean()
    return _comparison(b.mean(), len(b), gap, g, shifted, threshold, strict, note)


def compare_reference(a: pd.Series, reference: dict | None, threshold: float, names: tuple,
                      alpha: float) -> dict:
    """Condition "mean(a) - reference mean >= threshold" with Welch's test against the reference's
    mean/std/n (``stats.welch_gap``); NA when ``reference`` is None."""
    if reference is None or not len(a):
        return _missing("no best-dense reference (full schedule)")
    x, mean, sd, n = a.to_numpy(), reference["mean"], reference.get("std", math.nan), int(reference["n"])
    sd = math.nan if sd is None else float(sd)
    g = S.welch_gap(x, mean, sd, n, alpha, names)
    shifted = S.welch_gap(x - threshold, mean, sd, n, alpha, names)
    return _comparison(mean, n, a.mean() - mean, g, shifted, threshold, False, "")


def reference_for(reference, model: str, dataset: str, full_epochs: int) -> tuple[dict | None, str]:
    """The best-dense reference of (model, dataset) and a note. ``reference`` is None, one dict
    (mean, std, n, lr, epochs) for every network, or a dict {(model, dataset): such a dict}. A
    reference trained fewer than ``full_epochs`` epochs is not one: (None, why)."""
    if reference is not None and "mean" not in reference:
        reference = reference.get((model, dataset))
    if reference is None:
        return None, ""
    if reference.get("epochs") is not None and reference["epochs"] < full_epochs:
        return None, f"best-dense reference trained {reference['epochs']} < {full_epochs} epochs: not used"
    return reference, ""


def _known(v) -> bool | None:
    """True/False, or None for NA/None/NaN (a boolean column's NA reads back as None from to_dict)."""
    return None if v is None or pd.isna(v) else bool(v)


def ticket_class(c1, c2, c3, c4, c5) -> str:
    """'none' if any of ①-④ is False (decided even when others are NA); else 'not evaluated' if any
    of ①-⑤ is NA; else 'Jackpot' if ⑤ holds, 'secondary prize' if it fails."""
    first = [_known(c) for c in (c1, c2, c3, c4)]
    if any(c is False for c in first):
        return "none"
    if any(c is None for c in first) or _known(c5) is None:
        return NOT_EVALUATED
    return "Jackpot" if _known(c5) else "secondary prize"


def boundary(conds: dict, within: dict) -> tuple:
    """(at the boundary, the deciding conditions within noise) for condition values ``conds`` {c1..c5}
    and ``within`` {c2..c5: CI of gap - threshold contains 0, NA = no CI}. True when flipping some set
    of within-noise conditions changes the class (to any class, 'not evaluated' included); NA when the
    class is 'not evaluated', or when no such set exists but a condition without a CI would change it
    alone; else False."""
    cls = ticket_class(*conds.values())
    if cls == NOT_EVALUATED:
        return pd.NA, ""
    noisy = [c for c, w in within.items() if _known(w) is True and _known(conds[c]) is not None]
    deciding = set()
    for k in range(1, len(noisy) + 1):
        for flip in itertools.combinations(noisy, k):
            if ticket_class(*{c: (not v) if c in flip else v for c, v in conds.items()}.values()) != cls:
                deciding.update(flip)
    if deciding:
        return True, ", ".join(SYMBOL[c] for c in sorted(deciding))
    unknown = [c for c, w in within.items() if _known(w) is None and _known(conds[c]) is not None and
               ticket_class(*{k: (not v) if k == c else v for k, v in conds.items()}.values()) != cls]
    return (pd.NA, "") if unknown else (False, "")


def _ticket_label(family: str) -> str:
    return "WR" if family.startswith("WR") else "LT"


def _own_reference(d: pd.DataFrame, ref: dict | None, model: str, dataset: str) -> pd.Series | None:
    """The per-seed dense runs of ``d`` that ``ref`` summarizes (its lr and epochs, the same n and mean),
    or None when the reference comes from elsewhere (another grid's runs, a number given by hand)."""
    if ref is None or ref.get("epochs") is None or ref.get("lr") is None:
        return None
    own = _acc(d, DENSE, model, dataset, ref["epochs"], lr=ref["lr"])
    same = len(own) == int(ref["n"]) and len(own) and math.isclose(own.mean(), ref["mean"], abs_tol=1e-9)
    return own if same else None


def _conditions(d: pd.DataFrame, family: str, key: tuple, lt: pd.Series, thr: dict, ref, alpha: float,
                lrs: dict) -> dict:
    """The comparisons ② to ⑤ of one ticket (dicts of ``compare_paired``/``compare_reference``) and
    the best RR's lr and number of lrs; ``lrs``: the grid's {"rr": lrs, "dense": lrs} (None: unchecked)."""
    model, dataset, epochs, sparsity, lr = key
    name = _ticket_label(family)
    rr, rr_lr, rr_present = best_rr(d, registry.FAMILIES[family][1], model, dataset, epochs, sparsity, lt)
    own = _own_reference(d, ref, model, dataset)
    c3 = compare_paired(lt, rr, thr["clear"], (name, "RR"), alpha, True, "no RR runs at this sparsity")
    c5 = compare_reference(lt, ref, -thr["similar"], (name, "best dense"), alpha) if own is None else \
        compare_paired(lt, own, -thr["similar"], (name, "best dense"), alpha, False, "")
    if ref is not None and ref.get("lrs") is not None:
        c5 = _not_established(c5, _missing_lrs(lrs.get("dense"), ref["lrs"]), "the full-schedule dense model", "⑤")
    return {
        "c2": compare_paired(lt, _acc(d, registry.SMALL_DENSE, model, dataset, epochs, sparsity, lr), thr["sdt"],
                             (name, "SDT"), alpha, True, "no SDT runs at this sparsity and lr"),
        "c3": _not_established(c3, _missing_lrs(lrs.get("rr"), rr_present) if rr_present else [], "RR", "③"),
        "c4": compare_paired(lt, _acc(d, DENSE, model, dataset, epochs, lr=lr), -thr["similar"], (name, "dense"),
                             alpha, False, f"no dense run at lr {lr:g}, {epochs} epochs"),
        "c5": c5,
        "rr": (rr_lr, len(rr_present)),
    }


def _row(d, family, key, lt, full_epochs, reference, thr, alpha, nontrivial, lrs) -> dict:
    """One row of ``verdict_table``."""
    model, dataset, epochs, sparsity, lr = key
    ref, ref_note = reference_for(reference, model, dataset, full_epochs)
    comps = _conditions(d, family, key, lt, thr, ref, alpha, lrs)
    row = {"model": model, "dataset": dataset, "epochs": epochs, "family": family, "sparsity": sparsity, "lr": lr,
           "ticket": registry.FAMILIES[family][0], "LT mean": lt.mean(), "LT std": lt.std(ddof=1),
           "LT n": len(lt),
           "similar": thr["similar"], "clear": thr["clear"], "sdt gap": thr["sdt"], "threshold note": thr["note"],
           "c1": bool(sparsity >= nontrivial and epochs >= full_epochs), "nontrivial": nontrivial,
           "full epochs": full_epochs}
    for c in ("c2", "c3", "c4", "c5"):
        row.update({(c if f == "pass" else f"{c} {f}"): v for f, v in comps[c].items()})
    row["c3 RR lr"], row["c3 RR lrs"] = comps["rr"]
    row["c5 dense lr"] = ref["lr"] if ref else math.nan
    if ref_note:  # a reference trained too short: say why ⑤ is not evaluated
        row["c5 note"] = ref_note
    conds = {c: row[c] for c in ("c1", "c2", "c3", "c4", "c5")}
    first = [_known(row[c]) for c in ("c1", "c2", "c3", "c4")]
    row["c1-c4"] = False if False in first else (pd.NA if None in first else True)
    row["class"] = ticket_class(*conds.values())
    row["at the boundary"], row["boundary conditions"] = boundary(conds, {c: row[f"{c} within noise"]
                                                                         for c in ("c2", "c3", "c4", "c5")})
    notes = [row[f"{c} note"] for c in ("c2", "c3", "c4", "c5") if row[f"{c} note"]]
    if comps["rr"][1] == 1:
        notes.insert(0, "RR swept over 1 lr")
    row["notes"] = "; ".join(notes)
    return row


_BOOL_COLUMNS = ["c1", "c2", "c3", "c4", "c5", "c1-c4", "at the boundary", "c2 within noise", "c3 within noise",
                 "c4 within noise", "c5 within noise"]


def verdict_table(runs: pd.DataFrame, full_epochs: int, reference=None, nontrivial: float = 0.6,
                  similar: float | None = None, clear: float | None = None, sdt_gap: float | None = None,
                  alpha: float = S.ALPHA, rr_lrs=None, dense_lrs=None) -> pd.DataFrame:
    """One row per ticket (model, dataset, epochs, family, sparsity, lr) of every family whose ticket
    setting has runs: the conditions c1..c5 (boolean, NA = not evaluated), for each of c2..c5 its
    "<c> mean" (the compared side), "<c> n runs", "<c> gap", "<c> CI low/high", "<c> n", "<c> p",
    "<c> result", "<c> vs threshold", "<c> p vs threshold", "<c> within noise", "<c> note"; "c3 RR lr",
    "c3 RR lrs", "c5 dense lr"; "c1-c4", "class", "at the boundary", "boundary conditions", "notes" and
    the thresholds used. ``reference``: see ``reference_for``; thresholds: see ``thresholds``;
    ``rr_lrs``/``dense_lrs``: the grid's lrs of the RR and the dense runs (None: not checked), under
    which a ③/⑤ that holds with a missing lr is NA (module doc)."""
    d = prepare(runs)
    rows = []
    for family, (ticket, _) in registry.FAMILIES.items():
        sub = d[d["setting"] == ticket]
        for key, g in sub.groupby(["model", "dataset", "epochs", "sparsity", "lr"], sort=True):
            thr = thresholds(key[1], similar, clear, sdt_gap)
            lt = g.set_index("seed")["final_acc"].astype(float).sort_index()
            rows.append(_row(d, family, key, lt, full_epochs, reference, thr, alpha, nontrivial,
                             {"rr": rr_lrs, "dense": dense_lrs}))
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    for c in _BOOL_COLUMNS:
        out[c] = out[c].astype("boolean")
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- the lines the report prints
def _words(result: str) -> str:
    """The words of a stats result without the CI it repeats (the line prints the CI once)."""
    return re.sub(r", CI \[[^\]]*\]", "", result)


def _interval(row, c: str) -> str:
    if not math.isfinite(row[f"{c} CI low"]):
        return f"{S.fmt_signed(row[f'{c} gap'])} (no CI)"
    return f"{S.fmt_signed(row[f'{c} gap'])} [{S.fmt_signed(row[f'{c} CI low'])}, {S.fmt_signed(row[f'{c} CI high'])}]"


def _n(row, c: str) -> str:
    return f"n={row[f'{c} n']}" + (f" vs {row[f'{c} n runs']}" if c == "c5" else "")


def _verdict_word(v) -> str:
    return NOT_EVALUATED if _known(v) is None else ("holds" if v else "fails")


def condition_text(row, c: str) -> str:
    """How the report words condition ``c`` (c1..c5) of one verdict row: the gap, its CI and n, the
    threshold, holds/fails/not evaluated, the stats words and where the CI lies against the threshold."""
    sym, t = SYMBOL[c], _ticket_label(row["family"])
    if c == "c1":
        return (f"① s {row['sparsity']:.3f} ≥ {row['nontrivial']:g} and {row['epochs']} ≥ {row['full epochs']} "
                f"epochs: {_verdict_word(row['c1'])}")
    if _known(row[c]) is None:
        return f"{sym} {NOT_EVALUATED} ({row[f'{c} note']})"
    verdict, words = _verdict_word(row[c]), f"{_words(row[f'{c} result'])}; {row[f'{c} vs threshold']}"
    if c == "c5":
        return (f"⑤ {t} {row['LT mean']:.2f} vs best dense {row['c5 mean']:.2f} (lr {row['c5 dense lr']:g}) − "
                f"{row['similar']:g}: {verdict} (gap {_interval(row, c)} {_n(row, c)}; {words})")
    other = {"c2": "SDT", "c3": f"best RR (lr {row['c3 RR lr']:g})", "c4": f"dense (lr {row['lr']:g})"}[c]
    op, thr = (">", row["sdt gap"]) if c == "c2" else ((">", row["clear"]) if c == "c3" else ("≥", -row["similar"]))
    return f"{sym} {t}−{other} {_interval(row, c)} {_n(row, c)} {op} {thr:g}: {verdict} ({words})"


def verdict_line(row) -> str:
    """The plain-language line of one verdict row (a dict or a row of ``verdict_table``), e.g.
    'IMP s=0.832 lr 0.01: secondary prize — ① ...; ② LT−SDT +1.20 [+0.40, +2.00] n=3 > 0.5: holds
    (LT beats SDT; CI clears +0.5); ...; ⑤ LT 89.10 vs best dense 90.30 (lr 0.1) − 0.5: fails (gap ...)'
    followed by the boundary flag and the notes of evaluated conditions (a missing input is said at
    its condition)."""
    text = (f"{row['family']} s={row['sparsity']:.3f} lr {row['lr']:g}: {row['class']} — "
            + "; ".join(condition_text(row, c) for c in ("c1", "c2", "c3", "c4", "c5")))
    if _known(row["at the boundary"]):
        text += f" [at the boundary: {row['boundary conditions']} within seed noise of the threshold]"
    notes = ["RR swept over 1 lr"] if row["c3 RR lrs"] == 1 else []
    notes += [row[f"{c} note"] for c in ("c2", "c3", "c4", "c5") if _known(row[c]) is not None and row[f"{c} note"]]
    return text + (f" [{'; '.join(notes)}]" if notes else "")


def verdict_lines(v: pd.DataFrame) -> list[str]:
    """A header per (model, dataset, epochs) and the ``verdict_line`` of each of its rows, indented (none
    for an empty table)."""
    if not len(v):
        return []
    lines = []
    for (model, dataset, epochs), g in v.groupby(["model", "dataset", "epochs"], sort=True):
        lines.append(f"{model} / {dataset}, {epochs} epochs ({g['threshold note'].iloc[0]}):")
        lines += ["  " + verdict_line(r) for r in g.to_dict("records")]
    return lines


# ----------------------------------------------------------------------------- per network (Table 3 form)
def support_p(row, target: str) -> float:
    """The p-value that row's class ``target`` ('Jackpot' or 'secondary prize') is supported at this n:
    the largest "p vs threshold" of ②-⑤ (an intersection-union test: every condition's CI must lie on
    the class's side of its threshold; ⑤ above for Jackpot, below for secondary prize). 1.0 when the
    row is of that class by its means but some CI is not on that side; NaN when it is not of it."""
    if row["class"] != target:
        return math.nan
    want = {"c2": True, "c3": True, "c4": True, "c5": target == "Jackpot"}
    for c, holds in want.items():
        if not str(row[f"{c} vs threshold"]).startswith("CI clears" if holds else "CI below"):
            return 1.0
    return float(max(row[f"{c} p vs threshold"] for c in want))


def _exists(cand: pd.DataFrame, target: str, alpha: float) -> dict:
    """'yes' when some candidate ticket is of class ``target``, 'not evaluated' when none is but some are
    'not evaluated', else 'no'; how many are (by the means) and how many stay supported after Holm's
    correction over all N candidates."""
    members = cand[cand["class"] == target]
    answer = "yes" if len(members) else (NOT_EVALUATED if (cand["class"] == NOT_EVALUATED).any() else "no")
    ps = [support_p(r, target) for r in cand.to_dict("records")]
    return {"answer": answer, "rows": len(members), "holm": S.holm_resolved(ps, alpha),
            "headline": f"{target}: {len(members)} of {len(cand)} candidate tickets by the means — "
                        + S.holm_headline(ps, alpha, "candidate tickets"),
            "up to": float(members["sparsity"].max()) if len(members) else math.nan,
            "at": "; ".join(f"{f} lr {lr:g}" for (f, lr), _ in members.groupby(["family", "lr"])) or ""}


def _side(r: dict, key: str, which: str):
    return r[key] if key in r else r[f"{key} {which}"]


def matched_gaps(cand: pd.DataFrame, d: pd.DataFrame, side: str, a_val, b_val, names: tuple,
                 alpha: float) -> list[dict]:
    """For each pair of candidate tickets with ``side`` (a column: 'lr' or 'family') = a_val and b_val
    and the same other keys: ``stats.paired_gap`` of their per-seed accuracies (a - b, common seeds)."""
    match = [k for k in ("model", "dataset", "epochs", "family", "sparsity", "lr") if k != side]
    a_rows, b_rows = cand[cand[side] == a_val], cand[cand[side] == b_val]
    pairs = a_rows.merge(b_rows, on=match, suffixes=(" a", " b"))
    out = []
    for r in pairs.to_dict("records"):
        x, y = (_acc(d, r[f"ticket {w}"], r["model"], r["dataset"], r["epochs"], _side(r, "sparsity", w),
                     _side(r, "lr", w)) for w in ("a", "b"))
        common = x.index.intersection(y.index)
        out.append(S.paired_gap(x[common].to_numpy(), y[common].to_numpy(), alpha, names))
    return out


def _preference(gaps: list[dict], alpha: float, names: tuple) -> dict:
    """Which side the matched comparisons favour: 'yes' (a's mean higher in most), 'no' (b's), 'tie',
    'not evaluated' (none); N, and how many resolve each way after Holm's correction."""
    n = len(gaps)
    higher = sum(g["gap"] > 0 for g in gaps)
    lower = sum(g["gap"] < 0 for g in gaps)
    adj = S.holm([g["p"] for g in gaps])
    a_holm = int(sum((p < alpha) and g["gap"] > 0 for p, g in zip(adj, gaps)))
    b_holm = int(sum((p < alpha) and g["gap"] < 0 for p, g in zip(adj, gaps)))
    answer = NOT_EVALUATED if n == 0 else ("yes" if higher > lower else ("no" if lower > higher else "tie"))
    basis = (f"{names[0]} higher at {higher}, {names[1]} at {lower} of {n} matched tickets; after Holm at "
             f"{alpha:g}: {names[0]} beats {names[1]} at {a_holm}, {names[1]} beats {names[0]} at {b_holm} of {n}")
    return {"answer": answer, "basis": basis, "N": n, "a holm": a_holm, "b holm": b_holm,
            "headline": S.holm_headline([g["p"] for g in gaps], alpha, f"{names[0]} vs {names[1]} comparisons")}


def _best_class(rows: pd.DataFrame) -> str | None:
    decided = rows[rows["class"] != NOT_EVALUATED]["class"]
    return max(decided, key=RANK.get) if len(decided) else None


def lr_preference(cand: pd.DataFrame, d: pd.DataFrame, alpha: float, normal_lr: float = 0.0) -> dict:
    """Prefers small LR? Over the candidate tickets of one network, a small lr vs the normal one
    (``normal_lr``; 0 = the largest lr; lrs above it, the paper's "very large", are not compared): the
    small one is the lr below the normal lr whose best decided class ranks highest (Jackpot > secondary
    prize > none), on a tie the one whose candidate tickets have the higher mean LT accuracy (then the
    smaller lr). 'yes' when that class ranks above the best at the normal lr, 'no' when below; when equal
    (or unknown), the LT accuracies of the tickets matched on (family, epochs, sparsity) decide by
    majority (``_preference``)."""
    small, large = split_lrs(cand["lr"].unique(), normal_lr)
    if not small or not large:
        n = len(small) + len(large)
        return {**_preference([], alpha, ("small lr", "large lr")), "basis": f"candidate tickets at {n} lr" + (
            "" if n == 0 or (n == 1 and not normal_lr) else
            f", none at the normal lr {normal_lr:g} or above" if not large else f", none below the normal lr")}
    hi = large[0]
    mean_lt = lambda lr: float(cand.loc[cand["lr"] == lr, "LT mean"].mean())
    lo = max(small, key=lambda lr: (RANK.get(_best_class(cand[cand["lr"] == lr]), -1), round(mean_lt(lr), 4), -lr))
    names = (f"lr {lo:g}", f"lr {hi:g}")
    pref = _preference(matched_gaps(cand, d, "lr", lo, hi, names, alpha), alpha, names)
    best_lo, best_hi = _best_class(cand[cand["lr"] == lo]), _best_class(cand[cand["lr"] == hi])
    classes = f"best class {best_lo or NOT_EVALUATED} at lr {lo:g}, {best_hi or NOT_EVALUATED} at lr {hi:g}"
    if best_lo is not None and best_hi is not None and RANK[best_lo] != RANK[best_hi]:
        return {**pref, "answer": "yes" if RANK[best_lo] > RANK[best_hi] else "no",
                "basis": f"{classes} (accuracy: {pref['basis']})"}
    return {**pref, "basis": f"{classes}; by accuracy: {pref['basis']}"}


def split_lrs(lrs, normal_lr: float = 0.0) -> tuple[list[float], list[float]]:
    """(the lrs below the normal lr, the normal lr and above), each sorted; ``normal_lr`` 0 = the largest
    lr. An lr within float rounding of the normal one counts as it."""
    lrs = sorted({float(x) for x in lrs})
    normal = float(normal_lr) if normal_lr else (lrs[-1] if lrs else 0.0)
    large = [x for x in lrs if x >= normal or math.isclose(x, normal, rel_tol=1e-9)]
    return [x for x in lrs if x not in large], large


def _network_row(model: str, dataset: str, vn: pd.DataFrame, d: pd.DataFrame, alpha: float,
                 normal_lr: float = 0.0) -> dict:
    """One row of ``table3``."""
    cand = vn[vn["c1"].fillna(False)]
    jack, second = _exists(cand, "Jackpot", alpha), _exists(cand, "secondary prize", alpha)
    lr = lr_preference(cand, d, alpha, normal_lr)
    imp = _preference(matched_gaps(cand, d, "family", "IMP", "OMP", ("IMP", "OMP"), alpha), alpha, ("IMP", "OMP"))
    edge = cand[cand["at the boundary"].eq(True)]   # NaN (not evaluated) is not at the boundary
    entry = paper_entry(model, dataset)
    return {"model": model, "dataset": dataset, "candidates": len(cand),
            "Jackpot?": jack["answer"], "Jackpot rows": jack["rows"], "Jackpot Holm": jack["holm"],
            "secondary prize?": second["answer"], "secondary prize up to": second["up to"],
            "secondary prize at": second["at"], "secondary prize rows": second["rows"],
            "secondary prize Holm": second["holm"],
            "not evaluated rows": int((cand["class"] == NOT_EVALUATED).sum()),
            "at the boundary": "; ".join(f"{r['family']} s={r['sparsity']:.3f} lr {r['lr']:g} "
                                         f"({r['boundary conditions']})" for r in edge.to_dict("records")),
            "prefers small LR?": lr["answer"], "small LR basis": lr["basis"], "small LR N": lr["N"],
            "small LR better (Holm)": lr["a holm"], "large LR better (Holm)": lr["b holm"],
            "prefers IMP?": imp["answer"], "IMP basis": imp["basis"], "IMP N": imp["N"],
            "IMP better (Holm)": imp["a holm"], "OMP better (Holm)": imp["b holm"],
            "headline": "; ".join([jack["headline"], second["headline"], lr["headline"], imp["headline"]]),
            "paper": entry["summary"]}


def table3(v: pd.DataFrame, runs: pd.DataFrame, alpha: float = S.ALPHA, normal_lr: float = 0.0) -> pd.DataFrame:
    """The paper's Table 3 for our runs: one row per (model, dataset) of ``v`` (a ``verdict_table``;
    ``runs`` the runs it was built from, for the per-seed comparisons). Candidates = tickets meeting ①;
    every "exists" answer comes with N (= candidates, or matched comparisons) and a Holm-corrected
    count at ``alpha``. Columns: model, dataset, candidates, Jackpot?, Jackpot rows, Jackpot Holm,
    secondary prize?, secondary prize up to (largest sparsity), secondary prize at (family, lr),
    secondary prize rows, secondary prize Holm, not evaluated rows, at the boundary, prefers small LR?,
    small LR basis, small LR N, small LR better (Holm), large LR better (Holm), prefers IMP?, IMP basis,
    IMP N, IMP better (Holm), OMP better (Holm), headline, paper (``paper_entry``'s summary).
    Jackpot? / secondary prize?: see ``_exists`` (Holm over the N candidates of ``support_p``);
    prefers small LR?: see ``lr_preference``; prefers IMP?: LT-IMP vs LT-OMP over the candidate tickets
    matched on (epochs, sparsity, lr), 'yes' when IMP's mean is higher in most of them (``_preference``),
    with the Holm-resolved count each way."""
    if not len(v):
        return pd.DataFrame()
    d = prepare(runs)
    return pd.DataFrame([_network_row(m, ds, vn, d, alpha, normal_lr)
                         for (m, ds), vn in v.groupby(["model", "dataset"])])


# ----------------------------------------------------------------------------- what the paper says (SPEC 6)
_ON_CIFAR = "SPEC section 6 says 'on CIFAR' without naming CIFAR-10 or CIFAR-100"
_BIG = {"Jackpot?": "no", "secondary prize?": "no", "at the boundary": None, "prefers small LR?": "no",
        "prefers IMP?": "no", "source": "SPEC section 6: none on Tiny-ImageNet or ImageNet, where OMP beats IMP "
                                      "and small LRs do not help"}
_CIFAR_0945 = {"Jackpot?": "no", "secondary prize?": "yes, at s >= 0.945", "at the boundary": None,
               "prefers small LR?": None, "prefers IMP?": None, "source": f"SPEC section 6 (Table 3); {_ON_CIFAR}"}
PAPER_TABLE3 = {
    ("resnet20", "cifar10"): {
        "Jackpot?": "no", "secondary prize?": "yes, up to s = 0.914 at the small lr 0.005; none at lr 0.1 (LT ≈ RR)",
        "at the boundary": None, "prefers small LR?": "yes (secondary prize at lr 0.005, none at lr 0.1)",
        "prefers IMP?": None, "source": "SPEC section 6 (Table 3 and the ResNet-20 text)"},
    ("resnet32_wide_official", "cifar10"): {
        **_CIFAR_0945, "source": _CIFAR_0945["source"] + "; figure captions, s = 0.945: IMP lr 0.01 92.9, IMP lr "
                                                         "0.1 91.4, OMP lr 0.01 91.8, OMP lr 0.1 91.6"},
    ("resnet32_wide_official", "cifar100"): _CIFAR_0945,
    ("vgg16", "cifar10"): _CIFAR_0945, ("vgg16", "cifar100"): _CIFAR_0945, ("resnet18_cifar", "cifar10"): _CIFAR_0945,
    ("resnet18_cifar", "cifar100"): {"Jackpot?": "no", "secondary prize?": None, "at the boundary": "yes",
                               "prefers small LR?": None, "prefers IMP?": None,
                               "source": "SPEC section 6: ResNet-18 CIFAR-100 at the boundary"},
    ("mobilenet_v1", "cifar10"): {"Jackpot?": "no", "secondary prize?": None,
                                  "at the boundary": "yes, at s = 0.832 (both gaps ~0.5%)", "prefers small LR?": None,
                                  "prefers IMP?": None,
                                  "source": "SPEC section 6: MobileNet-v1 CIFAR-10 at the boundary"},
    ("resnet18_tiny", "tiny_imagenet"): _BIG, ("resnet50_tiny", "tiny_imagenet"): _BIG,
    ("resnet18", "imagenet"): _BIG, ("resnet50", "imagenet"): _BIG,
}


# the paper's Table 4 (SPEC section 6): ResNet-20 on CIFAR-10 at s = 0.914, pretraining lr -> (dense accuracy,
# {sparse-training lr: (LT-IMP, LT-OMP) accuracy})
PAPER_TABLE4 = {
    ("resnet20", "cifar10"): {
        0.01: (90.3, {0.001: (87.5, 83.3), 0.005: (89.7, 85.3), 0.01: (89.4, 86.5), 0.05: (87.9, 87.2)}),
        0.1: (92.4, {0.01: (85.3, 85.8), 0.05: (86.6, 87.4), 0.1: (87.3, 87.2), 0.15: (86.7, 87.3)}),
    },
}
PAPER_TABLE4_SPARSITY = 0.914


def paper_entry(model: str, dataset: str) -> dict:
    """What the paper's Table 3 says about (model, dataset), from SPEC section 6 only: a dict with in
    paper (bool), Jackpot?, secondary prize?, at the boundary, prefers small LR?, prefers IMP? (None =
    not stated there), source, and summary (one line). Keys are our model names: the paper's CIFAR
    ResNet-18 is resnet18_cifar, its Tiny-ImageNet ResNets resnet18_tiny / resnet50_tiny, its ImageNet
    ones resnet18 / resnet50, its ResNet-32 resnet32_wide_official. Not in Table 3 (fashion_mnist, our own
    models, He et al.'s resnet32, the no-residual ResNet-32 analysis): in paper False, and where the paper
    has the same model on CIFAR-10 (ResNet-20 on Fashion-MNIST) the summary says what it found there."""
    entry = PAPER_TABLE3.get((model, dataset))
    if entry is None:
        why = "Fashion-MNIST is not in the paper" if dataset == "fashion_mnist" else \
            f"{model} on {dataset} is not in the paper's Table 3 as SPEC section 6 gives it"
        near = PAPER_TABLE3.get((model, "cifar10")) if dataset != "cifar10" else None
        also = f"; the paper's {model} on CIFAR-10: {_said(near)}" if near else ""
        return {"in paper": False, "Jackpot?": None, "secondary prize?": None, "at the boundary": None,
                "prefers small LR?": None, "prefers IMP?": None, "source": why,
                "summary": f"not in the paper ({why}){also}"}
    return {"in paper": True, **entry, "summary": _said(entry)}


def _said(entry: dict) -> str:
    said = [f"{k} {entry[k]}" for k in ("Jackpot?", "secondary prize?", "at the boundary", "prefers small LR?",
                                         "prefers IMP?") if entry[k] is not None]
    return "; ".join(said) + f" [{entry['source']}]"


__all__ = ["SIMILAR", "CLEAR_GAP", "NOT_EVALUATED", "thresholds", "prepare", "best_rr", "split_lrs", "compare_paired",
           "compare_reference", "reference_for", "ticket_class", "boundary", "verdict_table", "condition_text",
           "verdict_line", "verdict_lines", "support_p", "matched_gaps", "lr_preference", "table3", "PAPER_TABLE3", "PAPER_TABLE4",
           "paper_entry"]
