"""Packed multi-ticket training: N models of one architecture trained in one pass over the same batches.

``pack(models)`` builds one network whose convolutions are grouped over the N tickets' concatenated
channels (BatchNorm is per channel, so it stays per ticket), whose linear layers are batched matmuls
over a ticket axis, and whose input is the batch repeated N times along channels. Its parameters keep
the single model's names, so states, masks and optimizer moments convert both ways with
``pack_tensors`` / ``unpack_tensors``. The loss is the sum of the tickets' losses: each ticket's
gradient is exactly its own, and SGD with momentum and weight decay acts element-wise, so each ticket
trains as if alone (up to floating-point differences between grouped and separate convolutions).

On a GPU a small ResNet at batch 64 is latency-bound and packing multiplies throughput; on a 2-core CPU
it does not pay, so ``pack: auto`` packs on CUDA only.

Strided convolutions as stride-1 ones (``rewrite_strided``; ``pack(..., strided=...)``), the same maps up
to float noise and the same parameters (names, shapes, masks), for cuDNN's faster stride-1 kernels:

- ``"subsample"``: a strided 1x1 convolution without padding (the ResNets' shortcut convolutions) is a 1x1
  convolution of the subsampled input ``x[:, :, ::s, ::s]`` -- the same FLOPs;
- ``"s2d"``: the above, and every other strided convolution (the 3x3 stride-2 convolutions of the
  ResNets, MobileNet's depthwise ones, a stride-2 stem) as a stride-1 convolution of the space-to-depth
  input (``pixel_unshuffle``) with the kernel rearranged the same way (``ceil(k/s)`` taps, zeros where
  the kernel has none: 16/9 the FLOPs of a 3x3 stride 2).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError

CAT, STACK, SHARED = "cat", "stack", "shared"


class PackedLinear(nn.Module):
    """N independent linear layers applied to a ticket-major input [B, N*in] -> [B, N*out]."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.n, self.in_features, self.out_features = len(layers), layers[0].in_features, layers[0].out_features
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.weight._single_dim = 2
        self.bias = None
        if layers[0].bias is not None:
            self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))
            self.bias._single_dim = 1

    def forward(self, x):
        b = x.shape[0]
        y = torch.einsum("bni,noi->bno", x.reshape(b, self.n, self.in_features), self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(b, self.n * self.out_features)


class PackedNet(nn.Module):
    """Wraps the packed network and returns logits [B, N, classes]. Input: one batch [B, C, ...] that
    every ticket sees (repeated per ticket), or each ticket's own batch [B, N, C, ...] (``TicketBatches``)."""

    def __init__(self, inner: nn.Module, n: int, layout: dict[str, str]):
        super().__init__()
        self.inner, self.n_tickets, self.layout = inner, n, layout
        self.memory_format = torch.contiguous_format

    def forward(self, x):
        if x.dim() == 5:  # per-ticket batches, ticket-major channels as the grouped convs expect
            x = x.flatten(1, 2).contiguous(memory_format=self.memory_format)
        else:
            x = x.repeat(1, self.n_tickets, *([1] * (x.dim() - 2)))
        return self.inner(x).view(x.shape[0], self.n_tickets, -1)


class TicketBatches:
    """Training batches of a pack whose tickets have different data orders: batch i of each distinct
    order, stacked to [B, N, C, H, W] in ticket order (``index[t]`` = ticket t's order), labels [B, N].
    Each order is exactly the batches that ticket would see trained alone; the orders' batches are
    gathered, cropped, flipped and normalized together (a few device ops per batch, whatever the count)."""

    def __init__(self, loaders: list, index: list[int]):
        first = loaders[0]
        same = lambda b: (b.batch_size, b.augment, b.pad, b.flip, b.world, b.rank)
        if any(b.data.x is not first.data.x or same(b) != same(first) for b in loaders):
            raise ValueError("TicketBatches: the orders must share data (one tensor on the device: move the "
                             "data there before making the Batches), batch size, augmentation and rank")
        self.loaders, self.index = loaders, torch.tensor(index)

    def __len__(self):
        return len(self.loaders[0])

    def set_epoch(self, epoch: int) -> None:
        for b in self.loaders:
            b.set_epoch(epoch)

    def __iter__(self):
        first = self.loaders[0]
        plans = torch.stack([b.plan() for b in self.loaders], 1)  # [4, orders, n]
        idx = self.index.to(first.device)
        for i in range(0, len(first.data), first.batch_size):
            part = plans[:, :, i:i + first.batch_size]
            if first.world > 1:
                part = part[:, :, first.rank::first.world]
            x, y = first.assemble(part)  # [orders, B, C, H, W], [orders, B]
            yield x.transpose(0, 1).index_select(1, idx), y.t().index_select(1, idx)


def _packed_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    c = convs[0]
    n = len(convs)
    new = nn.Conv2d(n * c.in_channels, n * c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation,
                    groups=n * c.groups, bias=c.bias is not None, padding_mode=c.padding_mode)
    with torch.no_grad():
        new.weight.copy_(torch.cat([m.weight for m in convs]))
        if c.bias is not None:
            new.bias.copy_(torch.cat([m.bias for m in convs]))
    return new


def _packed_bn(bns: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = bns[0]
    new = nn.BatchNorm2d(len(bns) * b.num_features, b.eps, b.momentum, b.affine, b.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name) is not None:
                getattr(new, name).copy_(torch.cat([getattr(m, name) for m in bns]))
        if b.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(b.num_batches_tracked)
    return new


class SubsampledConv2d(nn.Conv2d):
    """A strided 1x1 convolution without padding, computed as a stride-1 1x1 convolution of the
    subsampled input (``rewrite_strided`` turns an ``nn.Conv2d`` into one in place)."""

    def forward(self, x):
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, 1, self.groups)


class SpaceToDepthConv2d(nn.Conv2d):
    """A strided convolution (stride s in both directions, zero padding, no dilation), computed as a
    stride-1 convolution of the padded input rearranged space-to-depth by s, with the kernel (zero-padded
    to a multiple of s) rearranged the same way; groups stay contiguous, so a packed (grouped) one stays
    per ticket. Output cropped to the strided convolution's size."""

    def forward(self, x):
        s, k, p = self.stride[0], self.kernel_size[0], self.padding[0]
        out = [(n + 2 * p - k) // s + 1 for n in x.shape[-2:]]
        taps = -(-k // s)  # ceil(k / s): the kernel's extent in the rearranged input
        w = F.pixel_unshuffle(F.pad(self.weight, (0, taps * s - k, 0, taps * s - k)), s)
        need = [s * (o - 1 + taps) for o in out]  # padded input length the kept outputs read
        x = F.pad(x, (p, need[1] - x.shape[-1] - p, p, need[0] - x.shape[-2] - p))
        return F.conv2d(F.pixel_unshuffle(x, s), w, self.bias, 1, 0, 1, self.groups)


STRIDED = ("off", "subsample", "s2d")


def _strided_form(conv: nn.Conv2d, mode: str):
    """The class ``conv`` is computed as under ``mode`` (None: left as it is)."""
    if type(conv) is not nn.Conv2d or conv.stride == (1, 1) or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        return None
    if conv.kernel_size == (1, 1) and conv.padding == (0, 0):
        return SubsampledConv2d
    square = conv.stride[0] == conv.stride[1] and conv.kernel_size[0] == conv.kernel_size[1]
    if mode == "s2d" and square and conv.padding[0] == conv.padding[1] and isinstance(conv.padding[0], int):
        return SpaceToDepthConv2d
    return None


def rewrite_strided(model: nn.Module, mode: str = "subsample") -> list[str]:
    """Compute ``model``'s strided convolutions as stride-1 ones (``mode``: see the module doc), in place:
    the modules keep their parameters, names and buffers, only their forward changes. Returns the names
    of the convolutions rewritten."""
    if mode not in STRIDED:
        raise ValueError(f"rewrite_strided: mode {mode!r}; accepted: {', '.join(STRIDED)}")
    done = []
    for name, mod in model.named_modules():
        cls = _strided_form(mod, mode) if mode != "off" and isinstance(mod, nn.Conv2d) else None
        if cls is not None:
            mod.__class__ = cls  # as torch.nn.utils.parametrize does: same instance, new forward
            done.append(name)
    return done


def pack(models: list[nn.Module], strided: str = "off") -> PackedNet:
    """One network training all of ``models`` (same architecture) at once; weights copied in.
    ``strided``: compute its strided convolutions as stride-1 ones (``rewrite_strided``)."""
    n = len(models)
    inner = copy.deepcopy(models[0])
    layout: dict[str, str] = {}
    modules = [dict(m.named_modules()) for m in models]
    for name, mod in list(inner.named_modules()):
        if getattr(mod, "pad", 0):
            raise ConfigError(f"pack: {type(mod).__name__} {name!r} has a channel-padding shortcut "
                              f"(He et al. option A), which cannot be packed; use pack: off")
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            group = [ms[full] for ms in modules]
            if isinstance(child, nn.Conv2d):
                setattr(mod, child_name, _packed_conv(group))
                kinds = {"weight": CAT, "bias": CAT}
            elif isinstance(child, nn.BatchNorm2d):
                setattr(mod, child_name, _packed_bn(group))
                kinds = {"weight": CAT, "bias": CAT, "running_mean": CAT, "running_var": CAT,
                         "num_batches_tracked": SHARED}
            elif isinstance(child, nn.Linear):
                setattr(mod, child_name, PackedLinear(group))
                kinds = {"weight": STACK, "bias": STACK}
            elif isinstance(child, (nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm)):
                raise ConfigError(f"pack: {type(child).__name__} {full!r} is not supported; use pack: off")
            else:
                continue
            for k, kind in kinds.items():
                layout[f"{full}.{k}"] = kind
    state_names = set(inner.state_dict())
    missing = state_names - set(layout)
    if missing:
        raise ConfigError(f"pack: cannot pack tensors {sorted(missing)[:3]}; use pack: off")
    rewrite_strided(inner, strided)
    return PackedNet(inner, n, layout)


def pack_tensors(dicts: list[dict], layout: dict[str, str]) -> dict:
    """Per-ticket tensors (a state_dict, a mask, momentum buffers) -> the packed network's."""
    out = {}
    for k in dicts[0]:
        kind = layout[k]
        vals = [d[k] for d in dicts]
        out[k] = vals[0] if kind == SHARED else (torch.cat(vals) if kind == CAT else torch.stack(vals))
    return out


def unpack_tensors(packed: dict, layout: dict[str, str], n: int) -> list[dict]:
    """The packed network's tensors -> one dict per ticket."""
    out = [{} for _ in range(n)]
    for k, v in packed.items():
        kind = layout[k]
        parts = [v] * n if kind == SHARED else (v.chunk(n) if kind == CAT else v.unbind(0))
        for i, p in enumerate(parts):
            out[i][k] = p.clone()
    return out


def unpack_state(net: PackedNet) -> list[dict]:
    return unpack_tensors({k: v.detach().cpu() for k, v in net.inner.state_dict().items()}, net.layout,
                          net.n_tickets)
