"""Training trajectories on the loss surface (SPEC section 8.8; the paper's Figures 4/5, after Lorch 2016
and Li et al. 2018): a subnetwork's weights during training, projected on the first two principal
directions of its own trajectory, over contours of the training loss on that plane.

Which runs keep what: a grid with ``trajectory_points: k`` (> 0) makes its LT-IMP and LT-OMP runs at the
sparsity nearest ``trajectory_sparsity``, first seed, every lr, keep their weights after ``k`` evenly
spaced epochs (``keep_epochs``; with init.pt and final.pt the trajectory has up to k + 2 points). Keeping
weights changes nothing about a run's training, so it is not in its identity; a finished run that lacks
them is retrained once when a grid asks for them.

The plane: the trajectory's points w_0 (θ0 ⊙ m) ... w_T (θT) over the trainable parameters the mask keeps
(pruned weights are zero all along and stay out), centred on w_T as Li et al. do; its two leading right
singular vectors d1, d2 (PCA of the centred points) span the plane, each point's coordinates are
(w_i − w_T)·d, and the share of the trajectory's variance each direction explains is printed on the axes.
The surface: the mean cross-entropy on a fixed, stratified training subset at w_T + α d1 + β d2 over a
``grid x grid`` lattice covering the trajectory with a margin. BatchNorm uses the batch statistics of the
subset (the loss the optimizer sees at those weights; the run's running statistics belong to w_T only);
its running buffers are restored. Its cost is grid² forward passes of the subset per run, printed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import data as D
from .errors import CheckpointError
from .report import md_code, md_text
from .runs import RunDir, project_path

from .pruning import nearest_sparsity as nearest
from .settings import TRAJECTORY_SETTINGS as SETTINGS  # the runs drawn (IMP vs OMP)


# ----------------------------------------------------------------------------- the plane
def _vector(state: dict, keep: dict) -> np.ndarray:
    return np.concatenate([state[n].detach().double().flatten().numpy()[k] for n, k in keep.items()])


def plane(states: list[dict], keep: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coords [k, 2], directions [2, P], explained variance ratios [2]) of the points ``states`` (the
    last one is the centre) over the positions ``keep`` (parameter name -> bool numpy array, flattened)."""
    pts = np.stack([_vector(s, keep) for s in states])
    centred = pts - pts[-1]
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((sv ** 2).sum())
    dirs = np.zeros((2, pts.shape[1]))
    n = min(2, len(sv))
    dirs[:n] = vt[:n]
    ratio = np.zeros(2)
    if total > 0:
        ratio[:n] = sv[:n] ** 2 / total
    return centred @ dirs.T, dirs, ratio


