"""The paper's ticket verdicts (①-⑤, class, at the boundary, Table 3) on small made-up run tables."""
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lthlib import stats as S
from lthlib import verdicts as V

LT = [89.0, 89.4, 89.2]
SDT = [87.0, 87.3, 87.1]
RR_SMALL = [86.0, 86.5, 86.2]       # rr at lr 0.01
RR_LARGE = [87.0, 87.3, 87.2]       # rr at lr 0.1: the best RR
DENSE_SAME = [89.3, 89.6, 89.4]     # dense at lr 0.01
FAR_REF = {"mean": 92.3, "std": 0.2, "n": 3, "lr": 0.1, "epochs": 160}
NEAR_REF = {"mean": 89.3, "std": 0.2, "n": 3, "lr": 0.1, "epochs": 160}


def add(rows, setting, sparsity, lr, accs, epochs=160, model="resnet20", dataset="cifar10", seeds=None):
    for seed, acc in zip(seeds or range(1, len(accs) + 1), accs):
        rows.append({"setting": setting, "model": model, "dataset": dataset, "epochs": epochs, "lr": lr,
                     "seed": seed, "target_sparsity": sparsity, "final_acc": acc})
    return rows


def ticket_runs(lt=LT, sdt=SDT, rr_small=RR_SMALL, rr_large=RR_LARGE, dense=DENSE_SAME, s=0.8322, epochs=160,
                family=("lt_imp", "rr_imp")):
    """One IMP ticket at (s, lr 0.01); None leaves a setting out."""
    rows = []
    ticket, rr = family
    add(rows, ticket, s, 0.01, lt, epochs)
    if sdt is not None:
        add(rows, "sdt", round(s, 3), 0.01, sdt, epochs)
    if rr_small is not None:
        add(rows, rr, s, 0.01, rr_small, epochs)
    if rr_large is not None:
        add(rows, rr, s, 0.1, rr_large, epochs)
    if dense is not None:
        add(rows, "pretrain", 0.0, 0.01, dense, epochs)
    return pd.DataFrame(rows)


def one(df, ref=FAR_REF, full_epochs=160, **kw):
    v = V.verdict_table(df, full_epochs, ref, **kw)
    assert len(v) == 1
    return v.iloc[0]


# ----------------------------------------------------------------------------- thresholds
def test_thresholds_per_dataset_with_their_notes():
    assert [V.thresholds(d)["similar"] for d in ("cifar10", "cifar100", "tiny_imagenet", "imagenet")] == \
        [0.5, 1.0, 1.0, 1.5]
    fm = V.thresholds("fashion_mnist")
    assert fm["similar"] == 0.5 and fm["clear"] == 0.5 and "not in the paper: CIFAR-10's thresholds" in fm["note"]
    c10 = V.thresholds("cifar10")
    assert c10["sdt"] == c10["clear"] == 0.5 and "② has no number in the paper" in c10["note"]
    assert "over 0.5%" in c10["note"] and "not in the paper" not in c10["note"]


def test_thresholds_are_overridable_and_an_unknown_dataset_needs_one():
    t = V.thresholds("cifar10", similar=0.25, clear=1.0, sdt=2.0)
    assert (t["similar"], t["clear"], t["sdt"]) == (0.25, 1.0, 2.0) and "similar = 0.25 (given)" in t["note"]
    assert V.thresholds("cifar10", clear=1.0)["sdt"] == 1.0  # ② follows the clear gap unless given
    with pytest.raises(ValueError, match="svhn"):
        V.thresholds("svhn")
    assert V.thresholds("svhn", similar=0.7)["similar"] == 0.7


def test_the_dataset_thresholds_reach_the_verdicts():
    df = ticket_runs(dense=[90.0, 90.4, 90.2])  # LT - dense = -1.0: fails at 0.5, holds at 1.0 (CIFAR-100)
    assert not one(df)["c4"]
    c100 = one(df.assign(dataset="cifar100"))
    assert c100["c4"] and c100["similar"] == 1.0
    assert one(df, similar=1.0)["c4"]


# ----------------------------------------------------------------------------- conditions and classes
def test_a_secondary_prize_ticket_and_its_statistics():
    r = one(ticket_runs())
    assert (r["c1"], r["c2"], r["c3"], r["c4"], r["c5"]) == (True, True, True, True, False)
    assert r["class"] == "secondary prize" and r["at the boundary"] == False  # noqa: E712 (pandas boolean)
    assert r["sparsity"] == 0.832 and r["family"] == "IMP" and r["LT n"] == 3
    ci = stats.ttest_rel(LT, SDT).confidence_interval(0.95)
    assert r["c2 gap"] == pytest.approx(np.mean(LT) - np.mean(SDT)) and r["c2 n"] == 3
    assert (r["c2 CI low"], r["c2 CI high"]) == pytest.approx((ci.low, ci.high))
    assert r["c2 result"] == "LT beats SDT" and r["c2 vs threshold"] == "CI clears +0.5"
    assert r["c5 result"] == "best dense beats LT" and r["c5 vs threshold"] == "CI below -0.5"
    welch = stats.ttest_ind_from_stats(np.mean(LT), np.std(LT, ddof=1), 3, 92.3 - 0.5, 0.2, 3, equal_var=False)
    assert r["c5 p vs threshold"] == pytest.approx(welch.pvalue)


