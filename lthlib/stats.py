"""The statistics of the LT-vs-RR comparison: a paired t-test over the seeds both settings have, its 95%
confidence interval, a three-way wording, and how many seeds a narrower interval would need.

Everything here takes plain numbers and returns plain numbers or words (scipy does the t-test);
``lthlib.results`` applies it to the collected runs.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
UNDERPOWERED_BELOW = 3  # fewer paired seeds than this: the result is worded "underpowered"


def _degenerate(diffs: np.ndarray) -> dict:
    """All differences equal (no spread): the t statistic is undefined; the sign alone decides."""
    m = float(diffs.mean())
    return {"p LT>RR": 0.0 if m > 0 else 1.0, "p RR>LT": 0.0 if m < 0 else 1.0, "CI low": m, "CI high": m}


def paired_gap(lt, rr, alpha: float = 0.05, confidence: float = CONFIDENCE) -> dict:
    """LT - RR over paired values (same seed, same order): n, mean gap, its std over seeds, the two-sided
    ``confidence`` interval (t-based), the one-sided p-values each way, the wording and the seeds needed
    for a half-width of 0.5 points at the observed spread. Fewer than 2 pairs: no test (nan)."""
    lt, rr = np.asarray(lt, dtype=float), np.asarray(rr, dtype=float)
    if lt.shape != rr.shape:
        raise ValueError(f"paired_gap: LT and RR need the same seeds, got {lt.shape} and {rr.shape} values")
    diffs = lt - rr
    n = len(diffs)
    out = {"n": n, "gap": float(diffs.mean()) if n else math.nan,
           "gap std": float(diffs.std(ddof=1)) if n > 1 else math.nan,
           "CI low": math.nan, "CI high": math.nan, "p LT>RR": math.nan, "p RR>LT": math.nan}
    if n >= 2 and out["gap std"] == 0:
        out.update(_degenerate(diffs))
    elif n >= 2:
        ci = stats.ttest_rel(lt, rr).confidence_interval(confidence)
        out.update({"CI low": float(ci.low), "CI high": float(ci.high),
                    "p LT>RR": float(stats.ttest_rel(lt, rr, alternative="greater").pvalue),
                    "p RR>LT": float(stats.ttest_rel(lt, rr, alternative="less").pvalue)})
    out["result"] = wording(out, alpha)
    out["seeds for ±0.5"] = seeds_for_half_width(out["gap std"], 0.5, confidence)
    return out


def wording(gap: dict, alpha: float) -> str:
    """'LT beats RR' / 'RR beats LT' (one-sided paired test each way, p < alpha) or 'not resolved at
    n = k, CI [a, b]'; 'underpowered' is added below 3 paired seeds."""
    n = gap["n"]
    if n < 2:
        return f"not resolved at n = {n} (underpowered: a paired test needs 2 or more seeds)"
    if gap["p LT>RR"] < alpha:
        text = "LT beats RR"
    elif gap["p RR>LT"] < alpha:
        text = "RR beats LT"
    else:
        text = f"not resolved at n = {n}, CI [{gap['CI low']:+.2f}, {gap['CI high']:+.2f}]"
    return text + (f" (underpowered: n = {n})" if n < UNDERPOWERED_BELOW else "")


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


__all__ = ["paired_gap", "wording", "seeds_for_half_width", "CONFIDENCE"]
