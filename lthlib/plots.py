"""The study's figures, drawn from the tables of ``lthlib.results``: accuracy against the learning rate
(the paper's Figure 3) and against sparsity, the layerwise masks, θ0 against θT (Pearson r, ours) and
the paper's correlation indicator R_p, LT-RR against training length and data order, and what a setting
notebook shows about its own runs. Colours, labels, line styles and markers come from
``lthlib.registry`` (a setting the registry does not list yet is not drawn), so every figure reads the
same way; legends sit below the panels, never over the data (``legend_overlaps`` measures it), and a
figure is at most a 1280 px page wide (``shown_axes_heights``: how tall its panels show there). A
figure with nothing to plot across (one training length) is one line of text instead (a ``Note``).
Nothing here reads run folders except the per-setting views (``show_runs``).
"""
from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from . import registry
from .results import DENSE, RANDOM, SPARSITY_DECIMALS
from .runs import atomic_write_bytes
from .stats import CONFIDENCE

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid")
GAP_LABEL = f"LT - RR (points, paired {CONFIDENCE:.0%} CI)"
MASK_COLORS = {**{fam: registry.get(lt).color for fam, lt, _ in registry.PAIRS}, "random": registry.get(RANDOM).color}


class Note(str):
    """What a figure function returns instead of a figure when there is nothing to plot across (one
    training length): one line of text, which ``publish`` shows where the figure would be."""


def save_figure(fig, folder, name: str) -> None:
    """Save ``fig`` as PNG and SVG under ``folder`` (atomically); nothing when ``fig`` is None or a Note."""
    if fig is None or isinstance(fig, str):
        return
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110, bbox_inches="tight")
        atomic_write_bytes(Path(folder) / f"{name}.{ext}", buf.getvalue())


def publish(fig, folder, name: str, missing: str = "No runs to draw yet.") -> None:
    """In a notebook: save ``fig`` (``save_figure``), show it and link its SVG (relative to the report,
    which lives beside ``folder``); when ``fig`` is a Note say it, when None say ``missing``, and drop
    the figure's files of an earlier report then (no stale figure stands beside this report)."""
    from IPython.display import Markdown, display
    if fig is None or isinstance(fig, str):
        for ext in ("png", "svg"):
            (Path(folder) / f"{name}.{ext}").unlink(missing_ok=True)
        display(Markdown(f"*{fig if isinstance(fig, str) else missing}*"))
        return
    save_figure(fig, folder, name)
    display(fig)
    plt.close(fig)
    display(Markdown(f"[{name}.svg]({Path(folder).name}/{name}.svg) (vector) · "
                     f"[{name}.png]({Path(folder).name}/{name}.png)"))


def _legend_below(fig, axes, ncol: int = 4) -> None:
    """One legend for every panel of ``fig``, below them (never over the data); labels in first-seen
    order, each once. Call it after ``tight_layout``."""
    seen = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                seen.setdefault(label, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=min(ncol, len(seen)), fontsize=8, frameon=False)


# ----------------------------------------------------------------------------- checks of a drawn figure
def _drawn_paths(ax):
    """(artist, path in display pixels, filled, marker radius in px, segments drawn) for what ``ax``
    plots: lines and their markers, bars and bands (patches, filled collections), error bars, points."""
    for line in ax.lines:
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        marker = line.get_marker() not in (None, "None", "none", "", " ")
        if len(xy):
            yield (line, MplPath(xy), False, line.get_markersize() * ax.figure.dpi / 144 if marker else 0.0,
                   line.get_linestyle() not in ("None", "none", "", " "))
    for patch in ax.patches:
        yield patch, patch.get_transform().transform_path(patch.get_path()), True, 0.0, True
    for coll in ax.collections:
        if isinstance(coll, PathCollection):  # scatter points: their offsets
            xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            yield coll, MplPath(xy[np.isfinite(xy).all(axis=1)]), False, 3.0, False
            continue
        for path in coll.get_paths():
            yield coll, coll.get_transform().transform_path(path), isinstance(coll, PolyCollection), 0.0, True


