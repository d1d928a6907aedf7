"""The training engine: SGD with a per-iteration LR schedule, masked steps, evaluation every epoch,
per-epoch checkpoints that resume bit-for-bit, and a progress bar with ETA."""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from . import distributed as dist
from .pruning import MaskEnforcer, Mask
from .runs import RunDir, atomic_torch_save, load_checkpoint


@dataclass
class Recipe:
    """Every training hyper-parameter; the defaults are the official CIFAR recipe (SPEC section 5)."""
    epochs: int = 160
    lr: float = 0.1
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-4
    wd_on_bn: bool = True          # ImageNet recipe: False (no decay on BN and biases)
    nesterov: bool = False
    lr_schedule: str = "multistep"  # 'multistep' (x gamma at milestone fractions) or 'cosine'
    milestones: list = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    mixup: float = 0.0             # mixup alpha; 0 = off
    amp: str = "none"              # 'none', 'bf16' or 'fp16' (fp16 only on CUDA)
    channels_last: bool = False
    eval_batch_size: int = 1024


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, r: Recipe) -> torch.optim.Optimizer:
    if r.wd_on_bn:
        groups = [{"params": list(model.parameters()), "weight_decay": r.weight_decay}]
    else:  # no decay on BN parameters and biases (judged on the single model's shape when packed)
        dim = lambda p: getattr(p, "_single_dim", p.dim())
        decay = [p for p in model.parameters() if dim(p) > 1]
        no_decay = [p for p in model.parameters() if dim(p) <= 1]
        groups = [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)


