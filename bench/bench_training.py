"""Throughput of a small ticket sweep: the official code's loop shape against this project's engine.

    python bench/bench_training.py [--models resnet20,lenet5] [--tickets 4] [--pack-sizes 1,8,16] [--device auto]   (make bench)

Both sides train the same work in this process's session: ``--tickets`` masked tickets (global magnitude
masks at IMP sparsities on fresh inits), one epoch each, SGD momentum 0.9, wd 1e-4, batch 64.

- reference: shaped like the official code -- torchvision DataLoader over PIL images with
  RandomCrop(pad)+HorizontalFlip+ToTensor+Normalize, 1 worker, one model at a time, NCHW fp32, torch's
  default thread count.
- ours: the lthlib engine -- the split held as one uint8 tensor with batched crop/flip, channels_last
  where it helps; on CPU the tickets are split over parallel 1-thread processes (two 1-thread processes
  beat one 2-thread one here), on CUDA they are trained as one packed model.

Prints the sweep's training throughput (images per second summed over tickets), ticket-epochs per hour
(of a full 50k/60k epoch), the ratio ours/reference, and achieved GFLOP/s (training FLOPs per image from
torch's FlopCounterMode) against a measured matmul peak. Nothing is asserted: this is a measurement.

Then, for each measured model, the pack rates per step variant (``lthlib.variants``: eager, captured,
compiled, the stride-2 rewrites, bf16) where pack sizes are timed (CUDA by default), and the whole-study
estimate of every paper grid in params/ that trains the model (its plan as it is: the lr sweep, SDT,
weight rewinding; ``lthlib.plan.plan_size`` for the runs and images, the grid scheduler's packs of the
grid's ``pack_size``) per variant, "auto" (what the engine picks per pack: the fastest fp32 variant
measured at that size) and the official-style loop; all of it goes to outputs/bench/rates.json
(atomically), where the plans' estimates and the engine's variant choice read it.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lthlib import data as D  # noqa: E402
from lthlib.engine import device_name  # noqa: E402
from lthlib.models import build_model, load_profile  # noqa: E402
from lthlib.pruning import MaskEnforcer, apply_mask, global_magnitude_mask, imp_sparsity  # noqa: E402
from lthlib.training import Recipe, train  # noqa: E402
from lthlib.variants import pack_rate, parse as parse_variant  # noqa: E402

FULL_EPOCH = {"cifar10": 50_000, "fashion_mnist": 60_000}
MODEL_DATA = {"resnet20": "cifar10", "lenet5": "fashion_mnist"}


def load_bench_data(dataset: str, n: int):
    """Real data from outputs/data when present, else random uint8 images of the right shape."""
    try:
        tr, _ = D.load_data(dataset, ROOT / "outputs" / "data", n_train=n, download=False)
        return tr, "real"
    except Exception:
        spec = D.DATASETS[dataset]
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, spec.channels, spec.size, spec.size), dtype=torch.uint8, generator=g)
        y = torch.randint(0, spec.classes, (n,), generator=g)
        return D.TensorData(x, y, dataset, "random"), "random (dataset not on disk)"


def tickets(model_name: str, dataset: str, n: int):
    spec = D.DATASETS[dataset]
    out = []
    for i in range(n):
        m = build_model(model_name, spec.channels, spec.classes, spec.size, init_seed=i)
        params = dict(m.named_parameters())
        mask = global_magnitude_mask({k: params[k] for k in load_profile(model_name)}, imp_sparsity(i + 1))
        apply_mask(m, mask)
        out.append((m, mask))
    return out


def train_flops_per_image(model_name: str, dataset: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    spec = D.DATASETS[dataset]
    m = build_model(model_name, spec.channels, spec.classes, spec.size)
    x = torch.randn(64, spec.channels, spec.size, spec.size)
    y = torch.randint(0, spec.classes, (64,))
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(m(x), y).backward()
    return fc.get_total_flops() / 64


def matmul_peak(device: torch.device, dtype=torch.float32) -> float:
    """A practical peak: the best GFLOP/s of a square matmul on this device with all threads; the size
    grows from 512 up to 3072 only while one product takes under 0.2 s (bf16 without hardware support
    runs at ~0.5 GFLOP/s on some CPUs, where a fixed 3072 matmul would take minutes)."""
    best, n = 0.0, 512
    while True:
        a = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            a @ a
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
            best = max(best, 2 * n ** 3 / dt / 1e9)
        if n >= 3072 or dt > 0.2:
            return best
        n *= 2


# ----------------------------------------------------------------------------- reference loop
class _PILSet(torch.utils.data.Dataset):
    def __init__(self, data: D.TensorData, transform):
        self.x = data.x.permute(0, 2, 3, 1).numpy()
        self.y = data.y.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image
        img = self.x[i]
        img = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        return self.transform(img), self.y[i]


def reference_sweep(model_name: str, dataset: str, data: D.TensorData, n_tickets: int, device) -> float:
    """Seconds for the sweep, official-code shape."""
    import torchvision.transforms as T
    spec = D.DATASETS[dataset]
    tf = T.Compose([T.RandomCrop(spec.size, padding=spec.pad), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(spec.mean, spec.std)])
    loader = torch.utils.data.DataLoader(_PILSet(data, tf), batch_size=64, shuffle=True, num_workers=1)
    work = tickets(model_name, dataset, n_tickets)
    t0 = time.time()
    for model, mask in work:
        model.to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        enf = MaskEnforcer(model, mask)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            enf.mask_grads()
            opt.step()
            enf.mask_weights()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.time() - t0


# ----------------------------------------------------------------------------- our engine
def _our_batches(data, dataset, device, channels_last):
    spec = D.DATASETS[dataset]
    mf = torch.channels_last if channels_last else torch.contiguous_format
    tr = D.Batches(data, 64, spec.mean, spec.std, True, True, spec.pad, spec.flip, 1, device, mf)
    return tr, mf


def _train_ours(work, data, dataset, device, amp, channels_last, packed):
    import contextlib
    import io
    tr, mf = _our_batches(data, dataset, device, channels_last)
    recipe = Recipe(epochs=1, lr=0.01, batch_size=64, amp=amp, channels_last=channels_last)
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with quiet[0], quiet[1]:
        if packed:
            from lthlib import packing
            net = packing.pack([m for m, _ in work])
            mask = {f"inner.{k}": v for k, v in packing.pack_tensors([k for _, k in work], net.layout).items()}
            _evaluate_free_train(net.to(device, memory_format=mf), mask, tr, recipe, device)
        else:
            for model, mask in work:
                _evaluate_free_train(model.to(device, memory_format=mf), mask, tr, recipe, device)


def _evaluate_free_train(model, mask, tr, recipe, device):
    """The engine's training loop with an empty test set (the reference does not evaluate either)."""
    empty = D.TensorData(tr.data.x[:0], tr.data.y[:0], tr.data.name, tr.data.source)
    train(model, mask, tr, D.Batches(empty, 1024, (0.0,), (1.0,), False, device=device), recipe, device)
    if device.type == "cuda":
        torch.cuda.synchronize()