def _covers(box, path, filled: bool, radius: float, drawn: bool) -> bool:
    """Whether the display-space ``box`` meets ``path``: its segments when drawn, its inside when filled,
    its vertices grown by ``radius`` when they carry markers."""
    v = path.vertices
    if not len(v):
        return False
    if radius and ((v[:, 0] >= box.x0 - radius) & (v[:, 0] <= box.x1 + radius) &
                   (v[:, 1] >= box.y0 - radius) & (v[:, 1] <= box.y1 + radius)).any():
        return True
    if not drawn:
        return False
    return bool(box.contains(*v[0])) if len(v) == 1 else bool(path.intersects_bbox(box, filled=filled))


def _draw(fig):
    """Draw ``fig`` (a closed one on an Agg canvas of its own) and return its renderer."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def legend_overlaps(fig) -> list[str]:
    """Where a legend of ``fig`` (an axes' own or a figure legend) covers what an axes plots -- a line, a
    marker, a bar, a band or an error bar, as far as it shows inside the axes -- or an axis with its tick
    labels and label, measured in display pixels after drawing. One line per (legend, axes, artist);
    [] when every legend sits on free space."""
    renderer = _draw(fig)
    legends = [(ax.get_legend(), [ax]) for ax in fig.axes if ax.get_legend() is not None]
    legends += [(lg, [ax for ax in fig.axes if ax.get_visible()]) for lg in fig.legends]
    found = []
    for lg, axes in legends:
        box, name = lg.get_window_extent(renderer), lg.get_texts()[0].get_text() if lg.get_texts() else ""
        for ax in axes:
            inside = Bbox.intersection(box, ax.bbox)
            covered = [f"{type(a).__name__} '{a.get_label()}'" for a, *how in (_drawn_paths(ax) if inside else ())
                       if a.get_visible() and _covers(inside, *how)]
            covered += [f"its {w}" for w, axis in (("x axis", ax.xaxis), ("y axis", ax.yaxis))
                        if axis.get_visible() and (t := axis.get_tightbbox(renderer)) is not None and t.overlaps(box)]
            found += [f"legend '{name}' covers {c} of axes '{ax.get_title()}'" for c in covered]
    return found


def shown_axes_heights(fig, page_width: int = 1234, dpi: int = 100) -> list[float]:
    """The height in pixels of each visible axes of ``fig`` as a report shows it: drawn at ``dpi`` (the
    notebook's inline figures), cropped to its tight box and scaled down to ``page_width`` when wider
    (1234 px: the text column of a 1280 px page)."""
    fig.set_dpi(dpi)
    width = fig.get_tightbbox(_draw(fig)).width * dpi
    scale = min(1.0, page_width / width)
    return [ax.get_window_extent().height * scale for ax in fig.axes if ax.get_visible()]


def _sparsity_label(s: float) -> str:
    return f"{s:.{SPARSITY_DECIMALS}f}"


# ----------------------------------------------------------------------------- one setting's runs
def history_frame(runs) -> pd.DataFrame:
    frames = []
    for rd in runs:
        h = pd.read_csv(rd.history)
        ident = rd.read_config()["identity"]
        frames.append(h.assign(run=rd.name, setting=ident["setting"], sparsity=ident.get("sparsity") or 0.0))
    return pd.concat(frames, ignore_index=True)


def runs_table(runs) -> pd.DataFrame:
    rows = []
    for rd in runs:
        ident, met = rd.read_config()["identity"], rd.read_metrics()
        rows.append({"run": rd.name, "setting": registry.label(ident["setting"]), "lr": ident["lr"],
                     "sparsity": round(met["global_sparsity"], 4), "final test acc (%)": met["final_test_acc"],
                     "best epoch acc (%, secondary)": met["best_test_acc_secondary"],
                     "wall time (s)": round(met["wall_time_s"], 1), "device": met["device"]})
    return pd.DataFrame(rows)


def plot_training(runs, title: str = ""):
    """Test accuracy and training loss per epoch, one line per run (darker = sparser)."""
    h = history_frame(runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    sparsities = sorted(h["sparsity"].unique())
    palette = dict(zip(sparsities, sns.color_palette("viridis_r", max(1, len(sparsities)))))
    for (_run, sp), g in h.groupby(["run", "sparsity"], sort=False):
        lbl = f"sparsity {_sparsity_label(sp)}" if sp else "dense"
        axes[0].plot(g["epoch"], g["test_acc"], color=palette[sp], label=lbl, marker=".")
        axes[1].plot(g["epoch"], g["train_loss"], color=palette[sp], label=lbl)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy per epoch")
    axes[1].set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss per epoch")
    fig.suptitle(title)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=6)
    return fig


def _rotate_x(ax) -> None:
    ax.tick_params(axis="x", rotation=60)
    for t in ax.get_xticklabels():
        t.set_ha("right")


def plot_mask_layers(runs, title: str = "per-layer sparsity of the masks"):
    """Per-layer sparsity of each run's mask (the pruning profile on the x axis)."""
    rows = [{"layer": layer, "sparsity (%)": 100 * s, "mask": f"global {_sparsity_label(met['global_sparsity'])}"}
            for met in (rd.read_metrics() for rd in runs) for layer, s in met["layer_sparsity"].items()]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * df["layer"].nunique() + 3), 4))
    sns.barplot(df, x="layer", y="sparsity (%)", hue="mask", palette="viridis_r", ax=ax)
    ax.set(ylim=(0, 100), title=title, xlabel="prunable tensor (pruning profile order)")
    _rotate_x(ax)
    fig.tight_layout()
    _legend_below(fig, [ax], ncol=6)
    return fig


