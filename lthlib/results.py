"""Results: collect run folders into a tidy table, winning-ticket verdicts, and the study's plots.

Nothing here trains. Colors and labels per setting are fixed so every figure reads the same way.
"""
from __future__ import annotations

import html
import math
import re
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from .runs import RunDir, atomic_write_bytes, atomic_write_text, code_version, load_json, project_path

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

SETTING_ORDER = ["pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune"]
LABEL = {"pretrain": "dense", "lt_imp": "LT-IMP", "rr_imp": "RR-IMP", "lt_omp": "LT-OMP", "rr_omp": "RR-OMP",
         "oneshot_retrain": "one-shot prune + retrain", "random_prune": "random pruning"}
COLOR = {"pretrain": "#222222", "lt_imp": "#1f5fa8", "rr_imp": "#7fb2e5", "lt_omp": "#c0392b",
         "rr_omp": "#f1948a", "oneshot_retrain": "#2e8b57", "random_prune": "#8e8e8e"}
STYLE = {"rr_imp": "--", "rr_omp": "--", "random_prune": ":"}
MARKER = {"lt_imp": "o", "rr_imp": "o", "lt_omp": "s", "rr_omp": "s", "oneshot_retrain": "^",
          "random_prune": "x"}

sns.set_theme(context="notebook", style="whitegrid")