def test_best_rr_over_lrs_is_the_lr_with_the_highest_mean():
    r = one(ticket_runs())
    assert r["c3 RR lr"] == 0.1 and r["c3 RR lrs"] == 2 and r["c3 mean"] == pytest.approx(np.mean(RR_LARGE))
    assert r["c3 gap"] == pytest.approx(np.mean(LT) - np.mean(RR_LARGE)) and "RR swept" not in r["notes"]
    flipped = one(ticket_runs(rr_small=RR_LARGE, rr_large=RR_SMALL))
    assert flipped["c3 RR lr"] == 0.01 and flipped["c3 mean"] == pytest.approx(np.mean(RR_LARGE))
    # an RR lr good enough to close the gap makes ③ fail, whatever lr the ticket itself used
    assert not one(ticket_runs(rr_large=[89.0, 89.2, 89.1]))["c3"]


def test_best_rr_is_judged_on_the_seeds_the_ticket_has():
    """An incomplete grid: the ticket has seeds 1 and 2. RR at lr 0.1 has the highest mean over its three
    seeds only thanks to seed 3; on seeds 1-2, lr 0.01 is the RR that is hard to beat (LT ahead by
    0.15), and ③ must be judged against it, not against lr 0.1 (LT ahead by 0.95 on those seeds)."""
    rows = []
    add(rows, "lt_imp", 0.8322, 0.01, [89.0, 89.0])
    add(rows, "sdt", 0.832, 0.01, [80.0, 80.0])
    add(rows, "rr_imp", 0.8322, 0.1, [88.0, 88.1, 91.0])
    add(rows, "rr_imp", 0.8322, 0.01, [88.8, 88.9, 85.0])
    add(rows, "pretrain", 0.0, 0.01, [89.0, 89.0])
    r = one(pd.DataFrame(rows))
    assert r["c3 RR lr"] == 0.01 and r["c3 gap"] == pytest.approx(0.15) and not r["c3"]
    # with every seed on both sides the best RR is the one with the highest mean, as before
    full = one(ticket_runs(rr_small=[87.1, 87.4, 87.3]))
    assert full["c3 RR lr"] == 0.01 and full["c3 gap"] == pytest.approx(np.mean(LT) - 87.2667, abs=1e-3)


def test_one_rr_lr_is_evaluated_and_says_the_sweep_is_missing():
    r = one(ticket_runs(rr_large=None))
    assert r["c3"] and r["c3 RR lrs"] == 1 and r["c3 RR lr"] == 0.01
    assert "RR swept over 1 lr" in r["notes"] and "RR swept over 1 lr" in V.verdict_line(r)


def test_a_jackpot_when_lt_matches_the_best_dense():
    r = one(ticket_runs(), ref=NEAR_REF)
    assert r["c5"] and r["class"] == "Jackpot" and r["c5 dense lr"] == 0.1


def test_each_condition_can_fail():
    assert one(ticket_runs(s=0.488))["c1"] == False and one(ticket_runs(s=0.488))["class"] == "none"  # noqa
    short = one(ticket_runs(epochs=80), full_epochs=160)   # ① is the paper's own condition: False, not NA
    assert short["c1"] == False and short["class"] == "none"  # noqa: E712
    assert one(ticket_runs(epochs=80), full_epochs=80)["c1"]
    assert one(ticket_runs(sdt=[88.6, 89.0, 88.8]))["c2"] == False  # gap 0.4 < 0.5  # noqa: E712
    assert one(ticket_runs(dense=[90.0, 90.3, 90.1]))["c4"] == False  # noqa: E712
    for r in (one(ticket_runs(sdt=[88.6, 89.0, 88.8])), one(ticket_runs(dense=[90.0, 90.3, 90.1]))):
        assert r["class"] == "none"


def test_the_gap_must_be_over_the_clear_gap_and_at_least_minus_similar():
    """② and ③ are strict ("over 0.5%"), ④ and ⑤ inclusive ("similar or above")."""
    assert one(ticket_runs(sdt=[88.5, 88.9, 88.7]))["c2 gap"] == pytest.approx(0.5)
    assert one(ticket_runs(sdt=[88.5, 88.9, 88.7]))["c2"] == False  # noqa: E712
    assert one(ticket_runs(dense=[89.5, 89.9, 89.7]))["c4"]  # gap -0.5 exactly