def show_runs(runs, title: str = ""):
    """What a setting notebook shows about its own runs: a table (2 decimals, no index), training curves,
    mask sparsity."""
    from IPython.display import display
    from .report import table
    runs = runs if isinstance(runs, list) else [runs]
    display(table(runs_table(runs)))
    for fig in (plot_training(runs, title), plot_mask_layers(runs)):
        if fig is not None:
            display(fig)
            plt.close(fig)


# ----------------------------------------------------------------------------- accuracy vs sparsity
def _draw_settings(ax, part: pd.DataFrame) -> None:
    """Each sparse setting's mean final accuracy over seeds with a ±1 std band."""
    part = part.assign(sp=part["target_sparsity"].round(SPARSITY_DECIMALS))
    for s in registry.SETTINGS:
        g = part[part["setting"] == s.name].groupby("sp")["final_acc"].agg(["mean", "std", "count"]).reset_index()
        if s.name == DENSE or not len(g):
            continue
        x = 100 * (1 - g["sp"])
        ax.plot(x, g["mean"], s.style, marker=s.marker or None, color=s.color,
                label=f"{s.label} (n={int(g['count'].min())})")
        ax.fill_between(x, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0), color=s.color,
                        alpha=0.15, lw=0)


def _draw_dense(ax, dense: pd.Series, lr: float, reference: dict | None) -> None:
    """The same-lr dense model (solid) and the best dense model of the full schedule (dash-dotted)."""
    color = registry.get(DENSE).color
    if lr in dense.index:
        ax.axhline(dense[lr], color=color, lw=1.2, label=f"dense, lr {lr:g} ({dense[lr]:.2f}%)")
    if reference is not None:
        ax.axhline(reference["mean"], color=color, lw=1.2, ls="-.",
                   label=f"best dense: lr {reference['lr']:g}, full {reference['epochs']}-epoch schedule "
                         f"({reference['mean']:.2f}%)")
    else:
        ax.text(0.98, 0.98, "best dense model (full schedule) missing", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color=color)


