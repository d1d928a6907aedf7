"""The statistics beside every comparison of the study: a paired t-test over the seeds both sides have
(or Welch's test against a summary), its two-sided confidence interval, words that agree with that
interval, how many seeds a narrower interval would need, and Holm's correction for "there exists a
sparsity / an LR" claims.

The words are decided by the printed interval and nothing else: "A beats B" exactly when the
(1 - alpha) two-sided CI of A - B lies above 0, "B beats A" exactly when it lies below 0, otherwise
"not resolved at n = k, CI [a, b]". The two-sided p-value ("p") is scipy's and agrees with the
interval (p < alpha exactly when the CI excludes 0). Zero spread across seeds (every paired difference
the same) has no t-test: no CI, p NaN, never a claim.

Everything here takes plain numbers and returns plain numbers or words; scipy does the tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05  # 1 - CONFIDENCE
UNDERPOWERED_BELOW = 3  # fewer seeds than this (on either side): the result is worded "underpowered"
ZERO_SPREAD_ATOL = 1e-9  # paired differences closer than this (accuracy points) count as "no spread"


def _empty(n: int, gap: float, sd: float) -> dict:
    return {"n": n, "gap": gap, "gap std": sd, "CI low": math.nan, "CI high": math.nan, "p": math.nan,
            "no spread": False}


def paired_gap(a, b, alpha: float = ALPHA, names: tuple[str, str] = ("LT", "RR")) -> dict:
    """``a - b`` over paired values (same seed, same order). Returns a dict with: n (pairs), gap (mean
    difference), gap std (over pairs, ddof 1), CI low / CI high (the two-sided (1 - alpha) t interval of
    scipy's ``ttest_rel``), p (its two-sided p-value), no spread (True when every difference is the
    same), result (the words of ``wording``) and seeds for ±0.5 (``seeds_for_half_width`` at the
    observed spread). Fewer than 2 pairs, or no spread: CI and p are NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_gap: {names[0]} and {names[1]} need the same seeds, got {a.shape} and "
                         f"{b.shape} values")
    diffs = a - b
    n = len(diffs)
    out = _empty(n, float(diffs.mean()) if n else math.nan, float(diffs.std(ddof=1)) if n > 1 else math.nan)
    if n >= 2 and np.allclose(diffs, diffs[0], rtol=0, atol=ZERO_SPREAD_ATOL):
        out["no spread"] = True
    elif n >= 2:
        res = stats.ttest_rel(a, b)
        ci = res.confidence_interval(1 - alpha)
        out.update({"CI low": float(ci.low), "CI high": float(ci.high), "p": float(res.pvalue)})
    out["result"] = wording(out, names)
    out["seeds for ±0.5"] = seeds_for_half_width(out["gap std"], 0.5, 1 - alpha)
    return out


def welch_gap(a, b_mean: float, b_std: float, b_n: int, alpha: float = ALPHA,
              names: tuple[str, str] = ("LT", "dense")) -> dict:
    """``mean(a) - b_mean`` where only a summary (mean, std, n) of ``b`` is known: Welch's unequal-variance
    t-test (scipy's ``ttest_ind_from_stats``) and its two-sided (1 - alpha) interval on the Welch-
    Satterthwaite degrees of freedom. Returns the keys of ``paired_gap`` (n is ``a``'s count, "n b" is
    ``b_n``; gap std and seeds for ±0.5 are NaN: there are no pairs). Fewer than 2 values on either
    side, or no spread on both: CI and p are NaN."""
    a = np.asarray(a, dtype=float)
    n = len(a)
    out = _empty(n, float(a.mean()) - b_mean if n else math.nan, math.nan)
    out["n b"] = int(b_n)
    va = a.var(ddof=1) / n if n > 1 else math.nan
    vb = b_std ** 2 / b_n if b_n > 1 and math.isfinite(b_std) else math.nan
    if n >= 2 and b_n >= 2 and va + vb <= ZERO_SPREAD_ATOL ** 2:
        out["no spread"] = True
    elif n >= 2 and b_n >= 2 and math.isfinite(vb):
        res = stats.ttest_ind_from_stats(a.mean(), a.std(ddof=1), n, b_mean, b_std, b_n, equal_var=False)
        df = (va + vb) ** 2 / (va ** 2 / (n - 1) + vb ** 2 / (b_n - 1))  # scipy does not return it here
        half = stats.t.ppf(1 - alpha / 2, df) * math.sqrt(va + vb)
        out.update({"CI low": out["gap"] - half, "CI high": out["gap"] + half, "p": float(res.pvalue)})
    out["result"] = wording(out, names)
    out["seeds for ±0.5"] = math.nan
    return out


