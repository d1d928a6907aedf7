"""The run engine: realizes run plans (``lthlib.plans``) as finished run folders, once.

``realize(plans)`` trains a list of plans and everything they need, wave after wave: each wave trains
every unfinished run whose dependencies are finished -- in packs on CUDA (``pack``), each ticket with its
own data order and learning rate -- under a per-folder lock; a finished run is skipped after checking
that its folder holds the identity its plan gives; a broken one (a missing or empty file it promises) is
named and trained again; an interrupted one resumes from its last epoch checkpoint. The notebooks call
``run_setting`` (one setting of one cell), the grid scheduler ``realize`` over every cell of a grid:
the same folders either way. ``lthlib.settings`` says *what* to train; this module says *how*.

Each pack trains with the step variant ``lthlib.variants.choose`` picks for its model, device and size
(the fastest fp32 formulation `make bench` measured, else the run's flags), recorded in its
``config.json`` and ``metrics.json``. Where a wave's packs train is the caller's ``dispatch``
(``chunks -> None``): this process one after another by default, ``workers`` CPU processes, or what the
grid scheduler passes (device slots, Slurm jobs; ``lthlib.schedule``) -- every one trains a pack with
``train_chunk``, so the folders and (on a CPU) the bits are the same.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import data as D
from . import distributed as dist
from . import packing, settings, variants
from .errors import LTHError
from .models import build_model, build_scaled, load_profile
from .params import Experiment, identity as exp_identity, load
from .plans import RunPlan, closure, make_mask, start_state
from .pruning import apply_mask, check_mask, global_sparsity, sparsity_table
from .runs import RunDir, atomic_torch_save, atomic_write_csv, atomic_write_json, code_version, project_path
from .training import train


# ----------------------------------------------------------------------------- data cache
_DATA_CACHE: dict = {}


def device_name(device) -> str:
    """The machine a run trained on, in words: the GPU's name, else the CPU's model and its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


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


def new_model(exp: Experiment, init_seed: int, widths=None):
    """The model of ``exp`` (at ``widths``, per stage, when given: a small-dense network) from ``init_seed``."""
    c, k, s = _geometry(exp)
    if widths is not None:
        return build_scaled(exp.model, list(widths), c, k, s, init_seed=init_seed)
    return build_model(exp.model, c, k, s, init_seed=init_seed)


# ----------------------------------------------------------------------------- realizing plans
@dataclass
class Job:
    """An unfinished run to train: its plan (cell, seeds, sources) and folder."""
    plan: RunPlan

    exp = property(lambda self: self.plan.cell)
    rd = property(lambda self: self.plan.folder)
    identity = property(lambda self: self.plan.identity)


def done(plan: RunPlan) -> bool:
    """Finished: the folder holds every file the run promises (``RunDir.finished``) plus the weights it
    keeps after the epochs its plan names; a finished folder must hold the plan's identity."""
    rd = plan.folder
    if not rd.finished():
        return False
    rd.check_identity(plan.identity)
    return all(rd.kept(t).exists() and rd.kept(t).stat().st_size > 0 for t in plan.keep_epochs)


def unfinished_why(plan: RunPlan) -> str | None:
    """Why the run of ``plan`` needs training although the notebook that trains it was executed (None when
    it does not): its folder is missing, unfinished or broken (``done``). A folder of results only, with
    no weight file at all (copied back from a GPU machine), is left as it is: a report counts it, and a
    setting that needs its weights retrains it then."""
    rd = plan.folder
    if not rd.path.is_dir():
        return "is missing"
    if not rd.metrics.exists():
        return "is unfinished"
    if (why := rd.problem(weights=False)) is not None:
        return f"is broken ({why})"
    kept = [rd.kept(t) for t in plan.keep_epochs]
    if not any(f.exists() for f in [rd.init, rd.final, rd.mask, *kept]):
        return None
    try:
        if done(plan):
            return None
    except LTHError as exc:
        return f"is broken ({exc})"
    missing = [f.name for f in kept if not f.exists() or f.stat().st_size == 0]
    return f"is broken ({rd.problem() or ', '.join(missing) + ' missing'})"


