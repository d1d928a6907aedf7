"""Collecting runs, which of them a grid counts, the best dense model of the full schedule, the paper's
verdicts on a grid's runs, the LT-RR gaps, pooling other grids for the training-length table, the
premise check, the layerwise masks, the θ0-θT correlation and the correlation indicator R_p -- from run
folders written straight to disk with known numbers (tests/fakeruns.py)."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from fakeruns import experiment, fake_run, lt_rr_grid, stale_copy, write_weights
from lthlib import results as R
from lthlib.models import build_model, load_profile


def gaps_of(exp):
    return R.lt_rr_gaps(R.gather(exp).counted)


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
            "data_order", "code_version", "tf32", "amp"} <= set(df.columns)


def test_a_run_made_with_other_parameters_is_not_counted_and_says_why(tmp_path):
    exp = experiment(tmp_path, sparsities=[0.36], settings=["pretrain", "lt_omp", "rr_omp"])
    for s in exp.seeds:
        fake_run(exp, "pretrain", 0.01, s, 88.0)
        fake_run(exp, "lt_omp", 0.01, s, 84.0 + 0.1 * s, sparsity=0.36)
        fake_run(exp, "rr_omp", 0.01, s, 83.0, sparsity=0.36)
    before = gaps_of(exp).iloc[0]
    run = next((tmp_path / "g" / "runs").glob("lt_omp-*-s1-*"))
    stale = stale_copy(run, acc=10.0, momentum=0.5)
    c = R.gather(exp)
    assert stale.name in set(c.not_counted["run"]) and stale.name not in set(c.counted["run"])
    why = c.not_counted.set_index("run").loc[stale.name, "differs"]
    assert "momentum: 0.5 (now 0.9)" in why
    after = gaps_of(exp).iloc[0]
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


def test_a_fresh_order_grid_counts_its_dense_runs(tmp_path):
    """data_order: fresh changes the sparse runs only; the dense runs the engine makes for that grid (with
    the replay identity) are counted, so the premise check and ④ are filled."""
    exp = experiment(tmp_path, data_order="fresh")
    lt_rr_grid(exp, gap=2.0)
    c = R.gather(exp)
    assert not len(c.not_counted) and set(c.counted["setting"]) == {"pretrain", "lt_imp", "rr_imp"}
    assert (c.counted["setting"] == "pretrain").sum() == 6
    assert R.premise(R.dense_by_lr(c.counted))["status"].iloc[0] != "cannot be checked (one lr)"
    assert R.ticket_verdicts(c.counted, None, exp)["c4"].notna().all()


def test_a_real_dense_run_of_a_fresh_order_grid_is_counted(tiny_exp):
    """The identity the engine really writes for a fresh-order grid's dense run is the one the report counts."""
    import lthlib as L
    exp = tiny_exp(epochs=1, data_order="fresh", settings=["pretrain"])
    pre = L.pretrain(exp)
    c = R.gather(exp)
    assert list(c.counted["run"]) == [pre.name] and not len(c.not_counted)


# ----------------------------------------------------------------------------- the best dense model, full schedule
def test_the_best_dense_model_is_missing_without_a_full_schedule_dense_run(tmp_path):
    exp = experiment(tmp_path, full_epochs=40)
    lt_rr_grid(exp, gap=2.0, dense=(80.0, 70.0))  # short-schedule dense runs exist: never a stand-in
    c = R.gather(exp)
    assert R.best_dense_full_schedule(c.everything, exp) is None
    v = R.ticket_verdicts(c.counted, None, exp)
    assert v["c5"].isna().all() and (v["c5 result"] == "not evaluated").all()
    text = R.reference_summary(None, exp)
    assert "Best dense model (full schedule) missing" in text and "40-epoch" in text and "⑤" in text


def test_the_best_dense_model_is_the_best_lr_full_schedule_dense_model_of_the_pooled_grids(tmp_path):
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
    pool = R.pooled_runs(c.everything, exp, [exp, full, fresh, odd])
    ref = R.best_dense_full_schedule(pool.runs, exp)
    assert ref["lr"] == 0.1 and ref["epochs"] == 40 and ref["mean"] == pytest.approx(92.5) and ref["n"] == 2
    assert ref["grids"] == ["long"]
    assert R.best_dense_full_schedule(R.pooled_runs(c.everything, exp, [exp]).runs, exp) is None  # not pooled
    assert "best lr 0.1 with the full 40-epoch schedule, 92.50%" in R.reference_summary(ref, exp)