def _worker(model_name, dataset, n_images, ticket_ids, amp, channels_last, barrier, done):
    torch.set_num_threads(1)
    data, _ = load_bench_data(dataset, n_images)
    work = [tickets(model_name, dataset, max(ticket_ids) + 1)[i] for i in ticket_ids]
    barrier.wait()
    _train_ours(work, data, dataset, torch.device("cpu"), amp, channels_last, packed=False)
    done.put(0)


def our_sweep(model_name, dataset, data, n_images, n_tickets, device, amp, channels_last) -> tuple[float, str]:
    if device.type == "cuda":
        work = tickets(model_name, dataset, n_tickets)
        t0 = time.time()
        _train_ours(work, data, dataset, device, amp, channels_last, packed=True)
        return time.time() - t0, f"1 process, {n_tickets} tickets packed"
    procs = min(os.cpu_count() or 1, n_tickets)
    ctx = mp.get_context("spawn")
    split = [list(range(i, n_tickets, procs)) for i in range(procs)]
    barrier, done = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(model_name, dataset, n_images, ids, amp, channels_last, barrier,
                                                 done)) for ids in split]
    for w in workers:
        w.start()
    barrier.wait()  # every worker has its data and models: time the training only
    t0 = time.time()
    for _ in workers:
        done.get()
    wall = time.time() - t0
    for w in workers:
        w.join()
    return wall, f"{procs} x 1-thread processes"


# ----------------------------------------------------------------------------- packs and the whole grid
VARIANTS = ("eager", "graph", "compile+graph", "sub1x1+graph", "s2d+graph", "sub1x1+compile+graph", "bf16+graph",
            "compile+bf16+graph", "reduce-overhead")  # some step variants (lthlib.variants: any name it parses)
DEFAULT_VARIANTS = "eager,graph,sub1x1+graph,s2d+graph"


