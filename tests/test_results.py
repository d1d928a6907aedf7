"""Collecting runs, which of them a grid counts, C3's reference, the premise check, verdicts and the
training-length table -- from run folders written straight to disk with known numbers (tests/fakeruns.py)."""
import pandas as pd
import pytest
import torch
from scipy import stats

from fakeruns import experiment, fake_run, lt_rr_grid, stale_copy
from lthlib import results as R
from lthlib.models import build_model, load_profile


def verdicts_of(exp):
    c = R.gather(exp)
    return R.verdicts(c.counted, R.c3_reference(c.everything, exp))


# ----------------------------------------------------------------------------- collecting, counting
def test_collect_one_row_per_finished_run_and_lists_unfinished_and_broken(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=2.0)
    (tmp_path / "g" / "runs" / "lt_omp-half-done").mkdir()
    broken = fake_run(exp, "lt_omp", 0.1, 1, 80.0, sparsity=0.36)
    (broken / "metrics.json").write_text("{}")
    results_only = fake_run(exp, "lt_omp", 0.1, 2, 81.0, sparsity=0.36)
    (results_only / "final.pt").unlink()  # copied back without weights: its results still count
    df, unfinished = R.collect(tmp_path, "g")
    assert len(df) == 3 * 2 + 3 * 2 * 2 * 2 + 1 and results_only.name in set(df["run"])
    assert unfinished[0] == "lt_omp-half-done"
    assert unfinished[1].startswith(broken.name) and "metrics.json lacks" in unfinished[1]
    assert {"setting", "model", "dataset", "lr", "epochs", "seed", "sparsity", "final_acc", "best_acc",
            "data_order", "code_version"} <= set(df.columns)


def test_a_run_made_with_other_parameters_is_not_counted_and_says_why(tmp_path):
    exp = experiment(tmp_path, sparsities=[0.36], settings=["pretrain", "lt_omp", "rr_omp"])
    for s in exp.seeds:
        fake_run(exp, "pretrain", 0.01, s, 88.0)
        fake_run(exp, "lt_omp", 0.01, s, 84.0 + 0.1 * s, sparsity=0.36)
        fake_run(exp, "rr_omp", 0.01, s, 83.0, sparsity=0.36)
    before = verdicts_of(exp).iloc[0]
    run = next((tmp_path / "g" / "runs").glob("lt_omp-*-s1-*"))
    stale = stale_copy(run, acc=10.0, momentum=0.5)
    c = R.gather(exp)
    assert stale.name in set(c.not_counted["run"]) and stale.name not in set(c.counted["run"])
    why = c.not_counted.set_index("run").loc[stale.name, "differs"]
    assert "momentum: 0.5 (now 0.9)" in why
    after = verdicts_of(exp).iloc[0]
    assert after["n"] == before["n"] == 3 and after["LT mean"] == pytest.approx(before["LT mean"])


def test_runs_outside_the_grids_cells_are_not_counted(tmp_path):
    exp = experiment(tmp_path, seeds=[1, 2])
    fake_run(exp, "pretrain", 0.1, 1, 90.0)
    fake_run(exp, "pretrain", 0.1, 7, 90.0)  # seed no longer in the grid
    fake_run(exp, "pretrain", 0.5, 1, 90.0)  # lr no longer in the grid
    fake_run(exp.replace(imp_rounds=3), "lt_imp", 0.1, 1, 80.0, rnd=3)  # round beyond imp_rounds
    fake_run(exp.replace(imp_rate=0.5), "lt_imp", 0.1, 1, 80.0, rnd=1)  # sparsity of another imp_rate
    fake_run(exp.replace(random_mode="global"), "random_prune", 0.1, 1, 70.0, sparsity=0.36)
    c = R.gather(exp)
    assert list(c.counted["seed"]) == [1] and len(c.not_counted) == 5
    why = " | ".join(c.not_counted["differs"])
    for text in ("seed: 7 is not in the grid's seeds", "lr: 0.5 is not in the grid's lrs", "round: 3 is beyond",
                 "sparsity: 0.5 (now 0.2)", "random_global"):
        assert text in why, text


# ----------------------------------------------------------------------------- C3's reference
def test_c3_reference_is_missing_without_a_full_schedule_dense_run(tmp_path):
    exp = experiment(tmp_path, full_epochs=40)
    lt_rr_grid(exp, gap=2.0, dense=(80.0, 70.0))  # short-schedule dense runs exist: never a stand-in
    c = R.gather(exp)
    assert R.c3_reference(c.everything, exp) is None
    v = R.verdicts(c.counted, None)
    assert v["C3 jackpot"].isna().all() and v["wins"].isna().all() and v["C2 beats RR"].all()
    assert all("C3 not evaluated" in line for line in R.verdict_summary(v))
    assert "C3 reference missing" in R.reference_summary(None, exp) and "40-epoch" in R.reference_summary(None, exp)