def test_missing_inputs_are_not_evaluated_never_false():
    no_sdt = one(ticket_runs(sdt=None))
    assert no_sdt["c2"] is pd.NA and no_sdt["class"] == "not evaluated" and "no SDT" in no_sdt["c2 note"]
    no_dense = one(ticket_runs(dense=None))
    assert no_dense["c4"] is pd.NA and "no dense run at lr 0.01" in no_dense["c4 note"]
    no_rr = one(ticket_runs(rr_small=None, rr_large=None))
    assert no_rr["c3"] is pd.NA and no_rr["class"] == "not evaluated"
    no_ref = one(ticket_runs(), ref=None)
    assert no_ref["c5"] is pd.NA and no_ref["class"] == "not evaluated" and no_ref["c1-c4"] == True  # noqa
    short_ref = one(ticket_runs(), ref={**NEAR_REF, "epochs": 80})
    assert short_ref["c5"] is pd.NA and "trained 80 < 160 epochs" in short_ref["c5 note"]
    assert no_sdt["at the boundary"] is pd.NA


def test_a_class_is_decided_when_the_known_conditions_fix_it():
    """No SDT but ③ (or ④, or ①) already fails: 'none', not 'not evaluated'."""
    assert one(ticket_runs(sdt=None, rr_large=[89.0, 89.2, 89.1]))["class"] == "none"
    assert one(ticket_runs(sdt=None, dense=[91.0, 91.2, 91.1]))["class"] == "none"
    assert one(ticket_runs(sdt=None, s=0.488))["class"] == "none"
    assert one(ticket_runs(sdt=None, dense=None, rr_large=[89.0, 89.2, 89.1]), ref=None)["class"] == "none"
    assert V.ticket_class(True, pd.NA, True, True, False) == "not evaluated"
    assert V.ticket_class(True, pd.NA, False, True, pd.NA) == "none"
    assert V.ticket_class(True, True, True, True, None) == "not evaluated"


def test_reference_per_network():
    df = pd.concat([ticket_runs(), ticket_runs().assign(model="vgg16")])
    v = V.verdict_table(df, 160, {("resnet20", "cifar10"): NEAR_REF, ("vgg16", "cifar10"): FAR_REF})
    assert dict(zip(v["model"], v["class"])) == {"resnet20": "Jackpot", "vgg16": "secondary prize"}
    assert V.verdict_table(df, 160, {("resnet20", "cifar10"): NEAR_REF}).set_index("model").loc["vgg16", "class"] \
        == "not evaluated"


# ----------------------------------------------------------------------------- at the boundary
def test_a_deciding_gap_within_its_seed_noise_is_at_the_boundary():
    # LT - best RR = +0.6 > 0.5, but its CI spans 0.5: ③ decides "secondary prize" vs "none"
    r = one(ticket_runs(rr_small=None, rr_large=[88.0, 89.2, 88.6]))
    assert r["c3"] and r["c3 within noise"] and r["class"] == "secondary prize"
    assert r["at the boundary"] == True and r["boundary conditions"] == "③"  # noqa: E712
    assert r["c3 CI low"] < 0.5 < r["c3 CI high"] and r["c3 vs threshold"] == "within seed noise of +0.5"
    assert "[at the boundary: ③" in V.verdict_line(r)


def test_a_noisy_gap_that_cannot_change_the_class_is_not_at_the_boundary():
    r = one(ticket_runs(rr_small=None, rr_large=[88.0, 89.2, 88.6], dense=[91.0, 91.2, 91.1]))
    assert r["c3 within noise"] and not r["c4"] and r["class"] == "none"
    assert r["at the boundary"] == False  # ④ fails clearly: flipping ③ leaves "none"  # noqa: E712


def test_boundary_rules_on_condition_values():
    conds = {"c1": True, "c2": True, "c3": False, "c4": False, "c5": False}
    # two failing conditions, each within noise: only flipping both changes the class
    assert V.boundary(conds, {"c2": False, "c3": True, "c4": True, "c5": False}) == (True, "③, ④")
    assert V.boundary(conds, {"c2": False, "c3": True, "c4": False, "c5": False}) == (False, "")
    jack = {"c1": True, "c2": True, "c3": True, "c4": True, "c5": True}
    assert V.boundary(jack, {"c2": False, "c3": False, "c4": False, "c5": True}) == (True, "⑤")
    unknown = V.boundary(jack, {"c2": pd.NA, "c3": False, "c4": False, "c5": False})
    assert unknown[0] is pd.NA  # ② alone would change the class and has no CI
    assert V.boundary({**jack, "c5": pd.NA}, {"c2": True, "c3": True, "c4": True, "c5": pd.NA})[0] is pd.NA


def test_zero_spread_and_one_seed_have_no_ci_so_the_boundary_is_unknown():
    flat = one(ticket_runs(sdt=[x - 1.0 for x in LT]))
    assert flat["c2"] and flat["c2 result"] == "not resolved at n = 3 (no spread across seeds: no CI)"
    assert math.isnan(flat["c2 p"]) and flat["c2 within noise"] is pd.NA and flat["at the boundary"] is pd.NA
    single = one(ticket_runs(lt=[89.2], sdt=[87.1], rr_small=None, rr_large=[87.2], dense=[89.4]),
                 ref={**FAR_REF, "n": 1, "std": math.nan})
    assert single["class"] == "secondary prize" and single["at the boundary"] is pd.NA
    assert single["c3 result"].startswith("not resolved at n = 1") and "underpowered" in single["c3 result"]


