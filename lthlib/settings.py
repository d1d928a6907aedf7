"""The study's settings as functions (SPEC section 2): pretrain, LT-IMP, RR-IMP, LT-OMP, RR-OMP,
one-shot prune + retrain, random pruning.

Each takes an ``Experiment`` and returns finished ``RunDir``s. A finished run is skipped, an
unfinished one resumes; a setting first obtains (or trains) the runs it depends on, so
``lt_omp(exp)`` on a fresh machine also pretrains.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import data as D
from . import distributed as dist
from .errors import ConfigError
from .models import build_model, load_profile, profile_hash
from .params import Experiment
from .pruning import (MaskEnforcer, apply_mask, check_mask, global_magnitude_mask, global_sparsity,
                      imp_sparsity, random_mask, sparsity_table)
from .runs import (RunDir, code_version, atomic_torch_save, atomic_write_csv, atomic_write_json, config_hash, fmt_num)
from .training import Recipe, train

# identity keys: everything in an Experiment that changes a run's result
_IDENTITY_KEYS = ("model", "dataset", "n_train", "n_test", "subset_seed", "epochs", "batch_size", "lr",
                  "momentum", "weight_decay", "wd_on_bn", "nesterov", "lr_schedule", "milestones", "gamma",
                  "warmup_epochs", "label_smoothing", "augment", "amp", "channels_last")
# keys added after run folders existed: part of the identity only when not at this value, so adding an
# option never renames (and retrains) the runs that did not use it
_IDENTITY_IF_SET = {"mixup": 0.0}


def recipe_of(exp: Experiment) -> Recipe:
    return Recipe(**{k: getattr(exp, k) for k in Recipe.__dataclass_fields__})


def project_path(path) -> Path:
    """Relative paths in params (out_root, data_root) are relative to the project root: the nearest
    folder above the working directory holding params/ and lthlib/ (so a notebook opened from
    notebooks/ and papermill run from the root write to the same place); else the working directory."""
    path = Path(path)
    if path.is_absolute():
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "lthlib").is_dir():
            return folder / path
    return here / path


def runs_dir(exp: Experiment) -> Path:
    return project_path(exp.out_root) / exp.name / "runs"


# ----------------------------------------------------------------------------- data cache
_DATA_CACHE: dict = {}


def _data(exp: Experiment):
    root = project_path(exp.data_root)
    key = (exp.dataset, str(root), exp.n_train, exp.n_test, exp.subset_seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = D.load_data(exp.dataset, root, exp.n_train or None, exp.n_test or None,
                                       exp.subset_seed, exp.download)
    return _DATA_CACHE[key]


def _geometry(exp: Experiment):
    spec = D.check_dataset_name(exp.dataset)
    return spec["channels"], spec["classes"], spec["size"]


def new_model(exp: Experiment, init_seed: int):
    c, k, s = _geometry(exp)
    return build_model(exp.model, c, k, s, init_seed=init_seed)


# ----------------------------------------------------------------------------- one training run
@dataclass
class RunSpec:
    """One training run to do: where its weights and mask come from."""
    setting: str
    init_seed: int
    data_seed: int
    start: Callable  # start(model) -> state_dict to start from (before masking)
    mask_fn: Callable | None = None  # () -> mask, or None for a dense run
    sparsity: float | None = None
    round_: int | None = None
    sources: dict = field(default_factory=dict)


def _run_dir(exp: Experiment, spec: RunSpec, profile: list[str]) -> tuple[RunDir, dict]:
    identity = {"setting": spec.setting, **{k: getattr(exp, k) for k in _IDENTITY_KEYS},
                **{k: getattr(exp, k) for k, off in _IDENTITY_IF_SET.items() if getattr(exp, k) != off},
                "init_seed": spec.init_seed, "data_seed": spec.data_seed, "sparsity": spec.sparsity,
                "round": spec.round_, "prune_cap": exp.prune_cap, "profile": profile_hash(profile), **spec.sources}
    parts = [spec.setting, exp.model, exp.dataset, f"lr{fmt_num(exp.lr)}", f"s{exp.seed}"]
    if spec.round_ is not None:
        parts.append(f"r{spec.round_:02d}")
    elif spec.sparsity is not None:
        parts.append(f"sp{spec.sparsity:.3f}")
    return RunDir(runs_dir(exp) / f"{'-'.join(parts)}-{config_hash(identity)}"), identity


def _use_packing(exp: Experiment, device: torch.device) -> bool:
    return exp.pack == "on" or (exp.pack == "auto" and device.type == "cuda")


def execute(exp: Experiment, setting: str, **kw) -> RunDir:
    """Train one run unless it is finished (see RunSpec for the keywords)."""
    return execute_many(exp, [RunSpec(setting, **kw)])[0]


def execute_many(exp: Experiment, specs: list[RunSpec]) -> list[RunDir]:
    """Train every unfinished run of ``specs``; finished ones are skipped. With packing on (``pack``:
    'on', or 'auto' on CUDA), unfinished runs sharing a data order train together in packs of up to
    ``pack_size`` tickets; otherwise one after another."""
    profile = load_profile(exp.model)
    planned = [(_run_dir(exp, spec, profile), spec) for spec in specs]
    dist.barrier()  # under torchrun: every rank sees the same finished runs
    todo = []
    for (rd, identity), spec in planned:
        if rd.finished():
            rd.check_identity(identity)
        else:
            todo.append((rd, identity, spec))
    if exp.threads:
        torch.set_num_threads(exp.threads)
    device = dist.device_for_rank(exp.device)
    if _use_packing(exp, device) and len(todo) > 1:
        by_seed: dict = {}
        for item in todo:
            by_seed.setdefault(item[2].data_seed, []).append(item)
        for items in by_seed.values():
            for i in range(0, len(items), exp.pack_size):
                _locked(items[i:i + exp.pack_size], lambda chunk: _train_pack(exp, chunk, profile, device))
    else:
        for item in todo:
            _locked([item], lambda chunk: _train_pack(exp, chunk, profile, device))
    return [rd for (rd, _), _ in planned]


def _locked(items, fn) -> None:
    """Run ``fn(unfinished items)`` holding the locks of all their run folders (in name order). Under
    torchrun the rank group is the one writer (rank 0) and takes no file locks."""
    if dist.is_distributed():
        fn(items)
        dist.barrier()  # rank 0's files are written before anyone reads them
        return
    with contextlib.ExitStack() as stack:
        for rd, _, _ in sorted(items, key=lambda it: it[0].name):
            stack.enter_context(rd.lock())
        left = []
        for rd, identity, spec in items:
            rd.check_identity(identity)
            if not rd.finished():  # another process may have finished it while we waited
                left.append((rd, identity, spec))
        if left:
            fn(left)


def _loaders(exp: Experiment, data_seed: int, device, mf):
    r, w = dist.rank(), dist.world()
    if exp.dataset == "imagenet":  # folder of JPEGs: a DataLoader with workers
        torch.manual_seed(data_seed)
        workers = 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)
        train_b, test_b, _ = D.imagenet_loaders(project_path(exp.data_root), exp.batch_size, workers,
                                                exp.eval_batch_size, exp.augment, data_seed, r, w)
        return train_b, test_b, len(train_b.dataset), len(test_b.dataset), str(project_path(exp.data_root))
    train_data, test_data = _data(exp)
    spec = D.DATASETS[exp.dataset]
    train_b = D.Batches(train_data, exp.batch_size, spec["mean"], spec["std"], True, exp.augment,
                        spec["pad"], spec["flip"], data_seed, device, mf, r, w)
    test_b = D.Batches(test_data, exp.eval_batch_size, spec["mean"], spec["std"], False, device=device,
                       memory_format=mf, rank=r, world=w)
    return train_b, test_b, len(train_data), len(test_data), train_data.source


def _prepare(exp, rd: RunDir, identity: dict, spec: RunSpec, profile, device, data_info):
    """Build the run's model at its start point (masked), write config.json, init.pt and mask.pt."""
    model = new_model(exp, spec.init_seed)
    model.load_state_dict(spec.start(model))
    mask = dist.broadcast_mask(spec.mask_fn() if spec.mask_fn else None)
    if mask is not None:
        check_mask(mask, model, profile, source=f"mask for {rd.name}")
        apply_mask(model, mask)
    if not dist.is_main():
        return model, mask
    n_train, n_test, source = data_info
    record = {"identity": identity, "experiment": exp.as_dict(), "threads": torch.get_num_threads(),
              "device": str(device), "processes": dist.world(), "torch": torch.__version__,
              "code_version": code_version(),
              "python": platform.python_version(), "host": platform.node(), "data_source": source,
              "profile": profile, "n_train_used": n_train, "n_test_used": n_test}
    atomic_write_json(rd.config, record)
    atomic_torch_save({k: v.detach().clone() for k, v in model.state_dict().items()}, rd.init)
    if mask is not None:
        atomic_torch_save(mask, rd.mask)
    return model, mask


