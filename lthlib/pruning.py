"""Masks and magnitude pruning (SPEC section 4).

A mask is ``{param_name: bool tensor}`` over the model's pruning profile; True keeps a weight.
Masks are never inferred from weight values.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .errors import MaskError

Mask = dict[str, torch.Tensor]


def imp_sparsity(round_: int, rate: float = 0.2) -> float:
    """Global sparsity after ``round_`` IMP rounds that each prune ``rate`` of the remaining weights."""
    return 1.0 - (1.0 - rate) ** round_


def global_magnitude_mask(weights: dict[str, torch.Tensor], sparsity: float,
                          current: Mask | None = None, layer_cap: float | None = 0.99) -> Mask:
    """Keep the largest-|w| ``1 - sparsity`` fraction of all weights pooled over ``weights``.

    Already-pruned weights (``current`` False) rank below every surviving weight, so asking for a
    higher sparsity on an IMP mask only removes more. The number pruned is ``round(sparsity * N)``
    (as torch.nn.utils.prune). Ties break deterministically: on equal |w| the earlier position (profile
    order, then flat index) is kept. With ``layer_cap`` each layer keeps at least ``ceil((1-cap) * n)``
    weights (its largest), taken from the weakest survivors elsewhere; ``None`` or 1.0 disables it.
    """
    check_sparsity(sparsity)
    names = list(weights)
    if not names:
        raise MaskError("global_magnitude_mask: no prunable tensors given")
    scores = []
    for n in names:
        s = weights[n].detach().abs().float().flatten().cpu()
        if current is not None:
            s = torch.where(current[n].flatten().cpu(), s, torch.full_like(s, -1.0))
        scores.append(s)
    sizes = [s.numel() for s in scores]
    total = sum(sizes)
    n_keep = total - int(round(sparsity * total))
    flat = torch.cat(scores)
    if layer_cap is not None and layer_cap < 1.0:
        # force each layer's strongest min_keep weights in by giving them an infinite score
        offset, forced = 0, flat.clone()
        for size, s in zip(sizes, scores):
            min_keep = math.ceil(round((1.0 - layer_cap) * size, 9))
            if min_keep:
                top = torch.sort(s, descending=True, stable=True).indices[:min_keep]
                forced[offset + top] = float("inf")
            offset += size
        flat = forced
    order = torch.sort(flat, descending=True, stable=True).indices
    keep = torch.zeros(total, dtype=torch.bool)
    keep[order[:n_keep]] = True
    out, offset = {}, 0
    for n, size in zip(names, sizes):
        out[n] = keep[offset:offset + size].view_as(weights[n]).clone()
        offset += size
    return out


def random_mask(reference: Mask, mode: str, generator: torch.Generator) -> Mask:
    """A random mask with the reference's sparsity. ``layerwise``: each layer keeps as many weights as
    in ``reference``; ``global``: the same total count, placed uniformly over the pooled tensors."""
    names = list(reference)
    if mode == "layerwise":
        out = {}
        for n in names:
            m = reference[n]
            keep = int(m.sum())
            idx = torch.randperm(m.numel(), generator=generator)[:keep]
            flat = torch.zeros(m.numel(), dtype=torch.bool)
            flat[idx] = True
            out[n] = flat.view_as(m)
        return out
    if mode == "global":
        sizes = [reference[n].numel() for n in names]
        keep = int(sum(int(reference[n].sum()) for n in names))
        flat = torch.zeros(sum(sizes), dtype=torch.bool)
        flat[torch.randperm(sum(sizes), generator=generator)[:keep]] = True
        out, off = {}, 0
        for n, size in zip(names, sizes):
            out[n] = flat[off:off + size].view_as(reference[n]).clone()
            off += size
        return out
    raise MaskError(f"random mask mode must be 'layerwise' or 'global', got {mode!r}")


def check_sparsity(sparsity, field: str = "sparsity") -> None:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise MaskError(f"{field}: must be a number in [0, 1), got {sparsity!r}")


def check_mask(mask, model: nn.Module, profile: list[str], source: str = "mask") -> None:
    """Raise MaskError unless ``mask`` has exactly the profile's keys with matching shapes, bool."""
    if not isinstance(mask, dict):
        raise MaskError(f"{source}: a mask must be a dict of bool tensors, got {type(mask).__name__}")
    params = dict(model.named_parameters())
    missing = [n for n in profile if n not in mask]
    extra = [n for n in mask if n not in profile]
    if missing or extra:
        raise MaskError(f"{source}: mask keys do not match the pruning profile "
                        f"(missing {missing[:3]}, unexpected {extra[:3]}). Was it made for another model?")
    for n in profile:
        m = mask[n]
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise MaskError(f"{source}: entry {n!r} must be a bool tensor")
        if m.shape != params[n].shape:
            raise MaskError(f"{source}: entry {n!r} has shape {tuple(m.shape)}, "
                            f"the model's tensor has {tuple(params[n].shape)}")


def apply_mask(model: nn.Module, mask: Mask) -> None:
    """Zero the pruned weights in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, m in mask.items():
            params[n].mul_(m.to(params[n].device, params[n].dtype))


class MaskEnforcer:
    """Keeps pruned weights at exactly zero through training: masks gradients before the optimizer
    step and weights after it, so momentum and weight decay cannot regrow them."""

    def __init__(self, model: nn.Module, mask: Mask | None):
        params = dict(model.named_parameters())
        self.pairs = [] if mask is None else [
            (params[n], m.to(params[n].device, params[n].dtype)) for n, m in mask.items()]

    def mask_grads(self) -> None:
        for p, m in self.pairs:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def mask_weights(self) -> None:
        for p, m in self.pairs:
            p.mul_(m)


def sparsity_table(mask: Mask) -> list[dict]:
    """One row per prunable tensor: name, numel, kept, sparsity."""
    rows = []
    for n, m in mask.items():
        kept = int(m.sum())
        rows.append({"layer": n, "numel": m.numel(), "kept": kept, "sparsity": 1.0 - kept / m.numel()})
    return rows


def global_sparsity(mask: Mask) -> float:
    total = sum(m.numel() for m in mask.values())
    return 1.0 - sum(int(m.sum()) for m in mask.values()) / total


def nearest_sparsity(values, target: float) -> float | None:
    """The sparsity of ``values`` nearest ``target`` (the lower one on a tie); None when there is none."""
    values = sorted(set(values))
    return min(values, key=lambda v: (abs(v - target), v)) if values else None
