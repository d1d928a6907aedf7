"""The run engine: turns a ``RunSpec`` (what a training run starts from, which mask, which seeds) into a
finished run folder, once.

A run's folder name and hash derive from its identity (``params.identity`` of the experiment plus the
spec). A finished run is skipped (after checking the folder holds the identity asked for), an unfinished
one is trained under a per-folder lock and resumes from its last epoch checkpoint; with packing, the
unfinished runs that share a data order train together. ``lthlib.settings`` says *what* to train (the
protocol); this module says *how*.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import data as D
from . import distributed as dist
from . import packing
from .models import MODELS, build_model, load_profile, profile_hash
from .params import Experiment, identity as exp_identity
from .pruning import apply_mask, check_mask, global_sparsity, sparsity_table
from .runs import (RunDir, atomic_torch_save, atomic_write_csv, atomic_write_json, code_version, config_hash,
                   fmt_num, project_path)
from .training import train


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
    return spec.channels, spec.classes, spec.size


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


def run_identity(exp: Experiment, spec: RunSpec, profile: list[str]) -> dict:
    """Everything that changes this run's result: the experiment's identity fields, the run's seeds,
    sparsity or round, the pruning profile, the model's init scheme and where its mask and weights come
    from."""
    ident = {"setting": spec.setting, **exp_identity(exp), "init_seed": spec.init_seed,
             "data_seed": spec.data_seed, "sparsity": spec.sparsity, "round": spec.round_,
             "profile": profile_hash(profile), **spec.sources}
    init = MODELS[exp.model].init_tag
    if init:  # a model whose init scheme changed after runs existed: old runs no longer match
        ident["init"] = init
    return ident


def run_dir(exp: Experiment, spec: RunSpec, profile: list[str]) -> tuple[RunDir, dict]:
    ident = run_identity(exp, spec, profile)
    parts = [spec.setting, exp.model, exp.dataset, f"lr{fmt_num(exp.lr)}", f"s{exp.seed}"]
    if spec.round_ is not None:
        parts.append(f"r{spec.round_:02d}")
    elif spec.sparsity is not None:
        parts.append(f"sp{spec.sparsity:.3f}")
    return RunDir(runs_dir(exp) / f"{'-'.join(parts)}-{config_hash(ident)}"), ident


@dataclass
class Job:
    """An unfinished run to train: its experiment (cell), folder, identity and spec."""
    exp: Experiment
    rd: RunDir
    identity: dict
    spec: RunSpec


class Deferred(Exception):
    """Raised inside ``collecting()``: a setting reached runs that are not finished yet (recorded)."""


_COLLECT: list | None = None


@contextlib.contextmanager
def collecting(into: list):
    """Within this block settings do not train: ``execute_many`` appends its unfinished runs to ``into``
    as Jobs and raises Deferred (the grid scheduler then trains them in packs across cells)."""
    global _COLLECT
    previous, _COLLECT = _COLLECT, into
    try:
        yield into
    finally:
        _COLLECT = previous


def execute(exp: Experiment, setting: str, **kw) -> RunDir:
    """Train one run unless it is finished (see RunSpec for the keywords)."""
    return execute_many(exp, [RunSpec(setting, **kw)])[0]


def execute_many(exp: Experiment, specs: list[RunSpec]) -> list[RunDir]:
    """Train every unfinished run of ``specs`` (see ``train_jobs``); finished ones are skipped."""
    profile = load_profile(exp.model)
    planned = [run_dir(exp, spec, profile) + (spec,) for spec in specs]
    dist.barrier()  # under torchrun: every rank sees the same finished runs
    todo, seen = [], set()
    for rd, identity, spec in planned:
        if rd.path in seen:  # the same run asked for twice: train (and lock) it once
            continue
        seen.add(rd.path)
        if rd.finished():
            rd.check_identity(identity)
        else:
            todo.append(Job(exp, rd, identity, spec))
    if _COLLECT is not None and todo:
        _COLLECT.extend(todo)
        raise Deferred(f"{len(todo)} runs of {specs[0].setting} to train")
    train_jobs(todo)
    return [rd for rd, _, _ in planned]


def pack_key(job: Job) -> str:
    """Jobs with equal keys can train in one pack: same model, data and recipe but for the learning rate
    and the data order (per-ticket lrs and batches; a folder dataset packs one data order only)."""
    ident = {k: v for k, v in exp_identity(job.exp).items() if k not in ("lr", "data_order")}
    if D.DATASETS[job.exp.dataset].kind == "folder":
        ident["data_seed"] = job.spec.data_seed
    return json.dumps([ident, job.exp.data_root, job.exp.device], sort_keys=True, default=str)


def train_jobs(jobs: list[Job]) -> None:
    """Train ``jobs``. With packing on (``pack``: 'on', or 'auto' on CUDA) jobs that share a pack key
    train together in packs of up to ``pack_size`` tickets; otherwise one after another."""
    if not jobs:
        return
    exp = jobs[0].exp
    if exp.threads:
        torch.set_num_threads(exp.threads)
    device = dist.device_for_rank(exp.device)
    set_determinism(exp, device)
    profile = load_profile(exp.model)
    if exp.pack == "on" or (exp.pack == "auto" and device.type == "cuda"):
        groups: dict = {}
        for job in jobs:
            groups.setdefault(pack_key(job), []).append(job)
        chunks = [g[i:i + exp.pack_size] for g in groups.values() for i in range(0, len(g), exp.pack_size)]
    else:
        chunks = [[job] for job in jobs]
    for chunk in chunks:
        _locked(chunk, lambda left: _train_pack(left, profile, device))


def _report_broken(rd: RunDir) -> None:
    """A folder that claims to be finished but is not: say so, and make it unfinished (retrained)."""
    if rd.metrics.exists() and dist.is_main():
        print(f"{rd.path}: broken run ({rd.problem()}); training it again", flush=True)
        rd.metrics.unlink(missing_ok=True)


def set_determinism(exp: Experiment, device: torch.device) -> dict:
    """Apply the run's reproducibility switches; returns what was set (recorded in config.json). CPU
    runs at a fixed thread count are bitwise repeatable anyway; on CUDA only ``deterministic: true``
    makes them so (deterministic kernels, TF32 off, a fixed cuBLAS workspace, no cuDNN autotuning)."""
    if exp.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(exp.deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = exp.deterministic
    torch.backends.cudnn.benchmark = exp.cudnn_benchmark and not exp.deterministic and device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = not exp.deterministic and torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = not exp.deterministic
    return {"deterministic": exp.deterministic, "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "tf32": torch.backends.cudnn.allow_tf32,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def _locked(items, fn) -> None:
    """Run ``fn(unfinished items)`` holding the locks of all their run folders (in name order). Under
    torchrun the rank group is the one writer (rank 0) and takes no file locks."""
    if dist.is_distributed():
        fn(items)
        dist.barrier()  # rank 0's files are written before anyone reads them
        return
    with contextlib.ExitStack() as stack:
        for job in sorted(items, key=lambda j: j.rd.name):
            stack.enter_context(job.rd.lock())
        left = []
        for job in items:
            if job.rd.finished():  # another process finished it while we waited
                job.rd.check_identity(job.identity)
            else:
                _report_broken(job.rd)
                left.append(job)
        if left:
            fn(left)


def _workers(device) -> int:
    return 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)


def _pack_loaders(jobs: list[Job], device, mf):
    """(training batches, test batches, (n_train, n_test, data source)) of a pack. One data order for
    all: its batches; several: each ticket its own (``TicketBatches``). ImageNet packs hold one data
    order (``pack_key``), so its folders are scanned once."""
    exp, (r, w) = jobs[0].exp, (dist.rank(), dist.world())
    spec = D.DATASETS[exp.dataset]
    seeds = sorted({j.spec.data_seed for j in jobs})
    if spec.kind == "folder":  # folder of JPEGs: DataLoaders with workers
        torch.manual_seed(seeds[0])
        train_b, test_b, _ = D.imagenet_loaders(project_path(exp.data_root), exp.batch_size, _workers(device),
                                                exp.eval_batch_size, exp.augment, seeds[0], r, w)
        return train_b, test_b, (len(train_b.dataset), len(test_b.dataset), str(project_path(exp.data_root)))
    train_data, test_data = _data(exp)
    train_data = train_data.to(device)  # one copy on the device for every data order of the pack
    loaders = [D.Batches(train_data, exp.batch_size, spec.mean, spec.std, True, exp.augment, spec.pad,
                         spec.flip, s, device, mf, r, w) for s in seeds]
    train_b = loaders[0] if len(seeds) == 1 else packing.TicketBatches(
        loaders, [seeds.index(j.spec.data_seed) for j in jobs])
    test_b = D.Batches(test_data, exp.eval_batch_size, spec.mean, spec.std, False, device=device,
                       memory_format=mf, rank=r, world=w)
    return train_b, test_b, (len(train_data), len(test_data), train_data.source)


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
              "code_version": code_version(), "determinism": set_determinism(exp, device),
              "python": platform.python_version(), "host": platform.node(), "data_source": source,
              "profile": profile, "n_train_used": n_train, "n_test_used": n_test}
    atomic_write_json(rd.config, record)
    atomic_torch_save({k: v.detach().clone() for k, v in model.state_dict().items()}, rd.init)
    if mask is not None:
        atomic_torch_save(mask, rd.mask)
    return model, mask


def _train_pack(jobs: list[Job], profile, device) -> None:
    """Train ``jobs`` together: one model, or a packed group (per-ticket data orders and lrs)."""
    exp = jobs[0].exp
    mf = torch.channels_last if exp.channels_last else torch.contiguous_format
    train_b, test_b, data_info = _pack_loaders(jobs, device, mf)
    built = [_prepare(j.exp, j.rd, j.identity, j.spec, profile, device, data_info) for j in jobs]
    names = [j.rd.name for j in jobs]
    model, mask, tag = built[0][0], built[0][1], None
    if len(jobs) > 1:
        model = packing.pack([m for m, _ in built])
        model.memory_format = mf
        mask = None if built[0][1] is None else {
            f"inner.{k}": v for k, v in packing.pack_tensors([m for _, m in built], model.layout).items()}
        tag = names
    model.to(device, memory_format=mf)
    if exp.compile:
        compile_forward(model, exp.compile_mode, exp.batch_size // dist.world())
    t0 = time.time()
    desc = names[0][:48] if len(jobs) == 1 else f"pack of {len(jobs)}: {names[0][:36]}"
    history = train(dist.wrap(model, device), mask, train_b, test_b, exp.recipe(),
                    device, jobs[0].rd, desc=desc, tag=tag, ticket_lrs=[j.exp.lr for j in jobs],
                    cuda_graph=exp.cuda_graph and device.type == "cuda")
    wall = time.time() - t0
    if not dist.is_main():
        return
    if len(jobs) == 1:
        finals, histories = [{k: v.detach().cpu().clone() for k, v in model.state_dict().items()}], [history]
    else:
        finals, histories = packing.unpack_state(model), history
    for job, (_, m), final, hist in zip(jobs, built, finals, histories):
        _finish(job.rd, job.spec, m, final, hist, wall, data_info[0], device, names if len(jobs) > 1 else None)
    jobs[0].rd.checkpoint.unlink(missing_ok=True)


def compile_forward(model, mode: str, full: int) -> None:
    """Compile ``model``'s forward only (parameter names, so checkpoints, stay as they are). Only training
    batches of ``full`` images take the compiled path: one static shape, so reduce-overhead's CUDA graphs
    are captured once; the last partial batch and evaluation run the eager forward."""
    eager = model.forward
    torch._dynamo.reset()  # every pack compiles afresh: PackedNet.forward would hit dynamo's recompile limit
    compiled = torch.compile(eager, mode=mode)

    def forward(x):
        return compiled(x) if model.training and x.shape[0] == full else eager(x)
    model.forward = forward


def _finish(rd: RunDir, spec: RunSpec, mask, final: dict, history: list[dict], wall: float, n_train: int,
            device, packed_with) -> None:
    if mask is not None:  # the invariant the whole study rests on
        for n, m in mask.items():
            if bool((final[n][~m] != 0).any()):
                raise RuntimeError(f"{rd.name}: pruned weights of {n} are not zero after training")
    atomic_torch_save(final, rd.final)
    atomic_write_csv(rd.history, history)
    best = max((h for h in history if h["test_acc"] == h["test_acc"]), key=lambda h: h["test_acc"])  # not NaN
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


