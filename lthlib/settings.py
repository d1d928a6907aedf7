"""The study's protocol (SPEC section 2), one short function per setting: pretrain, LT-IMP, RR-IMP,
LT-OMP, RR-OMP, one-shot prune + retrain, random pruning.

Each takes an ``Experiment`` and returns finished ``RunDir``s; it says which runs the setting needs --
their start weights, mask and seeds -- and leaves the training to ``lthlib.engine`` (a finished run is
skipped, an unfinished one resumes). A setting first obtains the runs it depends on, so ``lt_omp(exp)``
on a fresh machine also pretrains. The settings themselves are declared in ``lthlib.registry``.

Seeds: the dense run and the LT runs start from θ0 (init seed ``seed``); RR runs from θ0' (init seed
``seed + rr_seed_offset``). The data order of the dense run is ``seed``; LT and RR replay it
(``data_order: replay``, the official behaviour) or both use a fresh one (``data_order: fresh``).
"""
from __future__ import annotations

import functools

import torch

from . import distributed as dist
from . import registry
from .engine import RunSpec, execute, execute_many
from .models import load_profile
from .params import Experiment
from .pruning import global_magnitude_mask, imp_sparsity, random_mask
from .runs import RunDir

FRESH_DATA_OFFSET = 2  # data_order fresh: data seed = seed + FRESH_DATA_OFFSET * rr_seed_offset


def _setting(fn):
    """With ``nproc > 1`` (and not already under torchrun) run the setting under torchrun first; the
    call then finds its runs finished and returns them."""
    @functools.wraps(fn)
    def wrapper(exp: Experiment, *args, **kwargs):
        if exp.nproc > 1 and not dist.is_distributed():
            dist.launch(exp, fn.__name__)
            exp = exp.replace(nproc=1)
        return fn(exp, *args, **kwargs)
    return wrapper


def lt_data_seed(exp: Experiment) -> int:
    """The data order of the sparse runs on θ0 (LT, one-shot retrain, random pruning)."""
    return exp.seed if exp.data_order == "replay" else exp.seed + FRESH_DATA_OFFSET * exp.rr_seed_offset


def rr_seeds(exp: Experiment) -> tuple[int, int]:
    """(init seed, data seed) of RR runs: a fresh init on the LT runs' data order (or, with
    ``rr_changes_data``, the official behaviour, on a data order of its own)."""
    init_seed = exp.seed + exp.rr_seed_offset
    return init_seed, (init_seed if exp.rr_changes_data else lt_data_seed(exp))


def _prunable(state: dict, profile: list[str]) -> dict:
    return {n: state[n] for n in profile}


def omp_mask(exp: Experiment, pre: RunDir, sparsity: float) -> dict:
    """One-shot global magnitude mask of the dense model's θT."""
    return global_magnitude_mask(_prunable(pre.load_final(), load_profile(exp.model)), sparsity, None,
                                 exp.prune_cap)


@_setting
def pretrain(exp: Experiment) -> RunDir:
    """Dense training from θ0 (init seed ``exp.seed``); θ0 is kept as init.pt, θT as final.pt."""
    exp = exp.replace(data_order="replay")  # the dense run is the same whatever the sparse runs' order
    return execute(exp, "pretrain", init_seed=exp.seed, data_seed=exp.seed, start=lambda m: m.state_dict())


@_setting
def lt_imp(exp: Experiment, rounds: int | None = None) -> list[RunDir]:
    """LT-IMP: round r prunes ``imp_rate`` of the remaining weights of round r-1's *trained* weights
    (round 0 = the dense model) globally, and trains θ0 ⊙ m_r with the full recipe."""
    pre = pretrain(exp)
    profile, theta0 = load_profile(exp.model), pre.load_init()
    prev, prev_mask, out = pre, None, []
    for r in range(1, (exp.imp_rounds if rounds is None else rounds) + 1):
        s = imp_sparsity(r, exp.imp_rate)

        def mask_fn(prev=prev, prev_mask=prev_mask, s=s):
            return global_magnitude_mask(_prunable(prev.load_final(), profile), s, prev_mask, exp.prune_cap)
        rd = execute(exp, "lt_imp", init_seed=exp.seed, data_seed=lt_data_seed(exp), start=lambda m: theta0,
                     mask_fn=mask_fn, sparsity=round(s, 6), round_=r,
                     sources={"mask_source": {"kind": "imp", "from": prev.name},
                              "weight_source": {"kind": "theta0", "from": pre.name}})
        out.append(rd)
        prev, prev_mask = rd, rd.load_mask()
    return out