def realize(plans: list[RunPlan], on_wave: Callable | None = None, dispatch: Callable | None = None) -> list[RunDir]:
    """Every plan of ``plans`` finished, with everything it needs: wave after wave, the unfinished runs
    whose dependencies are finished train (``train_jobs``, through ``dispatch`` when given). ``on_wave(k,
    ready)`` is told each wave before it trains. Returns the plans' folders, in order."""
    todo, finished, wave = closure(plans), set(), 0
    while True:
        dist.barrier()  # under torchrun: every rank sees the same finished runs
        finished |= {p.name for p in todo if p.name not in finished and done(p)}
        ready = [p for p in todo if p.name not in finished and all(q.name in finished for q in p.needs)]
        if not ready:
            break
        wave += 1
        if on_wave is not None:
            on_wave(wave, ready)
        train_jobs([Job(p) for p in ready], dispatch)
        left = [p for p in ready if not done(p)]
        if left:
            raise LTHError(f"{left[0].folder.path}: still unfinished after training it; see the output above")
    return [p.folder for p in plans]


def run_setting(exp: Experiment, setting: str, sparsities=None, rounds: int | None = None) -> list[RunDir]:
    """Train the runs setting ``setting`` needs in the cell ``exp`` (one lr and seed), and what they
    depend on; finished runs are reused. ``sparsities``/``rounds`` narrow the cell (neither enters a
    run's identity). With ``nproc > 1`` (and not already under torchrun) the setting first runs under
    torchrun; the call then finds its runs finished."""
    cell = exp.replace(**{k: v for k, v in (("sparsities", sparsities), ("imp_rounds", rounds)) if v is not None})
    if cell.nproc > 1 and not dist.is_distributed():
        dist.launch(cell, setting)
        cell = cell.replace(nproc=1)
    return realize(settings.plan(cell, setting))


def load_cells(params_file, overrides: dict | None = None, lr=None, seed=None) -> Experiment:
    """A notebook's experiment: the grid of ``params_file`` (with ``overrides``) narrowed to the cell
    (``lr``, ``seed``), or to every lr / every seed of the grid where they are None."""
    exp = load(params_file, overrides, **{k: v for k, v in (("lr", lr), ("seed", seed)) if v is not None})
    return exp.replace(lrs=[exp.lr] if lr is not None else exp.lrs, seeds=[exp.seed] if seed is not None else exp.seeds)


def run_cells(exp: Experiment, setting: str) -> list[RunDir]:
    """``run_setting`` for every (lr, seed) cell of ``exp``'s grid at once (the cells' runs train wave by
    wave together); the runs in cell order."""
    cells = settings.cells(exp)
    if exp.nproc > 1 and not dist.is_distributed():
        return [rd for cell in cells for rd in run_setting(cell, setting)]
    return realize([p for cell in cells for p in settings.plan(cell, setting)])


def pretrain(exp: Experiment) -> RunDir:
    """The cell's dense run (θ0 in init.pt, θT in final.pt)."""
    return run_setting(exp, "pretrain")[0]


def rr(exp: Experiment, mask_from: str) -> list[RunDir]:
    """Random re-initialization of the LT masks: ``mask_from`` 'imp' (every LT-IMP round) or 'omp'."""
    return run_setting(exp, settings.check_mask_from(mask_from))


def pack_key(job: Job) -> str:
    """Jobs with equal keys can train in one pack: same model, data and recipe but for the learning rate
    and the data order (per-ticket lrs and batches; a folder dataset packs one data order only)."""
    ident = {k: v for k, v in exp_identity(job.exp).items() if k not in ("lr", "data_order")}
    ident.update(widths=job.plan.widths, first_epoch=job.plan.first_epoch)  # one architecture, one length
    if D.DATASETS[job.exp.dataset].kind == "folder":
        ident["data_seed"] = job.plan.data_seed
    return json.dumps([ident, job.exp.data_root, job.exp.device], sort_keys=True, default=str)


