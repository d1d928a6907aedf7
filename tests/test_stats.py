"""The statistics on made-up numbers, checked against scipy: paired and Welch gaps, words that agree with
the printed interval, the zero-spread case, seeds needed, and Holm's step-down correction."""
import math
import re

import numpy as np
import pytest
from scipy import stats

from lthlib.stats import (ci_text, fmt_signed, holm, holm_headline, holm_resolved, paired_gap,
                          seeds_for_half_width, welch_gap, wording)

LT = np.array([91.2, 90.4, 91.9, 90.8])
RR = np.array([89.9, 90.1, 90.2, 89.5])


def test_gap_ci_and_two_sided_p_match_scipy():
    g = paired_gap(LT, RR)
    d = LT - RR
    ci = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert g["n"] == 4 and g["gap"] == pytest.approx(d.mean()) and g["gap std"] == pytest.approx(d.std(ddof=1))
    assert (g["CI low"], g["CI high"]) == pytest.approx(ci)
    assert g["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert g["CI low"] > 0 and g["p"] < 0.05 and g["result"] == "LT beats RR"
    assert "p LT>RR" not in g and set(g) >= {"n", "gap", "gap std", "CI low", "CI high", "p", "result",
                                             "seeds for ±0.5"}


def test_the_one_sided_example_is_now_not_resolved():
    """One-sided p < 0.05 but the two-sided CI straddles 0: the words follow the CI."""
    g = paired_gap([80, 81, 82.5], [79, 79.2, 79.9])
    assert stats.ttest_rel([80, 81, 82.5], [79, 79.2, 79.9], alternative="greater").pvalue < 0.05
    assert g["result"] == "not resolved at n = 3, CI [-0.19, +3.79]"
    assert 0.05 < g["p"] < 0.1


def test_the_three_wordings_and_generic_names():
    assert paired_gap(RR, LT)["result"] == "RR beats LT"
    assert paired_gap(LT, RR, names=("LT", "SDT"))["result"] == "LT beats SDT"
    assert paired_gap(RR, LT, names=("LT", "dense"))["result"] == "dense beats LT"
    noisy = paired_gap([90.0, 91.0, 89.0], [90.5, 89.5, 89.8], names=("IMP", "OMP"))
    assert noisy["result"] == f"not resolved at n = 3, {ci_text(noisy)}"
    assert noisy["CI low"] < 0 < noisy["CI high"]


def test_fewer_than_three_seeds_are_underpowered_and_one_has_no_test():
    two = paired_gap([91.0, 92.0], [89.0, 89.9])
    assert two["result"] == "LT beats RR (underpowered: n = 2)" and two["n"] == 2
    one = paired_gap([91.0], [89.0])
    assert math.isnan(one["p"]) and math.isnan(one["CI low"]) and one["gap"] == 2.0
    assert one["result"] == "not resolved at n = 1 (a test needs 2 or more seeds: no CI) (underpowered: n = 1)"
    empty = paired_gap([], [])
    assert empty["n"] == 0 and math.isnan(empty["gap"]) and empty["result"].startswith("not resolved at n = 0")


def test_zero_spread_claims_nothing_and_has_nan_p():
    g = paired_gap([91.0, 92.0, 93.0], [90.0, 91.0, 92.0])
    assert g["no spread"] and g["gap"] == 1.0 and g["gap std"] == 0.0
    assert math.isnan(g["p"]) and math.isnan(g["CI low"]) and math.isnan(g["CI high"])
    assert g["result"] == "not resolved at n = 3 (no spread across seeds: no CI)"
    # float noise in the differences (90.4-89.4 != 91.4-90.4 in binary) is still no spread
    assert paired_gap([90.4, 91.4, 92.7], [89.4, 90.4, 91.7])["no spread"]
    assert paired_gap([90.0, 91.0], [90.0, 91.0])["result"] == \
        "not resolved at n = 2 (no spread across seeds: no CI) (underpowered: n = 2)"


def test_alpha_sets_the_interval_and_so_the_words():
    a, b = [90.0, 91.0, 89.6], [89.5, 89.9, 89.4]
    p = stats.ttest_rel(a, b).pvalue
    assert 0.05 < p < 0.2
    wide, narrow = paired_gap(a, b, alpha=0.01), paired_gap(a, b, alpha=0.2)
    assert narrow["result"] == "LT beats RR" and narrow["CI low"] > 0
    assert wide["result"].startswith("not resolved at n = 3, CI [") and wide["CI low"] < 0
    ci80 = stats.ttest_rel(a, b).confidence_interval(0.8)
    assert (narrow["CI low"], narrow["CI high"]) == pytest.approx((ci80.low, ci80.high))


def _printed_bounds(text):
    return [float(x) for x in re.findall(r"CI \[([-+][\d.e+-]+), ([-+][\d.e+-]+)\]", text)[0]]


def test_words_agree_with_the_printed_interval_on_many_random_rows():
    rng = np.random.default_rng(20210701)
    counts = {"beats": 0, "lost": 0, "open": 0}
    for _ in range(600):
        n = int(rng.integers(2, 7))
        b = rng.normal(90, 1, n)
        a = b + rng.normal(rng.normal(0, 1.2), rng.uniform(0.05, 2.0), n)
        g = paired_gap(a, b)
        lo, hi = _printed_bounds("x " + ci_text(g))
        if g["result"].startswith("LT beats RR"):
            counts["beats"] += 1
            assert g["CI low"] > 0 and lo > 0 and g["p"] < 0.05
        elif g["result"].startswith("RR beats LT"):
            counts["lost"] += 1
            assert g["CI high"] < 0 and hi < 0 and g["p"] < 0.05
        else:
            counts["open"] += 1
            assert lo <= 0 <= hi and g["p"] >= 0.05
            assert g["result"].startswith(f"not resolved at n = {n}, CI [")
            assert _printed_bounds(g["result"]) == [lo, hi]
        assert g["result"].endswith("(underpowered: n = 2)") == (n == 2)
    assert min(counts.values()) > 30, counts  # every wording was exercised


def test_a_bound_near_zero_never_prints_as_zero():
    assert fmt_signed(0.0031) == "+0.0031" and fmt_signed(-0.0004) == "-0.0004" and fmt_signed(1.234) == "+1.23"
    assert fmt_signed(0.0) == "+0.00"


def test_welch_gap_matches_scipy_on_the_arrays():
    a, b = np.array([89.1, 88.7, 89.6]), np.array([90.3, 90.9, 90.0, 90.5])
    g = welch_gap(a, b.mean(), b.std(ddof=1), len(b), names=("LT", "best dense"))
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (g["CI low"], g["CI high"]) == pytest.approx((ci.low, ci.high))
    assert g["p"] == pytest.approx(ref.pvalue) and g["gap"] == pytest.approx(a.mean() - b.mean())
    assert g["n"] == 3 and g["n b"] == 4 and g["result"] == "best dense beats LT"
    close = welch_gap([90.0, 90.6, 89.8], 90.1, 0.4, 3)
    assert close["result"] == f"not resolved at n = 3 vs 3, {ci_text(close)}"
    one_ref = welch_gap(a, 90.0, math.nan, 1)
    assert math.isnan(one_ref["CI low"]) and "underpowered: n = 3 vs 1" in one_ref["result"]
    flat = welch_gap([90.0, 90.0], 89.0, 0.0, 3)
    assert flat["no spread"] and flat["result"].startswith("not resolved at n = 2 vs 3 (no spread")


@pytest.mark.parametrize("sd", [0.3, 0.8, 1.7, 4.0])
def test_seeds_needed_is_the_smallest_n_with_half_width_at_most_half_a_point(sd):
    n = seeds_for_half_width(sd, 0.5)

    def half(k):
        return stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k)
    assert half(n) <= 0.5 and (n == 2 or half(n - 1) > 0.5)
    assert math.isnan(seeds_for_half_width(float("nan")))