# ----------------------------------------------------------------------------- collecting
def collect(out_root="outputs", grid: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per finished run under ``out_root/<grid>/runs/``; also the names of unfinished runs."""
    root = project_path(out_root)
    pattern = f"{grid}/runs/*" if grid else "*/runs/*"
    rows, unfinished = [], []
    for path in sorted(root.glob(pattern)):
        if not path.is_dir():
            continue
        rd = RunDir(path)
        if not rd.finished() or not rd.config.exists():
            unfinished.append(rd.name)
            continue
        try:
            cfg, met = rd.read_config(), rd.read_metrics()
        except Exception:  # an unreadable file counts as unfinished, not as a crash of the report
            unfinished.append(rd.name)
            continue
        ident, exp = cfg["identity"], cfg.get("experiment", {})
        rows.append({
            "grid": path.parent.parent.name, "run": rd.name, "setting": ident["setting"],
            "label": LABEL.get(ident["setting"], ident["setting"]), "model": ident["model"],
            "dataset": ident["dataset"], "lr": ident["lr"], "epochs": ident["epochs"],
            "seed": exp.get("seed", ident["init_seed"]), "init_seed": ident["init_seed"],
            "data_seed": ident["data_seed"], "round": ident.get("round"),
            "target_sparsity": ident.get("sparsity") or 0.0, "sparsity": met["global_sparsity"],
            "final_acc": met["final_test_acc"], "best_acc": met["best_test_acc_secondary"],
            "best_epoch": met["best_epoch_secondary"], "wall_time_s": met["wall_time_s"],
            "images_per_s": met.get("train_images_per_s"), "n_train": cfg.get("n_train_used"),
            "n_test": cfg.get("n_test_used"), "device": met.get("device"), "threads": met.get("threads"),
            "torch": met.get("torch"), "code_version": cfg.get("code_version"), "path": str(path),
        })
    df = pd.DataFrame(rows)
    if len(df):
        df["setting"] = pd.Categorical(df["setting"], SETTING_ORDER, ordered=True)
        df = df.sort_values(["grid", "model", "dataset", "lr", "setting", "target_sparsity", "seed"])
        df = df.reset_index(drop=True)
    return df, unfinished


def save_table(df: pd.DataFrame, path) -> None:
    atomic_write_text(path, df.to_csv(index=False))


# ----------------------------------------------------------------------------- one setting's runs
def history_frame(runs) -> pd.DataFrame:
    frames = []
    for rd in runs:
        h = pd.read_csv(rd.history)
        ident = rd.read_config()["identity"]
        h["run"] = rd.name
        h["setting"] = ident["setting"]
        h["sparsity"] = ident.get("sparsity") or 0.0
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def runs_table(runs) -> pd.DataFrame:
    rows = []
    for rd in runs:
        ident, met = rd.read_config()["identity"], rd.read_metrics()
        rows.append({"run": rd.name, "setting": LABEL[ident["setting"]], "lr": ident["lr"],
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
        lbl = f"sparsity {sp:.3f}" if sp else "dense"
        axes[0].plot(g["epoch"], g["test_acc"], color=palette[sp], label=lbl, marker=".")
        axes[1].plot(g["epoch"], g["train_loss"], color=palette[sp], label=lbl)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy per epoch")
    axes[1].set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss per epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mask_layers(runs, title: str = "per-layer sparsity of the masks"):
    """Per-layer sparsity of each run's mask (the pruning profile on the x axis)."""
    rows = []
    for rd in runs:
        met = rd.read_metrics()
        for layer, s in met["layer_sparsity"].items():
            rows.append({"layer": layer, "sparsity (%)": 100 * s, "mask": f"global {met['global_sparsity']:.3f}"})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * df["layer"].nunique() + 3), 4))
    sns.barplot(df, x="layer", y="sparsity (%)", hue="mask", palette="viridis_r", ax=ax)
    ax.set(ylim=(0, 100), title=title, xlabel="prunable tensor (pruning profile order)")
    ax.tick_params(axis="x", rotation=60)
    for t in ax.get_xticklabels():
        t.set_ha("right")
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
def dense_reference(df: pd.DataFrame) -> pd.DataFrame:
    """Dense accuracy per (model, dataset, epochs, lr), mean and std over seeds, plus the best lr."""
    d = df[df["setting"] == "pretrain"]
    g = d.groupby(["model", "dataset", "epochs", "lr"], observed=True)["final_acc"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    return out


def plot_accuracy_vs_sparsity(df: pd.DataFrame, model: str, dataset: str, epochs: int | None = None):
    """Per lr side by side: each setting's mean final accuracy with a ±1 std band over seeds, against
    the percentage of prunable weights remaining (log axis); dense same-lr and best-lr as lines."""
    sub = df[(df["model"] == model) & (df["dataset"] == dataset)]
    if epochs is not None:
        sub = sub[sub["epochs"] == epochs]
    lrs = sorted(sub["lr"].unique(), reverse=True)
    dense = dense_reference(sub)
    best = dense.loc[dense["mean"].idxmax()] if len(dense) else None
    fig, axes = plt.subplots(1, len(lrs), figsize=(6.2 * len(lrs), 4.6), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        part = sub[(sub["lr"] == lr) & (sub["setting"] != "pretrain")]
        for setting in SETTING_ORDER[1:]:
            s = part[part["setting"] == setting]
            if not len(s):
                continue
            g = s.groupby("target_sparsity")["final_acc"].agg(["mean", "std", "count"]).reset_index()
            x = 100 * (1 - g["target_sparsity"])
            ax.plot(x, g["mean"], STYLE.get(setting, "-"), marker=MARKER[setting], color=COLOR[setting],
                    label=f"{LABEL[setting]} (n={int(g['count'].min())})")
            ax.fill_between(x, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0),
                            color=COLOR[setting], alpha=0.15, lw=0)
        same = dense[dense["lr"] == lr]
        if len(same):
            ax.axhline(same["mean"].iloc[0], color=COLOR["pretrain"], lw=1.2,
                       label=f"dense, lr {lr:g} ({same['mean'].iloc[0]:.2f}%)")
        if best is not None and best["lr"] != lr:
            ax.axhline(best["mean"], color=COLOR["pretrain"], lw=1.2, ls="-.",
                       label=f"dense, best lr {best['lr']:g} ({best['mean']:.2f}%)")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ticks = sorted({round(100 * (1 - t), 1) for t in part["target_sparsity"].unique()}, reverse=True)
        if ticks:
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks], rotation=45)
            ax.minorticks_off()
        ax.set(xlabel="prunable weights remaining (%, log scale)", ylabel="final test accuracy (%)",
               title=f"{model} / {dataset}, lr {lr:g}")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- verdicts