def grid_pack(model_name, dataset, data, k, device, strided="off"):
    """A pack of ``k`` masked tickets as the grid scheduler forms it -- each ticket its own data order
    and lr (alternating 0.1 / 0.01), NHWC, on ``device``, its strided convolutions computed as
    ``strided`` says (``packing.rewrite_strided``) -- as (net, mask, batches, ticket lrs); a pack of 1 is
    the model itself."""
    from lthlib import packing
    spec, mf = D.DATASETS[dataset], torch.channels_last
    data = data.to(device)  # one device copy for every ticket's order
    work = tickets(model_name, dataset, k)
    loaders = [D.Batches(data, 64, spec.mean, spec.std, True, True, spec.pad, spec.flip, seed,
                         device, mf) for seed in range(1, k + 1)]
    if k == 1:
        net, mask, batches = work[0][0], work[0][1], loaders[0]
        packing.rewrite_strided(net, strided)
    else:
        net = packing.pack([m for m, _ in work], strided=strided)
        net.memory_format = mf
        mask = {f"inner.{n}": v for n, v in packing.pack_tensors([w for _, w in work], net.layout).items()}
        batches = packing.TicketBatches(loaders, list(range(k)))
    return net.to(device, memory_format=mf), mask, batches, [0.1 if i % 2 == 0 else 0.01 for i in range(k)]


def pack_rates(model_name, dataset, data, sizes, device, variant="eager") -> dict[int, float]:
    """Ticket-images per second of packs of each size (``grid_pack``) in ``variant`` (a name
    ``lthlib.variants.parse`` reads). Two epochs; the second is timed (compilation, capture and warm-up
    excluded)."""
    import contextlib
    import io
    from lthlib.engine import compile_forward
    v = parse_variant(variant)
    amp, cuda_graph, compile_mode = v.amp, v.cuda_graph, v.compile
    empty = D.TensorData(data.x[:0], data.y[:0], data.name, data.source)
    out = {}
    for k in sizes:
        net, mask, batches, lrs = grid_pack(model_name, dataset, data, k, device, v.strided)
        if compile_mode:
            compile_forward(net, compile_mode, 64)
        recipe = Recipe(epochs=2, lr=0.1, batch_size=64, channels_last=True, amp=amp)
        with contextlib.redirect_stdout(io.StringIO()):
            hist = train(net, mask, batches, D.Batches(empty, 1024, (0.0,), (1.0,), False, device=device), recipe,
                         device, ticket_lrs=lrs, cuda_graph=cuda_graph)
        h = hist[0] if k > 1 else hist
        out[k] = k * len(data) / h[-1]["train_time_s"]
        del net, batches
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _endless(batches):
    """``batches`` epoch after epoch."""
    for epoch in itertools.count():
        batches.set_epoch(epoch)
        yield from batches