# ----------------------------------------------------------------------------- the paper's verdicts on a grid
def _ticket_grid(tmp_path, **kw):
    """lr 0.01 and 0.1, 3 seeds, LT-/RR-OMP at 0.832 (LT - RR = 2) and dense at both lrs; 160 epochs."""
    exp = experiment(tmp_path, epochs=160, sparsities=[0.832], settings=["pretrain", "lt_omp", "rr_omp"], **kw)
    for i, s in enumerate(exp.seeds):
        for lr, dense, lt in ((0.1, 92.0, 90.0), (0.01, 90.0, 89.8)):
            fake_run(exp, "pretrain", lr, s, dense + 0.1 * i)
            fake_run(exp, "lt_omp", lr, s, lt + 0.2 * i, sparsity=0.832)
            fake_run(exp, "rr_omp", lr, s, lt - 2.0 + 0.1 * i, sparsity=0.832)
    return exp


def test_ticket_verdicts_follow_the_paper_and_missing_inputs_are_not_evaluated(tmp_path):
    exp = _ticket_grid(tmp_path)
    c = R.gather(exp)
    ref = R.best_dense_full_schedule(c.everything, exp)
    v = R.ticket_verdicts(c.counted, ref, exp).set_index("lr")
    assert list(v["family"]) == ["OMP", "OMP"] and v["c1"].all() and v["c3"].all()
    assert v.loc[0.01, "c4"] and not v.loc[0.1, "c4"]  # 89.8 vs dense 90.0 - 0.5; 90.0 vs 92.0 - 0.5
    assert v["c2"].isna().all() and "no SDT runs" in v["c2 note"].iloc[0]  # no SDT in the grid: never False
    assert v.loc[0.01, "class"] == "not evaluated" and v.loc[0.1, "class"] == "none"
    assert "not in the paper: CIFAR-10's thresholds" in v["threshold note"].iloc[0]
    assert R.ticket_verdicts(c.counted, ref, exp, similar=3.0).set_index("lr").loc[0.1, "c4"]
    t3 = R.ticket_summary(R.ticket_verdicts(c.counted, ref, exp), c.counted).iloc[0]
    assert t3["candidates"] == 2 and t3["secondary prize?"] == "not evaluated" and "Fashion-MNIST" in t3["paper"]


def test_a_short_schedule_fails_condition_one(tmp_path):
    exp = _ticket_grid(tmp_path, full_epochs=320)
    c = R.gather(exp)
    v = R.ticket_verdicts(c.counted, None, exp)
    assert not v["c1"].any() and (v["class"] == "none").all() and (v["full epochs"] == 320).all()


def test_the_verdict_table_is_saved_with_every_column(tmp_path):
    exp = _ticket_grid(tmp_path)
    c = R.gather(exp)
    v = R.ticket_verdicts(c.counted, R.best_dense_full_schedule(c.everything, exp), exp)
    R.save_table(v, tmp_path / "verdicts.csv")
    back = pd.read_csv(tmp_path / "verdicts.csv")
    assert list(back.columns) == list(v.columns) and len(back) == 2
    assert {"c1", "c5", "c3 CI low", "c3 result", "class", "at the boundary"} <= set(back.columns)


# ----------------------------------------------------------------------------- LT vs RR at the same lr
def test_gap_ci_and_p_values_are_scipys_paired_t_test(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=2.0)
    c = R.gather(exp)
    row = gaps_of(exp).query("lr == 0.01 and sparsity == 0.2").iloc[0]
    lt = c.counted.query("setting == 'lt_imp' and lr == 0.01 and round == 1").sort_values("seed")["final_acc"]
    rr = c.counted.query("setting == 'rr_imp' and lr == 0.01 and round == 1").sort_values("seed")["final_acc"]
    ci = stats.ttest_rel(lt, rr).confidence_interval(0.95)
    assert row["n"] == 3 and row["gap"] == pytest.approx((lt.values - rr.values).mean())
    assert (row["CI low"], row["CI high"]) == pytest.approx((ci.low, ci.high))
    assert row["p"] == pytest.approx(stats.ttest_rel(lt, rr).pvalue)
    assert row["result"] == "LT beats RR" and row["note"] == ""