def _paired_p(gaps: np.ndarray) -> float:
    """One-sided paired t-test p-value for mean(gap) > 0 (nan with fewer than 2 pairs)."""
    from scipy import stats
    if len(gaps) < 2:
        return float("nan")
    sd = gaps.std(ddof=1)
    if sd == 0:
        return 0.0 if gaps.mean() > 0 else 1.0
    t = gaps.mean() / (sd / math.sqrt(len(gaps)))
    return float(stats.t.sf(t, len(gaps) - 1))


def verdicts(df: pd.DataFrame, tol: float = 0.0, alpha: float = 0.05) -> pd.DataFrame:
    """Per (model, dataset, epochs, lr, family IMP/OMP, sparsity): LT and RR mean/std, the paired
    LT-RR gap over the seeds both have, and the three conditions (SPEC section 2):
    C1 LT >= dense at the same lr - tol; C2 gap > 0 with one-sided paired t-test p < alpha;
    C3 LT >= the best-lr dense model - tol. ``wins`` = C1 and C2 and C3."""
    dense = dense_reference(df)
    rows = []
    for fam, lt_s, rr_s in (("IMP", "lt_imp", "rr_imp"), ("OMP", "lt_omp", "rr_omp")):
        lt = df[df["setting"] == lt_s]
        for (model, dataset, epochs, lr, sp), g in lt.groupby(["model", "dataset", "epochs", "lr",
                                                              "target_sparsity"], observed=True):
            rr = df[(df["setting"] == rr_s) & (df["model"] == model) & (df["dataset"] == dataset)
                    & (df["epochs"] == epochs) & (df["lr"] == lr) & np.isclose(df["target_sparsity"], sp)]
            pair = g.set_index("seed")["final_acc"].to_frame("lt").join(
                rr.set_index("seed")["final_acc"].to_frame("rr"), how="inner")
            gaps = (pair["lt"] - pair["rr"]).to_numpy()
            dref = dense[(dense["model"] == model) & (dense["dataset"] == dataset) & (dense["epochs"] == epochs)]
            same = dref[dref["lr"] == lr]["mean"]
            best = dref["mean"].max() if len(dref) else float("nan")
            lt_mean = g["final_acc"].mean()
            p = _paired_p(gaps)
            c1 = bool(len(same)) and lt_mean >= same.iloc[0] - tol
            c2 = bool(len(gaps) >= 2 and gaps.mean() > 0 and p < alpha)
            c3 = bool(not math.isnan(best) and lt_mean >= best - tol)
            rows.append({"model": model, "dataset": dataset, "epochs": epochs, "lr": lr, "family": fam,
                         "sparsity": sp, "n_seeds": len(gaps), "LT mean": lt_mean, "LT std": g["final_acc"].std(),
                         "RR mean": rr["final_acc"].mean() if len(rr) else float("nan"),
                         "RR std": rr["final_acc"].std() if len(rr) else float("nan"),
                         "gap LT-RR": gaps.mean() if len(gaps) else float("nan"),
                         "gap std": gaps.std(ddof=1) if len(gaps) > 1 else float("nan"), "p (paired)": p,
                         "dense same lr": same.iloc[0] if len(same) else float("nan"), "dense best lr": best,
                         "C1 matching": c1, "C2 beats RR": c2, "C3 jackpot": c3, "wins": c1 and c2 and c3})
    return pd.DataFrame(rows)