def test_c3_reference_is_the_best_lr_full_schedule_dense_model_of_any_grid(tmp_path):
    exp = experiment(tmp_path, full_epochs=40)
    lt_rr_grid(exp, gap=2.0, dense=(80.0, 70.0))
    full = experiment(tmp_path, name="long", epochs=40)
    for s in (1, 2):
        fake_run(full, "pretrain", 0.1, s, 91.0 + s)
        fake_run(full, "pretrain", 0.01, s, 89.0)
    fresh = experiment(tmp_path, name="longfresh", epochs=40, data_order="fresh")  # the same dense training
    for s in (1, 2):
        fake_run(fresh, "pretrain", 0.1, s, 91.0 + s)
    odd = experiment(tmp_path, name="odd", epochs=40, momentum=0.5)  # another recipe: not a reference
    fake_run(odd, "pretrain", 0.1, 1, 99.0)
    c = R.gather(exp)
    ref = R.c3_reference(c.everything, exp)
    assert ref["lr"] == 0.1 and ref["epochs"] == 40 and ref["mean"] == pytest.approx(92.5) and ref["n"] == 2
    assert ref["grids"] == ["long"]
    v = R.verdicts(c.counted, ref)  # LT ~90 < 92.5: no jackpot; with tol 3 it is
    assert not v["C3 jackpot"].any() and v["dense best lr (full schedule)"].eq(92.5).all()
    assert R.verdicts(c.counted, ref, tol=3.0)["C3 jackpot"].all()


# ----------------------------------------------------------------------------- verdicts
def test_gap_ci_and_p_values_are_scipys_paired_t_test(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=2.0)
    c = R.gather(exp)
    row = verdicts_of(exp).query("lr == 0.01 and sparsity == 0.2").iloc[0]
    lt = c.counted.query("setting == 'lt_imp' and lr == 0.01 and round == 1").sort_values("seed")["final_acc"]
    rr = c.counted.query("setting == 'rr_imp' and lr == 0.01 and round == 1").sort_values("seed")["final_acc"]
    ci = stats.ttest_rel(lt, rr).confidence_interval(0.95)
    assert row["n"] == 3 and row["gap"] == pytest.approx((lt.values - rr.values).mean())
    assert (row["CI low"], row["CI high"]) == pytest.approx((ci.low, ci.high))
    assert row["p LT>RR"] == pytest.approx(stats.ttest_rel(lt, rr, alternative="greater").pvalue)
    assert row["result"] == "LT beats RR" and row["C2 beats RR"]


def test_equal_accuracies_are_not_resolved_and_a_worse_lt_is_rr_beats_lt(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=0.0, noise=(0.0, 0.5, -0.4))
    v = verdicts_of(exp)
    assert v["result"].str.startswith("not resolved at n = 3, CI [").all() and not v["C2 beats RR"].any()
    assert any("lr 0.1, IMP: LT beats RR at 0 of 2 sparsities" in line for line in R.verdict_summary(v))
    exp2 = experiment(tmp_path / "b")
    lt_rr_grid(exp2, gap=-3.0)
    assert (verdicts_of(exp2)["result"] == "RR beats LT").all()


def test_two_seeds_are_underpowered_and_one_seed_has_no_test(tmp_path):
    exp = experiment(tmp_path, seeds=[1, 2])
    lt_rr_grid(exp, gap=5.0)
    v = verdicts_of(exp)
    assert v["result"].str.endswith("(underpowered: n = 2)").all()
    assert all("underpowered: n = 2" in line for line in R.verdict_summary(v))
    exp1 = experiment(tmp_path / "one", seeds=[1])
    lt_rr_grid(exp1, gap=5.0)
    v1 = verdicts_of(exp1)
    assert (v1["n"] == 1).all() and not v1["C2 beats RR"].any() and v1["CI low"].isna().all()


def test_c1_follows_the_same_lr_dense_model(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=0.5, dense=(92.0, 89.0), lt_base=90.0, noise=(0.0, 0.0, 0.0))
    v = verdicts_of(exp)  # LT 89.5: >= dense 89 at lr 0.01, < dense 92 at lr 0.1
    assert v.query("lr == 0.01")["C1 matching"].all() and not v.query("lr == 0.1")["C1 matching"].any()
    assert not v.query("lr == 0.01")["C3 jackpot"].any()  # the best dense (92, this grid's full schedule)


def test_imp_and_omp_points_at_one_sparsity_share_a_label(tmp_path):
    exp = experiment(tmp_path, imp_rounds=4, sparsities=[0.59], seeds=[1, 2])
    for s in exp.seeds:
        fake_run(exp, "lt_imp", 0.1, s, 80.0, rnd=4)  # 1 - 0.8^4 = 0.5904
        fake_run(exp, "rr_imp", 0.1, s, 79.0, rnd=4)
        fake_run(exp, "lt_omp", 0.1, s, 80.0, sparsity=0.59)
        fake_run(exp, "rr_omp", 0.1, s, 79.0, sparsity=0.59)
    g = R.lt_rr_gaps(R.gather(exp).counted)
    assert sorted(g["family"]) == ["IMP", "OMP"] and set(g["sparsity"]) == {0.59}