def _train_pack(exp, items, profile, device) -> None:
    """Train ``items`` (run folder, identity, spec) together: one model, or a packed group."""
    mf = torch.channels_last if exp.channels_last else torch.contiguous_format
    train_b, test_b, *data_info = _loaders(exp, items[0][2].data_seed, device, mf)
    built = [_prepare(exp, rd, identity, spec, profile, device, data_info) for rd, identity, spec in items]
    names = [rd.name for rd, _, _ in items]
    if len(items) == 1:
        model, mask = built[0]
        tag = None
    else:
        from . import packing
        model = packing.pack([m for m, _ in built])
        masks = [m for _, m in built]
        mask = None if masks[0] is None else {
            f"inner.{k}": v for k, v in packing.pack_mask(masks, model.layout).items()}
        tag = names
    model.to(device, memory_format=mf)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = exp.cudnn_benchmark
    if exp.compile:  # compile the forward only: parameter names (checkpoints) stay as they are
        model.forward = torch.compile(model.forward)
    first = items[0][0]
    t0 = time.time()
    desc = names[0][:48] if len(items) == 1 else f"pack of {len(items)}: {names[0][:36]}"
    history = train(dist.wrap(model, device), mask, train_b, test_b, recipe_of(exp), device, first, desc=desc,
                    tag=tag)
    wall = time.time() - t0
    if not dist.is_main():
        return
    if len(items) == 1:
        finals, histories = [{k: v.detach().cpu().clone() for k, v in model.state_dict().items()}], [history]
    else:
        finals, histories = packing.unpack_state(model), history
    for (rd, _, spec), (_, m), final, hist in zip(items, built, finals, histories):
        _finish(rd, spec, m, final, hist, wall, data_info[0], device, names if len(items) > 1 else None)
    if first.checkpoint.exists():
        first.checkpoint.unlink()