# ----------------------------------------------------------------------------- families and sparsities
def test_weight_rewinding_families_compare_with_rr_trained_the_full_schedule():
    rows = []
    add(rows, "wr_imp", 0.8322, 0.01, [89.6, 89.9, 89.8])
    add(rows, "wr_omp", 0.832, 0.01, [89.1, 89.3, 89.2])
    add(rows, "rr_imp", 0.8322, 0.01, [86.0, 86.2, 86.1])
    add(rows, "rr_omp", 0.832, 0.01, [88.9, 89.1, 89.0])
    add(rows, "sdt", 0.832, 0.01, SDT)
    add(rows, "pretrain", 0.0, 0.01, DENSE_SAME)
    v = V.verdict_table(pd.DataFrame(rows), 160, FAR_REF).set_index("family")
    assert sorted(v.index) == ["WR-IMP", "WR-OMP"] and list(v["ticket"]) == ["wr_imp", "wr_omp"]
    assert v.loc["WR-IMP", "c3 mean"] == pytest.approx(86.1) and v.loc["WR-OMP", "c3 mean"] == pytest.approx(89.0)
    assert v.loc["WR-IMP", "class"] == "secondary prize" and v.loc["WR-OMP", "class"] == "none"
    assert v.loc["WR-IMP", "c2 result"] == "WR beats SDT"
    assert "② WR−SDT" in V.verdict_line(v.reset_index().iloc[0])


def test_imp_round_sparsities_group_with_omp_at_three_decimals():
    rows = []
    add(rows, "lt_imp", 0.5904, 0.01, LT)
    add(rows, "lt_omp", 0.59, 0.01, [88.0, 88.3, 88.1])
    add(rows, "sdt", 0.590, 0.01, SDT)
    v = V.verdict_table(pd.DataFrame(rows), 160, FAR_REF)
    assert list(v["sparsity"]) == [0.59, 0.59] and f"{v['sparsity'][0]:.3f}" == "0.590"
    assert (v["c2 n"] == 3).all() and not v["c1"].any()  # ② finds the SDT; 0.590 < 0.6 is trivial
    assert "IMP s=0.590" in V.verdict_line(v.iloc[0])
    gaps = V.matched_gaps(v.assign(c1=True), V.prepare(pd.DataFrame(rows)), "family", "IMP", "OMP",
                          ("IMP", "OMP"), 0.05)
    assert len(gaps) == 1 and gaps[0]["gap"] == pytest.approx(np.mean(LT) - 88.1333333)


def test_duplicate_runs_and_missing_columns_are_errors():
    df = ticket_runs()
    with pytest.raises(ValueError, match="share"):
        V.verdict_table(pd.concat([df, df.head(1)]), 160, FAR_REF)
    with pytest.raises(ValueError, match="final_acc"):
        V.verdict_table(df.drop(columns="final_acc"), 160, FAR_REF)


def test_unpaired_seeds_are_paired_over_the_common_ones_and_noted():
    rows = []
    add(rows, "lt_imp", 0.832, 0.01, LT)
    add(rows, "sdt", 0.832, 0.01, SDT[:2], seeds=[1, 2])
    r = one(pd.DataFrame(rows))
    assert r["c2 n"] == 2 and r["c2 n runs"] == 2 and "over the 2 seeds both have" in r["c2 note"]
    # the gap the decision reads is over the same seeds as its interval, so it lies inside it
    assert r["c2 gap"] == pytest.approx(np.mean(LT[:2]) - np.mean(SDT[:2]))
    assert r["c2 CI low"] <= r["c2 gap"] <= r["c2 CI high"]
    none = []
    add(none, "lt_imp", 0.832, 0.01, LT[:1], seeds=[1])
    add(none, "sdt", 0.832, 0.01, SDT[1:2], seeds=[2])
    r = one(pd.DataFrame(none))
    assert "no seed in common" in r["c2 note"] and r["c2 gap"] == pytest.approx(LT[0] - SDT[1])


# ----------------------------------------------------------------------------- the printed lines
def test_the_line_of_a_secondary_prize_ticket():
    line = V.verdict_line(one(ticket_runs()))
    assert line.startswith("IMP s=0.832 lr 0.01: secondary prize — ① s 0.832 ≥ 0.6 and 160 ≥ 160 epochs: holds; ")
    assert "② LT−SDT +2.07 [+1.92, +2.21] n=3 > 0.5: holds (LT beats SDT; CI clears +0.5)" in line
    assert "③ LT−best RR (lr 0.1) +2.03 [" in line
    assert re.search(r"⑤ LT 89\.20 vs best dense 92\.30 \(lr 0\.1\) − 0\.5: fails \(gap -3\.10 \[-3\.\d\d, -2\.\d\d\] "
                     r"n=3 vs 3; best dense beats LT; CI below -0\.5\)", line)
    assert "④ not evaluated (no dense run at lr 0.01, 160 epochs)" in V.verdict_line(one(ticket_runs(dense=None)))
    two = V.condition_text(one(ticket_runs(lt=LT[:2], sdt=[88.9, 89.0])), "c2")
    assert two.startswith("② LT−SDT +0.25 [") and two.endswith(
        ": fails (not resolved at n = 2 (underpowered: n = 2); within seed noise of +0.5)")


