"""Multi-process data parallel training (torchrun / DDP) for one setting.

A setting runs under torchrun with ``nproc`` processes: every rank executes the same setting function,
builds identical models (same init seed), computes identical masks (and takes rank 0's by broadcast),
trains its slice of every global batch with DistributedDataParallel and SyncBatchNorm, and only rank 0
writes files. Each global batch is the single-process batch (one permutation per epoch from the data
seed, augmented as a whole, then sliced by rank), so a DDP run matches the single-process run of the
same config up to floating point -- the batch, not the per-rank seeds, is what is split.

A notebook cannot be a rank group: with ``nproc > 1`` a setting function launches
``torchrun -m lthlib.torchrun`` (see ``lthlib/torchrun.py``) as a subprocess and then reads the finished
run folders. This module imports nothing of lthlib, so the engine and the training loop can use it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import torch
import torch.distributed as dist

from .errors import LTHError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        t = t.clone()
        dist.all_reduce(t)
    return t


def broadcast_mask(mask: dict | None) -> dict | None:
    """Rank 0's mask on every rank (they are computed identically; this makes it certain)."""
    if mask is None or not is_distributed():
        return mask
    out = {}
    for k in sorted(mask):
        t = mask[k].to(torch.uint8)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.broadcast(t, 0)
        out[k] = t.cpu().bool()
    return {k: out[k] for k in mask}


def init_from_env() -> None:
    """Join the process group torchrun describes in the environment (no-op when not under torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_for_rank(name: str) -> torch.device:
    if is_distributed() and torch.cuda.is_available() and name in ("auto", "cuda"):
        return torch.device("cuda", torch.cuda.current_device())
    return pick_device(name)


class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm over the global batch for the CPU (gloo), where torch's SyncBatchNorm does not run:
    per-channel sums are all-reduced with the autograd-aware collective, so forward and backward
    see the statistics of the whole batch across ranks."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        c = x.shape[1]
        n_local = torch.tensor(float(x.numel() // c), device=x.device)
        stats = all_reduce(torch.cat([x.sum((0, 2, 3)), n_local.view(1)]))  # two passes: no cancellation
        n = stats[-1]
        mean = stats[:c] / n
        var = all_reduce(((x - mean[None, :, None, None]) ** 2).sum((0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def _global_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    for name, child in module.named_children():
        if type(child) is torch.nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            _global_batchnorm(child)
    return module


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP with batch statistics over the global batch (SyncBatchNorm on CUDA, GlobalBatchNorm2d on
    the CPU), so the per-rank slices train as one batch."""
    if not is_distributed():
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        model = _global_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def launch(exp, setting: str) -> None:
    """Run ``setting`` for ``exp`` under torchrun with ``exp.nproc`` processes; raise if it fails."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    cmd = [torchrun or sys.executable, *([] if torchrun else ["-m", "torch.distributed.run"]), "--standalone",
           f"--nproc_per_node={exp.nproc}", "-m", "lthlib.torchrun", setting,
           json.dumps({**exp.as_dict(), "nproc": 1})]
    print(f"launching {setting} on {exp.nproc} processes: torchrun ... -m lthlib.torchrun {setting}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, exp.threads or 1))}
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise LTHError(f"torchrun for setting {setting!r} failed with exit code {proc.returncode}; "
                       f"its output is above. Fix the cause and run again: finished runs are kept.")