def profile_pack(model_name, dataset, data, k, device, steps=12) -> None:
    """The CUDA kernels that take a pack of ``k``'s (eager) step time, top 14 by total device time."""
    from torch.profiler import ProfilerActivity, profile
    from lthlib.training import Step, make_optimizer, MaskEnforcer
    net, mask, epoch_batches, lrs = grid_pack(model_name, dataset, data, k, device)
    batches = _endless(epoch_batches)
    r = Recipe(epochs=1, lr=0.1, batch_size=64, channels_last=True)
    opt = make_optimizer(net.train(), r, lrs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0)
    step = Step(net, MaskEnforcer(net, mask), opt, sched, r, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        step(*next(batches))
    sync()
    with profile(activities=[ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step(*next(batches))
        sync()
        wall = (time.perf_counter() - t0) / steps
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    rows = sorted(prof.key_averages(), key=lambda e: -getattr(e, attr, 0.0))
    total = sum(getattr(e, attr, 0.0) for e in rows) or 1.0
    print(f"\ntop kernels of {steps} steps of a pack of {k} (eager, fp32, {device.type}): share of "
          f"{total / 1e3 / steps:.1f} ms per step (wall {1e3 * wall:.1f} ms per step under the profiler)")
    for e in rows[:14]:
        t = getattr(e, attr, 0.0)
        print(f"  {100 * t / total:5.1f}%  {t / 1e3 / steps:7.2f} ms/step  {e.count // steps:4d}/step  {e.key[:90]}")


def paper_grids(model_name: str, dataset: str) -> list:
    """The paper's grids in params/ (a paper model on a paper dataset) that train ``model_name`` on
    images of ``dataset``'s geometry (what the rates were measured on), as they are."""
    from lthlib import load
    from lthlib.errors import LTHError
    from lthlib.models import MODELS
    geometry = lambda d: (D.DATASETS[d].channels, D.DATASETS[d].size)
    out = []
    for f in sorted((ROOT / "params").glob("*.yaml")):
        try:
            exp = load(f)
        except LTHError as exc:
            print(f"  ({f.name} skipped: {exc})")
            continue
        if (exp.model == model_name and MODELS[exp.model].in_paper and D.DATASETS[exp.dataset].in_paper
                and geometry(exp.dataset) == geometry(dataset)):
            out.append(exp)
    return out


def _fp32(name: str) -> bool:
    """Whether the rates under ``name`` are in the recipe's fp32 numerics ("processes": the CPU's)."""
    return name == "processes" or parse_variant(name).amp == "none"


def auto_rate(by_variant: dict, k: int) -> float:
    """The rate of a pack of ``k`` in the variant the engine picks for it (``lthlib.variants.choose``): the
    fastest fp32 variant measured around ``k`` (else the fastest at its nearest measured size)."""
    fp32 = {v: r for v, r in by_variant.items() if _fp32(v)}
    covering = [pack_rate(r, k) for r in fp32.values() if min(r) <= k <= max(r)]
    return max(covering or [pack_rate(r, k) for r in fp32.values()])


def study_estimates(model_name, dataset, by_variant: dict, official: float, packed: bool) -> dict:
    """Hours of every paper grid of ``model_name`` (``paper_grids``) per variant of ``by_variant``
    ({name: {pack size: ticket-img/s}}), "auto" and the official-style loop (``official`` img/s): its
    runs (``plan_size``: training and evaluation images) scheduled as the grid scheduler packs them
    (``schedule.packs``, the grid's ``pack_size``; every run alone unless ``packed``)."""
    from lthlib import registry, schedule
    from lthlib.plan import plan_size
    rates = dict(by_variant)
    if sum(map(_fp32, by_variant)) > 1:
        rates["auto"] = None
    out = {}
    for exp in paper_grids(model_name, dataset):
        size = plan_size(exp, [s for s in registry.NAMES if s in exp.settings])
        per_epoch = size["images_per_run"] / exp.epochs  # training + evaluation, image equivalents
        packs = schedule.packs(exp, packed)
        rate = lambda v, k: auto_rate(by_variant, k) if v == "auto" else pack_rate(rates[v], k)
        hours = {v: sum(k * e * per_epoch / rate(v, k) for k, e in packs) / 3600 for v in rates}
        out[exp.name] = {"runs": size["runs"], "ticket_epochs": size["ticket_epochs"],
                         "pack_size": exp.pack_size if packed else 1, "hours": hours,
                         "official_hours": sum(k * e for k, e in packs) * per_epoch / official / 3600}
    return out


def print_study(study: dict, where: str) -> None:
    if not study:
        print("  no paper grid in params/ trains this model on these images: no whole-study estimate")
        return
    names = list(next(iter(study.values()))["hours"])
    print(f"\nwhole-study estimate on {where}, hours (training + evaluation; as PACK=grid packs of the grid's "
          f"pack_size where packs were timed, else one run at a time; bf16 changes the numerics):")
    print(f"  {'grid':36s} {'runs':>5s} {'ticket-ep':>9s} {'pack':>4s} " + " ".join(f"{n:>12s}" for n in names)
          + f" {'official-style':>14s}")
    for grid, row in study.items():
        print(f"  {grid:36s} {row['runs']:5d} {row['ticket_epochs']:9,d} {row['pack_size']:4d} "
              + " ".join(f"{row['hours'][n]:12,.1f}" for n in names) + f" {row['official_hours']:14,.1f}")


def save_rates(model_name: str, device, rates: dict, official: float, variant: str, variants: dict,
               study: dict) -> None:
    """outputs/bench/rates.json (written atomically): what the planner's time estimates (``pack_rates``)
    and the engine's variant choice (``variants``) read, and the whole-study estimates (``study``)."""
    import json
    from lthlib.runs import atomic_write_json
    path = ROOT / "outputs" / "bench" / "rates.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    kind = "gpu" if device.type == "cuda" else "cpu"
    known.setdefault(model_name, {})[kind] = {"pack_rates": {str(k): v for k, v in rates.items()},
                                             "variant": variant, "official": official,
                                             "variants": {n: {str(k): v for k, v in r.items()}
                                                          for n, r in variants.items()},
                                             "device": device_name(device), "study": study,
                                             "measured": time.strftime("%Y-%m-%d %H:%M")}
    atomic_write_json(path, known)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet20,lenet5")
    ap.add_argument("--tickets", type=int, default=4)
    ap.add_argument("--images", type=str, default="resnet20=5000,lenet5=60000",
                    help="training images per ticket-epoch of the bench, per model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--pack-sizes", default="", help="pack sizes to time, each model (default: 1,8,16,32,64 on "
                    "CUDA; none on CPU, where packs do not pay and the 2-process rate is used)")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"pack step variants to time, e.g. {', '.join(VARIANTS)} "
                    "(lthlib.variants), each optionally NAME:K/K (only those pack sizes); the estimate the planner reads is "
                    "the fastest one in the recipe's fp32")
    ap.add_argument("--profile", type=int, default=0, help="print the top kernels of a pack of this size")
    a = ap.parse_args(argv)
    device = torch.device("cuda" if (a.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if a.device == "auto" else a.device))
    images = dict(kv.split("=") for kv in a.images.split(","))
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as the engine (cudnn_benchmark: true)
    peak = {"fp32": matmul_peak(device), "bf16": matmul_peak(device, torch.bfloat16)}
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; measured matmul peak "
          f"{peak['fp32']:.0f} GFLOP/s fp32, {peak['bf16']:.0f} GFLOP/s bf16 (%mm: achieved / that matmul rate, in the row's precision)")
    header = (f"{'model':9s} {'way':44s} {'ticket-img/s':>12s} {'ticket-ep/h':>11s} {'ratio':>6s} "
              f"{'GFLOP/s':>8s} {'%mm':>6s}")
    for model_name in a.models.split(","):
        dataset = MODEL_DATA[model_name]
        n = int(images.get(model_name, 10000))
        data, kind = load_bench_data(dataset, n)
        flops = train_flops_per_image(model_name, dataset)
        print(f"\n{model_name} on {dataset} ({kind}, {len(data)} images per ticket-epoch), {a.tickets} tickets, "
              f"{flops / 1e6:.0f} MFLOP per training image")
        print(header)
        ref = reference_sweep(model_name, dataset, data, a.tickets, device)
        rows = [("reference: DataLoader+PIL, 1 worker, 1 model", ref)]
        cl = model_name != "lenet5"  # channels_last helps convs with many channels, not LeNet
        for amp in ("none", "bf16"):
            wall, how = our_sweep(model_name, dataset, data, n, a.tickets, device, amp, cl)
            rows.append((f"ours {'fp32' if amp == 'none' else 'bf16'}: {how}{', NHWC' if cl else ''}", wall))
        for name, wall in rows:
            ips = len(data) * a.tickets / wall  # images trained per second, summed over tickets
            gfs = ips * flops / 1e9
            p = peak["bf16" if "bf16" in name else "fp32"]
            print(f"{model_name:9s} {name:44s} {ips:12.0f} {3600 * ips / FULL_EPOCH[dataset]:11.1f} "
                  f"{ref / wall:6.2f} {gfs:8.1f} {100 * gfs / p:6.1f}")
        # every measured model: its pack variants (where sizes are timed) and whole-study estimates
        _grid_lines(model_name, dataset, data, a, device, len(data) * a.tickets / ref, len(data) * a.tickets / rows[1][1])
    return 0


def _grid_lines(model_name, dataset, data, a, device, official: float, ours: float) -> None:
    sizes = [int(k) for k in (a.pack_sizes or ("1,8,16,32,64" if device.type == "cuda" else "")).split(",") if k]
    variants = [v.partition(":") for v in a.variants.split(",") if v] if sizes else []
    found = {}
    for v, _, only in variants:  # "compile+graph:12/64" times that variant at those sizes only
        t0 = time.time()
        try:
            found[v] = pack_rates(model_name, dataset, data, [int(k) for k in only.split("/")] if only else sizes,
                                  device, v)
        except Exception as exc:  # a variant that fails is reported, the others still measured
            print(f"{model_name:9s} {v}: failed ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        for k, r in found[v].items():
            print(f"{model_name:9s} {'pack of ' + str(k) + ', ' + v + ' (own data order, lr)':44s} {r:12.0f}")
        print(f"  ({v}: {time.time() - t0:.0f}s to measure)", flush=True)
    if a.profile:
        profile_pack(model_name, dataset, data, a.profile, device)
    exact = {v: r for v, r in found.items() if parse_variant(v).amp == "none" and set(r) == set(sizes)}  # recipe's numerics
    best = max(exact, key=lambda v: max(exact[v].values()), default=None)
    rates = exact[best] if best else {1: ours}
    study = study_estimates(model_name, dataset, found or {"processes": rates}, official, packed=bool(found))
    print_study(study, device_name(device))
    save_rates(model_name, device, rates, official, best or "2 processes", found, study)


if __name__ == "__main__":
    sys.exit(main())
