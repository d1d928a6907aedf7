"""The study's protocol (SPEC section 2) as plans: one function per setting of ``lthlib.registry``, from
an experiment cell (one lr, one seed) to the runs that setting needs -- their seeds, sparsity or round,
start point, mask source and dependencies (``lthlib.plans.RunPlan``). Nothing here trains: the engine
realizes plans (``lthlib.engine.run_setting``), the grid scheduler asks for every cell's plans, and the
reports count a run only when its identity is the one its plan gives.

Seeds: the dense run and the LT runs start from θ0 (init seed ``seed``); RR runs from θ0' (init seed
``seed + rr_seed_offset``). The data order of the dense run is ``seed``; LT and RR replay it
(``data_order: replay``, the official behaviour) or both use a fresh one (``data_order: fresh``).
"""
from __future__ import annotations

import functools

from . import registry
from .data import DATASETS
from .errors import ConfigError
from .models import sdt_widths
from .params import Experiment
from .plans import RunPlan, find
from .pruning import imp_sparsity, nearest_sparsity

SDT_FACTS = ("widths", "target_params", "sd_params", "rel_error", "factor")
_sdt_fit = functools.lru_cache(maxsize=None)(sdt_widths)  # a search per (model, sparsity, geometry): once

FRESH_DATA_OFFSET = 2  # data_order fresh: data seed = seed + FRESH_DATA_OFFSET * rr_seed_offset


def lt_data_seed(cell: Experiment) -> int:
    """The data order of the sparse runs on θ0 (LT, one-shot retrain, random pruning)."""
    return cell.seed if cell.data_order == "replay" else cell.seed + FRESH_DATA_OFFSET * cell.rr_seed_offset


def rr_seeds(cell: Experiment) -> tuple[int, int]:
    """(init seed, data seed) of RR runs: a fresh init on the LT runs' data order (or, with
    ``rr_changes_data``, the official behaviour, on a data order of its own)."""
    init_seed = cell.seed + cell.rr_seed_offset
    return init_seed, (init_seed if cell.rr_changes_data else lt_data_seed(cell))


def sparse_cells(cell: Experiment) -> list[Experiment]:
    """The cells a cell's subnetwork runs train in: the cell itself, or one per sparse-training lr
    (``sparse_lrs``, the paper's Table 4: the dense model stays at the cell's lr)."""
    return [cell.replace(lr=lr) for lr in cell.sparse_lrs] or [cell]


def _from(cell: Experiment) -> dict:
    """What a subnetwork run at a sparse-training lr adds to its identity: the pretraining lr (nothing
    without ``sparse_lrs``, so grids without it rename nothing)."""
    return {"pretrain_lr": cell.lr} if cell.sparse_lrs else {}


TRAJECTORY_SETTINGS = ("lt_imp", "lt_omp")  # the runs whose trajectories the report draws (IMP vs OMP)


# ----------------------------------------------------------------------------- trajectories (lthlib.trajectory)
def keep_epochs(epochs: int, points: int) -> tuple[int, ...]:
    """``points`` epochs in 1 .. epochs-1, evenly spaced (fewer when the schedule is short): the weights a
    trajectory run keeps besides init.pt (epoch 0) and final.pt (epoch ``epochs``)."""
    inner = epochs - 1
    if points <= 0 or inner < 1:
        return ()
    k = min(points, inner)
    return tuple(sorted({1 + round(i * (inner - 1) / max(k - 1, 1)) for i in range(k)}))


def trajectory_epochs(cell, setting: str, sparsity: float, sparsities) -> tuple[int, ...]:
    """The epochs the run of ``setting`` at ``sparsity`` in ``cell`` keeps for its trajectory: those of
    ``keep_epochs`` when the grid asks for trajectories, the setting is drawn, the run is the first seed's
    and its sparsity the one of ``sparsities`` (the setting's own) nearest ``trajectory_sparsity``."""
    points = cell.trajectory_points
    if not points or setting not in TRAJECTORY_SETTINGS or cell.seed != min(cell.seeds):
        return ()
    chosen = nearest_sparsity(sparsities, cell.trajectory_sparsity)
    if chosen is None or abs(sparsity - chosen) > 5e-7:
        return ()
    return keep_epochs(cell.epochs, points)


# ----------------------------------------------------------------------------- one function per setting
def rewind_epoch(cell: Experiment) -> int | None:
    """The epoch t weight rewinding restarts from: ``rewind_epoch``, or 5% of the schedule (the paper's 8
    of 160 on CIFAR and Tiny-ImageNet; ImageNet grids set its 5 of 90), at least 1; None when a
    schedule of one epoch leaves nothing to rewind to (the WR settings then have no runs)."""
    t = cell.rewind_epoch or max(1, round(0.05 * cell.epochs))
    return t if t < cell.epochs else None