def test_unpaired_lengths_are_an_error_that_says_so():
    with pytest.raises(ValueError, match="LT and SDT need the same seeds"):
        paired_gap([1.0, 2.0], [1.0], names=("LT", "SDT"))


def test_holm_against_a_hand_computed_example():
    # sorted 0.01, 0.02, 0.03, 0.04 (m = 4): 4*0.01 = 0.04, 3*0.02 = 0.06, 2*0.03 = 0.06, 1*0.04 = 0.04 -> 0.06
    p = [0.03, 0.01, 0.04, 0.02]
    assert holm(p) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # monotone step-down and the cap at 1: 3*0.2 = 0.6, 2*0.6 = 1.2 -> 1, 1*0.7 -> max(1, 0.7) = 1
    assert holm([0.7, 0.2, 0.6]) == pytest.approx([1.0, 0.6, 1.0])
    assert holm_resolved(p, 0.05) == 1 and holm_resolved(p, 0.1) == 4


def test_holm_counts_an_untested_comparison_conservatively():
    adj = holm([0.01, math.nan, 0.02])  # m = 3: 3*0.01 = 0.03, 2*0.02 = 0.04; the NaN is p = 1
    assert adj[0] == pytest.approx(0.03) and adj[2] == pytest.approx(0.04) and math.isnan(adj[1])
    assert len(holm([])) == 0


def test_holm_headline_names_k_and_n():
    assert holm_headline([0.001, 0.04, 0.3, math.nan]) == "1 of 4 comparisons resolved after Holm correction at 0.05"
    assert holm_headline([0.001, 0.002], what="sparsities") == \
        "2 of 2 sparsities resolved after Holm correction at 0.05"
