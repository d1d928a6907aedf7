"""Run plans: what one training run needs, said before anything trains.

A ``RunPlan`` is one run of one (lr, seed) cell: its setting, seeds, sparsity or round, where its start
weights come from (a row of ``START_POINTS``: θ0 of another run, θT, a fresh init, θ_t after epoch t),
where its mask comes from (a row of ``MASKS``), the setting's own parameters and the plans it needs
finished first. The protocol (``lthlib.settings``) writes plans; the engine realizes them; the results
count a run folder only when its identity is the one its plan gives today. Identity and folder name are
functions of the plan alone -- a dependency enters by its folder name -- so nothing here trains, and the
engine, the reports and the test fixtures cannot disagree about what a run is.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import layout, registry
from .models import MODELS, load_profile, profile_hash
from .params import Experiment, identity as exp_identity
from .pruning import global_magnitude_mask, imp_sparsity, random_mask
from .runs import RunDir, config_hash


@dataclass(eq=False)
class RunPlan:
    """One training run of cell ``cell`` (an Experiment at one lr and seed)."""
    setting: str
    cell: Experiment
    init_seed: int
    data_seed: int
    start: str = "init"                      # a key of START_POINTS
    start_from: "RunPlan | None" = None      # the run whose weights it starts from
    mask: str | None = None                  # a key of MASKS, None for a dense run
    mask_from: "RunPlan | None" = None       # the run its mask is made from
    sparsity: float | None = None
    round: int | None = None
    params: dict = field(default_factory=dict)   # the setting's own parameters (in its identity only)
    keep_epochs: tuple[int, ...] = ()        # keep the weights after these epochs (an artefact, not identity)
    widths: tuple[int, ...] | None = None    # per-stage widths of a width-scaled model (SDT), in its identity
    first_epoch: int = 0                     # train epochs first_epoch..epochs-1 of the schedule (rewinding)
    facts: dict = field(default_factory=dict)    # plan-time facts written to metrics.json (e.g. SDT counts)

    @property
    def needs(self) -> list["RunPlan"]:
        """The plans that must be finished before this one can start."""
        return [p for p in (self.start_from, self.mask_from) if p is not None]

    @functools.cached_property
    def identity(self) -> dict:
        return identity(self)

    @functools.cached_property
    def name(self) -> str:
        return layout.run_name(self.setting, self.cell.model, self.cell.dataset, self.cell.lr, self.cell.seed,
                               self.round, self.sparsity, config_hash(self.identity))

    @property
    def folder(self) -> RunDir:
        return RunDir(layout.runs_dir(self.cell.out_root, self.cell.name) / self.name)

    def __post_init__(self):  # the setting's own parameters (registry), from the cell unless given
        self.params = {**{k: getattr(self.cell, k) for k in registry.get(self.setting).params}, **self.params}

    def __repr__(self):
        return f"RunPlan({self.name})"


# ----------------------------------------------------------------------------- start points
@dataclass(frozen=True)
class StartPoint:
    """Where a run's weights come from: ``load(plan, model)`` gives the state dict to start from (before
    masking); ``record(plan)`` what enters its identity (None: nothing, the init seed says it all)."""
    load: Callable
    record: Callable


START_POINTS = {
    # the run's own init at its init seed: θ0 of a dense run (its init seed is in the identity already)
    "init": StartPoint(lambda plan, model: model.state_dict(), lambda plan: None),
    # a fresh init θ0' (random re-initialization), recorded as such
    "fresh": StartPoint(lambda plan, model: model.state_dict(),
                        lambda plan: {"kind": "fresh_init", "init_seed": plan.init_seed}),
    "theta0": StartPoint(lambda plan, model: plan.start_from.folder.load_init(),
                         lambda plan: {"kind": "theta0", "from": plan.start_from.name}),
    "thetaT": StartPoint(lambda plan, model: plan.start_from.folder.load_final(),
                         lambda plan: {"kind": "thetaT", "from": plan.start_from.name}),
    # θ_t: the weights another run kept after epoch t (weight rewinding); t is plan.params["rewind_epoch"]
    "theta_t": StartPoint(lambda plan, model: plan.start_from.folder.load_kept(plan.params["rewind_epoch"]),
                          lambda plan: {"kind": "theta_t", "from": plan.start_from.name,
                                        "epoch": plan.params["rewind_epoch"]}),
}


# ----------------------------------------------------------------------------- masks
def _prunable(rd: RunDir, model: str) -> dict:
    final = rd.load_final()
    return {n: final[n] for n in _profile(model)}


def _magnitude(plan: RunPlan) -> dict:
    """Global magnitude pruning of ``mask_from``'s θT to the plan's sparsity, on top of its own mask
    (IMP: a later round only removes more); a dense source has none. An IMP round prunes to the exact
    1 - (1 - imp_rate)^r (its recorded sparsity is rounded to 6 decimals)."""
    src = plan.mask_from
    current = src.folder.load_mask() if src.mask is not None else None
    s = imp_sparsity(plan.round, plan.cell.imp_rate) if plan.round is not None else plan.sparsity
    return global_magnitude_mask(_prunable(src.folder, plan.cell.model), s, current, plan.cell.prune_cap)


def _random(plan: RunPlan) -> dict:
    """A random mask with the per-layer (or pooled) density of the one-shot magnitude mask."""
    reference = global_magnitude_mask(_prunable(plan.mask_from.folder, plan.cell.model), plan.sparsity, None,
                                      plan.cell.prune_cap)
    g = torch.Generator().manual_seed(plan.cell.seed * 7919 + int(round(plan.sparsity * 1e6)))
    return random_mask(reference, plan.cell.random_mode, g)


@dataclass(frozen=True)
class MaskRule:
    """How a run's mask is made from ``plan.mask_from`` (``make(plan)``) and what enters its identity."""
    make: Callable
    record: Callable