def verdict_summary(v: pd.DataFrame) -> list[str]:
    """One plain-language line per (model, dataset, epochs, lr, family)."""
    lines = []
    if not len(v):
        return ["no LT/RR pairs finished yet: no verdicts"]
    for (model, dataset, epochs, lr, fam), g in v.groupby(["model", "dataset", "epochs", "lr", "family"]):
        n = len(g)
        c2 = g[g["C2 beats RR"]]["sparsity"].tolist()
        wins = g[g["wins"]]["sparsity"].tolist()
        seeds = int(g["n_seeds"].min())
        fmt = lambda xs: ", ".join(f"{x:g}" for x in xs)
        if not c2:
            c2_text = "no sparsity passes C2 (LT never beats RR beyond seed noise)"
        else:
            c2_text = f"LT beats RR (C2) at {len(c2)} of {n} sparsities ({fmt(c2)})"
        win_text = f"winning tickets (C1+C2+C3) at {fmt(wins)}" if wins else "no winning ticket (C1+C2+C3)"
        lines.append(f"{model}/{dataset}, {epochs} epochs, lr {lr:g}, {fam}: {c2_text}; {win_text} "
                     f"[{seeds} paired seed{'s' if seeds != 1 else ''}].")
    return lines


# ----------------------------------------------------------------------------- layerwise sparsity
def layerwise_table(df: pd.DataFrame, lr: float, seed: int, sparsities) -> pd.DataFrame:
    """Per-layer sparsity of the IMP, OMP and random masks nearest to each global sparsity asked for."""
    rows = []
    sub = df[(df["lr"] == lr) & (df["seed"] == seed)]
    for target in sparsities:
        for setting, kind in (("lt_imp", "IMP"), ("lt_omp", "OMP"), ("random_prune", "random")):
            s = sub[sub["setting"] == setting]
            if not len(s):
                continue
            i = (s["target_sparsity"] - target).abs().idxmin()
            if abs(s.loc[i, "target_sparsity"] - target) > 0.02:
                continue
            met = load_json(Path(s.loc[i, "path"]) / "metrics.json")
            for layer, sp in met["layer_sparsity"].items():
                rows.append({"global sparsity": f"{s.loc[i, 'target_sparsity']:.3f}", "mask": kind,
                             "layer": layer, "sparsity (%)": 100 * sp})
    return pd.DataFrame(rows)


