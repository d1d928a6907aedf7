"""The figures as a reader sees them: no legend over data (measured by ``plots.legend_overlaps`` on
figures drawn from made-up runs), no figure wider than a 1280 px page, the layerwise panels tall
enough to read, one line of text where a trend has one point, and the setting notebooks' own table
and figures."""
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from fakeruns import experiment, fake_run, lt_rr_grid
from lthlib import plots as P
from lthlib import results as R
from lthlib.runs import RunDir

matplotlib.use("Agg")
plt = P.plt
PAGE = 1234  # the text column of a 1280 px report page, in px (the notebook draws figures at 100 dpi)


# ----------------------------------------------------------------------------- the overlap measure itself
def _line_figure():
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.linspace(0, 10, 50)
    ax.plot(x, np.sin(x) + 5, label="a line across the whole axes")
    ax.set_ylim(3, 7)
    return fig, ax


def test_a_legend_over_a_line_is_found_and_one_in_a_free_corner_is_not():
    fig, ax = _line_figure()
    ax.legend(loc="center")
    found = P.legend_overlaps(fig)
    assert len(found) == 1 and "covers Line2D 'a line across the whole axes'" in found[0]
    fig2, ax2 = plt.subplots(figsize=(5, 3))
    ax2.plot([0, 1, 2], [0, 0.1, 0.2], "o-", label="low")
    ax2.set(xlim=(0, 10), ylim=(0, 10))
    ax2.legend(loc="upper right")
    assert P.legend_overlaps(fig2) == []
    plt.close("all")


def test_bars_bands_markers_and_error_bars_under_a_legend_are_found():
    for draw in (lambda ax: ax.bar([0, 1, 2], [9, 9, 9], width=0.9, label="bars"),
                 lambda ax: ax.fill_between([0, 2], [0, 0], [10, 10], label="band"),
                 lambda ax: ax.plot([1.0], [5.0], "o", ms=12, ls="none", label="one marker"),
                 lambda ax: ax.errorbar([1.0], [5.0], yerr=[4.0], ls="none", label="error bar"),
                 lambda ax: ax.scatter([1.0], [5.0], label="points")):
        fig, ax = plt.subplots(figsize=(4, 3))
        draw(ax)
        ax.set(xlim=(-0.5, 2.5), ylim=(0, 10))
        ax.legend(loc="center")
        assert P.legend_overlaps(fig), draw
        plt.close(fig)


def test_data_outside_the_view_and_figure_legends_below_are_free_space():
    fig, ax = _line_figure()
    ax.plot([0, 10], [100, 100], label="clipped: above the view")
    ax.legend(loc="upper left", bbox_to_anchor=(0, 0.99))  # over the clipped line only
    assert not any("clipped" in f for f in P.legend_overlaps(fig))
    fig2, ax2 = _line_figure()
    fig2.tight_layout()
    P._legend_below(fig2, [ax2])
    assert P.legend_overlaps(fig2) == [] and ax2.get_legend() is None and len(fig2.legends) == 1
    fig3, ax3 = _line_figure()
    fig3.legend(["x"], loc="lower center", bbox_to_anchor=(0.5, 0.0))  # over the x axis labels
    assert any("its x axis" in f for f in P.legend_overlaps(fig3))
    plt.close("all")