def _sparsity_axis(ax, part: pd.DataFrame) -> None:
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = sorted({round(100 * (1 - round(t, SPARSITY_DECIMALS)), 1) for t in part["target_sparsity"]}, reverse=True)
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks], rotation=45)
        ax.minorticks_off()


def plot_accuracy_vs_sparsity(df: pd.DataFrame, reference: dict | None = None):
    """One panel per lr: each setting's mean final accuracy (±1 std over seeds) against the percentage
    of prunable weights remaining (log axis); the same-lr dense model and the best dense model of the
    full schedule as lines; one legend below the panels."""
    if not len(df):
        return None
    lrs = sorted(df["lr"].unique(), reverse=True)
    dense = df[df["setting"] == DENSE].groupby("lr")["final_acc"].mean()
    what = ", ".join(sorted({f"{m} / {d}, {e} epochs" for m, d, e in zip(df["model"], df["dataset"], df["epochs"])}))
    ncols = min(3, len(lrs))
    nrows = math.ceil(len(lrs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols + 0.6, 3.6 * nrows), sharey=True, squeeze=False)
    for ax, lr in zip(axes.flat, lrs):
        part = df[(df["lr"] == lr) & (df["setting"] != DENSE)]
        _draw_settings(ax, part)
        _draw_dense(ax, dense, lr, reference)
        _sparsity_axis(ax, part)
        ax.set(xlabel="prunable weights remaining (%, log)", ylabel="final test accuracy (%)", title=f"lr {lr:g}")
    for ax in axes.flat[len(lrs):]:
        ax.set_visible(False)
    fig.suptitle(f"{what}: accuracy vs sparsity (mean ± 1 std over seeds)", fontsize=10)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=3)
    return fig


# ----------------------------------------------------------------------------- accuracy vs learning rate
MAX_PANELS = 6


def _figure3_settings() -> list:
    """The registry entries Figure 3 draws beside the dense model, in registry order: every family's
    ticket and RR setting and the small-dense network (those the registry does not list are skipped)."""
    shown = {registry.SMALL_DENSE, *(name for pair in registry.FAMILIES.values() for name in pair)}
    return [s for s in registry.SETTINGS if s.name in shown]


def lr_panel_sparsities(df: pd.DataFrame, preferred=(), max_panels: int = MAX_PANELS) -> list[float]:
    """The sparsities the accuracy-vs-lr figure shows: those of ``preferred`` (the grid's OMP list) that
    have runs, else every sparsity of the ticket settings; at most ``max_panels``, spread evenly over
    the range (the sparsest and the densest kept)."""
    names = {s.name for s in _figure3_settings()}
    have = sorted(set(df.loc[df["setting"].isin(names), "target_sparsity"].round(SPARSITY_DECIMALS)))
    wanted = {round(p, SPARSITY_DECIMALS) for p in preferred}
    chosen = [s for s in have if s in wanted] or have
    if len(chosen) > max_panels:
        chosen = [chosen[i] for i in sorted(set(np.linspace(0, len(chosen) - 1, max_panels).round().astype(int)))]
    return chosen


def _band(x, g: pd.DataFrame):
    return x, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0)


def _draw_dense_vs_lr(ax, part: pd.DataFrame, reference: dict | None, similar: float | None) -> None:
    """Dense accuracy against lr (±1 std), and the best dense model with the 'similar' band under it: the
    full-schedule reference when there is one, else the best of these runs (labelled as such)."""
    d = registry.get(DENSE)
    g = part[part["setting"] == DENSE].groupby("lr")["final_acc"].agg(["mean", "std"]).reset_index()
    if len(g):
        ax.plot(g["lr"], g["mean"], "-", color=d.color, lw=1.6, label=f"{d.label} (pretraining)")
        ax.fill_between(*_band(g["lr"], g), color=d.color, alpha=0.12, lw=0)
    if reference is not None:
        best, what = reference["mean"], f"best dense: lr {reference['lr']:g}, full {reference['epochs']}-epoch schedule"
    elif len(g):
        best, what = g["mean"].max(), "best dense of these runs (not the full schedule)"
    else:
        return
    ax.axhline(best, color=d.color, lw=1, ls="-.", label=f"{what} ({best:.2f}%)")
    if similar:
        ax.axhspan(best - similar, best, color="#f0b429", alpha=0.25, lw=0,
                   label=f"'similar' band: within {similar:g} points below the best dense")


