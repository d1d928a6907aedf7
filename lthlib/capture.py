"""The training step captured as one CUDA graph (``cuda_graph: true``).

A ResNet-20 step at batch 64 is a few hundred small kernels; launched one by one from Python the GPU
waits on the CPU. ``CapturedStep`` records the whole step of a full batch once -- forward, per-ticket
losses, backward, gradient masking, the SGD update, weight masking -- and replays it for every full
batch; the host only copies the batch in and sets the learning rate.

What stays exactly the recipe:
- the first ``warmup`` full batches run the same step body eagerly (real steps, on a side stream as
  CUDA requires), then the step is captured and replayed from the next batch on; nothing is trained
  twice or skipped;
- the last partial batch of an epoch runs the body eagerly and evaluation runs eagerly (no second
  graph, no recompilation); since every step does the same arithmetic, a resumed run ends where an
  uninterrupted one does (bitwise on a CPU, tested);
- the update is SGD with the recipe's momentum, weight decay and Nesterov, with the learning rate read
  from a device tensor that the scheduler's value is copied into before each replay (a pack's tickets
  keep their own learning rates); momentum buffers are the optimizer's own, so checkpoints and the
  eager steps see the same state.

Refused (by ``params.validate``): mixup (its mixing weight is drawn on the host each batch), fp16 (a
loss scale checked on the host), several processes (DDP), and ``compile_mode: reduce-overhead`` (a
graph inside a graph).

On a CPU ``capture=False`` runs the same step body eagerly, which is what the CPU tests check against
the plain step; the graph itself needs a GPU.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def sgd_direction(opt: torch.optim.Optimizer, g: dict) -> tuple[list, list]:
    """(parameters with a gradient, their SGD direction) of group ``g`` of ``opt``: weight decay, then
    momentum (dampening 0, Nesterov as torch.optim.SGD), updating ``opt``'s momentum buffers in place;
    a first step makes them (the buffer is the first direction, as in torch)."""
    params = [p for p in g["params"] if p.grad is not None]
    d = [p.grad for p in params]
    if params and g["weight_decay"]:
        d = torch._foreach_add(d, params, alpha=g["weight_decay"])
    if params and g["momentum"]:
        if g.get("dampening", 0):
            raise ValueError("sgd_direction: dampening is not supported")
        if any("momentum_buffer" not in opt.state[p] for p in params):
            bufs = [opt.state[p].setdefault("momentum_buffer", x.clone()) for p, x in zip(params, d)]
        else:
            bufs = [opt.state[p]["momentum_buffer"] for p in params]
            torch._foreach_mul_(bufs, g["momentum"])
            torch._foreach_add_(bufs, d)
        d = torch._foreach_add(d, bufs, alpha=g["momentum"]) if g["nesterov"] else bufs
    return params, d


@torch.no_grad()
def sgd_update(opt: torch.optim.Optimizer, lrs: list[torch.Tensor]) -> None:
    """SGD as ``torch.optim.SGD`` for every group of ``opt``, with group g's learning rate the 0-dim
    tensor ``lrs[g]`` and, for a ``TicketSGD``, each ticket's factor (``opt.scales``). Parameters without
    a gradient are skipped. Once the momentum buffers exist every op is capturable."""
    scales = getattr(opt, "scales", None)
    for g, lr in zip(opt.param_groups, lrs):
        params, d = sgd_direction(opt, g)
        if not params:
            continue
        step = torch._foreach_mul(d, lr)
        if scales is not None:
            torch._foreach_mul_(step, [scales[p] for p in params])
        torch._foreach_sub_(params, step)


class CapturedStep:
    """A training step (``training._Step``) whose full batches replay one captured graph. Every step --
    warm-up, replayed, partial batch -- does the same arithmetic (``_body``), so a run resumed from a
    checkpoint ends with the weights of an uninterrupted one."""

    def __init__(self, step, full_batch: int, capture: bool = True, warmup: int = 3):
        self.step, self.full, self.capture, self.warmup = step, full_batch, capture, warmup
        self.model, self.opt = step.model, step.opt
        self.eager_steps, self.graph, self.static, self.lrs = 0, None, None, None
        self.opt._opt_called = True  # the update is sgd_update, not opt.step(): the scheduler's order is right

    def __getattr__(self, name):  # mix_gen, device, ... of the wrapped step
        return getattr(self.step, name)

    def __call__(self, x, y):
        if self.lrs is None:
            self.lrs = [torch.zeros((), device=x.device) for _ in self.opt.param_groups]
        for t, g in zip(self.lrs, self.opt.param_groups):
            t.fill_(g["lr"])
        if x.shape[0] != self.full or self.eager_steps < self.warmup:
            self.eager_steps += x.shape[0] == self.full
            out = self._eager(x, y)
        else:
            if self.static is None:
                self._prepare(x, y)
            sx, sy = self.static[:2]
            sx.copy_(x)
            sy.copy_(y)
            if self.graph is not None:
                self.graph.replay()
            else:
                self.static = (sx, sy, *self._body(sx, sy))
            out = self.static[2:]
        self.step.sched.step()
        return out

    def _eager(self, x, y):
        """The body run eagerly; before the capture on a side stream, as CUDA graphs require."""
        if not self.capture or self.graph is not None:
            return self._body(x, y)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self._body(x, y)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _body(self, x, y):
        st = self.step
        with st.autocast():
            out, losses = st.losses(x, y)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        st.enforcer.mask_grads()
        sgd_update(self.opt, self.lrs)
        st.enforcer.mask_weights()
        return out.detach(), losses.detach()

    def _prepare(self, x, y):
        """Static input buffers; on CUDA, capture the body into a graph (recorded, not run)."""
        sx, sy = x.clone(), y.clone()
        if not self.capture:
            self.static = (sx, sy, None, None)
            return
        self.graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(sx.device)
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            out, losses = self._body(sx, sy)
        self.static = (sx, sy, out, losses)