def pretrain(cell: Experiment) -> list[RunPlan]:
    """Dense training from θ0 (init seed ``seed``); θ0 is kept as init.pt, θT as final.pt, and θ_t
    (the weights after epoch t) when the grid rewinds weights. The dense run is the same whatever order
    the sparse runs use (``data_order`` does not enter it)."""
    dense = cell.replace(data_order="replay")
    t = rewind_epoch(cell)
    keep = (t,) if t is not None and {"wr_imp", "wr_omp"} & set(cell.settings) else ()
    return [RunPlan("pretrain", dense, dense.seed, dense.seed, start="init", keep_epochs=keep)]


def lt_imp(cell: Experiment) -> list[RunPlan]:
    """LT-IMP: round r prunes ``imp_rate`` of the remaining weights of round r-1's *trained* weights
    (round 0 = the dense model) globally, and trains θ0 ⊙ m_r with the full recipe."""
    (pre,) = pretrain(cell)
    out, imp = [], [round(imp_sparsity(r, cell.imp_rate), 6) for r in range(1, cell.imp_rounds + 1)]
    for sub in sparse_cells(cell):
        prev = pre
        for r, s in enumerate(imp, 1):
            prev = RunPlan("lt_imp", sub, cell.seed, lt_data_seed(cell), start="theta0", start_from=pre,
                           mask="imp", mask_from=prev, sparsity=s, round=r, params=_from(cell),
                           keep_epochs=trajectory_epochs(sub, "lt_imp", s, imp))
            out.append(prev)
    return out


def rr_imp(cell: Experiment) -> list[RunPlan]:
    """RR-IMP: each LT-IMP round's mask on a fresh init θ0' (seed + rr_seed_offset)."""
    init_seed, data_seed = rr_seeds(cell)
    return [RunPlan("rr_imp", lt.cell, init_seed, data_seed, start="fresh", mask="copy", mask_from=lt,
                    sparsity=lt.sparsity, round=lt.round, params=_from(cell)) for lt in lt_imp(cell)]


def _one_shot(cell: Experiment, setting: str, start: str, mask: str) -> list[RunPlan]:
    """Per sparsity of the grid: a mask made from the dense run's θT (``mask``: 'omp', or 'random' with
    its per-layer densities) applied to ``start`` ('theta0', 'thetaT', or a 'fresh' θ0')."""
    (pre,) = pretrain(cell)
    seeds = rr_seeds(cell) if start == "fresh" else (cell.seed, lt_data_seed(cell))
    return [RunPlan(setting, sub, *seeds, start=start, start_from=None if start == "fresh" else pre, mask=mask,
                    mask_from=pre, sparsity=s, params=_from(cell),
                    keep_epochs=trajectory_epochs(sub, setting, s, cell.sparsities))
            for sub in sparse_cells(cell) for s in cell.sparsities]


def lt_omp(cell: Experiment) -> list[RunPlan]:
    """LT-OMP: one-shot mask from θT, applied to θ0."""
    return _one_shot(cell, "lt_omp", "theta0", "omp")


def rr_omp(cell: Experiment) -> list[RunPlan]:
    """RR-OMP: the LT-OMP mask on a fresh init θ0'."""
    return _one_shot(cell, "rr_omp", "fresh", "omp")


def oneshot_retrain(cell: Experiment) -> list[RunPlan]:
    """One-shot prune θT and retrain θT ⊙ m with the full recipe from the initial LR (LR rewinding)."""
    return _one_shot(cell, "oneshot_retrain", "thetaT", "omp")


def random_prune(cell: Experiment) -> list[RunPlan]:
    """Random mask with the LT-OMP mask's per-layer density (``random_mode: layerwise``) or uniform over
    the prunable pool (``global``), applied to θ0."""
    return _one_shot(cell, "random_prune", "theta0", "random")


def sdt_sparsities(cell: Experiment) -> list[float]:
    """The sparsities a small-dense network is matched to: every IMP round's, then each one-shot sparsity
    that is not already one of them (to 3 decimals, as the reports group them)."""
    imp = [round(imp_sparsity(r, cell.imp_rate), 6) for r in range(1, cell.imp_rounds + 1)]
    return imp + [s for s in cell.sparsities if all(abs(s - t) >= 5e-4 for t in imp)]


def sdt(cell: Experiment) -> list[RunPlan]:
    """SDT: per sparsity s, a dense network of the same architecture and depth with reduced widths whose
    parameter count is the closest to the subnetwork's non-zero count at s (``models.sdt_widths``),
    from its own fresh init (the model's initializer, init seed ``seed``), full recipe, trained on the LT
    runs' data order (so LT - SDT is paired). Its widths and both counts go to metrics.json."""
    data = DATASETS[cell.dataset]
    # NCHW: with channels_last, torch 2.14.1's CPU backward corrupts memory (double free, at 1 thread) for
    # some widths that are not multiples of 8, e.g. resnet8_w8_s2 at [7, 13, 30]; the identity says so
    nchw = cell.replace(channels_last=False)
    out = []
    for sub in sparse_cells(nchw):
        for s in sdt_sparsities(cell):
            fit = _sdt_fit(cell.model, s, data.channels, data.classes, data.size)
            out.append(RunPlan("sdt", sub, cell.seed, lt_data_seed(cell), start="init", sparsity=s, params=_from(cell),
                               widths=tuple(fit["widths"]), facts={"sdt": {k: fit[k] for k in SDT_FACTS}}))
    return out