def _draw_tickets_vs_lr(ax, part: pd.DataFrame, sparsity: float) -> None:
    at = part[np.isclose(part["target_sparsity"].round(SPARSITY_DECIMALS), sparsity)]
    for s in _figure3_settings():
        g = at[at["setting"] == s.name].groupby("lr")["final_acc"].agg(["mean", "std"]).reset_index()
        if not len(g):
            continue
        ax.plot(g["lr"], g["mean"], s.style, marker=s.marker or None, color=s.color, label=s.label, ms=4)
        ax.fill_between(*_band(g["lr"], g), color=s.color, alpha=0.15, lw=0)


def _lr_axis(ax, lrs) -> None:
    ax.set_xscale("log")
    ax.set_xticks(lrs)
    ax.set_xticklabels([f"{x:g}" for x in lrs])
    ax.minorticks_off()
    ax.set(xlabel="learning rate (log)", ylabel="final test accuracy (%)")


def plot_accuracy_vs_lr(df: pd.DataFrame, sparsities, reference: dict | None = None, similar: float | None = None):
    """The paper's Figure 3: per (model, dataset, epochs) and sparsity of ``sparsities`` (at most
    ``MAX_PANELS`` panels, 3 a row), final test accuracy against the learning rate (log axis), a line
    (mean ± 1 std over seeds) for the dense model and each ticket / RR / SDT setting present, the best
    dense model and the 'similar' band under it (``similar`` points). None when nothing is drawn."""
    groups = sorted({(m, d, e) for m, d, e in zip(df["model"], df["dataset"], df["epochs"])}) if len(df) else []
    panels = [(g, s) for g in groups for s in sparsities][:MAX_PANELS]
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols + 0.6, 3.3 * nrows + 0.4), squeeze=False)
    for ax, ((model, dataset, epochs), s) in zip(axes.flat, panels):
        part = df[(df["model"] == model) & (df["dataset"] == dataset) & (df["epochs"] == epochs)]
        _draw_dense_vs_lr(ax, part, reference, similar)
        _draw_tickets_vs_lr(ax, part, s)
        _lr_axis(ax, sorted(part["lr"].unique()))
        ax.set_title(f"sparsity {_sparsity_label(s)}" + (f" ({model}, {epochs} ep)" if len(groups) > 1 else ""),
                     fontsize=10)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    what = "; ".join(f"{m} / {d}, {e} epochs" for m, d, e in groups)
    fig.suptitle(f"{what}: accuracy vs learning rate (mean ± 1 std over seeds)", fontsize=10)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=3)
    return fig


# ----------------------------------------------------------------------------- layerwise, θ0 vs θT
def plot_layerwise(table: pd.DataFrame, title: str = ""):
    if not len(table):
        return None
    levels = sorted(table["global sparsity"].unique())
    n_layers = table["layer"].nunique()
    fig, axes = plt.subplots(len(levels), 1, figsize=(min(11.6, max(7, 0.5 * n_layers + 3)), 3.0 * len(levels)),
                             squeeze=False, sharex=True)
    for ax, level in zip(axes[:, 0], levels):
        part = table[table["global sparsity"] == level]
        sns.barplot(part, x="layer", y="sparsity (%)", hue="mask", palette=MASK_COLORS, ax=ax)
        ax.axhline(100 * float(level), color="k", lw=1, ls="--", label="global sparsity")
        ax.set(ylim=(0, 100), title=f"global sparsity {level}", xlabel="")
        ax.get_legend().remove()
    axes[-1, 0].set_xlabel("prunable tensor (pruning profile order)")
    _rotate_x(axes[-1, 0])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _legend_below(fig, axes)
    return fig