def test_equal_accuracies_are_not_resolved_and_a_worse_lt_is_rr_beats_lt(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=0.0, noise=(0.0, 0.5, -0.4))
    assert gaps_of(exp)["result"].str.startswith("not resolved at n = 3, CI [").all()
    exp2 = experiment(tmp_path / "b")
    lt_rr_grid(exp2, gap=-3.0)
    assert (gaps_of(exp2)["result"] == "RR beats LT").all()


def test_two_seeds_are_underpowered_and_one_seed_has_no_test(tmp_path):
    exp = experiment(tmp_path, seeds=[1, 2])
    lt_rr_grid(exp, gap=5.0)
    assert gaps_of(exp)["result"].str.endswith("(underpowered: n = 2)").all()
    exp1 = experiment(tmp_path / "one", seeds=[1])
    lt_rr_grid(exp1, gap=5.0)
    g1 = gaps_of(exp1)
    assert (g1["n"] == 1).all() and g1["CI low"].isna().all() and not g1["result"].str.startswith("LT beats").any()


def test_lt_and_rr_means_use_the_paired_seeds_of_an_incomplete_grid(tmp_path):
    """An incomplete grid (RR's seed 3 not finished): LT's and RR's means are over the seeds both have,
    so LT mean - RR mean is the printed gap, and n says how many (it was LT over 3 seeds, RR over 2)."""
    exp = experiment(tmp_path, sparsities=[0.36], settings=["pretrain", "lt_omp", "rr_omp"])
    for s, (lt, rr) in zip(exp.seeds, ((90.0, 88.0), (91.0, 88.6), (96.0, None))):
        fake_run(exp, "lt_omp", 0.1, s, lt, sparsity=0.36)
        if rr is not None:
            fake_run(exp, "rr_omp", 0.1, s, rr, sparsity=0.36)
    g = gaps_of(exp).iloc[0]
    assert g["n"] == 2 and g["LT n"] == 3 and g["RR n"] == 2
    assert g["LT mean"] == pytest.approx(90.5) and g["RR mean"] == pytest.approx(88.3)
    assert g["LT mean"] - g["RR mean"] == pytest.approx(g["gap"])
    assert g["note"] == "means and gap over the 2 seeds both have (LT 3 runs, RR 2)"


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
    # a small lr better by less than the spread does not make the premise fail either
    p = R.premise(dense_table(81.79, 81.8, std=1.0))
    assert p.iloc[0]["status"].startswith("not established")
    assert "perhaps not the paper's" in R.premise_summary(p)[0]
    assert R.premise(dense_table(82.0, 81.8, std=float("nan"), n=1)).iloc[0]["status"].startswith("cannot")


def test_the_premise_compares_with_the_normal_lr_not_a_very_large_one():
    """The paper's sweep goes past the normal lr (0.1) to a very large one (0.15). A dense model a bit
    worse at 0.15 than at 0.1 keeps the premise: the large side is the normal lr and above."""
    sweep = pd.DataFrame({"model": "resnet20", "dataset": "cifar10", "epochs": 160,
                          "lr": [0.001, 0.01, 0.05, 0.1, 0.15], "mean": [85.0, 91.0, 91.6, 92.4, 91.9],
                          "std": [0.2] * 5, "n": [3] * 5})
    p = R.premise(sweep, normal_lr=0.1).iloc[0]
    assert p["status"] == "holds" and p["large lr"] == 0.1 and p["other lr"] == 0.05
    assert p["gap"] == pytest.approx(0.8)
    assert "at lr 0.1 (the best at or above the normal lr 0.1) vs 91.60% at lr 0.05" in R.premise_summary(
        R.premise(sweep, normal_lr=0.1))[0]
    # without the normal lr the largest lr is the large one, and 0.15 < 0.1 breaks the premise
    assert R.premise(sweep).iloc[0]["status"] == "fails"
    # a very large lr that trains best is on the large side too
    best_at_015 = sweep.assign(mean=[85.0, 91.0, 91.6, 92.0, 92.6])
    assert R.premise(best_at_015, normal_lr=0.1).iloc[0]["large lr"] == 0.15
    assert R.premise(sweep[sweep["lr"] < 0.1], normal_lr=0.1).iloc[0]["status"] == \
        "cannot be checked (no dense run at or above the normal lr 0.1)"