def fmt_signed(x: float) -> str:
    """``x`` with a sign and 2 decimals; a non-zero value that would print as ±0.00 keeps 2 significant
    digits instead (+0.0031), so a printed bound never looks like 0 when the words say it is not."""
    if not math.isfinite(x):
        return "nan"
    if x != 0 and abs(x) < 0.005:
        return f"{x:+.2g}"
    return f"{x:+.2f}"


def ci_text(gap: dict) -> str:
    """'CI [a, b]' as the words print it, or 'no CI'."""
    if not math.isfinite(gap["CI low"]):
        return "no CI"
    return f"CI [{fmt_signed(gap['CI low'])}, {fmt_signed(gap['CI high'])}]"


def _n_text(gap: dict) -> str:
    return f"n = {gap['n']}" if "n b" not in gap else f"n = {gap['n']} vs {gap['n b']}"


def wording(gap: dict, names: tuple[str, str] = ("LT", "RR")) -> str:
    """Words for ``gap`` (a dict of ``paired_gap`` / ``welch_gap``) read off its interval: 'A beats B'
    when CI low > 0, 'B beats A' when CI high < 0, else 'not resolved at n = k, CI [a, b]' (or '(no
    spread across seeds: no CI)', or a note that a test needs 2 seeds); ' (underpowered: n = k)' is added
    when a side has fewer than ``UNDERPOWERED_BELOW`` values."""
    a, b = names
    n_min = min(gap["n"], gap.get("n b", gap["n"]))
    if n_min < 2:
        text = f"not resolved at {_n_text(gap)} (a test needs 2 or more seeds: no CI)"
    elif gap["no spread"]:
        text = f"not resolved at {_n_text(gap)} (no spread across seeds: no CI)"
    elif gap["CI low"] > 0:
        text = f"{a} beats {b}"
    elif gap["CI high"] < 0:
        text = f"{b} beats {a}"
    else:
        text = f"not resolved at {_n_text(gap)}, {ci_text(gap)}"
    return text + (f" (underpowered: {_n_text(gap)})" if n_min < UNDERPOWERED_BELOW else "")


def seeds_for_half_width(sd: float, half_width: float = 0.5, confidence: float = CONFIDENCE) -> float:
    """The fewest paired seeds n whose t-based ``confidence`` interval of the mean gap has half-width
    <= ``half_width`` at spread ``sd`` (t_{n-1} * sd / sqrt(n)); nan when sd is unknown."""
    if sd is None or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 2
    z = stats.norm.ppf(0.5 + confidence / 2)
    n = max(2, math.ceil((z * sd / half_width) ** 2))  # the normal bound; t needs at least this many
    while stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
    return n


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest of m p-values becomes
    max over j <= i of min(1, (m - j + 1) * p_(j)). (scipy's ``false_discovery_control`` offers only
    Benjamini-Hochberg/-Yekutieli, and statsmodels is not installed.) A NaN (a comparison without a
    test) counts in m as p = 1, so it can only make the others more conservative, and stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p.copy()
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * filled[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return np.where(np.isnan(p), np.nan, adjusted)


def holm_resolved(pvalues, alpha: float = ALPHA) -> int:
    """How many of ``pvalues`` stay below ``alpha`` after Holm's correction."""
    return int(np.sum(holm(pvalues) < alpha))


def holm_headline(pvalues, alpha: float = ALPHA, what: str = "comparisons") -> str:
    """'k of N comparisons resolved after Holm correction at 0.05' (N = every comparison behind the
    claim, tested or not; ``what`` names them)."""
    return f"{holm_resolved(pvalues, alpha)} of {len(pvalues)} {what} resolved after Holm correction at {alpha:g}"


__all__ = ["paired_gap", "welch_gap", "wording", "ci_text", "fmt_signed", "seeds_for_half_width", "holm",
           "holm_resolved", "holm_headline", "CONFIDENCE", "ALPHA", "UNDERPOWERED_BELOW"]
