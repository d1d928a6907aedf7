"""The paired LT-RR statistics on made-up numbers, checked against scipy."""
import math

import numpy as np
import pytest
from scipy import stats

from lthlib.stats import paired_gap, seeds_for_half_width, wording

LT = np.array([91.2, 90.4, 91.9, 90.8])
RR = np.array([89.9, 90.1, 90.2, 89.5])


def test_gap_ci_and_one_sided_p_values_match_scipy():
    g = paired_gap(LT, RR, alpha=0.05)
    d = LT - RR
    ci = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert g["n"] == 4 and g["gap"] == pytest.approx(d.mean()) and g["gap std"] == pytest.approx(d.std(ddof=1))
    assert (g["CI low"], g["CI high"]) == pytest.approx(ci)
    assert g["p LT>RR"] == pytest.approx(stats.ttest_1samp(d, 0, alternative="greater").pvalue)
    assert g["p RR>LT"] == pytest.approx(stats.ttest_1samp(d, 0, alternative="less").pvalue)
    assert g["result"] == "LT beats RR"


def test_the_three_wordings():
    assert paired_gap(RR, LT)["result"] == "RR beats LT"
    noisy = paired_gap([90.0, 91.0, 89.0], [90.5, 89.5, 89.8])
    assert noisy["result"] == f"not resolved at n = 3, CI [{noisy['CI low']:+.2f}, {noisy['CI high']:+.2f}]"
    assert noisy["CI low"] < 0 < noisy["CI high"]


def test_fewer_than_three_seeds_are_underpowered_and_one_has_no_test():
    two = paired_gap([91.0, 92.0], [89.0, 89.5])
    assert two["result"].endswith("(underpowered: n = 2)") and two["n"] == 2
    one = paired_gap([91.0], [89.0])
    assert math.isnan(one["p LT>RR"]) and math.isnan(one["CI low"]) and "underpowered" in one["result"]
    assert one["result"].startswith("not resolved at n = 1")


def test_identical_gaps_have_a_zero_width_interval():
    g = paired_gap([91.0, 92.0, 93.0], [90.0, 91.0, 92.0])
    assert (g["CI low"], g["CI high"]) == (1.0, 1.0) and g["result"] == "LT beats RR"
    assert paired_gap([90.0, 91.0], [90.0, 91.0])["result"].startswith("not resolved")


def test_alpha_decides():
    g = paired_gap([90.0, 91.0, 89.6], [89.5, 89.9, 89.4])
    assert 0.01 < g["p LT>RR"] < 0.1
    assert wording(g, alpha=0.1).startswith("LT beats RR") and wording(g, alpha=0.01).startswith("not resolved")


@pytest.mark.parametrize("sd", [0.3, 0.8, 1.7, 4.0])
def test_seeds_needed_is_the_smallest_n_with_half_width_at_most_half_a_point(sd):
    n = seeds_for_half_width(sd, 0.5)

    def half(k):
        return stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k)
    assert half(n) <= 0.5 and (n == 2 or half(n - 1) > 0.5)
    assert math.isnan(seeds_for_half_width(float("nan")))


def test_unpaired_lengths_are_an_error_that_says_so():
    with pytest.raises(ValueError, match="same seeds"):
        paired_gap([1.0, 2.0], [1.0])
