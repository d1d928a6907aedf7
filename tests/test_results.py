"""Tables and verdicts from small synthetic run folders with known numbers."""
import json
from pathlib import Path

import pytest
import torch

import lthlib as L
from lthlib import results as R
from lthlib.models import build_model, load_profile


def fake_run(root: Path, setting, lr, seed, acc, sparsity=None, rnd=None, layer_sparsity=None, epochs=10):
    name = f"{setting}-lenet5-fashion_mnist-lr{lr:g}-s{seed}-sp{sparsity or 0:.3f}-r{rnd or 0}"
    d = root / "g" / "runs" / name
    d.mkdir(parents=True)
    ident = {"setting": setting, "model": "lenet5", "dataset": "fashion_mnist", "lr": lr, "epochs": epochs,
             "init_seed": seed, "data_seed": seed, "sparsity": sparsity, "round": rnd}
    (d / "config.json").write_text(json.dumps({"identity": ident, "experiment": {"seed": seed},
                                               "n_train_used": 100, "n_test_used": 50}))
    (d / "metrics.json").write_text(json.dumps({
        "final_test_acc": acc, "best_test_acc_secondary": acc + 0.5, "best_epoch_secondary": 7,
        "global_sparsity": sparsity or 0.0, "layer_sparsity": layer_sparsity or {}, "wall_time_s": 1.0,
        "device": "cpu", "threads": 1}))
    return d


def grid(tmp_path, gap, seeds=(1, 2, 3), dense=(90.0, 88.0), lt_base=89.0, noise=(0.0, 0.3, -0.2)):
    for i, s in enumerate(seeds):
        fake_run(tmp_path, "pretrain", 0.1, s, dense[0])
        fake_run(tmp_path, "pretrain", 0.01, s, dense[1])
        for lr in (0.1, 0.01):
            for sp in (0.2, 0.36):
                rr = lt_base - 1 + noise[i]
                fake_run(tmp_path, "lt_imp", lr, s, rr + gap + 0.1 * noise[i], sp, 1)
                fake_run(tmp_path, "rr_imp", lr, s, rr, sp, 1)
    return R.collect(tmp_path, "g")


def test_collect_one_row_per_finished_run_and_lists_unfinished(tmp_path):
    df, unfinished = grid(tmp_path, gap=2.0)
    (tmp_path / "g" / "runs" / "lt_omp-half-done").mkdir()
    df, unfinished = R.collect(tmp_path, "g")
    assert len(df) == 3 * 2 + 3 * 2 * 2 * 2 and unfinished == ["lt_omp-half-done"]
    assert {"setting", "model", "dataset", "lr", "epochs", "seed", "sparsity", "final_acc", "best_acc",
            "wall_time_s"} <= set(df.columns)


def test_lt_beating_rr_by_2_points_at_3_seeds_passes_c2(tmp_path):
    df, _ = grid(tmp_path, gap=2.0)
    v = R.verdicts(df)
    assert len(v) == 4 and v["C2 beats RR"].all()
    row = v[(v["lr"] == 0.01) & (v["sparsity"] == 0.2)].iloc[0]
    assert row["n_seeds"] == 3 and row["gap LT-RR"] == pytest.approx(2.0, abs=0.05)
    assert row["p (paired)"] < 0.01
    # lt = 88 + gap (+noise) = ~90 at both lrs: matches dense 88 at lr 0.01 and dense best 90 only ~barely
    assert bool(row["C1 matching"]) and row["dense same lr"] == 88.0 and row["dense best lr"] == 90.0


def test_equal_accuracies_do_not_pass_c2(tmp_path):
    df, _ = grid(tmp_path, gap=0.0, noise=(0.0, 0.0, 0.0))
    v = R.verdicts(df)
    assert not v["C2 beats RR"].any() and not v["wins"].any()
    lines = R.verdict_summary(v)
    assert any("lr 0.1, IMP: no sparsity passes C2" in l for l in lines)
    assert all("[3 paired seeds]" in l for l in lines)


def test_c1_and_c3_follow_the_dense_references(tmp_path):
    df, _ = grid(tmp_path, gap=0.5, dense=(92.0, 89.0), lt_base=90.0, noise=(0.0, 0.0, 0.0))
    v = R.verdicts(df)
    low = v[v["lr"] == 0.01]  # LT ~89.5 >= dense(0.01)=89 but < best dense 92
    assert low["C1 matching"].all() and not low["C3 jackpot"].any() and not low["wins"].any()
    assert R.verdicts(df, tol=3.0)["C3 jackpot"].all()


def test_one_seed_cannot_pass_c2(tmp_path):
    df, _ = grid(tmp_path, gap=5.0, seeds=(1,))
    v = R.verdicts(df)
    assert (v["n_seeds"] == 1).all() and not v["C2 beats RR"].any()


def test_completeness_counts_missing_runs(tmp_path):
    df, unfinished = grid(tmp_path, gap=1.0)
    exp = L.make_experiment(None, lrs=[0.1, 0.01], seeds=[1, 2, 3], imp_rounds=2, sparsities=[0.5])
    c = R.completeness(exp, df, unfinished).set_index("setting")
    assert c.loc["dense", "missing"] == 0 and c.loc["LT-IMP", "expected runs"] == 12
    assert c.loc["LT-OMP", "missing"] == 6


def test_layerwise_table_picks_the_masks_nearest_the_asked_sparsity(tmp_path):
    fake_run(tmp_path, "lt_imp", 0.1, 1, 80, 0.59, 4, {"conv2.weight": 0.3, "fc1.weight": 0.7})
    fake_run(tmp_path, "lt_omp", 0.1, 1, 80, 0.59, None, {"conv2.weight": 0.2, "fc1.weight": 0.8})
    df, _ = R.collect(tmp_path, "g")
    t = R.layerwise_table(df, 0.1, 1, [0.59, 0.9])
    assert len(t) == 4 and set(t["mask"]) == {"IMP", "OMP"}
    assert t[(t["mask"] == "OMP") & (t["layer"] == "fc1.weight")]["sparsity (%)"].iloc[0] == pytest.approx(80)


def test_weight_correlation_is_one_for_unchanged_weights(tmp_path):
    d = fake_run(tmp_path, "pretrain", 0.1, 1, 80)
    state = build_model("lenet5", 1, 10, 28, init_seed=0).state_dict()
    torch.save(state, d / "init.pt")
    torch.save(state, d / "final.pt")
    df, _ = R.collect(tmp_path, "g")
    wc = R.weight_correlation(df, 0.8)
    assert set(wc["layer"]) == set(load_profile("lenet5")) | {"(global)"}
    assert (wc["pearson r"] > 0.999999).all() and (wc["top-k overlap"] == 1.0).all()
    assert wc["chance overlap"].iloc[0] == pytest.approx(0.2, abs=1e-3)


def test_report_figures_render(tmp_path):
    df, _ = grid(tmp_path, gap=1.0)
    fig = R.plot_accuracy_vs_sparsity(df, "lenet5", "fashion_mnist")
    R.save_figure(fig, tmp_path / "fig", "acc")
    assert (tmp_path / "fig" / "acc.png").stat().st_size > 10_000 and (tmp_path / "fig" / "acc.svg").exists()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("LT-IMP (n=3)" in l for l in labels) and any("dense, lr 0.1" in l for l in labels)