def _random_runs(rng):
    rows = []
    for s in (0.672, 0.8322, 0.9141):
        for lr in (0.01, 0.1):
            base = rng.normal(89, 1)
            n = int(rng.integers(2, 5))
            for setting, shift in (("lt_imp", 0.0), ("sdt", -1.0), ("rr_imp", -0.8), ("lt_omp", -0.3)):
                add(rows, setting, s, lr, list(base + shift + rng.normal(0, rng.uniform(0.1, 1.0), n)))
    for lr in (0.01, 0.1):
        add(rows, "pretrain", 0.0, lr, list(rng.normal(89.5, 0.5, 3)))
    return pd.DataFrame(rows)


def test_words_agree_with_the_printed_interval_on_every_row():
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(8):
        v = V.verdict_table(_random_runs(rng), 160, {"mean": 89.8, "std": 0.4, "n": 3, "lr": 0.1, "epochs": 160})
        for r in v.to_dict("records"):
            for c in ("c2", "c3", "c4", "c5"):
                if r[c] is None:
                    continue
                text = V.condition_text(r, c)
                lo, hi = (float(x) for x in re.search(r"\[([-+][\d.e+-]+), ([-+][\d.e+-]+)\]", text).groups())
                words = r[f"{c} result"]
                if " beats LT" in words:
                    seen.add("lost")
                    assert hi < 0 and r[f"{c} CI high"] < 0 and " beats LT" in text
                elif words.startswith("LT beats"):
                    seen.add("won")
                    assert lo > 0 and r[f"{c} CI low"] > 0 and words in text
                else:
                    seen.add("open")
                    assert lo <= 0 <= hi and words.startswith(f"not resolved at n = {r[f'{c} n']}")
                thr = {"c2": r["sdt gap"], "c3": r["clear"]}.get(c, -r["similar"])
                side = r[f"{c} vs threshold"]
                assert side.startswith("CI clears") == (r[f"{c} CI low"] > thr + 1e-9) or \
                    abs(r[f"{c} CI low"] - thr) < 1e-9
                assert side.startswith("CI below") == (r[f"{c} CI high"] < thr - 1e-9) or \
                    abs(r[f"{c} CI high"] - thr) < 1e-9
                assert (side.startswith("within")) == bool(r[f"{c} within noise"])
    assert seen == {"lost", "won", "open"}


def test_verdict_lines_have_a_header_per_network():
    lines = V.verdict_lines(V.verdict_table(ticket_runs().assign(dataset="fashion_mnist"), 160, FAR_REF))
    assert lines[0].startswith("resnet20 / fashion_mnist, 160 epochs (fashion_mnist is not in the paper")
    assert lines[1].startswith("  IMP s=0.832 lr 0.01: secondary prize")


# ----------------------------------------------------------------------------- Table 3
def _network():
    """Secondary prize tickets at lr 0.01 (s 0.832 clear, 0.914 at the boundary), none at lr 0.1 (LT = RR),
    a trivial 0.488 row, and OMP below IMP everywhere."""
    rows = []
    for lr, dense in ((0.01, [89.1, 89.4, 89.3]), (0.1, [91.9, 92.3, 92.1])):
        add(rows, "pretrain", 0.0, lr, dense)
    for s in (0.488, 0.8322, 0.9141):
        add(rows, "sdt", round(s, 3), 0.01, SDT)
        add(rows, "sdt", round(s, 3), 0.1, SDT)
        add(rows, "rr_imp", s, 0.1, [88.0, 89.2, 88.6] if s > 0.9 else RR_LARGE)
        add(rows, "rr_imp", s, 0.01, RR_SMALL)
        add(rows, "lt_imp", s, 0.01, LT)
        add(rows, "lt_imp", s, 0.1, RR_LARGE)
        add(rows, "lt_omp", round(s, 3), 0.01, [x - 1.5 for x in LT[:2]] + [LT[2] - 1.7])
    return pd.DataFrame(rows)