def train_jobs(jobs: list[Job], dispatch: Callable | None = None) -> None:
    """Train ``jobs``. With packing on (``pack``: 'on', or 'auto' on CUDA) jobs that share a pack key
    train together in packs of up to ``pack_size`` tickets; otherwise one after another. ``dispatch``
    (a list of packs, each a list of plans -> None) trains the packs where it says; without it they
    train here, or in ``workers`` CPU processes."""
    if not jobs:
        return
    exp = jobs[0].exp
    device = dist.device_for_rank(exp.device)
    if exp.pack == "on" or (exp.pack == "auto" and device.type == "cuda"):
        groups: dict = {}
        for job in jobs:
            groups.setdefault(pack_key(job), []).append(job)
        chunks = [g[i:i + exp.pack_size] for g in groups.values() for i in range(0, len(g), exp.pack_size)]
    else:
        chunks = [[job] for job in jobs]
    plans = [[job.plan for job in chunk] for chunk in chunks]
    if dispatch is not None:
        dispatch(plans)
    elif exp.workers > 1 and device.type == "cpu" and len(chunks) > 1 and not dist.is_distributed():
        train_in_workers(plans, exp.workers)
    else:
        for chunk in plans:
            train_chunk(chunk)


def train_chunk(plans: list[RunPlan]) -> None:
    """Train one pack (or one run) under its folders' locks, in this process."""
    exp = plans[0].cell
    if exp.threads:
        torch.set_num_threads(exp.threads)
    device = dist.device_for_rank(exp.device)
    set_determinism(exp, device)
    profile = load_profile(exp.model)
    _locked([Job(p) for p in plans], lambda left: _train_pack(left, profile, device))


def train_in_workers(chunks: list[list[RunPlan]], workers: int, slots: bool = False) -> None:
    """The packs of one wave in ``workers`` processes at once, each trained as this process would
    (``train_chunk``: the same folders, locks and, on a CPU, bitwise results); a failure in a worker is
    raised here. ``slots``: worker i holds device slot i -- CUDA_VISIBLE_DEVICES is the i-th visible GPU,
    so each pack trains on its own GPU (``NGPU=N``); on a CPU the slot is only recorded."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    n = min(workers, len(chunks))
    queue = ctx.Queue()
    for i in range(n):
        queue.put(i)
    init = (_take_slot, (queue, os.environ.get("CUDA_VISIBLE_DEVICES"))) if slots else (None, ())
    with ctx.Pool(n, *init) as pool:
        for _ in pool.imap_unordered(train_chunk, chunks):
            pass


def _take_slot(queue, visible: str | None) -> None:
    """Pool initializer: this worker's device slot, before anything touches CUDA."""
    slot = queue.get()
    gpus = [g for g in (visible or "").split(",") if g.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else str(slot)
    os.environ["LTHLIB_DEVICE_SLOT"] = str(slot)


def _report_broken(plan: RunPlan) -> None:
    """A folder that claims to be finished but is not: say so, and make it unfinished (retrained)."""
    rd = plan.folder
    if rd.metrics.exists() and dist.is_main():
        missing = [rd.kept(t).name for t in plan.keep_epochs if not rd.kept(t).exists()]
        why = rd.problem() or f"{', '.join(missing)} missing: its plan keeps the weights after those epochs"
        print(f"{rd.path}: broken run ({why}); training it again", flush=True)
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
            if not done(job.plan):  # else another process finished it while we waited
                _report_broken(job.plan)
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
    seeds = sorted({j.plan.data_seed for j in jobs})
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
        loaders, [seeds.index(j.plan.data_seed) for j in jobs])
    test_b = D.Batches(test_data, exp.eval_batch_size, spec.mean, spec.std, False, device=device,
                       memory_format=mf, rank=r, world=w)
    return train_b, test_b, (len(train_data), len(test_data), train_data.source)


def _prepare(plan: RunPlan, profile, device, data_info, step: dict):
    """Build the run's model at its start point (masked), write config.json (with the ``step`` variant
    it trains with), init.pt and mask.pt."""
    exp, rd, identity = plan.cell, plan.folder, plan.identity
    model = new_model(exp, plan.init_seed, plan.widths)
    model.load_state_dict(start_state(plan, model))
    mask = dist.broadcast_mask(make_mask(plan))
    if mask is not None:
        check_mask(mask, model, profile, source=f"mask for {rd.name}")
        apply_mask(model, mask)
    if not dist.is_main():
        return model, mask
    n_train, n_test, source = data_info
    record = {"identity": identity, "experiment": exp.as_dict(), "threads": torch.get_num_threads(),
              "device": str(device), "device_name": device_name(device), "processes": dist.world(),
              "torch": torch.__version__,
              "code_version": code_version(), "determinism": set_determinism(exp, device),
              "python": platform.python_version(), "host": platform.node(), "data_source": source,
              "profile": profile, "n_train_used": n_train, "n_test_used": n_test, "step_variant": step,
              "device_slot": os.environ.get("LTHLIB_DEVICE_SLOT")}
    atomic_write_json(rd.config, record)
    atomic_torch_save({k: v.detach().clone() for k, v in model.state_dict().items()}, rd.init)
    if mask is not None:
        atomic_torch_save(mask, rd.mask)
    return model, mask