def test_results_csv_carries_the_normal_lr_for_the_readme(tmp_path):
    exp = experiment(tmp_path / "out")
    fake_run(exp, "pretrain", 0.1, 1, 80.0)
    table = R.grid_table(R.gather(exp), normal_lr=0.05)
    assert len(table) == 1
    R.save_table(table, tmp_path / "results.csv")
    back = pd.read_csv(tmp_path / "results.csv")
    assert R.normal_lr_of(back) == 0.05 and R.normal_lr_of(back.drop(columns="normal_lr")) == 0.0
    with pytest.raises(ValueError, match="more than one normal_lr"):
        R.normal_lr_of(pd.concat([back, back.assign(normal_lr=0.1)]))


def test_dense_by_lr_reads_the_runs_and_the_correlation(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=1.0, dense=(90.0, 88.0))
    wc = pd.DataFrame({"lr": [0.1, 0.01], "seed": 1, "epochs": 10, "layer": "(global)", "pearson r": [0.3, 0.9]})
    d = R.dense_by_lr(R.gather(exp).counted, wc).set_index("lr")
    assert d.loc[0.1, "mean"] == 90.0 and d.loc[0.01, "n"] == 3 and d.loc[0.01, "θ0-θT pearson r"] == 0.9


# ----------------------------------------------------------------------------- pooling, length and data order
def test_length_table_pools_the_named_grids_and_both_data_orders(tmp_path):
    grids = [experiment(tmp_path, name=n, epochs=e, data_order=o)
             for n, e, o in (("e10", 10, "replay"), ("e40", 40, "replay"), ("e10f", 10, "fresh"))]
    for g in grids:
        lt_rr_grid(g, gap=g.epochs / 10)
    other = experiment(tmp_path, name="other", epochs=20, weight_decay=0.0)  # another recipe
    lt_rr_grid(other, gap=9.0)
    exp = grids[0]
    pool = R.pooled_runs(R.gather(exp).everything, exp, grids + [other])
    t = R.length_table(pool.runs)
    assert sorted(set(zip(t["epochs"], t["data_order"]))) == [(10, "fresh"), (10, "replay"), (40, "replay")]
    assert t.query("epochs == 40")["gap"].mean() == pytest.approx(4.0, abs=0.05)
    assert (t["n"] == 3).all()
    listed = pool.grids.set_index("grid")
    assert listed.loc["other", "runs pooled"] == 0 and listed.loc["other", "not pooled because"] == "another recipe"
    assert listed.loc["e10 (this grid)", "seeds"] == "1, 2, 3" and listed.loc["e40", "lrs"] == "0.01, 0.1"
    assert listed.loc["e40", "runs pooled"] == 30 and listed.loc["e40", "code versions"] == "v1 (30)"


def test_a_smoke_run_or_an_unnamed_grid_adds_no_point_to_the_length_table(tmp_path):
    """Before: every run under the output root with this recipe was pooled, whatever its grid, seeds or
    lrs, so a 1-epoch smoke run left in a grid's folder added an 'epochs 1' point silently."""
    e10, e40 = experiment(tmp_path, name="e10", epochs=10), experiment(tmp_path, name="e40", epochs=40)
    lt_rr_grid(e10, gap=1.0)
    lt_rr_grid(e40, gap=4.0)
    lt_rr_grid(e10.replace(epochs=1, seeds=[1]), gap=9.0)  # a smoke run in e10's own folder
    lt_rr_grid(experiment(tmp_path, name="adhoc", epochs=20), gap=7.0)  # a grid the report does not name
    everything = R.gather(e10).everything
    assert {1, 20} <= set(everything["epochs"])
    pool = R.pooled_runs(everything, e10, [e10, e40])
    t = R.length_table(pool.runs)
    assert sorted(set(t["epochs"])) == [10, 40] and (t["n"] == 3).all()
    assert list(pool.grids["grid"]) == ["e10 (this grid)", "e40"]