def test_table3_summary_with_n_and_holm_counts():
    runs = _network()
    v = V.verdict_table(runs, 160, FAR_REF)
    assert len(v) == 9 and int(v["c1"].sum()) == 6
    t = V.table3(v, runs).iloc[0]
    assert t["candidates"] == 6 and t["Jackpot?"] == "no" and t["Jackpot rows"] == 0 and t["Jackpot Holm"] == 0
    assert t["secondary prize?"] == "yes" and t["secondary prize up to"] == 0.914 and t["secondary prize rows"] == 2
    assert t["secondary prize at"] == "IMP lr 0.01"
    # s=0.832 clears every threshold; s=0.914's ③ is within noise (p vs threshold > 0.05): 1 survives Holm
    sec = v[v["class"] == "secondary prize"].set_index("sparsity")
    p832 = V.support_p(sec.loc[0.832], "secondary prize")
    assert p832 * 6 < 0.05 and V.support_p(sec.loc[0.914], "secondary prize") == 1.0
    assert t["secondary prize Holm"] == 1 and "IMP s=0.914 lr 0.01 (③)" in t["at the boundary"]
    assert "secondary prize: 2 of 6 candidate tickets by the means — 1 of 6 candidate tickets resolved after " \
           "Holm correction at 0.05" in t["headline"]
    assert t["prefers small LR?"] == "yes" and t["small LR basis"].startswith(
        "best class secondary prize at lr 0.01, none at lr 0.1")
    assert t["small LR N"] == 2  # IMP at 0.832 and 0.914 have both lrs; OMP has lr 0.01 only
    assert t["prefers IMP?"] == "yes" and t["IMP N"] == 2 and t["IMP better (Holm)"] == 2 and t["OMP better (Holm)"] == 0
    assert t["paper"] == V.paper_entry("resnet20", "cifar10")["summary"]


def test_table3_without_a_reference_cannot_say_no_jackpot():
    runs = _network()
    t = V.table3(V.verdict_table(runs, 160, None), runs).iloc[0]
    assert t["Jackpot?"] == "not evaluated" and t["secondary prize?"] == "not evaluated"
    assert t["not evaluated rows"] == 2 and t["Jackpot Holm"] == 0


def test_prefers_small_lr_by_accuracy_when_the_classes_tie():
    rows = []
    for lr, shift in ((0.01, 0.0), (0.1, -2.0)):
        add(rows, "lt_imp", 0.8322, lr, [x + shift for x in LT])
        add(rows, "rr_imp", 0.8322, lr, [x + 1.0 for x in LT])  # RR better: class none at both lrs
    runs = pd.DataFrame(rows)
    t = V.table3(V.verdict_table(runs, 160, FAR_REF), runs).iloc[0]
    assert t["prefers small LR?"] == "yes" and "by accuracy: lr 0.01 higher at 1, lr 0.1 at 0 of 1" in t["small LR basis"]
    assert t["small LR better (Holm)"] == 0  # zero spread in the LT differences: no test, nothing resolved
    assert t["prefers IMP?"] == "not evaluated" and t["IMP N"] == 0


# ----------------------------------------------------------------------------- what the paper says
def test_paper_entries_come_from_spec_section_6():
    r20 = V.paper_entry("resnet20", "cifar10")
    assert r20["in paper"] and r20["Jackpot?"] == "no" and "0.914" in r20["secondary prize?"]
    assert "0.005" in r20["secondary prize?"] and "none at lr 0.1" in r20["secondary prize?"]
    assert "0.945" in V.paper_entry("vgg16", "cifar10")["secondary prize?"]
    assert "0.945" in V.paper_entry("resnet32_wide_official", "cifar10")["secondary prize?"]
    assert "0.832" in V.paper_entry("mobilenet_v1", "cifar10")["at the boundary"]
    assert V.paper_entry("resnet18_cifar", "cifar100")["at the boundary"] == "yes"
    assert "0.945" in V.paper_entry("resnet18_cifar", "cifar10")["secondary prize?"]
    for m, ds in (("resnet18_tiny", "tiny_imagenet"), ("resnet50_tiny", "tiny_imagenet"), ("resnet50", "imagenet")):
        e = V.paper_entry(m, ds)
        assert e["Jackpot?"] == "no" and e["secondary prize?"] == "no" and e["prefers IMP?"] == "no"
    fm = V.paper_entry("lenet5", "fashion_mnist")
    assert not fm["in paper"] and fm["summary"] == "not in the paper (Fashion-MNIST is not in the paper)"
    assert not V.paper_entry("resnet32", "cifar10")["in paper"]  # He et al.'s, not the paper's 2x-wide one
    r20_fm = V.paper_entry("resnet20", "fashion_mnist")  # the lite grid: the paper's model on another dataset
    assert not r20_fm["in paper"] and r20_fm["Jackpot?"] is None
    assert r20_fm["summary"] == ("not in the paper (Fashion-MNIST is not in the paper); the paper's resnet20 on "
                                 "CIFAR-10: " + r20["summary"])


def test_support_p_needs_every_ci_on_the_class_side():
    r = dict(one(ticket_runs()))
    p = V.support_p(r, "secondary prize")
    assert p == pytest.approx(max(r[f"{c} p vs threshold"] for c in ("c2", "c3", "c4", "c5")))
    assert math.isnan(V.support_p(r, "Jackpot"))
    assert V.support_p({**r, "c5 vs threshold": "within seed noise of -0.5"}, "secondary prize") == 1.0
    assert S.holm_resolved([p], 0.05) == 1