def _train_pack(jobs: list[Job], profile, device) -> None:
    """Train ``jobs`` together: one model, or a packed group (per-ticket data orders and lrs), in the step
    variant chosen for the pack (``variants.choose``)."""
    exp = jobs[0].exp
    variant, why = variants.choose(exp, len(jobs), "gpu" if device.type == "cuda" else "cpu")
    mf = torch.channels_last if exp.channels_last else torch.contiguous_format
    train_b, test_b, data_info = _pack_loaders(jobs, device, mf)
    built = [_prepare(j.plan, profile, device, data_info, {**variant.record(), "why": why}) for j in jobs]
    names = [j.rd.name for j in jobs]
    model, mask, tag = built[0][0], built[0][1], None
    if len(jobs) > 1:
        model = packing.pack([m for m, _ in built], strided=variant.strided)
        model.memory_format = mf
        mask = None if built[0][1] is None else {
            f"inner.{k}": v for k, v in packing.pack_tensors([m for _, m in built], model.layout).items()}
        tag = names
    else:
        packing.rewrite_strided(model, variant.strided)
    model.to(device, memory_format=mf)
    if variant.compile:
        compile_forward(model, variant.compile, exp.batch_size // dist.world())
    t0 = time.time()
    desc = names[0] if len(jobs) == 1 else f"pack of {len(jobs)}: {names[0]} ..."
    history = train(dist.wrap(model, device), mask, train_b, test_b, exp.recipe(),
                    device, jobs[0].rd, desc=desc, tag=tag, ticket_lrs=[j.exp.lr for j in jobs],
                    cuda_graph=variant.cuda_graph and device.type == "cuda", hooks=_hooks(jobs),
                    first_epoch=jobs[0].plan.first_epoch)
    wall = time.time() - t0
    if not dist.is_main():
        return
    if len(jobs) == 1:
        finals, histories = [{k: v.detach().cpu().clone() for k, v in model.state_dict().items()}], [history]
    else:
        finals, histories = packing.unpack_state(model), history
    for job, (_, m), final, hist in zip(jobs, built, finals, histories):
        _finish(job.rd, job.plan, m, final, hist, wall, data_info[0], device, names if len(jobs) > 1 else None,
                variant.name)
    for job in jobs:  # only once every run of the pack is marked finished: a kill before resumes, not restarts
        job.rd.checkpoint.unlink(missing_ok=True)


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


def _hooks(jobs: list[Job]) -> list:
    """The engine's epoch hooks for a pack: keep each run's weights after the epochs its plan names."""
    keep = sorted({t for j in jobs for t in j.plan.keep_epochs})
    return [KeepWeights(jobs, keep)] if keep else []


class KeepWeights:
    """Epoch hook: after each epoch in ``epochs``, every run of the pack writes its weights (``kept``)."""

    def __init__(self, jobs: list[Job], epochs: list[int]):
        self.jobs, self.epochs = jobs, epochs

    def __call__(self, st) -> None:
        if st.epoch not in self.epochs or not dist.is_main():
            return
        if len(self.jobs) == 1:
            states = [{k: v.detach().cpu().clone() for k, v in st.base.state_dict().items()}]
        else:
            states = packing.unpack_state(st.base)
        for job, state in zip(self.jobs, states):
            if st.epoch in job.plan.keep_epochs:
                atomic_torch_save(state, job.rd.kept(st.epoch))


def _finish(rd: RunDir, plan: RunPlan, mask, final: dict, history: list[dict], wall: float, n_train: int,
            device, packed_with, step_variant: str) -> None:
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
        "threads": torch.get_num_threads(), "processes": dist.world(), "setting": plan.setting,
        "packed_with": packed_with, "step_variant": step_variant,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    metrics.update(plan.facts)
    atomic_write_json(rd.metrics, metrics)  # last: marks the run finished (its checkpoint goes after)