MASKS = {
    "imp": MaskRule(_magnitude, lambda plan: {"kind": "imp", "from": plan.mask_from.name}),
    "omp": MaskRule(_magnitude, lambda plan: {"kind": "omp", "from": plan.mask_from.name}),
    "copy": MaskRule(lambda plan: plan.mask_from.folder.load_mask(),
                     lambda plan: {"kind": plan.mask_from.setting, "from": plan.mask_from.name}),
    "random": MaskRule(_random, lambda plan: {"kind": f"random_{plan.cell.random_mode}",
                                              "density_from": plan.mask_from.name}),
}


# ----------------------------------------------------------------------------- identity
_profile = load_profile  # (load_profile caches file reads itself; a re-registered model's set is its own)


def identity(plan: RunPlan) -> dict:
    """Everything that changes the run's result: the cell's identity fields, the seeds, sparsity or round,
    the pruning profile, the model's init scheme, where its weights and mask come from, and the
    setting's own parameters (``registry``: they enter that setting's runs only)."""
    cell = plan.cell
    ident = {"setting": plan.setting, **exp_identity(cell), "init_seed": plan.init_seed,
             "data_seed": plan.data_seed, "sparsity": plan.sparsity, "round": plan.round,
             "profile": profile_hash(_profile(cell.model))}
    weights = START_POINTS[plan.start].record(plan)
    if plan.mask is not None:
        ident["mask_source"] = MASKS[plan.mask].record(plan)
    if weights is not None:
        ident["weight_source"] = weights
    ident.update(plan.params)
    if plan.widths is not None:
        ident["widths"] = list(plan.widths)
    if MODELS[cell.model].init_tag:  # a model whose init changed after runs existed: old runs do not match
        ident["init"] = MODELS[cell.model].init_tag
    return json.loads(json.dumps(ident, default=str))  # as config.json holds it


def start_state(plan: RunPlan, model) -> dict:
    return START_POINTS[plan.start].load(plan, model)


def make_mask(plan: RunPlan) -> dict | None:
    return None if plan.mask is None else MASKS[plan.mask].make(plan)


# ----------------------------------------------------------------------------- sets of plans
def closure(plans: list[RunPlan]) -> list[RunPlan]:
    """``plans`` and everything they need, each folder once, dependencies first."""
    out: dict[str, RunPlan] = {}

    def visit(p: RunPlan) -> None:
        if p.name in out:
            return
        for q in p.needs:
            visit(q)
        out[p.name] = p
    for p in plans:
        visit(p)
    return list(out.values())


def waves(plans: list[RunPlan]) -> list[list[RunPlan]]:
    """The plans (with what they need) in the order a scheduler can train them: wave k holds every run
    whose dependencies all lie in earlier waves."""
    depth: dict[str, int] = {}
    for p in closure(plans):
        depth[p.name] = 1 + max((depth[q.name] for q in p.needs), default=-1)
    out: list[list[RunPlan]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for p in closure(plans):
        out[depth[p.name]].append(p)
    return out


def find(plans: list[RunPlan], round_: int | None = None, sparsity: float | None = None) -> RunPlan | None:
    """The plan of ``plans`` at IMP round ``round_`` (when given), else at ``sparsity``."""
    for p in plans:
        if round_ is not None and p.round == round_:
            return p
        if round_ is None and sparsity is not None and p.sparsity is not None and abs(p.sparsity - sparsity) < 1e-9:
            return p
        if round_ is None and sparsity is None and p.sparsity is None:
            return p
    return None


__all__ = ["RunPlan", "START_POINTS", "MASKS", "identity", "start_state", "make_mask", "closure", "waves", "find"]