# ----------------------------------------------------------------------------- the premise
def dense_table(acc_large, acc_small, std=0.3, n=3):
    return pd.DataFrame({"model": "resnet20", "dataset": "fashion_mnist", "epochs": 8, "lr": [0.1, 0.01],
                         "mean": [acc_large, acc_small], "std": [std, std], "n": [n, n]})


def test_premise_holds_when_the_large_lr_is_better_by_more_than_the_spread():
    p = R.premise(dense_table(84.0, 81.8)).iloc[0]
    assert p["status"] == "holds" and p["best lr"] == 0.1 and p["gap"] == pytest.approx(2.2)
    assert R.premise_summary(R.premise(dense_table(84.0, 81.8)))[0].startswith("**Premise holds**")


def test_premise_fails_when_the_small_lr_is_better_and_the_report_says_so():
    p = R.premise(dense_table(79.42, 82.74))
    assert p.iloc[0]["status"] == "fails" and p.iloc[0]["best lr"] == 0.01
    line = R.premise_summary(p)[0]
    assert line.startswith("**Premise fails**") and "not the paper's" in line and "-3.32" in line


def test_premise_within_the_seed_spread_is_not_established():
    assert R.premise(dense_table(82.0, 81.8, std=0.5)).iloc[0]["status"].startswith("not established")
    assert R.premise(dense_table(82.0, 81.8, std=float("nan"), n=1)).iloc[0]["status"].startswith("cannot")


def test_dense_by_lr_reads_the_runs_and_the_correlation(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=1.0, dense=(90.0, 88.0))
    wc = pd.DataFrame({"lr": [0.1, 0.01], "seed": 1, "epochs": 10, "layer": "(global)", "pearson r": [0.3, 0.9]})
    d = R.dense_by_lr(R.gather(exp).counted, wc).set_index("lr")
    assert d.loc[0.1, "mean"] == 90.0 and d.loc[0.01, "n"] == 3 and d.loc[0.01, "θ0-θT pearson r"] == 0.9


# ----------------------------------------------------------------------------- length and data order
def test_length_table_pools_the_tiers_grids_and_both_data_orders(tmp_path):
    for name, epochs, order in (("e10", 10, "replay"), ("e40", 40, "replay"), ("e10f", 10, "fresh")):
        lt_rr_grid(experiment(tmp_path, name=name, epochs=epochs, data_order=order), gap=epochs / 10)
    lt_rr_grid(experiment(tmp_path, name="other", epochs=20, weight_decay=0.0), gap=9.0)  # another recipe
    exp = experiment(tmp_path, name="e10")
    t = R.length_table(R.gather(exp).everything, exp)
    assert sorted(set(zip(t["epochs"], t["data_order"]))) == [(10, "fresh"), (10, "replay"), (40, "replay")]
    assert t.query("epochs == 40")["gap"].mean() == pytest.approx(4.0, abs=0.05)
    assert (t["n"] == 3).all()


# ----------------------------------------------------------------------------- layerwise, θ0 vs θT
def test_layerwise_table_picks_the_masks_nearest_the_asked_sparsity(tmp_path):
    exp = experiment(tmp_path, imp_rounds=4, sparsities=[0.59], seeds=[1])
    fake_run(exp, "lt_imp", 0.1, 1, 80, rnd=4, layer_sparsity={"conv2.weight": 0.3, "fc1.weight": 0.7})
    fake_run(exp, "lt_omp", 0.1, 1, 80, sparsity=0.59, layer_sparsity={"conv2.weight": 0.2, "fc1.weight": 0.8})
    t = R.layerwise_table(R.gather(exp).counted, 0.1, 1, [0.59, 0.9])
    assert len(t) == 4 and set(t["mask"]) == {"IMP", "OMP"} and set(t["global sparsity"]) == {"0.590"}
    assert t[(t["mask"] == "OMP") & (t["layer"] == "fc1.weight")]["sparsity (%)"].iloc[0] == pytest.approx(80)


def test_weight_correlation_is_one_for_unchanged_weights(tmp_path):
    d = fake_run(experiment(tmp_path), "pretrain", 0.1, 1, 80)
    state = build_model("lenet5", 1, 10, 28, init_seed=0).state_dict()
    torch.save(state, d / "init.pt")
    torch.save(state, d / "final.pt")
    wc = R.weight_correlation(R.collect(tmp_path, "g")[0], 0.8)
    assert set(wc["layer"]) == set(load_profile("lenet5")) | {"(global)"}
    assert (wc["pearson r"] > 0.999999).all() and (wc["top-k overlap"] == 1.0).all()
    assert wc["chance overlap"].iloc[0] == pytest.approx(0.2, abs=1e-3)
