"""The training loop: SGD with a per-iteration LR schedule, masked steps, evaluation, and epoch hooks.

``train`` is the same loop for one model, a packed group of tickets (``model.n_tickets``) and a DDP
rank group: ``_resume``, then per epoch ``_train_epoch`` and ``_record``, then every hook. Hooks are
callables ``hook(state)`` run after each epoch (``_State.epoch`` epochs done): ``Progress`` prints one
line with rate and ETA, ``Checkpoint`` writes the state a run resumes from bit-for-bit, and the engine
adds its own (e.g. keeping the weights after epoch t for weight rewinding). One step body
(``Step.body``) serves the eager, packed and captured paths; one update rule (``lthlib.sgd.SGD``)."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm


from . import distributed as dist
from .capture import CapturedStep
from .params import Recipe
from .pruning import MaskEnforcer, Mask
from .runs import RunDir, atomic_torch_save, load_checkpoint
from .sgd import SGD


def make_optimizer(model: nn.Module, r: Recipe, ticket_lrs: list[float] | None = None) -> SGD:
    """The one update rule (``lthlib.sgd.SGD``) over ``model``: each ticket at its own lr when
    ``ticket_lrs`` differ (a pack spanning learning rates), else at ``ticket_lrs[0]`` (or ``r.lr``)."""
    return SGD(_param_groups(model, r), r.lr, r.momentum, r.nesterov, ticket_lrs)


def _param_groups(model: nn.Module, r: Recipe) -> list[dict]:
    if r.wd_on_bn:
        groups = [{"params": list(model.parameters()), "weight_decay": r.weight_decay}]
    else:  # no decay on BN parameters and biases (judged on the single model's shape when packed)
        dim = lambda p: getattr(p, "_single_dim", p.dim())
        decay = [p for p in model.parameters() if dim(p) > 1]
        no_decay = [p for p in model.parameters() if dim(p) <= 1]
        groups = [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return groups


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
    """The autocast context of a step. Its cast cache is off (a captured step needs it off, and the eager
    step keeps the same global state, so a compiled forward is not recompiled between the two)."""
    if amp == "none":
        return torch.autocast(device.type, enabled=False, cache_enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def _beta(alpha: float, g: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw from ``g`` (as the ratio of two Gamma draws)."""
    a = torch._standard_gamma(torch.full((2,), float(alpha)), generator=g)
    return float(a[0] / a.sum())


def _ticket_logits(out: torch.Tensor) -> torch.Tensor:
    """Logits as [B, tickets, classes] (a single model is one ticket)."""
    return out if out.dim() == 3 else out.unsqueeze(1)