def plot_layerwise(table: pd.DataFrame, title: str = ""):
    if not len(table):
        return None
    levels = sorted(table["global sparsity"].unique())
    n_layers = table["layer"].nunique()
    fig, axes = plt.subplots(len(levels), 1, figsize=(max(7, 0.5 * n_layers + 3), 3.3 * len(levels)),
                             squeeze=False, sharex=True)
    pal = {"IMP": COLOR["lt_imp"], "OMP": COLOR["lt_omp"], "random": COLOR["random_prune"]}
    for ax, level in zip(axes[:, 0], levels):
        part = table[table["global sparsity"] == level]
        sns.barplot(part, x="layer", y="sparsity (%)", hue="mask", palette=pal, ax=ax)
        ax.axhline(100 * float(level), color="k", lw=1, ls="--", label="global")
        ax.set(ylim=(0, 100), title=f"global sparsity {level}", xlabel="")
        ax.legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlabel("prunable tensor (pruning profile order)")
    axes[-1, 0].tick_params(axis="x", rotation=60)
    for t in axes[-1, 0].get_xticklabels():
        t.set_ha("right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- init vs trained weights
def weight_correlation(df: pd.DataFrame, sparsity: float) -> pd.DataFrame:
    """Per dense run, per prunable layer and globally: Pearson r of θ0 and θT, and the overlap of the
    top-(1-s) positions of |θ0| and |θT| (ours: the paper's exact metric is not known). Chance overlap
    for independent rankings is 1-s."""
    from .models import load_profile
    rows = []
    for _, r in df[df["setting"] == "pretrain"].iterrows():
        rd = RunDir(r["path"])
        t0, tT = rd.load_init(), rd.load_final()
        names = load_profile(r["model"])
        pools = [(n, t0[n].flatten().double(), tT[n].flatten().double()) for n in names]
        pools.append(("(global)", np.nan, np.nan))
        all0 = np.concatenate([p[1].numpy() for p in pools[:-1]])
        allT = np.concatenate([p[2].numpy() for p in pools[:-1]])
        for n, a, b in pools:
            a = all0 if n == "(global)" else a.numpy()
            b = allT if n == "(global)" else b.numpy()
            k = max(1, int(round((1 - sparsity) * len(a))))
            top0 = np.argsort(-np.abs(a), kind="stable")[:k]
            topT = np.argsort(-np.abs(b), kind="stable")[:k]
            overlap = len(np.intersect1d(top0, topT)) / k
            rows.append({"lr": r["lr"], "seed": r["seed"], "epochs": r["epochs"], "layer": n,
                         "pearson r": float(np.corrcoef(a, b)[0, 1]), "top-k overlap": overlap,
                         "chance overlap": k / len(a)})
    return pd.DataFrame(rows)


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


# ----------------------------------------------------------------------------- report text
DIFFERENCES = """\
| this project | the official code |
|---|---|
| prunes the **final-epoch** weights and reports **final-epoch** accuracy; best-epoch accuracy only as a labelled secondary number | prunes and reports the best-test-accuracy epoch (selects on the test set) |
| θ0 is a saved file (`init.pt` of the dense run) | "the same seed again", which gives different weights on different servers |
| separate init and data-order seeds; RR changes only the init, so LT vs RR is paired on the same data stream (`rr_changes_data: true` gives the official behaviour) | one seed changes both |
| every prunable tensor is masked at every step, whatever its sparsity | tensors under 10% sparsity are skipped and trained dense |
| no end-of-run re-pruning | hard-prunes every layer to >= 50% / 90% after the last epoch |
| per-layer cap of 0.99 sparsity as a recorded parameter (`prune_cap`) | a fixed cap in code |
"""


def expected_counts(exp) -> dict:
    """How many runs of each setting a complete grid holds."""
    cells = len(exp.lrs) * len(exp.seeds)
    per = {"pretrain": 1, "lt_imp": exp.imp_rounds, "rr_imp": exp.imp_rounds}
    per.update({s: len(exp.sparsities) for s in ("lt_omp", "rr_omp", "oneshot_retrain", "random_prune")})
    return {s: cells * per[s] for s in SETTING_ORDER if s in exp.settings}


def completeness(exp, df: pd.DataFrame, unfinished: list[str]) -> pd.DataFrame:
    found = df["setting"].astype(str).value_counts().to_dict() if len(df) else {}
    rows = []
    for s, n in expected_counts(exp).items():
        busy = sum(u.startswith(s + "-") for u in unfinished)
        rows.append({"setting": LABEL[s], "expected runs": n, "finished": found.get(s, 0),
                     "unfinished (started)": busy, "missing": max(0, n - found.get(s, 0))})
    return pd.DataFrame(rows)


def scale_markdown(exp, df: pd.DataFrame) -> str:
    """The run's scale, environment and code version, stated plainly."""
    import platform
    import torch
    dev = ", ".join(sorted(df["device"].dropna().unique())) if len(df) else "n/a"
    thr = ", ".join(str(int(t)) for t in sorted(df["threads"].dropna().unique())) if len(df) else "n/a"
    n_train = int(df["n_train"].max()) if len(df) else exp.n_train
    n_test = int(df["n_test"].max()) if len(df) else exp.n_test
    full = {"cifar10": 50000, "cifar100": 50000, "fashion_mnist": 60000}.get(exp.dataset)
    small = (full and n_train < full) or exp.epochs < 100 or exp.model in ("lenet5", "lenet300_100")
    warn = ("\n\n> **Scale warning:** this is a reduced-scale run (smaller model, data subset or fewer "
            "epochs than the paper). Its numbers illustrate the pipeline and the *direction* of effects; "
            "they are not the paper's numbers.") if small else ""
    return (f"**Grid** `{exp.name}` — {exp.description}\n\n"
            f"| | |\n|---|---|\n| model | `{exp.model}` |\n| dataset | `{exp.dataset}`: {n_train:,} training images"
            f"{f' (stratified subset of {full:,})' if full and n_train < full else ''}, {n_test:,} test images |\n"
            f"| recipe | {exp.epochs} epochs, batch {exp.batch_size}, SGD momentum {exp.momentum}, wd {exp.weight_decay}, "
            f"{exp.lr_schedule} LR (milestones {exp.milestones}), lrs {exp.lrs} |\n"
            f"| seeds | {exp.seeds} (RR init seed = seed + {exp.rr_seed_offset}) |\n"
            f"| pruning | global magnitude over the profile, IMP {exp.imp_rounds} rounds of {exp.imp_rate:.0%}, "
            f"OMP at {exp.sparsities}, layer cap {exp.prune_cap} |\n"
            f"| environment | torch {torch.__version__}, Python {platform.python_version()}, device {dev}, "
            f"threads {thr} |\n| code version | `{code_version()}` |" + warn)


# ----------------------------------------------------------------------------- figures and HTML
def save_figure(fig, folder, name: str) -> None:
    """Save ``fig`` as PNG and SVG under ``folder`` (atomically)."""
    import io
    folder = Path(folder)
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110, bbox_inches="tight")
        atomic_write_bytes(folder / f"{name}.{ext}", buf.getvalue())