def lr_factor(r: Recipe, iters_per_epoch: int):
    """Multiplier of the base LR at iteration ``it`` (the scheduler is stepped every iteration)."""
    total = r.epochs * iters_per_epoch
    warm = r.warmup_epochs * iters_per_epoch
    steps = [round(m * total) for m in r.milestones]

    def factor(it: int) -> float:
        if it < warm:
            return (it + 1) / warm
        if r.lr_schedule == "cosine":
            t = (it - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return r.gamma ** sum(it >= s for s in steps)
    return factor


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _beta(alpha: float, g: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw from ``g`` (as the ratio of two Gamma draws)."""
    a = torch._standard_gamma(torch.full((2,), float(alpha)), generator=g)
    return float(a[0] / a.sum())


def _ticket_logits(out: torch.Tensor) -> torch.Tensor:
    """Logits as [B, tickets, classes] (a single model is one ticket)."""
    return out if out.dim() == 3 else out.unsqueeze(1)


def _ticket_losses(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-ticket mean cross-entropy, shape [tickets]."""
    return F.cross_entropy(out.permute(0, 2, 1), y[:, None].expand(-1, out.shape[1]), reduction="none",
                           label_smoothing=label_smoothing).mean(0)


@torch.no_grad()
def evaluate(model: nn.Module, batches, device, amp: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """Per ticket (mean loss, accuracy in %), as CPU tensors of shape [tickets]."""
    model.eval()
    loss, correct, n = None, None, 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, amp):
            out = _ticket_logits(model(x)).float()
        l = _ticket_losses(out, y) * len(y)
        c = (out.argmax(2) == y[:, None]).sum(0)
        loss, correct = (l, c) if loss is None else (loss + l, correct + c)
        n += len(y)
    if dist.is_distributed():  # every rank saw its slice of the test set
        if loss is None:
            raise RuntimeError("a rank got no test batches: use a test set of at least one batch per rank")
        loss, correct = dist.all_reduce_sum(loss), dist.all_reduce_sum(correct)
        n = int(dist.all_reduce_sum(torch.tensor(n, device=loss.device)))
    if n == 0:  # no test set (benchmarks)
        nan = torch.full((max(1, getattr(model, "n_tickets", 0)),), float("nan"))
        return nan, nan
    return (loss / n).cpu(), (100.0 * correct / n).cpu()


def train(model: nn.Module, mask: Mask | None, train_batches, test_batches, recipe: Recipe,
          device: torch.device, run: RunDir | None = None, desc: str = "train", tag=None):
    """Train ``model`` (already on ``device``, already masked) and return the per-epoch history: a list
    of rows, or for a packed model (``model.n_tickets``) one such list per ticket.

    With ``run``, a checkpoint is written after every epoch and training resumes from it (only when its
    ``tag`` matches, e.g. the members of a pack); the batches of epoch e depend only on (data seed, e),
    so the resumed run ends with the same weights.
    """
    r = recipe
    base = getattr(model, "module", model)  # under DDP: the wrapped model (names, state_dict)
    n_tickets = getattr(base, "n_tickets", 0)
    opt = make_optimizer(model, r)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(r, len(train_batches)))
    enforcer = MaskEnforcer(base, mask)
    scaler = torch.amp.GradScaler(enabled=(r.amp == "fp16" and device.type == "cuda"))
    histories, start = [[] for _ in range(max(1, n_tickets))], 0
    if run is not None and run.checkpoint.exists():
        ck = load_checkpoint(run.checkpoint, "training checkpoint")
        if ck.get("tag") == tag:
            base.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            histories, start = ck["history"], ck["epoch"]
            if not n_tickets:
                histories = [histories]
            print(f"[{desc}] resuming after epoch {start}/{r.epochs} from {run.checkpoint}", flush=True)

    total_it = r.epochs * len(train_batches)
    tty = sys.stderr.isatty()
    # headless runs (make sets LTHLIB_PROGRESS=lines) log one line per epoch with ETA instead of a bar
    quiet_bar = os.environ.get("LTHLIB_PROGRESS") == "lines" or not dist.is_main()
    bar = tqdm(total=total_it, initial=start * len(train_batches), desc=desc, unit="it", file=sys.stderr,
               mininterval=0.5 if tty else 30, dynamic_ncols=True, leave=True, disable=quiet_bar)
    mix_gen = torch.Generator()
    t_run = time.time()
    for epoch in range(start, r.epochs):
        model.train()
        if hasattr(train_batches, "set_epoch"):
            train_batches.set_epoch(epoch)
        lr_now = opt.param_groups[0]["lr"]
        t0 = time.time()
        loss_sum, correct, seen = 0.0, 0, 0
        mix_gen.manual_seed(1_000_003 * (epoch + 1))
        for x, y in train_batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, r.amp):
                if r.mixup > 0:  # mix each image with the reversed batch; one lambda per batch
                    lam = _beta(r.mixup, mix_gen)
                    out = _ticket_logits(model(lam * x + (1 - lam) * x.flip(0)))
                    losses = (lam * _ticket_losses(out.float(), y, r.label_smoothing)
                              + (1 - lam) * _ticket_losses(out.float(), y.flip(0), r.label_smoothing))
                else:
                    out = _ticket_logits(model(x))
                    losses = _ticket_losses(out.float(), y, r.label_smoothing)
                loss = losses.sum()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            enforcer.mask_grads()
            scaler.step(opt)
            scaler.update()
            enforcer.mask_weights()
            sched.step()
            loss_sum = loss_sum + losses.detach() * len(y)
            correct = correct + (out.detach().argmax(2) == y[:, None]).sum(0)
            seen += len(y)
            bar.update(1)
        train_time = time.time() - t0
        if dist.is_distributed():
            loss_sum, correct = dist.all_reduce_sum(loss_sum), dist.all_reduce_sum(correct)
            seen = int(dist.all_reduce_sum(torch.tensor(seen, device=device)))
        test_loss, test_acc = evaluate(model, test_batches, device, r.amp)
        train_loss, train_acc = (loss_sum / seen).cpu(), (100.0 * correct / seen).cpu()
        for t, hist in enumerate(histories):
            hist.append({"epoch": epoch + 1, "lr": lr_now, "train_loss": float(train_loss[t]),
                         "train_acc": float(train_acc[t]), "test_loss": float(test_loss[t]),
                         "test_acc": float(test_acc[t]), "train_time_s": train_time,
                         "epoch_time_s": time.time() - t0, "images_per_s": seen / train_time})
        row = histories[0][-1]
        tests = " ".join(f"{float(a):.2f}" for a in test_acc[:8]) + (" ..." if len(test_acc) > 8 else "")
        bar.set_postfix(ep=f"{epoch + 1}/{r.epochs}", loss=f"{row['train_loss']:.3f}", test=tests, refresh=False)
        done, elapsed = epoch + 1 - start, time.time() - t_run
        eta = elapsed / done * (r.epochs - epoch - 1)
        what = f"{len(histories)} tickets, test {tests}%" if n_tickets else (
            f"loss {row['train_loss']:.4f} train {row['train_acc']:.2f}% test {row['test_acc']:.2f}%")
        if dist.is_main():
            tqdm.write(f"[{desc}] epoch {epoch + 1}/{r.epochs} lr {lr_now:.4g} {what} | "
                      f"{row['images_per_s'] * max(1, n_tickets):.0f} img/s, ETA {eta:.0f}s", file=sys.stdout)
        if run is not None and epoch + 1 < r.epochs and dist.is_main():
            atomic_torch_save({"epoch": epoch + 1, "model": base.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "tag": tag,
                               "history": histories if n_tickets else histories[0]}, run.checkpoint)
    bar.close()
    return histories if n_tickets else histories[0]
