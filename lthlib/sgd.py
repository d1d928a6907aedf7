"""The one update rule: SGD as ``torch.optim.SGD`` (weight decay, momentum without dampening, Nesterov),
used by every path -- a single model, a packed group of tickets, the captured CUDA-graph step.

``SGD`` takes optional per-ticket learning rates (a pack spanning learning rates: every packed tensor's
first dimension is ticket-major, so ticket t's elements step by ``group lr x ticket_lrs[t]``; the group
lr is then the schedule's factor, base 1.0) and, for a captured step, reads each group's learning rate
from a 0-dim device tensor (``lr_tensors``) that the host fills before every replay. Its arithmetic for
a single model with a plain learning rate is bitwise that of ``torch.optim.SGD`` on the CPU (tested).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def sgd_direction(opt: torch.optim.Optimizer, g: dict) -> tuple[list, list]:
    """(parameters with a gradient, their SGD direction) of group ``g`` of ``opt``: weight decay, then
    momentum (dampening 0, Nesterov as torch.optim.SGD), updating ``opt``'s momentum buffers in place;
    a first step makes them (the buffer is the first direction, as in torch). A parameter that gets no
    gradient keeps its buffer untouched (torch.optim.SGD skips it the same way)."""
    params = [p for p in g["params"] if p.grad is not None]
    d = [p.grad for p in params]
    if params and g["weight_decay"]:
        d = torch._foreach_add(d, params, alpha=g["weight_decay"])
    if params and g["momentum"]:
        if g.get("dampening", 0):
            raise ValueError("sgd_direction: dampening is not supported")
        fresh = [i for i, p in enumerate(params) if "momentum_buffer" not in opt.state[p]]
        for i in fresh:
            opt.state[params[i]]["momentum_buffer"] = d[i].clone()
        old = [(opt.state[p]["momentum_buffer"], x) for i, (p, x) in enumerate(zip(params, d)) if i not in fresh]
        if old:
            bufs = [b for b, _ in old]
            torch._foreach_mul_(bufs, g["momentum"])
            torch._foreach_add_(bufs, [x for _, x in old])
        bufs = [opt.state[p]["momentum_buffer"] for p in params]
        d = torch._foreach_add(d, bufs, alpha=g["momentum"]) if g["nesterov"] else bufs
    return params, d


class SGD(torch.optim.Optimizer):
    """SGD over parameter groups (each with its ``weight_decay``), optionally per-ticket learning rates
    (``ticket_lrs``: each ticket's base lr; the groups' lr is then the schedule factor) and, once
    ``lr_tensors`` is set (one 0-dim tensor per group), learning rates read from the device."""

    def __init__(self, groups, lr: float, momentum: float, nesterov: bool, ticket_lrs: list[float] | None = None):
        per_ticket = bool(ticket_lrs) and len(set(ticket_lrs)) > 1
        base = 1.0 if per_ticket else (ticket_lrs[0] if ticket_lrs else lr)
        super().__init__(groups, dict(lr=base, momentum=momentum, nesterov=nesterov, weight_decay=0.0,
                                      dampening=0.0))
        self.scales = None
        self.lr_tensors: list[torch.Tensor] | None = None
        if per_ticket:
            lrs = torch.tensor(ticket_lrs, dtype=torch.float32)
            self.scales = {p: lrs.to(p.device).repeat_interleave(p.shape[0] // len(lrs))
                           .view(-1, *[1] * (p.dim() - 1)).expand_as(p).contiguous()
                           for g in self.param_groups for p in g["params"]}

    def group_lrs(self, ticket_lrs: list[float] | None, n: int) -> list[float]:
        """Each ticket's learning rate now (``n`` tickets; a single model is one)."""
        now = self.param_groups[0]["lr"]
        return [now * b for b in ticket_lrs] if self.scales is not None else [now] * n

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every group: the direction (``sgd_direction``) times the group's learning rate,
        times each ticket's factor in a pack spanning learning rates."""
        for i, g in enumerate(self.param_groups):
            params, d = sgd_direction(self, g)
            if not params:
                continue
            scales = None if self.scales is None else [self.scales[p] for p in params]
            if self.lr_tensors is not None:  # capturable: the lr lives on the device
                step = torch._foreach_mul(d, self.lr_tensors[i])
                if scales is not None:
                    torch._foreach_mul_(step, scales)
                torch._foreach_sub_(params, step)
            elif scales is not None:
                torch._foreach_addcmul_(params, scales, d, value=-g["lr"])
            else:
                torch._foreach_add_(params, d, alpha=-g["lr"])


__all__ = ["SGD", "sgd_direction"]