def render(ipynb, html_path, show_input: bool = False) -> None:
    """Render an executed notebook to self-contained HTML (figures embedded), inputs hidden by default."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(exclude_input=not show_input, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    # self-contained and offline: drop the CDN scripts (require.js, MathJax) the template links
    body = re.sub(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', "", body)
    atomic_write_text(html_path, body)


def write_index(out_root="outputs") -> Path:
    """outputs/reports/index.html: every grid's report and every executed setting notebook (rendered to
    HTML beside it when missing or stale)."""
    root = project_path(out_root)
    parts = []
    for grid_dir in sorted(p for p in root.iterdir() if (p / "notebooks").is_dir() or (p / "reports").is_dir()):
        grid = grid_dir.name
        items = []
        rep = grid_dir / "reports" / "analysis.html"
        if rep.exists():
            items.append(f'<li><a href="../{grid}/reports/analysis.html"><b>analysis report</b></a></li>')
        for nb in sorted((grid_dir / "notebooks").glob("*.ipynb")):
            if ".tmp" in nb.name:
                continue
            page = nb.with_suffix(".html")
            if not page.exists() or page.stat().st_mtime < nb.stat().st_mtime:
                render(nb, page, show_input=True)
            cls = ' class="failed"' if nb.name.endswith(".failed.ipynb") else ""
            items.append(f'<li{cls}><a href="../{grid}/notebooks/{page.name}">{html.escape(nb.stem)}</a></li>')
        parts.append(f"<h2>{html.escape(grid)}</h2><ul>{''.join(items) or '<li>nothing yet</li>'}</ul>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Lottery-ticket sanity checks: reports</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
li.failed a{{color:#b00}} ul{{columns:2}}</style></head><body>
<h1>Lottery-ticket sanity checks &mdash; reports</h1>
<p>Code version {html.escape(code_version())}. Each grid: its analysis report, then every executed setting
notebook (failed ones in red).</p>{''.join(parts) or '<p>No runs yet: run <code>make demo</code>.</p>'}
</body></html>"""
    path = root / "reports" / "index.html"
    atomic_write_text(path, page)
    return path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "render":
        render(argv[1], argv[2])
        print(argv[2])
        return 0
    if len(argv) in (1, 2) and argv[0] == "index":
        print(write_index(*(argv[1:] or ["outputs"])))
        return 0
    print("usage: python -m lthlib.results render NOTEBOOK.ipynb OUT.html | index [OUT_ROOT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["collect", "verdicts", "verdict_summary", "plot_accuracy_vs_sparsity", "layerwise_table",
           "plot_layerwise", "weight_correlation", "plot_weight_correlation", "show_runs", "save_figure",
           "render", "write_index"]