def test_prefers_small_lr_compares_the_small_lr_with_the_best_class_against_the_largest():
    """Three lrs: secondary prize tickets at lr 0.01 only; the extremely small lr 0.001 has none. The
    small lr compared with the largest is 0.01 (the best class below the largest lr), not 0.001."""
    rows = []
    for lr, dense in ((0.001, [85.0, 85.3, 85.1]), (0.01, [89.3, 89.6, 89.4]), (0.1, [91.9, 92.3, 92.1])):
        add(rows, "pretrain", 0.0, lr, dense)
        add(rows, "sdt", 0.832, lr, SDT)
        add(rows, "rr_imp", 0.8322, lr, RR_SMALL if lr != 0.1 else RR_LARGE)
    add(rows, "lt_imp", 0.8322, 0.001, [83.0, 83.4, 83.1])
    add(rows, "lt_imp", 0.8322, 0.01, LT)
    add(rows, "lt_imp", 0.8322, 0.1, RR_LARGE)
    runs = pd.DataFrame(rows)
    t = V.table3(V.verdict_table(runs, 160, FAR_REF), runs).iloc[0]
    assert t["prefers small LR?"] == "yes"
    assert t["small LR basis"].startswith("best class secondary prize at lr 0.01, none at lr 0.1")


def test_prefers_small_lr_compares_with_the_normal_lr_and_breaks_class_ties_by_accuracy():
    """Six lrs, every ticket 'none' (RR far ahead). The paper's question is small vs normal (0.1): the
    very large 0.15 is not the large side, and among the tied small lrs the one whose tickets are the
    most accurate (0.01) is compared, not the extremely small 0.001."""
    rows = []
    lt_by_lr = {0.001: 80.0, 0.005: 88.5, 0.01: 89.0, 0.05: 87.0, 0.1: 86.0, 0.15: 86.5}
    for lr, acc in lt_by_lr.items():
        add(rows, "pretrain", 0.0, lr, [92.0, 92.3, 92.1])
        add(rows, "lt_imp", 0.8322, lr, [acc, acc + 0.3, acc + 0.1])
        add(rows, "rr_imp", 0.8322, lr, [95.0, 95.2, 95.1])
    runs = pd.DataFrame(rows)
    v = V.verdict_table(runs, 160, FAR_REF)
    assert set(v["class"]) == {"none"}
    t = V.table3(v, runs, normal_lr=0.1).iloc[0]
    assert t["small LR basis"].startswith("best class none at lr 0.01, none at lr 0.1; by accuracy: lr 0.01 higher")
    assert t["prefers small LR?"] == "yes"
    # without the normal lr: the largest lr, 0.15
    assert V.table3(v, runs).iloc[0]["small LR basis"].startswith("best class none at lr 0.01, none at lr 0.15")
    assert V.split_lrs([0.15, 0.001, 0.1], 0.1) == ([0.001], [0.1, 0.15])
    assert V.split_lrs([0.01, 0.05], 0.1) == ([0.01, 0.05], [])


# ----------------------------------------------------------------------------- incomplete grids, NaN, ties
def test_a_condition_that_holds_with_a_grid_lr_missing_is_not_established():
    """"RR at any lr" and the best-tuned dense model: a missing lr can only make ③ and ⑤ easier, so a
    ③/⑤ that holds over the lrs present is NA until the grid's lrs have all finished; one that fails
    over them stays failed."""
    full = one(ticket_runs(), NEAR_REF, rr_lrs=[0.01, 0.1])
    assert V._known(full["c3"]) is True and full["class"] == "Jackpot"
    cut = one(ticket_runs(rr_large=None), NEAR_REF, rr_lrs=[0.01, 0.1])
    assert pd.isna(cut["c3"]) and cut["class"] == V.NOT_EVALUATED
    assert "not established: RR not finished at lr 0.1" in cut["c3 note"]
    assert "not finished at lr 0.1" in V.condition_text(cut, "c3")
    assert V._known(one(ticket_runs(rr_large=None), NEAR_REF)["c3"]) is True  # the grid's lrs not given: not checked
    failing = one(ticket_runs(lt=[86.0, 86.4, 86.2], rr_large=None), NEAR_REF, rr_lrs=[0.01, 0.1])
    assert V._known(failing["c3"]) is False and failing["class"] == "none"
    swept = one(ticket_runs(), {**NEAR_REF, "lrs": [0.1]}, dense_lrs=[0.01, 0.1])
    assert pd.isna(swept["c5"]) and "⑤ holds over the lrs present, not established" in swept["c5 note"]
    assert V._known(one(ticket_runs(), {**NEAR_REF, "lrs": [0.01, 0.1]}, dense_lrs=[0.01, 0.1])["c5"]) is True


def test_a_nan_accuracy_is_a_missing_run_not_a_failed_condition():
    r = one(ticket_runs(lt=[89.0, math.nan, 89.2], sdt=[87.0, 87.3, math.nan]), NEAR_REF)
    assert r["LT n"] == 2 and r["c2 n"] == 1 and r["c3 n"] == 2
    assert V._known(r["c2"]) is True and V._known(r["c3"]) is True and V._known(r["c4"]) is True and r["class"] == "Jackpot"