def plot_weight_correlation(wc: pd.DataFrame):
    """Per prunable layer and globally: the Pearson r of θ0 and θT of the dense runs (ours), per lr."""
    if not len(wc):
        return None
    wc = wc.assign(lr=wc["lr"].map(lambda x: f"lr {x:g}"))
    order = list(dict.fromkeys(wc["layer"]))
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(order) + 1.6))
    sns.barplot(wc, y="layer", x="pearson r", hue="lr", order=order, ax=ax, errorbar="sd")
    ax.set(title="Pearson r of θ0 and θT per layer, dense runs (ours)", xlabel="Pearson correlation", ylabel="")
    ax.get_legend().remove()
    fig.tight_layout()
    _legend_below(fig, [ax])
    return fig


def plot_correlation_indicator(table: pd.DataFrame):
    """The paper's Figure 6: R_p(θ0 ⊙ m, θT ⊙ m) (LT) and R_p(θ0' ⊙ m, θT ⊙ m) (RR) against the
    learning rate (mean ± 1 std over seeds; one panel per training length), with the chance line p."""
    if not len(table):
        return None
    p, s = table["p"].iloc[0], table["sparsity"].iloc[0]
    epochs = sorted(table["epochs"].unique())
    fig, axes = plt.subplots(1, len(epochs), figsize=(4.6 * len(epochs) + 0.6, 3.4), squeeze=False)
    lt, rr = (registry.get(name) for name in registry.FAMILIES["OMP"])
    for ax, e in zip(axes[0], epochs):
        part = table[table["epochs"] == e]
        lines = (("R_p(θ0⊙m, θT⊙m)", lt, "θ0 ⊙ m (LT)"), ("R_p(θ0'⊙m, θT⊙m)", rr, "θ0' ⊙ m (RR)"))
        for col, entry, name in lines:
            g = part.groupby("lr")[col].agg(["mean", "std"]).reset_index().dropna(subset=["mean"])
            if len(g):
                ax.plot(g["lr"], g["mean"], entry.style, marker=entry.marker or "o", color=entry.color,
                        label=f"R_p({name}, θT ⊙ m)")
                ax.fill_between(*_band(g["lr"], g), color=entry.color, alpha=0.15, lw=0)
        ax.axhline(p, color="k", lw=1, ls=":", label=f"chance: R_p = p = {p:g}")
        _lr_axis(ax, sorted(part["lr"].unique()))
        ax.set(ylabel=f"R_p (p = {p:g})", title=f"sparsity {_sparsity_label(s)}, {e} epochs")
    fig.tight_layout()
    _legend_below(fig, axes, ncol=3)
    return fig


# ----------------------------------------------------------------------------- LT-RR: length, data order
def _gap_bars(ax, x, g: pd.DataFrame, **kw) -> None:
    """LT-RR gaps at ``x`` with their confidence intervals (no bar where n < 2)."""
    err = np.vstack([g["gap"] - g["CI low"], g["CI high"] - g["gap"]])
    ax.errorbar(x, g["gap"], yerr=np.nan_to_num(err, nan=0.0), capsize=3, **kw)


def _panels(rows: list, cols: list, width=5.5, height=3.6):
    """A rows x cols grid of panels sharing y, about 1280 px wide at most when saved (wider grids get
    narrower panels, 3 inches at least), with the zero line drawn."""
    width = max(3.0, min(width, 11.6 / max(1, len(cols))))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(width * len(cols), height * len(rows)), squeeze=False,
                             sharey=True)
    for ax in axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    return fig, axes


def _one_length(t: pd.DataFrame, data_order: str) -> Note:
    e = int(t["epochs"].iloc[0])
    return Note(f"Every pooled LT/RR pair ({data_order} data order) was trained for one length, {e} epochs: "
                f"there is no trend against training length to draw. Its gaps are in the table \"LT − RR at "
                f"the same learning rate\"; pool grids of other lengths (`pool_grids`) to draw one.")