def _rewound(cell: Experiment, setting: str, masks: list[RunPlan], mask: str) -> list[RunPlan]:
    """Weight rewinding: θ_t ⊙ m for each mask source, trained the remaining T - t epochs, continuing the
    dense run's LR schedule and data order from epoch t."""
    (pre,) = pretrain(cell)
    t = rewind_epoch(cell)
    if t is None:
        return []
    return [RunPlan(setting, p.cell, cell.seed, pre.data_seed, start="theta_t", start_from=pre, mask=mask,
                    mask_from=m if mask == "copy" else pre, sparsity=p.sparsity, round=p.round,
                    params={"rewind_epoch": t, **_from(cell)}, first_epoch=t) for m, p in masks]


def wr_imp(cell: Experiment) -> list[RunPlan]:
    """WR-IMP (paper App. B): each LT-IMP round's mask m_I on θ_t, the dense run's weights after epoch t."""
    return _rewound(cell, "wr_imp", [(lt, lt) for lt in lt_imp(cell)], "copy")


def wr_omp(cell: Experiment) -> list[RunPlan]:
    """WR-OMP: the one-shot mask m_O of the dense run's θT on θ_t."""
    return _rewound(cell, "wr_omp", [(None, lt) for lt in lt_omp(cell)], "omp")


# ----------------------------------------------------------------------------- plans of a cell, of a grid
def plan(cell: Experiment, setting: str) -> list[RunPlan]:
    """The runs setting ``setting`` needs in cell ``cell`` (its own runs; their ``needs`` link to the
    runs of the settings it depends on)."""
    return globals()[registry.get(setting).name](cell)


def cells(exp: Experiment) -> list[Experiment]:
    """Every (lr, seed) cell of the grid ``exp``."""
    return [exp.replace(lr=lr, seed=seed) for lr in exp.lrs for seed in exp.seeds]


def describe_cells(exp: Experiment) -> str:
    """'lr 0.1, seed 1' for one cell; 'lrs 0.1, 0.01 x seeds 1, 2, 3' for several."""
    if len(exp.lrs) * len(exp.seeds) == 1:
        return f"lr {exp.lrs[0]:g}, seed {exp.seeds[0]}"
    return f"lrs {', '.join(f'{x:g}' for x in exp.lrs)} x seeds {', '.join(map(str, exp.seeds))}"


def grid_plans(exp: Experiment) -> list[RunPlan]:
    """Every run of the grid: each setting it lists, in every cell."""
    return [p for cell in cells(exp) for name in registry.NAMES if name in exp.settings for p in plan(cell, name)]


def depends(cell: Experiment, setting: str) -> list[str]:
    """The settings whose runs ``setting`` needs finished first, in registry order."""
    needed = {q.setting for p in plan(cell, setting) for q in p.needs if q.setting != setting}
    return [s for s in registry.NAMES if s in needed]


def sequential(cell: Experiment, setting: str) -> bool:
    """Whether the setting's runs form a chain (one needs another of the same setting finished)."""
    return any(q.setting == setting for p in plan(cell, setting) for q in p.needs)


def plan_for(cell: Experiment, setting: str, round_: int | None = None, sparsity: float | None = None,
             pretrain_lr: float | None = None):
    """The plan of ``setting`` in ``cell`` at IMP round ``round_`` or one-shot ``sparsity`` (the cell is
    widened to hold it; neither ``imp_rounds`` nor ``sparsities`` enters a run's identity); a run at a
    sparse-training lr (``cell.lr``) whose dense model trained at ``pretrain_lr`` is looked up in that
    pretraining cell. None when the setting has no such run."""
    if setting not in registry.BY_NAME:
        return None
    wide = cell.replace(imp_rounds=max(cell.imp_rounds, round_ or 0),
                        sparsities=[sparsity] if sparsity is not None and round_ is None else cell.sparsities)
    if pretrain_lr is not None:
        wide = wide.replace(lr=pretrain_lr, sparse_lrs=[cell.lr])
    else:
        wide = wide.replace(sparse_lrs=[])
    return find(plan(wide, setting), round_, sparsity)


def check_mask_from(mask_from: str, kind: str = "rr") -> str:
    """The setting of a notebook's ``mask_from`` ('imp' or 'omp'): ``rr_imp`` ... (``kind`` rr or wr)."""
    if mask_from not in ("imp", "omp"):
        raise ConfigError(f"mask_from: must be 'imp' or 'omp', got {mask_from!r}")
    return f"{kind}_{mask_from}"


__all__ = ["keep_epochs", "trajectory_epochs", "pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune", "sdt", "wr_imp",
           "wr_omp", "rewind_epoch", "sdt_sparsities", "plan", "cells",
           "grid_plans", "depends", "sequential", "plan_for", "lt_data_seed", "rr_seeds", "check_mask_from"]