def test_a_gap_of_exactly_the_threshold_is_decided_by_the_rule_not_by_float32_rounding():
    """Accuracies as training writes them (float32 100 * correct / 10,000): a 3-seed gap of exactly 0.5
    points is never "over 0.5" and always "at least -0.5 ... 0.5" (it was decided at random, ~45% each)."""
    rng = np.random.default_rng(0)
    acc = lambda c: pd.Series(np.float32(100) * c.astype(np.float32) / np.float32(10000), index=[1, 2, 3]).astype(float)
    strict, loose = set(), set()
    for _ in range(400):
        b = rng.integers(8000, 9500, 3)
        a = b + 50 + np.array([-7, 3, 4]) * rng.integers(0, 3)  # the seed gaps differ, their mean is 50 images
        strict.add(V.compare_paired(acc(a), acc(b), 0.5, ("LT", "RR"), 0.05, True, "")["pass"])
        loose.add(V.compare_paired(acc(a), acc(b), 0.5, ("LT", "RR"), 0.05, False, "")["pass"])
    assert strict == {False} and loose == {True}
    assert V.compare_paired(acc(np.array([8951, 8960, 8970])), acc(np.array([8900, 8910, 8920])), 0.5,
                            ("LT", "RR"), 0.05, True, "")["pass"] is True  # one image more is over


def test_the_threshold_words_agree_with_the_decision_at_a_rounding_tie():
    """Per-seed gaps 0.50004, 0.500041, 0.500039: the gap rounds to the threshold, so "over 0.5" fails;
    its interval (all above 0.5 by 4e-5) must not read "CI clears +0.5" beside that failure."""
    a = pd.Series([80.50004, 81.500041, 82.500039], index=[1, 2, 3])
    b = pd.Series([80.0, 81.0, 82.0], index=[1, 2, 3])
    c = V.compare_paired(a, b, 0.5, ("LT", "RR"), 0.05, True, "")
    assert c["pass"] is False and c["vs threshold"] == "within seed noise of +0.5" and c["within noise"] is True


def test_the_best_dense_model_of_the_same_runs_is_compared_paired_like_condition_4():
    """⑤ against a reference that is this table's own dense runs (same lr, epochs, n and mean) uses the
    paired interval over the shared seeds, as ④ does at that lr; a reference from elsewhere, Welch's."""
    rows = add([], "lt_imp", 0.8322, 0.1, [89.5, 89.1, 89.6])
    add(rows, "pretrain", 0.0, 0.1, [89.3, 89.6, 89.4])
    runs = pd.DataFrame(rows)
    dense = runs[runs["setting"] == "pretrain"]["final_acc"]
    own = {"mean": dense.mean(), "std": dense.std(), "n": 3, "lr": 0.1, "epochs": 160}
    r = one(runs, own)
    assert r["c5 CI low"] == pytest.approx(r["c4 CI low"]) and r["c5 CI high"] == pytest.approx(r["c4 CI high"])
    assert r["c5 vs threshold"] == r["c4 vs threshold"]
    other = one(runs, {**own, "mean": own["mean"] + 1e-3})  # another grid's runs: Welch's interval
    welch = S.welch_gap(np.array([89.5, 89.1, 89.6]), own["mean"] + 1e-3, own["std"], 3, 0.05, ("LT", "dense"))
    assert other["c5 CI low"] == pytest.approx(welch["CI low"]) and other["c5 CI low"] != pytest.approx(r["c5 CI low"])


def test_a_class_no_ticket_supports_after_holm_is_not_a_bold_yes():
    """One seed: a Jackpot by the means has no CI, so the headline says 'yes by the means, not resolved'
    and that the boundary of the decided tickets is unknown; three clear seeds give a plain 'yes'."""
    from lthlib import report
    runs = ticket_runs(lt=[89.2], sdt=[87.0], rr_small=[86.0], rr_large=[87.0], dense=[89.3])
    v = V.verdict_table(runs, 160, NEAR_REF)
    t3 = V.table3(v, runs).iloc[0].to_dict()
    assert t3["Jackpot?"] == "yes" and t3["Jackpot Holm"] == 0
    line = report.network_headline(t3, v)
    assert "Jackpot tickets: **yes by the means, not resolved** (n = 1: no CI)" in line
    assert "1 decided candidates have no CI" in line and "**yes**" not in line
    many = ticket_runs(lt=[89.2, 89.25, 89.3], sdt=[87.0, 87.02, 87.1], rr_small=[86.0, 86.1, 86.2],
                       rr_large=[87.0, 87.1, 87.04], dense=[88.3, 88.42, 88.33])
    v = V.verdict_table(many, 160, {**NEAR_REF, "mean": 88.0, "std": 0.05})
    t3 = V.table3(v, many).iloc[0].to_dict()
    assert t3["Jackpot Holm"] == 1 and "Jackpot tickets: **yes** (1 of 1" in report.network_headline(t3, v)