# ----------------------------------------------------------------------------- every figure of a made-up grid
@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A made-up LeNet grid at two lrs and three seeds: dense, LT/RR IMP (2 rounds) and OMP (s 0.36), with
    layer sparsities and training histories; pooled with a 40-epoch and a 'fresh' data-order copy."""
    root = tmp_path_factory.mktemp("figs")
    grids = [experiment(root, name=n, epochs=e, data_order=o)
             for n, e, o in (("g", 10, "replay"), ("e40", 40, "replay"), ("fresh", 10, "fresh"))]
    layers = {f"layer{i}.conv{j}.weight": 0.1 * i + 0.05 * j for i in range(1, 5) for j in (1, 2)}
    for k, g in enumerate(grids):
        lt_rr_grid(g, gap=1.0 + k)
        for s in g.seeds:
            for lr in g.lrs:
                fake_run(g, "lt_omp", lr, s, 88.0 - 0.2 * s, sparsity=0.36, layer_sparsity=layers)
                fake_run(g, "rr_omp", lr, s, 87.0 + 0.1 * s, sparsity=0.36)
    for run in (root / "g" / "runs").iterdir():
        epochs = np.arange(1, 11)
        pd.DataFrame({"epoch": epochs, "test_acc": 60 + 3 * epochs, "train_loss": 2.0 / epochs}).to_csv(
            run / "history.csv", index=False)
    counted = R.gather(grids[0]).counted
    lengths = R.length_table(R.pooled_runs(R.gather(grids[0]).everything, grids[0], grids).runs)
    return root, grids[0], counted, lengths


def _layerwise(root, exp, counted, lengths):
    t = pd.DataFrame([{"global sparsity": "0.360", "mask": m, "layer": f"layer{i}.conv{j}.weight",
                       "sparsity (%)": 30.0 + 5 * i} for m in ("IMP", "OMP", "random")
                      for i in range(1, 5) for j in (1, 2)])
    return P.plot_layerwise(t, "lenet5, lr 0.1, seed 1")


def _init_vs_trained(*_):
    layers = enumerate(["a", "b", "(global)"])
    return P.plot_weight_correlation(pd.DataFrame([{"lr": lr, "seed": s, "epochs": 10, "layer": layer,
                                                    "pearson r": 0.9 - lr - 0.01 * i}
                                                   for i, layer in layers for lr in (0.1, 0.01) for s in (1, 2, 3)]))


def _correlation_indicator(*_):
    return P.plot_correlation_indicator(pd.DataFrame({
        "epochs": 10, "lr": [0.1, 0.1, 0.01, 0.01], "seed": [1, 2, 1, 2], "sparsity": 0.832, "p": 0.1,
        "R_p(θ0⊙m, θT⊙m)": [0.3, 0.32, 0.5, 0.52], "R_p(θ0'⊙m, θT⊙m)": [0.1, 0.12, 0.11, 0.1]}))


def _runs(root):
    return [RunDir(p) for p in sorted((root / "g" / "runs").iterdir())]


REFERENCE = {"lr": 0.1, "epochs": 10, "mean": 90.5}
FIGURES = {
    "accuracy_vs_sparsity": lambda root, exp, counted, lengths: P.plot_accuracy_vs_sparsity(counted, REFERENCE),
    "accuracy_vs_lr": lambda root, exp, counted, lengths: P.plot_accuracy_vs_lr(
        counted, P.lr_panel_sparsities(counted, exp.sparsities), REFERENCE, similar=0.5),
    "layerwise": _layerwise, "init_vs_trained": _init_vs_trained, "correlation_indicator": _correlation_indicator,
    "gap_vs_epochs": lambda root, exp, counted, lengths: P.plot_gap_vs_epochs(lengths, "replay"),
    "data_order": lambda root, exp, counted, lengths: P.plot_data_order(lengths),
    "training": lambda root, *_: P.plot_training(_runs(root), "every run of the grid"),
    "mask_layers": lambda root, *_: P.plot_mask_layers([r for r in _runs(root) if r.name.startswith("lt_omp")]),
}


@pytest.mark.parametrize("name", FIGURES)
def test_no_figure_has_a_legend_over_its_data_or_runs_wider_than_the_page(grid, name):
    fig = FIGURES[name](*grid)
    assert fig is not None and not isinstance(fig, str)
    fig.set_dpi(100)  # as the notebook shows it
    assert fig.legends and P.legend_overlaps(fig) == []
    assert all(ax.get_legend() is None for ax in fig.axes)  # every legend outside the axes
    assert fig.get_tightbbox(fig.canvas.get_renderer()).width * 100 <= PAGE
    plt.close(fig)


@pytest.mark.parametrize("n_layers", [8, 56])
def test_the_layerwise_panels_are_tall_enough_to_read_at_1280_px(n_layers):
    t = pd.DataFrame([{"global sparsity": g, "mask": m, "layer": f"layer{i // 6}.{i % 6}.conv{i % 2}.weight",
                       "sparsity (%)": 50.0 + i % 40} for g in ("0.590", "0.738", "0.832")
                      for m in ("IMP", "OMP", "random") for i in range(n_layers)])
    fig = P.plot_layerwise(t, "title")
    heights = P.shown_axes_heights(fig, PAGE)
    assert len(heights) == 3 and min(heights) >= 120, heights  # the 0-100% axis of each panel
    plt.close(fig)


def test_shown_heights_scale_a_figure_wider_than_the_page():
    fig, ax = plt.subplots(figsize=(24.68, 3))  # cropped tight, still over 1.5 pages wide at 100 dpi
    natural = P.shown_axes_heights(fig, page_width=10_000)[0]
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width * 100
    assert width > 1.5 * PAGE and natural == pytest.approx(0.77 * 300, rel=0.01)  # the axes: 77% of 3 in
    assert P.shown_axes_heights(fig, PAGE)[0] == pytest.approx(natural * PAGE / width, rel=1e-6)
    plt.close(fig)


# ----------------------------------------------------------------------------- one training length: a line of text
def test_one_training_length_is_one_line_of_text_not_a_grid_of_single_points(grid, tmp_path, monkeypatch):
    _, _, _, lengths = grid
    one = lengths[lengths["epochs"] == 10]
    note = P.plot_gap_vs_epochs(one, "replay")
    assert isinstance(note, P.Note) and "one length, 10 epochs" in note and "no trend" in note
    assert not isinstance(P.plot_gap_vs_epochs(lengths, "replay"), str)
    assert P.plot_gap_vs_epochs(one.iloc[:0]) is None
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    for ext in ("png", "svg"):  # an earlier report's figure
        (tmp_path / f"gap_vs_epochs.{ext}").write_text("old")
    P.publish(note, tmp_path, "gap_vs_epochs")
    assert len(shown) == 1 and "one length, 10 epochs" in shown[0].data and not list(tmp_path.iterdir())
    P.save_figure(note, tmp_path, "x")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- a setting notebook's own view
def test_a_setting_notebook_shows_its_runs_to_two_decimals_without_an_index(tmp_path, monkeypatch):
    exp = experiment(tmp_path)
    run = fake_run(exp, "pretrain", 0.1, 1, 77.76000213623047)  # a float32 accuracy, as metrics.json holds it
    pd.DataFrame({"epoch": [1, 2], "test_acc": [70.0, math.nan], "train_loss": [1.0, 0.5]}).to_csv(
        run / "history.csv", index=False)
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    P.show_runs(RunDir(run), "pretraining")
    html = shown[0].to_html()
    assert "77.76" in html and "77.760002" not in html and "78.26" in html and "row_heading" not in html
    assert len(shown) == 2 and all(P.legend_overlaps(f) == [] for f in shown[1:])  # training curves
    plt.close("all")