@_setting
def rr_imp(exp: Experiment, rounds: int | None = None) -> list[RunDir]:
    """RR-IMP: each LT-IMP round's mask on a fresh init θ0' (seed + rr_seed_offset)."""
    init_seed, data_seed = rr_seeds(exp)
    specs = []
    for lt in lt_imp(exp, rounds):
        cfg = lt.read_config()["identity"]
        specs.append(RunSpec("rr_imp", init_seed, data_seed, lambda m: m.state_dict(), lt.load_mask,
                             cfg["sparsity"], cfg["round"],
                             {"mask_source": {"kind": "lt_imp", "from": lt.name},
                              "weight_source": {"kind": "fresh_init", "init_seed": init_seed}}))
    return execute_many(exp, specs)


def rr(exp: Experiment, mask_from: str) -> list[RunDir]:
    """Random re-initialization of the LT masks: ``mask_from`` 'imp' (every LT-IMP round) or 'omp'."""
    if mask_from not in ("imp", "omp"):
        from .errors import ConfigError
        raise ConfigError(f"mask_from: must be 'imp' or 'omp', got {mask_from!r}")
    return rr_imp(exp) if mask_from == "imp" else rr_omp(exp)


def _one_shot(exp: Experiment, setting: str, start: str, mask_kind: str, sparsities=None) -> list[RunDir]:
    """The runs of a one-shot setting: per sparsity, a mask from the dense run's θT ('omp', or 'random'
    with its per-layer densities) applied to ``start`` ('theta0', 'thetaT' or 'fresh' θ0')."""
    pre = pretrain(exp)
    init_seed, data_seed = rr_seeds(exp) if start == "fresh" else (exp.seed, lt_data_seed(exp))
    starts = {"theta0": (lambda m: pre.load_init(), {"kind": "theta0", "from": pre.name}),
              "thetaT": (lambda m: pre.load_final(), {"kind": "thetaT", "from": pre.name}),
              "fresh": (lambda m: m.state_dict(), {"kind": "fresh_init", "init_seed": init_seed})}
    start_fn, wsrc = starts[start]
    specs = []
    for s in (exp.sparsities if sparsities is None else sparsities):
        if mask_kind == "omp":
            mask_fn, msrc = (lambda s=s: omp_mask(exp, pre, s)), {"kind": "omp", "from": pre.name}
        else:
            def mask_fn(s=s):
                g = torch.Generator().manual_seed(exp.seed * 7919 + int(round(s * 1e6)))
                return random_mask(omp_mask(exp, pre, s), exp.random_mode, g)
            msrc = {"kind": f"random_{exp.random_mode}", "density_from": pre.name}
        specs.append(RunSpec(setting, init_seed, data_seed, start_fn, mask_fn, s,
                             sources={"mask_source": msrc, "weight_source": wsrc}))
    return execute_many(exp, specs)


@_setting
def lt_omp(exp: Experiment, sparsities=None) -> list[RunDir]:
    """LT-OMP: one-shot mask from θT, applied to θ0."""
    return _one_shot(exp, "lt_omp", "theta0", "omp", sparsities)


@_setting
def rr_omp(exp: Experiment, sparsities=None) -> list[RunDir]:
    """RR-OMP: the LT-OMP mask on a fresh init θ0'."""
    return _one_shot(exp, "rr_omp", "fresh", "omp", sparsities)


@_setting
def oneshot_retrain(exp: Experiment, sparsities=None) -> list[RunDir]:
    """One-shot prune θT and retrain θT ⊙ m with the full recipe from the initial LR (LR rewinding)."""
    return _one_shot(exp, "oneshot_retrain", "thetaT", "omp", sparsities)


@_setting
def random_prune(exp: Experiment, sparsities=None) -> list[RunDir]:
    """Random mask with the LT-OMP mask's per-layer density (``random_mode: layerwise``) or uniform over
    the prunable pool (``global``), applied to θ0."""
    return _one_shot(exp, "random_prune", "theta0", "random", sparsities)


def run_setting(exp: Experiment, setting: str) -> list[RunDir]:
    """Run the setting named ``setting`` (see ``lthlib.registry``); always a list of runs."""
    out = globals()[registry.get(setting).name](exp)
    return out if isinstance(out, list) else [out]


__all__ = ["pretrain", "lt_imp", "rr_imp", "rr", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune",
           "run_setting", "omp_mask", "lt_data_seed", "rr_seeds"]