def plot_gap_vs_epochs(table: pd.DataFrame, data_order: str = "replay"):
    """LT-RR (points, paired CI) against training length, one panel per (IMP/OMP, lr), one line per
    sparsity: does LT's advantage appear, or vanish, as training lengthens? A ``Note`` (one line of
    text) when the pairs have a single length, None when there is none."""
    t = table[(table["data_order"] == data_order) & table["gap"].notna()] if len(table) else table
    if not len(t):
        return None
    if t["epochs"].nunique() == 1:
        return _one_length(t, data_order)
    fams = [f for f, _, _ in registry.PAIRS if f in set(t["family"])]
    lrs, epochs = sorted(t["lr"].unique(), reverse=True), sorted(t["epochs"].unique())
    colors = dict(zip(sorted(t["sparsity"].unique()), sns.color_palette("viridis_r", t["sparsity"].nunique())))
    fig, axes = _panels(fams, lrs)
    for (i, fam), (j, lr) in ((a, b) for a in enumerate(fams) for b in enumerate(lrs)):
        ax = axes[i, j]
        for sp, g in t[(t["family"] == fam) & (t["lr"] == lr)].groupby("sparsity"):
            g = g.sort_values("epochs")
            _gap_bars(ax, g["epochs"], g, marker="o", color=colors[sp], label=f"sparsity {_sparsity_label(sp)}")
        ax.set_xscale("log")
        ax.set_xticks(epochs)
        ax.set_xticklabels([str(e) for e in epochs])
        ax.minorticks_off()
        ax.set(title=f"{fam}, lr {lr:g} ({data_order} data order)", xlabel="training epochs (log scale)",
               ylabel=GAP_LABEL)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=6)
    return fig


def plot_data_order(table: pd.DataFrame):
    """LT-RR under 'replay' (LT retraces the dense run's data order) beside 'fresh' (LT and RR share a data
    order the dense run did not use), at each training length where both exist; None when none does."""
    orders = table.groupby("epochs")["data_order"].nunique() if len(table) else pd.Series(dtype=int)
    t = table[table["epochs"].isin(orders[orders > 1].index)] if len(table) else table
    if not len(t):
        return None
    cols = sorted({(e, lr) for e, lr in zip(t["epochs"], t["lr"])}, key=lambda c: (c[0], -c[1]))
    fams = [f for f, _, _ in registry.PAIRS if f in set(t["family"])]
    fig, axes = _panels(fams, cols, width=4.8)
    for (i, fam), (j, (ep, lr)) in ((a, b) for a in enumerate(fams) for b in enumerate(cols)):
        ax, part = axes[i, j], t[(t["family"] == fam) & (t["epochs"] == ep) & (t["lr"] == lr)]
        levels = sorted(part["sparsity"].unique())
        for k, order in enumerate(o for o in ("replay", "fresh") if o in set(part["data_order"])):
            g = part[part["data_order"] == order]
            g = g.set_index("sparsity").loc[[s for s in levels if s in set(g["sparsity"])]]
            x = [levels.index(s) + (k - 0.5) * 0.25 for s in g.index]
            _gap_bars(ax, x, g, marker="os"[k % 2], ls="none", label=order)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([_sparsity_label(s) for s in levels])
        ax.set(title=f"{fam}, lr {lr:g}, {ep} epochs", xlabel="sparsity", ylabel=GAP_LABEL)
    fig.tight_layout()
    _legend_below(fig, axes)
    return fig


__all__ = ["Note", "legend_overlaps", "shown_axes_heights", "save_figure", "publish", "show_runs", "plot_training",
           "plot_mask_layers", "plot_accuracy_vs_sparsity", "lr_panel_sparsities", "plot_accuracy_vs_lr",
           "plot_layerwise", "plot_weight_correlation", "plot_correlation_indicator", "plot_gap_vs_epochs",
           "plot_data_order", "MAX_PANELS", "plt"]
