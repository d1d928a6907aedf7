"""The study's figures, drawn from the tables of ``lthlib.results``: accuracy against sparsity, the
layerwise masks, θ0 against θT, LT-RR against training length and data order, and what a setting
notebook shows about its own runs. Colours, labels, line styles and markers come from
``lthlib.registry``, so every figure reads the same way. Nothing here reads run folders except the
per-setting views (``show_runs``).
"""
from __future__ import annotations

import io
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
import seaborn as sns  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid")
GAP_LABEL = f"LT - RR (points, paired {CONFIDENCE:.0%} CI)"
MASK_COLORS = {**{fam: registry.get(lt).color for fam, lt, _ in registry.PAIRS}, "random": registry.get(RANDOM).color}


def save_figure(fig, folder, name: str) -> None:
    """Save ``fig`` as PNG and SVG under ``folder`` (atomically); nothing when ``fig`` is None."""
    if fig is None:
        return
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110, bbox_inches="tight")
        atomic_write_bytes(Path(folder) / f"{name}.{ext}", buf.getvalue())


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
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
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
    return fig


def show_runs(runs, title: str = ""):
    """What a setting notebook shows about its own runs: a table, training curves, mask sparsity."""
    from IPython.display import display
    runs = runs if isinstance(runs, list) else [runs]
    display(runs_table(runs))
    plt.show(plot_training(runs, title))
    fig = plot_mask_layers(runs)
    if fig is not None:
        plt.show(fig)


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
    """The same-lr dense model (solid) and C3's reference, the full-schedule best-lr one (dash-dotted)."""
    color = registry.get(DENSE).color
    if lr in dense.index:
        ax.axhline(dense[lr], color=color, lw=1.2, label=f"dense, lr {lr:g} ({dense[lr]:.2f}%)")
    if reference is not None:
        ax.axhline(reference["mean"], color=color, lw=1.2, ls="-.",
                   label=f"dense, best lr {reference['lr']:g}, full {reference['epochs']}-epoch schedule "
                         f"({reference['mean']:.2f}%)")
    else:
        ax.text(0.98, 0.98, "C3 reference (full-schedule dense) missing", transform=ax.transAxes,
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
    of prunable weights remaining (log axis); the same-lr dense model and C3's reference as lines."""
    if not len(df):
        return None
    lrs = sorted(df["lr"].unique(), reverse=True)
    dense = df[df["setting"] == DENSE].groupby("lr")["final_acc"].mean()
    what = ", ".join(sorted({f"{m} / {d}, {e} epochs" for m, d, e in zip(df["model"], df["dataset"], df["epochs"])}))
    fig, axes = plt.subplots(1, len(lrs), figsize=(6.2 * len(lrs), 4.6), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        part = df[(df["lr"] == lr) & (df["setting"] != DENSE)]
        _draw_settings(ax, part)
        _draw_dense(ax, dense, lr, reference)
        _sparsity_axis(ax, part)
        ax.set(xlabel="prunable weights remaining (%, log scale)", ylabel="final test accuracy (%)",
               title=f"{what}, lr {lr:g}")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- layerwise, θ0 vs θT
def plot_layerwise(table: pd.DataFrame, title: str = ""):
    if not len(table):
        return None
    levels = sorted(table["global sparsity"].unique())
    n_layers = table["layer"].nunique()
    fig, axes = plt.subplots(len(levels), 1, figsize=(max(7, 0.5 * n_layers + 3), 3.3 * len(levels)),
                             squeeze=False, sharex=True)
    for ax, level in zip(axes[:, 0], levels):
        part = table[table["global sparsity"] == level]
        sns.barplot(part, x="layer", y="sparsity (%)", hue="mask", palette=MASK_COLORS, ax=ax)
        ax.axhline(100 * float(level), color="k", lw=1, ls="--", label="global")
        ax.set(ylim=(0, 100), title=f"global sparsity {level}", xlabel="")
        ax.legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlabel("prunable tensor (pruning profile order)")
    _rotate_x(axes[-1, 0])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_weight_correlation(wc: pd.DataFrame, sparsity: float):
    if not len(wc):
        return None
    wc = wc.assign(lr=wc["lr"].map(lambda x: f"lr {x:g}"))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
    order = list(dict.fromkeys(wc["layer"]))
    sns.barplot(wc, y="layer", x="pearson r", hue="lr", order=order, ax=axes[0], errorbar="sd")
    axes[0].set(title="Pearson r of θ0 and θT (ours)", xlabel="Pearson correlation", ylabel="")
    sns.barplot(wc, y="layer", x="top-k overlap", hue="lr", order=order, ax=axes[1], errorbar="sd")
    axes[1].axvline(1 - sparsity, color="k", ls="--", lw=1, label=f"chance ({1 - sparsity:.2f})")
    axes[1].set(title=f"top-k overlap of |θ0| and |θT| at sparsity {sparsity:g} (ours)",
                xlabel="fraction of θT's kept positions also top in |θ0|", ylabel="")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- LT-RR: length, data order
def _gap_bars(ax, x, g: pd.DataFrame, **kw) -> None:
    """LT-RR gaps at ``x`` with their confidence intervals (no bar where n < 2)."""
    err = np.vstack([g["gap"] - g["CI low"], g["CI high"] - g["gap"]])
    ax.errorbar(x, g["gap"], yerr=np.nan_to_num(err, nan=0.0), capsize=3, **kw)


def _panels(rows: list, cols: list, width=5.5, height=3.8):
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(width * len(cols), height * len(rows)), squeeze=False,
                             sharey=True)
    for ax in axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    return fig, axes


def plot_gap_vs_epochs(table: pd.DataFrame, data_order: str = "replay"):
    """LT-RR (points, paired CI) against training length, one panel per (IMP/OMP, lr), one line per
    sparsity: does LT's advantage appear, or vanish, as training lengthens?"""
    t = table[(table["data_order"] == data_order) & table["gap"].notna()] if len(table) else table
    if not len(t):
        return None
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
        ax.legend(fontsize=7)
    fig.tight_layout()
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
        ax.legend(fontsize=8, title="data order")
    fig.tight_layout()
    return fig


__all__ = ["save_figure", "show_runs", "plot_training", "plot_mask_layers", "plot_accuracy_vs_sparsity",
           "plot_layerwise", "plot_weight_correlation", "plot_gap_vs_epochs", "plot_data_order", "plt"]