def _finish(rd: RunDir, spec: RunSpec, mask, final: dict, history: list[dict], wall: float, n_train: int,
            device, packed_with) -> None:
    if mask is not None:  # the invariant the whole study rests on
        for n, m in mask.items():
            if bool((final[n][~m] != 0).any()):
                raise RuntimeError(f"{rd.name}: pruned weights of {n} are not zero after training")
    atomic_torch_save(final, rd.final)
    atomic_write_csv(rd.history, history)
    best = max(history, key=lambda h: h["test_acc"])
    table = sparsity_table(mask) if mask is not None else []
    metrics = {
        "final_test_acc": history[-1]["test_acc"], "final_train_acc": history[-1]["train_acc"],
        "final_test_loss": history[-1]["test_loss"],
        "best_test_acc_secondary": best["test_acc"], "best_epoch_secondary": best["epoch"],
        "global_sparsity": global_sparsity(mask) if mask is not None else 0.0,
        "layer_sparsity": {r["layer"]: r["sparsity"] for r in table},
        "wall_time_s": wall,
        "train_images_per_s": n_train * len(history) / max(1e-9, sum(h["train_time_s"] for h in history)),
        "epochs": len(history), "torch": torch.__version__, "device": str(device),
        "threads": torch.get_num_threads(), "processes": dist.world(), "setting": spec.setting,
        "packed_with": packed_with,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if rd.checkpoint.exists():
        rd.checkpoint.unlink()
    atomic_write_json(rd.metrics, metrics)  # last: marks the run finished


# ----------------------------------------------------------------------------- the settings
def _setting(fn):
    """With ``nproc > 1`` (and not already under torchrun) run the setting under torchrun first; the
    call then finds its runs finished and returns them."""
    @functools.wraps(fn)
    def wrapper(exp: Experiment, *args, **kwargs):
        if exp.nproc > 1 and not dist.is_distributed():
            dist.launch(exp, fn.__name__)
            exp = dataclasses.replace(exp, nproc=1)
        return fn(exp, *args, **kwargs)
    return wrapper


def _prunable(state: dict, profile: list[str]) -> dict:
    return {n: state[n] for n in profile}


@_setting
def pretrain(exp: Experiment) -> RunDir:
    """Dense training from θ0 (init seed ``exp.seed``); θ0 is kept as init.pt, θT as final.pt."""
    return execute(exp, "pretrain", init_seed=exp.seed, data_seed=exp.seed, start=lambda m: m.state_dict())


def _rr_seeds(exp: Experiment) -> tuple[int, int]:
    init_seed = exp.seed + exp.rr_seed_offset
    return init_seed, (init_seed if exp.rr_changes_data else exp.seed)


@_setting
def lt_imp(exp: Experiment, rounds: int | None = None) -> list[RunDir]:
    """LT-IMP: round r prunes ``imp_rate`` of the remaining weights of round r-1's *trained* weights
    (round 0 = the dense model) globally, and trains θ0 ⊙ m_r with the full recipe."""
    pre = pretrain(exp)
    profile = load_profile(exp.model)
    theta0 = pre.load_init()
    prev, prev_mask, out = pre, None, []
    for r in range(1, (exp.imp_rounds if rounds is None else rounds) + 1):
        s = imp_sparsity(r, exp.imp_rate)

        def mask_fn(prev=prev, prev_mask=prev_mask, s=s):
            return global_magnitude_mask(_prunable(prev.load_final(), profile), s, prev_mask, exp.prune_cap)
        rd = execute(exp, "lt_imp", init_seed=exp.seed, data_seed=exp.seed, start=lambda m: theta0,
                     mask_fn=mask_fn, sparsity=round(s, 6), round_=r,
                     sources={"mask_source": {"kind": "imp", "from": prev.name},
                              "weight_source": {"kind": "theta0", "from": pre.name}})
        out.append(rd)
        prev, prev_mask = rd, rd.load_mask()
    return out


@_setting
def rr_imp(exp: Experiment, rounds: int | None = None) -> list[RunDir]:
    """RR-IMP: each LT-IMP round's mask on a fresh init θ0' (seed + rr_seed_offset)."""
    init_seed, data_seed = _rr_seeds(exp)
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
        raise ConfigError(f"mask_from: must be 'imp' or 'omp', got {mask_from!r}")
    return rr_imp(exp) if mask_from == "imp" else rr_omp(exp)


def omp_mask(exp: Experiment, pre: RunDir, sparsity: float) -> dict:
    """One-shot global magnitude mask of the dense model's θT."""
    return global_magnitude_mask(_prunable(pre.load_final(), load_profile(exp.model)), sparsity, None,
                                 exp.prune_cap)


def _one_shot(exp: Experiment, setting: str, weights: str, sparsities=None, mask_kind="omp") -> list[RunDir]:
    pre = pretrain(exp)
    specs = []
    for s in (exp.sparsities if sparsities is None else sparsities):
        if weights == "theta0":
            init_seed, data_seed, start = exp.seed, exp.seed, (lambda m: pre.load_init())
            wsrc = {"kind": "theta0", "from": pre.name}
        elif weights == "thetaT":
            init_seed, data_seed, start = exp.seed, exp.seed, (lambda m: pre.load_final())
            wsrc = {"kind": "thetaT", "from": pre.name}
        else:
            (init_seed, data_seed), start = _rr_seeds(exp), (lambda m: m.state_dict())
            wsrc = {"kind": "fresh_init", "init_seed": init_seed}
        if mask_kind == "omp":
            mask_fn, msrc = (lambda s=s: omp_mask(exp, pre, s)), {"kind": "omp", "from": pre.name}
        else:
            def mask_fn(s=s):
                g = torch.Generator().manual_seed(exp.seed * 7919 + int(round(s * 1e6)))
                return random_mask(omp_mask(exp, pre, s), exp.random_mode, g)
            msrc = {"kind": f"random_{exp.random_mode}", "density_from": pre.name}
        specs.append(RunSpec(setting, init_seed, data_seed, start, mask_fn, s,
                             sources={"mask_source": msrc, "weight_source": wsrc}))
    return execute_many(exp, specs)


@_setting
def lt_omp(exp: Experiment, sparsities=None) -> list[RunDir]:
    """LT-OMP: one-shot mask from θT, applied to θ0."""
    return _one_shot(exp, "lt_omp", "theta0", sparsities)


@_setting
def rr_omp(exp: Experiment, sparsities=None) -> list[RunDir]:
    """RR-OMP: the LT-OMP mask on a fresh init θ0'."""
    return _one_shot(exp, "rr_omp", "fresh", sparsities)


@_setting
def oneshot_retrain(exp: Experiment, sparsities=None) -> list[RunDir]:
    """One-shot prune θT and retrain θT ⊙ m with the full recipe from the initial LR (LR rewinding)."""
    return _one_shot(exp, "oneshot_retrain", "thetaT", sparsities)


@_setting
def random_prune(exp: Experiment, sparsities=None) -> list[RunDir]:
    """Random mask with the LT-OMP mask's per-layer density (``random_mode: layerwise``) or uniform over
    the prunable pool (``global``), applied to θ0."""
    return _one_shot(exp, "random_prune", "theta0", sparsities, mask_kind="random")


SETTING_FUNCTIONS = {"pretrain": pretrain, "lt_imp": lt_imp, "rr_imp": rr_imp, "lt_omp": lt_omp,
                     "rr_omp": rr_omp, "oneshot_retrain": oneshot_retrain, "random_prune": random_prune}


def run_setting(exp: Experiment, setting: str) -> list[RunDir]:
    if setting not in SETTING_FUNCTIONS:
        raise ConfigError(f"setting: unknown setting {setting!r}; known: {', '.join(SETTING_FUNCTIONS)}")
    out = SETTING_FUNCTIONS[setting](exp)
    return out if isinstance(out, list) else [out]


__all__ = ["RunSpec", "execute_many", "pretrain", "lt_imp", "rr_imp", "rr", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune",
           "run_setting", "omp_mask", "execute", "SETTING_FUNCTIONS", "MaskEnforcer"]