def _ticket_targets(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Labels as [B, tickets]: one label column shared by every ticket, or each ticket's own batch."""
    return y if y.dim() == 2 else y[:, None].expand(-1, out.shape[1])


def _ticket_losses(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-ticket mean cross-entropy, shape [tickets]."""
    return F.cross_entropy(out.permute(0, 2, 1), _ticket_targets(y, out), reduction="none",
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
        c = (out.argmax(2) == _ticket_targets(y, out)).sum(0)
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


@dataclass
class _State:
    """What a run carries from epoch to epoch (and what a checkpoint holds)."""
    model: nn.Module                  # as trained (DDP-wrapped when distributed)
    base: nn.Module                   # the model itself: names, state_dict
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    n_tickets: int                    # 0 for a single model
    histories: list = field(default_factory=list)  # one list of per-epoch rows per ticket
    epoch: int = 0                    # epochs done


def train(model: nn.Module, mask: Mask | None, train_batches, test_batches, recipe: Recipe,
          device: torch.device, run: RunDir | None = None, desc: str = "train", tag=None,
          ticket_lrs: list[float] | None = None, cuda_graph: bool = False, hooks=None, first_epoch: int = 0):
    """Train ``model`` (already on ``device``, already masked) and return the per-epoch history: a list
    of rows, or for a packed model (``model.n_tickets``) one such list per ticket.

    With ``run``, a checkpoint is written after every epoch and training resumes from it (only when its
    ``tag`` matches, e.g. the members of a pack); the batches of epoch e depend only on (data seed, e),
    so the resumed run ends with the same weights. ``ticket_lrs``: each ticket's base learning rate
    (a pack spanning learning rates); default ``recipe.lr`` for all. ``cuda_graph``: full batches
    replay one captured step (``lthlib.capture``; on a CPU the same step body runs eagerly). ``hooks``:
    more callables ``hook(state)`` run after every epoch, after progress and checkpoint. ``first_epoch``:
    train only epochs first_epoch..epochs-1 of the schedule -- the LR where the schedule is at that epoch,
    the batches of those epochs (weight rewinding continues a dense run from epoch t).
    """
    r = recipe
    base = getattr(model, "module", model)  # under DDP: the wrapped model (names, state_dict)
    opt = make_optimizer(model, r, ticket_lrs)
    factor, skip = lr_factor(r, len(train_batches)), first_epoch * len(train_batches)
    st = _State(model, base, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda it: factor(it + skip)),
                getattr(base, "n_tickets", 0))
    st.histories, st.epoch = [[] for _ in range(max(1, st.n_tickets))], first_epoch
    _resume(st, run, tag, desc, r.epochs)
    step = Step(model, MaskEnforcer(base, mask), opt, st.sched, r, device)
    if cuda_graph:
        step = CapturedStep(step, r.batch_size, capture=device.type == "cuda")
    every = [Progress(desc, r.epochs, st.epoch)] + ([Checkpoint(run, tag, r.epochs)] if run is not None else [])
    every += list(hooks or [])
    for epoch in range(st.epoch, r.epochs):
        t0 = time.time()
        lr_now = opt.group_lrs(ticket_lrs, len(st.histories))
        train_loss, train_acc, seen = _train_epoch(step, train_batches, epoch)
        train_time = time.time() - t0
        evaluated = (epoch + 1) % r.eval_every == 0 or epoch + 1 == r.epochs
        test_loss, test_acc = (evaluate(model, test_batches, device, r.amp) if evaluated
                               else (_nan(st.n_tickets), _nan(st.n_tickets)))
        _record(st, epoch, lr_now, train_loss, train_acc, test_loss, test_acc, train_time, t0, seen)
        for hook in every:
            hook(st)
    return st.histories if st.n_tickets else st.histories[0]


def _nan(n_tickets: int) -> torch.Tensor:
    return torch.full((max(1, n_tickets),), float("nan"))


def _resume(st: _State, run: RunDir | None, tag, desc: str, epochs: int) -> None:
    if run is None or not run.checkpoint.exists():
        return
    ck = load_checkpoint(run.checkpoint, "training checkpoint")
    if ck.get("tag") != tag:
        return
    st.base.load_state_dict(ck["model"])
    st.opt.load_state_dict(ck["optimizer"])
    st.sched.load_state_dict(ck["scheduler"])
    st.histories, st.epoch = ck["history"], ck["epoch"]
    if not st.n_tickets:
        st.histories = [st.histories]
    print(f"[{desc}] resuming after epoch {st.epoch}/{epochs} from {run.checkpoint}", flush=True)


class Checkpoint:
    """Hook: after every epoch but the last, the state a run resumes from (model, optimizer, scheduler,
    history) as ``run.checkpoint``, tagged (a pack's member names); rank 0 writes it."""

    def __init__(self, run: RunDir, tag, epochs: int):
        self.run, self.tag, self.epochs = run, tag, epochs

    def __call__(self, st: "_State") -> None:
        if st.epoch >= self.epochs or not dist.is_main():
            return
        atomic_torch_save({"epoch": st.epoch, "model": st.base.state_dict(), "optimizer": st.opt.state_dict(),
                           "scheduler": st.sched.state_dict(), "tag": self.tag,
                           "history": st.histories if st.n_tickets else st.histories[0]}, self.run.checkpoint)


class Step:
    """One masked SGD step on a batch: per-ticket losses summed, gradients and weights masked. ``body``
    is the step every path runs (eager here; captured by ``lthlib.capture.CapturedStep``)."""

    def __init__(self, model, enforcer: MaskEnforcer, opt, sched, r: Recipe, device):
        self.model, self.enforcer, self.opt, self.sched, self.r, self.device = model, enforcer, opt, sched, r, device
        self.scaler = torch.amp.GradScaler(enabled=(r.amp == "fp16" and device.type == "cuda"))
        self.mix_gen = torch.Generator()

    def autocast(self):
        return _autocast(self.device, self.r.amp)

    def losses(self, x, y):
        r = self.r
        if r.mixup > 0:  # mix each image with the reversed batch; one lambda per batch
            lam = _beta(r.mixup, self.mix_gen)
            out = _ticket_logits(self.model(lam * x + (1 - lam) * x.flip(0)))
            return out, (lam * _ticket_losses(out.float(), y, r.label_smoothing)
                         + (1 - lam) * _ticket_losses(out.float(), y.flip(0), r.label_smoothing))
        out = _ticket_logits(self.model(x))
        return out, _ticket_losses(out.float(), y, r.label_smoothing)

    def body(self, x, y):
        """Forward, per-ticket losses, backward, gradient masks, the SGD update, weight masks; returns
        detached (logits, losses), so the autograd graph is freed now, not at the next step."""
        with self.autocast():
            out, losses = self.losses(x, y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(losses.sum()).backward()
        self.enforcer.mask_grads()
        self.scaler.step(self.opt)  # opt.step() unless fp16 found an overflow
        self.scaler.update()
        self.enforcer.mask_weights()
        return out.detach(), losses.detach()

    def __call__(self, x, y):
        out = self.body(x, y)
        self.sched.step()
        return out


def _train_epoch(step: Step, batches, epoch: int):
    """One epoch: (per-ticket mean loss, accuracy in %, images seen), summed over ranks."""
    step.model.train()
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(epoch)
    step.mix_gen.manual_seed(1_000_003 * (epoch + 1))
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in batches:
        x, y = x.to(step.device, non_blocking=True), y.to(step.device, non_blocking=True)
        out, losses = step(x, y)
        loss_sum = loss_sum + losses.detach() * len(y)
        correct = correct + (out.detach().argmax(2) == _ticket_targets(y, out)).sum(0)
        seen += len(y)
    if dist.is_distributed():
        loss_sum, correct = dist.all_reduce_sum(loss_sum), dist.all_reduce_sum(correct)
        seen = int(dist.all_reduce_sum(torch.tensor(seen, device=step.device)))
    return (loss_sum / seen).cpu(), (100.0 * correct / seen).cpu(), seen


def _record(st: _State, epoch, lr_now, train_loss, train_acc, test_loss, test_acc, train_time, t0, seen) -> None:
    for t, hist in enumerate(st.histories):
        hist.append({"epoch": epoch + 1, "lr": lr_now[t], "train_loss": float(train_loss[t]),
                     "train_acc": float(train_acc[t]), "test_loss": float(test_loss[t]),
                     "test_acc": float(test_acc[t]), "train_time_s": train_time,
                     "epoch_time_s": time.time() - t0, "images_per_s": seen / train_time})
    st.epoch = epoch + 1


class Progress:
    """Hook: the one progress mechanism, interactive or headless: a line per epoch with what was measured
    (the test accuracy only on epochs that evaluated), the rate and the ETA."""

    def __init__(self, desc: str, epochs: int, start: int):
        self.desc, self.epochs, self.start, self.t0 = desc, epochs, start, time.time()

    def __call__(self, st: "_State") -> None:
        if not dist.is_main():
            return
        row = st.histories[0][-1]
        accs = [h[-1]["test_acc"] for h in st.histories]
        tested = not math.isnan(accs[0])
        if st.n_tickets:
            tests = " ".join(f"{a:.2f}" for a in accs[:8]) + (" ..." if len(accs) > 8 else "")
            what = f"{len(accs)} tickets" + (f", test {tests}%" if tested else "")
        else:
            what = f"loss {row['train_loss']:.4f} train {row['train_acc']:.2f}%" + (
                f" test {row['test_acc']:.2f}%" if tested else "")
        eta = tqdm.format_interval((time.time() - self.t0) / (st.epoch - self.start) * (self.epochs - st.epoch))
        print(f"[{self.desc}] epoch {st.epoch}/{self.epochs} lr {row['lr']:.4g} {what} | "
              f"{row['images_per_s'] * max(1, st.n_tickets):.0f} img/s, ETA {eta}", file=sys.stdout, flush=True)
