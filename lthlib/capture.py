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
- the step is the eager step's own body (``training.Step.body``) and the update the one rule
  (``lthlib.sgd.SGD``), switched to read each group's learning rate from a device tensor
  (``SGD.lr_tensors``) that the scheduler's value is copied into before every step (a pack's tickets
  keep their own learning rates); momentum buffers are the optimizer's own, so checkpoints and the
  eager steps see the same state.

Refused (by ``params.check_values``, in ``_check_cuda_graph``): mixup (its mixing weight is drawn on the host each batch), fp16 (a
loss scale checked on the host), several processes (DDP), and ``compile_mode: reduce-overhead`` (a
graph inside a graph).

On a CPU ``capture=False`` runs the same step body eagerly, which is what the CPU tests check against
the plain step; the graph itself needs a GPU.
"""
from __future__ import annotations

import torch


class CapturedStep:
    """A training step (``training.Step``) whose full batches replay one captured graph. Every step --
    warm-up, replayed, partial batch -- runs the same body with the learning rates on the device, so a
    run resumed from a checkpoint ends with the weights of an uninterrupted one."""

    def __init__(self, step, full_batch: int, capture: bool = True, warmup: int = 3):
        self.step, self.full, self.capture, self.warmup = step, full_batch, capture, warmup
        self.model, self.opt = step.model, step.opt
        self.eager_steps, self.graph, self.static, self.lrs = 0, None, None, None

    def __getattr__(self, name):  # mix_gen, device, ... of the wrapped step
        return getattr(self.step, name)

    def __call__(self, x, y):
        if self.lrs is None:
            self.lrs = [torch.zeros((), device=x.device) for _ in self.opt.param_groups]
            self.opt.lr_tensors = self.lrs
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
                self.static = (sx, sy, *self.step.body(sx, sy))
            out = self.static[2:]
        self.step.sched.step()
        return out

    def _eager(self, x, y):
        """The body run eagerly; before the capture on a side stream, as CUDA graphs require."""
        if not self.capture or self.graph is not None:
            return self.step.body(x, y)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step.body(x, y)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _prepare(self, x, y):
        """Static input buffers; on CUDA, capture the body into a graph (recorded, not run)."""
        sx, sy = x.clone(), y.clone()
        if not self.capture:
            self.static = (sx, sy, None, None)
            return
        self.graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(sx.device)
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            out, losses = self.step.body(sx, sy)
        self.static = (sx, sy, out, losses)