def lattice(coords: np.ndarray, grid: int, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """The α and β values of a ``grid`` x ``grid`` lattice over the coordinates' range, widened by
    ``margin`` of it on every side (a flat direction gets ±1 around 0)."""
    axes = []
    for j in range(2):
        lo, hi = float(coords[:, j].min()), float(coords[:, j].max())
        span = hi - lo if hi > lo else 2.0
        mid = (hi + lo) / 2
        axes.append(np.linspace(mid - (0.5 + margin) * span, mid + (0.5 + margin) * span, grid))
    return axes[0], axes[1]


# ----------------------------------------------------------------------------- the surface
def _fill(model: torch.nn.Module, base: dict, keep: dict, vec: np.ndarray) -> None:
    """Set ``model``'s parameters to ``base`` with the positions ``keep`` replaced by ``vec``."""
    params, at = dict(model.named_parameters()), 0
    with torch.no_grad():
        for name, k in keep.items():
            flat = base[name].detach().clone().flatten().double()
            n = int(k.sum())
            flat[torch.from_numpy(k)] = torch.from_numpy(vec[at:at + n])
            at += n
            params[name].copy_(flat.view_as(params[name]).to(params[name].dtype))


def mean_loss(model: torch.nn.Module, batches: list) -> float:
    """The mean cross-entropy over ``batches`` with BatchNorm on batch statistics; buffers restored."""
    saved = {k: v.clone() for k, v in model.named_buffers()}
    model.train()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            total += float(F.cross_entropy(model(x), y, reduction="sum"))
            count += len(y)
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(saved[k])
    return total / max(count, 1)


def surface(model: torch.nn.Module, final: dict, keep: dict, dirs: np.ndarray, alphas, betas,
            batches: list) -> np.ndarray:
    """The loss at final + α d1 + β d2 for every (β, α) of the lattice: an array [len(betas), len(alphas)]."""
    centre = _vector(final, keep)
    out = np.empty((len(betas), len(alphas)))
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            _fill(model, final, keep, centre + a * dirs[0] + b * dirs[1])
            out[i, j] = mean_loss(model, batches)
    return out


# ----------------------------------------------------------------------------- one run, the report's runs
@dataclass
class Trajectory:
    run: str
    setting: str
    lr: float
    sparsity: float
    epochs: list[int]
    coords: np.ndarray      # [points, 2]
    variance: np.ndarray    # [2] explained variance ratio of d1, d2
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray        # [len(betas), len(alphas)]
    point_loss: list[float]  # the subset loss at each trajectory point (exact, not interpolated)
    seconds: float


def run_states(path) -> tuple[list[int], list[dict]]:
    """(epochs, state dicts) of a run's trajectory: init.pt, the kept weights_eNNN.pt, final.pt."""
    rd = RunDir(path)
    kept = sorted(int(p.stem[len("weights_e"):]) for p in rd.path.glob("weights_e[0-9][0-9][0-9].pt"))
    metrics = rd.read_metrics()
    epochs = [0] + kept + [int(metrics.get("epochs", 0))]
    states = [rd.load_init()] + [rd.load_kept(t) for t in kept] + [rd.load_final()]
    return epochs, states


def subset_batches(exp, images: int, batch: int = 256) -> list:
    """A fixed stratified subset of ``images`` training images of ``exp``'s data, normalized, unaugmented."""
    spec = D.check_dataset_name(exp.dataset)
    train, _ = D.load_data(exp.dataset, project_path(exp.data_root), exp.n_train or None, exp.n_test or None,
                           exp.subset_seed, exp.download)
    idx = D.stratified_subset(train.y, min(images, len(train)), exp.subset_seed)
    part = D.TensorData(train.x[idx], train.y[idx], train.name, train.source)
    return list(D.Batches(part, batch, spec.mean, spec.std, False))


def compute(path, batches: list, grid: int) -> Trajectory:
    """The trajectory of the finished run at ``path`` on the loss surface of ``batches``."""
    from .tickets import load_run  # (the engine, which tickets imports, is needed only here)
    t0 = time.perf_counter()
    model, mask, info = load_run(path)
    epochs, states = run_states(path)
    keep = {n: (mask[n].flatten().numpy() if mask is not None and n in mask else np.ones(p.numel(), bool))
            for n, p in model.named_parameters()}
    coords, dirs, ratio = plane(states, keep)
    alphas, betas = lattice(coords, grid)
    loss = surface(model, states[-1], keep, dirs, alphas, betas, batches)
    point_loss = []
    for s in states:
        model.load_state_dict(s)
        point_loss.append(mean_loss(model, batches))
    return Trajectory(info["run"], info["setting"], float(info["lr"]), float(info["sparsity"]), epochs, coords,
                      ratio, alphas, betas, loss, point_loss, time.perf_counter() - t0)


def select(df: pd.DataFrame, sparsity: float) -> tuple[pd.DataFrame, list[str]]:
    """The runs the report draws: per setting of ``SETTINGS``, its sparsity nearest ``sparsity``, the first
    seed, the smallest and the largest lr; (rows, notes on what is missing)."""
    rows, notes = [], []
    for setting in SETTINGS:
        d = df[df["setting"] == setting]
        if d.empty:
            notes.append(f"no {setting} run in this grid")
            continue
        s = nearest(d["target_sparsity"].dropna(), sparsity)
        d = d[(d["target_sparsity"] - s).abs() < 5e-7]
        d = d[d["seed"] == d["seed"].min()]
        for lr in sorted({d["lr"].min(), d["lr"].max()}):
            rows.append(d[d["lr"] == lr].iloc[0])
    return pd.DataFrame(rows), notes


def has_trajectory(path) -> bool:
    return any(RunDir(path).path.glob("weights_e[0-9][0-9][0-9].pt"))


def trajectories(df: pd.DataFrame, exp, grid: int = 9, images: int = 512) -> tuple[list[Trajectory], list[str]]:
    """The trajectories of the report's runs (``select``) that kept their weights, on a subset of ``images``
    training images and a ``grid`` x ``grid`` lattice; (trajectories, notes naming what was skipped and the
    cost)."""
    rows, notes = select(df, exp.trajectory_sparsity) if len(df) else (pd.DataFrame(), ["no run finished yet"])
    chosen = [r for _, r in rows.iterrows() if has_trajectory(r["path"])]
    notes += [f"{md_code(r['run'])} kept no weights during training (the grid's `trajectory_points` was 0 when it "
              f"trained)" for _, r in rows.iterrows() if not has_trajectory(r["path"])]
    if not chosen:
        return [], notes
    batches = subset_batches(exp, images)
    out = []
    for r in chosen:
        try:
            out.append(compute(r["path"], batches, grid))
        except CheckpointError as exc:
            notes.append(f"{md_code(r['run'])}: {md_text(str(exc)[:160])}")
    n = sum(len(b[1]) for b in batches)
    spent = sum(t.seconds for t in out)
    notes.append(f"cost: {len(out)} runs x {grid}x{grid} lattice points x {n} training images = "
                 f"{len(out) * grid * grid * n:,} forward images, {spent:.1f} s")
    return out, notes


def plot(trajs: list[Trajectory], label=lambda s: s):
    """One panel per trajectory (rows: the settings, columns: the lrs), its path over filled contours of
    log10 of the subset loss; start (θ0 ⊙ m) a circle, end (θT) a star; axes say the variance explained."""
    import matplotlib.pyplot as plt
    settings = [s for s in SETTINGS if any(t.setting == s for t in trajs)]
    lrs = sorted({t.lr for t in trajs})
    fig, axes = plt.subplots(len(settings), len(lrs), figsize=(4.6 * len(lrs), 4.0 * len(settings)),
                             squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for t in trajs:
        ax = axes[settings.index(t.setting)][lrs.index(t.lr)]
        ax.set_visible(True)
        levels = np.linspace(*np.log10([max(t.loss.min(), 1e-6), max(t.loss.max(), 1e-6)]), 15)
        cs = ax.contourf(t.alphas, t.betas, np.log10(np.maximum(t.loss, 1e-6)), levels=levels, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="log10 training loss", format="%.2f")
        ax.plot(t.coords[:, 0], t.coords[:, 1], "-o", color="white", ms=3, lw=1.2, mec="black", mew=0.4)
        ax.plot(*t.coords[0], "o", color="#ff7f0e", ms=9, mec="black", label=f"start (epoch 0)")
        ax.plot(*t.coords[-1], "*", color="#ff7f0e", ms=14, mec="black", label=f"end (epoch {t.epochs[-1]})")
        ax.set_title(f"{label(t.setting)}, lr {t.lr:g}, s = {t.sparsity:.3f}", fontsize=10)
        ax.set_xlabel(f"PC1 ({t.variance[0] * 100:.1f}% of the variance)")
        ax.set_ylabel(f"PC2 ({t.variance[1] * 100:.1f}%)")
    fig.legend(*axes.flat[[a.get_visible() for a in axes.flat].index(True)].get_legend_handles_labels(),
               loc="outside lower center", ncol=2, frameon=False)
    return fig


def table(trajs: list[Trajectory]) -> pd.DataFrame:
    """Per trajectory: its run, the variance the plane explains, the loss at the start and the end, and
    the straight-line distance it travelled against the length of its path (in the plane)."""
    rows = []
    for t in trajs:
        steps = np.linalg.norm(np.diff(t.coords, axis=0), axis=1).sum()
        rows.append({"setting": t.setting, "lr": t.lr, "sparsity": round(t.sparsity, 3), "points": len(t.epochs),
                     "PC1+PC2 variance (%)": round(float(t.variance.sum()) * 100, 1),
                     "start loss": round(t.point_loss[0], 3), "end loss": round(t.point_loss[-1], 3),
                     "path / distance": round(float(steps / max(np.linalg.norm(t.coords[0]), 1e-12)), 2),
                     "seconds": round(t.seconds, 1), "run": t.run})
    return pd.DataFrame(rows)