def _params_file(folder, name, epochs):
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodel: lenet5\ndataset: fashion_mnist\nepochs: {epochs}\nlrs: [0.1, 0.01]\n"
                    f"seeds: [1, 2, 3]\nimp_rounds: 2\nsparsities: [0.36]\n")
    return path


def test_pool_experiments_read_each_grids_params_file_and_name_the_others(tmp_path):
    out, params_dir = tmp_path / "out", tmp_path / "params"
    e10 = experiment(out, name="e10", epochs=10)
    for name, epochs in (("e10", 10), ("e40", 40), ("adhoc", 20)):
        fake_run(experiment(out, name=name, epochs=epochs), "pretrain", 0.1, 1, 90.0)
    _params_file(params_dir, "e40", 40)
    _params_file(params_dir, "e10", 99)  # this grid is always the report's own experiment, not reloaded
    exps, notes = R.pool_experiments(e10, None, {"out_root": str(out), "name": "x"}, params_dir)
    assert [(e.name, e.epochs, e.out_root) for e in exps] == [("e10", 10, str(out)), ("e40", 40, str(out))]
    assert notes == [f"grid `adhoc`: no params file in `{params_dir}/` names it; not pooled"]
    only, none = R.pool_experiments(e10, ["e40"], {"out_root": str(out)}, params_dir)
    assert [e.name for e in only] == ["e10", "e40"] and not none


# ----------------------------------------------------------------------------- layerwise, θ0 vs θT
def test_layerwise_table_picks_the_masks_nearest_the_asked_sparsity(tmp_path):
    exp = experiment(tmp_path, imp_rounds=4, sparsities=[0.59], seeds=[1])
    fake_run(exp, "lt_imp", 0.1, 1, 80, rnd=4, layer_sparsity={"conv2.weight": 0.3, "fc1.weight": 0.7})
    fake_run(exp, "lt_omp", 0.1, 1, 80, sparsity=0.59, layer_sparsity={"conv2.weight": 0.2, "fc1.weight": 0.8})
    t = R.layerwise_table(R.gather(exp).counted, 0.1, 1, [0.59, 0.9])
    assert len(t) == 4 and set(t["mask"]) == {"IMP", "OMP"} and set(t["global sparsity"]) == {"0.590"}
    assert t[(t["mask"] == "OMP") & (t["layer"] == "fc1.weight")]["sparsity (%)"].iloc[0] == pytest.approx(80)


def _state(seed):
    return build_model("lenet5", 1, 10, 28, init_seed=seed).state_dict()


def test_weight_correlation_is_one_for_unchanged_weights(tmp_path):
    d = fake_run(experiment(tmp_path), "pretrain", 0.1, 1, 80)
    write_weights(d, init=_state(0), final=_state(0))
    wc, skipped = R.weight_correlation(R.collect(tmp_path, "g")[0])
    assert set(wc["layer"]) == set(load_profile("lenet5")) | {"(global)"}
    assert (wc["pearson r"] > 0.999999).all() and skipped == []


def test_weight_correlation_skips_and_names_runs_without_readable_weights(tmp_path):
    """Before: a results-only dense run folder (no final.pt) made weight_correlation, so the report, crash."""
    exp = experiment(tmp_path)
    ok = fake_run(exp, "pretrain", 0.1, 1, 80)
    write_weights(ok, init=_state(0), final=_state(1))
    no_final = fake_run(exp, "pretrain", 0.1, 2, 80)
    write_weights(no_final, final=None)
    corrupt = fake_run(exp, "pretrain", 0.1, 3, 80)  # placeholder bytes: not a checkpoint
    wc, skipped = R.weight_correlation(R.collect(tmp_path, "g")[0])
    assert set(wc["seed"]) == {1} and len(wc) == len(load_profile("lenet5")) + 1
    assert skipped[0] == f"`{no_final.name}`: final.pt missing (a results-only run folder)"
    assert skipped[1].startswith(f"`{corrupt.name}`: ") and "corrupt" in skipped[1]
    empty, _ = R.weight_correlation(R.collect(tmp_path, "g")[0].iloc[1:])
    assert list(empty.columns) == ["lr", "seed", "epochs", "layer", "pearson r"]


