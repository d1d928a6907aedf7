"""Training trajectories on the loss surface (SPEC 8.8): which runs keep which epochs, the PCA plane,
the loss lattice, and a tiny grid end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lthlib import engine, settings, trajectory as T
from lthlib import results as R


def test_keep_epochs_are_evenly_spaced_inside_the_schedule():
    assert settings.keep_epochs(160, 10) == (1, 19, 36, 54, 71, 89, 106, 124, 141, 159)
    assert settings.keep_epochs(3, 10) == (1, 2)      # a short schedule keeps what it has
    assert settings.keep_epochs(10, 1) == (1,)
    assert settings.keep_epochs(1, 5) == () and settings.keep_epochs(10, 0) == ()


def test_only_the_drawn_runs_keep_weights(tiny_exp):
    exp = tiny_exp(lrs=[0.05, 0.01], seeds=[1, 2], imp_rounds=3, sparsities=[0.5, 0.8], epochs=4,
                   trajectory_points=2, trajectory_sparsity=0.55)
    kept = {(p.setting, p.cell.lr, p.cell.seed, p.sparsity): p.keep_epochs
            for p in settings.grid_plans(exp) if p.keep_epochs}
    # IMP rounds are 0.2, 0.36, 0.488: the nearest to 0.55 is 0.488; OMP's is 0.5; first seed, every lr
    assert set(kept) == {("lt_imp", 0.05, 1, 0.488), ("lt_imp", 0.01, 1, 0.488), ("lt_omp", 0.05, 1, 0.5),
                         ("lt_omp", 0.01, 1, 0.5)}
    assert set(kept.values()) == {(1, 3)}
    # keeping weights is not part of a run's identity: the same runs without it have the same folders
    off = {p.name for p in settings.grid_plans(exp.replace(trajectory_points=0))}
    assert {p.name for p in settings.grid_plans(exp)} == off


def _plane_states(rng, keep_mask):
    """Points c + a_i e1 + b_i e2 in R^6 (one tensor 'w'), with a pruned position that varies wildly."""
    e1, e2 = np.zeros(6), np.zeros(6)
    e1[[0, 1]] = [0.6, 0.8]
    e2[[2, 3]] = [1.0, 0.0]
    c = rng.normal(size=6)
    ab = rng.normal(size=(5, 2))
    states = []
    for a, b in ab:
        w = c + a * e1 + b * e2
        w[5] = rng.normal() * 100  # a pruned position: outside the plane and excluded
        states.append({"w": torch.tensor(w)})
    return states, ab


def test_the_plane_of_a_planar_trajectory_keeps_its_distances():
    rng = np.random.default_rng(0)
    keep = {"w": np.array([True] * 5 + [False])}
    states, ab = _plane_states(rng, keep)
    coords, dirs, ratio = T.plane(states, keep)
    assert np.allclose(coords[-1], 0)                          # centred on the last point (θT)
    assert ratio.sum() == pytest.approx(1.0, abs=1e-12)        # the plane holds the whole trajectory
    assert np.allclose(dirs @ dirs.T, np.eye(2), atol=1e-12)   # orthonormal directions
    d_coords = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    d_true = np.linalg.norm(ab[:, None] - ab[None], axis=-1)  # e1, e2 are orthonormal
    assert np.allclose(d_coords, d_true, atol=1e-10)


def test_the_loss_lattice_is_the_loss_at_final_plus_alpha_d1_plus_beta_d2():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3, bias=False)).double()
    keep = {"0.weight": np.array([True, False] + [True] * 10)}
    final = {"0.weight": torch.randn(3, 4, dtype=torch.float64)}
    final["0.weight"].view(-1)[1] = 0.0                       # the pruned weight is zero
    dirs = np.random.default_rng(1).normal(size=(2, 11))
    x, y = torch.randn(20, 4, dtype=torch.float64), torch.randint(0, 3, (20,))
    alphas, betas = np.array([-1.0, 0.0, 0.5]), np.array([0.0, 2.0])
    loss = T.surface(model, final, keep, dirs, alphas, betas, [(x[:8], y[:8]), (x[8:], y[8:])])
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            w = final["0.weight"].clone().view(-1)
            w[torch.from_numpy(keep["0.weight"])] += torch.from_numpy(a * dirs[0] + b * dirs[1])
            assert w[1] == 0.0                                  # the pruned weight stays out
            expected = F.cross_entropy(x @ w.view(3, 4).T, y).item()
            assert loss[i, j] == pytest.approx(expected, rel=1e-12)


def test_lattice_covers_the_trajectory_with_a_margin():
    coords = np.array([[3.0, -1.0], [1.0, 0.5], [0.0, 0.0]])
    a, b = T.lattice(coords, 5)
    assert a[0] < 0 < 3 < a[-1] and b[0] < -1 < 0.5 < b[-1] and len(a) == len(b) == 5
    flat = T.lattice(np.zeros((3, 2)), 3)
    assert flat[0][0] < 0 < flat[0][-1]


def test_a_tiny_grid_draws_imp_and_omp_trajectories_at_two_lrs(tiny_exp):
    exp = tiny_exp(lrs=[0.05, 0.01], seeds=[1], imp_rounds=1, sparsities=[0.2], epochs=3, n_train=256,
                   n_test=100, settings=["pretrain", "lt_imp", "lt_omp"], trajectory_points=3,
                   trajectory_sparsity=0.2)
    engine.realize(settings.grid_plans(exp))
    runs = R.gather(exp)
    trajs, notes = T.trajectories(runs.counted, exp, grid=3, images=64)
    assert {(t.setting, t.lr) for t in trajs} == {("lt_imp", 0.05), ("lt_imp", 0.01), ("lt_omp", 0.05),
                                                  ("lt_omp", 0.01)}
    for t in trajs:
        assert t.epochs == [0, 1, 2, 3] and t.coords.shape == (4, 2) and np.allclose(t.coords[-1], 0)
        assert t.loss.shape == (3, 3) and np.isfinite(t.loss).all()
    assert any("forward images" in n for n in notes)            # the cost is printed
    fig = T.plot(trajs)
    assert len([a for a in fig.axes if a.get_visible() and a.get_title()]) == 4
    assert len(T.table(trajs)) == 4


def test_runs_without_kept_weights_are_named_not_drawn(tiny_exp):
    exp = tiny_exp(lrs=[0.05], seeds=[1], imp_rounds=1, sparsities=[0.2], epochs=2, n_train=128, n_test=50,
                   settings=["pretrain", "lt_imp", "lt_omp"], trajectory_points=0)
    engine.realize(settings.grid_plans(exp))
    trajs, notes = T.trajectories(R.gather(exp).counted, exp.replace(trajectory_points=2), grid=3, images=32)
    assert trajs == [] and sum("kept no weights" in n for n in notes) == 2