# ----------------------------------------------------------------------------- the correlation indicator R_p
def test_correlation_indicator_against_a_hand_computation():
    """Two layers, p = 0.25, relative to the remaining weights. Layer a keeps 8 of 10 (k = 2): top |x| at
    {0, 2}, top |y| at {7, 0} (the pruned 8, 9 are large and must not count): overlap 1. Layer b keeps
    all 4 (k = 1): both tops at 1: overlap 1. R_p = (1 + 1) / (0.25 * (8 + 4)) = 2/3."""
    x = {"a": torch.tensor([9., 1, 8, 2, 3, 4, 5, 6, 100, 100]), "b": torch.tensor([[0.5, -3.], [1, 2]])}
    y = {"a": torch.tensor([7., 2, 3, 4, 5, 6, 1, -9, 50, 50]), "b": torch.tensor([[0.1, 4.], [-2, 0]])}
    m = {"a": torch.tensor([True] * 8 + [False] * 2), "b": torch.ones(2, 2, dtype=torch.bool)}
    assert R.correlation_indicator(x, y, m, 0.25) == pytest.approx(2 / 3)
    assert R.correlation_indicator(x, x, m, 0.25) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    big = {"a": torch.tensor(rng.normal(size=20000))}
    other = {"a": torch.tensor(rng.normal(size=20000))}
    keep = {"a": torch.tensor(rng.random(20000) < 0.3)}
    assert R.correlation_indicator(big, other, keep, 0.1) == pytest.approx(0.1, abs=0.02)  # chance: p


def test_the_nearest_omp_sparsity_is_used_and_said(tmp_path):
    exp = experiment(tmp_path, sparsities=[0.59, 0.8], seeds=[1])
    for s in exp.sparsities:
        fake_run(exp, "lt_omp", 0.1, 1, 80, sparsity=s)
    df = R.gather(exp).counted
    used, note = R.nearest_omp_sparsity(df, 0.832)
    assert used == 0.8 and "0.832 is not among the grid's OMP sparsities (0.590, 0.800)" in note and "0.800" in note
    assert R.nearest_omp_sparsity(df, 0.59) == (0.59, "R_p at sparsity 0.590.")
    assert R.nearest_omp_sparsity(df.iloc[:0], 0.59)[0] is None


def _masked(state, mask):
    return {k: v * mask[k] if k in mask else v for k, v in state.items()}


def test_indicator_table_reads_the_dense_omp_and_rr_files_and_skips_missing_ones(tmp_path):
    exp = experiment(tmp_path, sparsities=[0.8], settings=["pretrain", "lt_omp", "rr_omp"], seeds=[1, 2, 3])
    theta0, thetaT, fresh = _state(0), _state(1), _state(2)
    mask = {n: torch.rand(theta0[n].shape, generator=torch.Generator().manual_seed(3)) > 0.8
            for n in load_profile("lenet5")}
    for s in exp.seeds:
        write_weights(fake_run(exp, "pretrain", 0.1, s, 90), init=theta0, final=thetaT if s != 3 else None)
        write_weights(fake_run(exp, "lt_omp", 0.1, s, 88, sparsity=0.8), mask=mask)
        rr = fake_run(exp, "rr_omp", 0.1, s, 87, sparsity=0.8)
        write_weights(rr, init=_masked(fresh, mask) if s == 1 else None)
    t, skipped = R.indicator_table(R.gather(exp).counted, 0.8, 0.1)
    assert list(t["seed"]) == [1, 2]  # seed 3: the dense run has no final.pt
    r1 = t.iloc[0]
    assert r1["R_p(θ0⊙m, θT⊙m)"] == pytest.approx(R.correlation_indicator(theta0, thetaT, mask, 0.1))
    assert r1["R_p(θ0'⊙m, θT⊙m)"] == pytest.approx(R.correlation_indicator(fresh, thetaT, mask, 0.1))
    assert np.isnan(t.iloc[1]["R_p(θ0'⊙m, θT⊙m)"])  # seed 2: RR-OMP without init.pt
    assert len(skipped) == 2 and "init.pt missing" in skipped[0] and "final.pt missing" in skipped[1]
    assert R.indicator_table(R.gather(exp).counted, None)[0].empty


def test_runs_at_a_sparse_training_lr_are_counted_by_their_plans(tmp_path):
    """A grid with sparse_lrs (Table 4): its subnetwork runs at a sparse lr, identified by their plans
    (pretraining lr in the identity), are counted; the same run without its pretraining lr is not."""
    import json as _json
    from lthlib import settings as protocol
    exp = experiment(tmp_path, lrs=[0.1], seeds=[1], sparse_lrs=[0.01, 0.05], settings=["pretrain", "lt_imp"])
    fake_run(exp, "pretrain", 0.1, 1, 90.0)
    for lr in (0.01, 0.05):
        plan = protocol.plan_for(exp.replace(lr=lr, seed=1), "lt_imp", 1, None, pretrain_lr=0.1)
        rd = plan.folder
        rd.path.mkdir(parents=True)
        rd.config.write_text(_json.dumps({"identity": plan.identity, "experiment": plan.cell.as_dict(),
                                          "n_train_used": 100, "n_test_used": 50}, default=str))
        rd.metrics.write_text(_json.dumps({"final_test_acc": 80.0, "global_sparsity": plan.sparsity,
                                           "layer_sparsity": {}, "wall_time_s": 1.0}))
        for f in (rd.init, rd.final, rd.history, rd.mask):
            f.write_bytes(b"placeholder")
    c = R.gather(exp)
    assert sorted(c.counted["lr"]) == [0.01, 0.05, 0.1] and not len(c.not_counted)


def test_the_sparse_training_lr_table_has_the_papers_shape_and_numbers(tmp_path):
    """Table 4: per pretraining lr and sparse-training lr, dense and LT-IMP / LT-OMP at the sparsity nearest
    0.914 (mean ± std, n); the paper's numbers beside ours for ResNet-20 on CIFAR-10 only."""
    exp = experiment(tmp_path, lrs=[0.1], seeds=[1, 2], sparse_lrs=[0.01, 0.05], imp_rounds=2,
                     sparsities=[0.36], settings=["pretrain", "lt_imp", "lt_omp"])
    for seed, d in ((1, 91.0), (2, 93.0)):
        fake_run(exp, "pretrain", 0.1, seed, d)
        for lr, base in ((0.01, 80.0), (0.05, 85.0)):
            fake_run(exp, "lt_imp", lr, seed, base + seed, rnd=2, pretrain_lr=0.1)   # 0.36: the nearest to 0.914
            fake_run(exp, "lt_imp", lr, seed, 10.0, rnd=1, pretrain_lr=0.1)          # 0.2: not shown
            fake_run(exp, "lt_omp", lr, seed, base - seed, sparsity=0.36, pretrain_lr=0.1)
    t, note = R.sparse_lr_table(R.gather(exp).counted, exp)
    assert list(t["sparse-training lr"]) == [0.01, 0.05] and set(t["pretraining lr"]) == {0.1}
    assert list(t["dense"]) == ["92.00 ± 1.41 (n=2)"] * 2
    assert list(t["LT-IMP"]) == ["81.50 ± 0.71 (n=2)", "86.50 ± 0.71 (n=2)"]
    assert list(t["LT-OMP"]) == ["78.50 ± 0.71 (n=2)", "83.50 ± 0.71 (n=2)"]
    assert t["paper LT-IMP / LT-OMP"].isna().all() and "s = 0.360" in note   # lenet5 is not in Table 4
    paper = experiment(tmp_path / "p", model="resnet20", dataset="cifar10", lrs=[0.1], seeds=[1],
                       sparse_lrs=[0.01, 0.05], settings=["pretrain", "lt_imp", "lt_omp"])
    fake_run(paper, "pretrain", 0.1, 1, 92.0)
    t, _ = R.sparse_lr_table(R.gather(paper).counted, paper)
    assert list(t["paper LT-IMP / LT-OMP"]) == ["85.3 / 85.8", "86.6 / 87.4"] and set(t["paper dense"]) == {92.4}
    assert list(t["LT-IMP"]) == ["—", "—"]
    assert R.sparse_lr_table(R.gather(exp).counted, exp.replace(sparse_lrs=[]))[0].empty
