"""The one update rule (lthlib.sgd) and the captured training step (lthlib.capture): torch's SGD bitwise,
per-ticket lrs, and the captured path training like the eager one -- bitwise on a CPU, where the step body
runs eagerly; the graph test runs where CUDA is present (scripts/gpu_check.sh)."""
import pytest
import torch

import lthlib as L
from lthlib import capture, packing
from lthlib import data as D
from lthlib.models import build_model, load_profile
from lthlib.params import Recipe
from lthlib.pruning import apply_mask, global_magnitude_mask
from lthlib.sgd import SGD
from lthlib.training import train


def _params(seed, rows=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(rows, 3, generator=g)), torch.nn.Parameter(torch.randn(rows, generator=g))]


def _groups(ps):
    return [{"params": [ps[0]], "weight_decay": 1e-2}, {"params": [ps[1]], "weight_decay": 0.0}]


def _steps(opts_and_params, n=6, lr=lambda step: 0.1 * 0.5 ** step, skip=lambda step, i: False):
    """``n`` steps of the same random gradients on every (optimizer, parameters) pair; parameter i gets
    no gradient at ``step`` where ``skip(step, i)``; each optimizer's group lr is ``lr(step)``."""
    g = torch.Generator().manual_seed(1)
    for step in range(n):
        grads = [torch.randn(p.shape, generator=g) for p in opts_and_params[0][1]]
        for opt, ps in opts_and_params:
            for i, (p, d) in enumerate(zip(ps, grads)):
                p.grad = None if skip(step, i) else d.clone()
            for grp in opt.param_groups:
                grp["lr"] = lr(step)
            if getattr(opt, "lr_tensors", None) is not None:
                for t, grp in zip(opt.lr_tensors, opt.param_groups):
                    t.fill_(grp["lr"])
            opt.step()


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_update_rule_is_bitwise_torch_sgd(nesterov):
    """A single model at a plain lr: exactly torch.optim.SGD's arithmetic (the demo's runs did not change)."""
    ref, ours = _params(0), _params(0)
    _steps([(torch.optim.SGD(_groups(ref), lr=0.1, momentum=0.9, nesterov=nesterov), ref),
            (SGD(_groups(ours), 0.1, 0.9, nesterov), ours)])
    for a, b, start in zip(ref, ours, _params(0)):
        assert torch.equal(a, b) and (a - start).abs().max() > 0.01  # the same, and it moved


def test_a_parameter_without_a_gradient_keeps_the_others_momentum():
    """A parameter that gets its first gradient late starts its buffer then; the others' buffers go on
    (before, the others skipped a momentum update that step)."""
    ref, ours = _params(0), _params(0)
    late = lambda step, i: i == 1 and step < 2
    _steps([(torch.optim.SGD(_groups(ref), lr=0.1, momentum=0.9), ref), (SGD(_groups(ours), 0.1, 0.9, False), ours)],
           skip=late)
    assert all(torch.equal(a, b) for a, b in zip(ref, ours))


@pytest.mark.parametrize("captured", [False, True])
def test_each_ticket_steps_at_its_own_lr(captured):
    """Two tickets stacked on the first dimension (lrs 0.1 and 0.01) step as two torch.optim.SGD runs, with
    the lr as a float or read from device tensors (the captured step)."""
    packed = _params(0, rows=4)
    alone = [[torch.nn.Parameter(p.detach()[t * 2:(t + 1) * 2].clone()) for p in packed] for t in range(2)]
    ours = SGD(_groups(packed), 1.0, 0.9, True, ticket_lrs=[0.1, 0.01])
    if captured:
        ours.lr_tensors = [torch.zeros(()) for _ in ours.param_groups]
    refs = [torch.optim.SGD(_groups(ps), lr=lr, momentum=0.9, nesterov=True) for ps, lr in zip(alone, (0.1, 0.01))]
    g = torch.Generator().manual_seed(3)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=g) for p in packed]
        for p, d in zip(packed, grads):
            p.grad = d.clone()
        for t, (opt, ps) in enumerate(zip(refs, alone)):
            for p, d in zip(ps, grads):
                p.grad = d[t * 2:(t + 1) * 2].clone()
            opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = (0.1, 0.01)[t] * 0.5 ** step
            opt.step()
        for grp in ours.param_groups:
            grp["lr"] = 0.5 ** step
        if captured:
            for t, grp in zip(ours.lr_tensors, ours.param_groups):
                t.fill_(grp["lr"])
        ours.step()
    for i, p in enumerate(packed):
        for t in range(2):
            assert torch.allclose(p.detach()[t * 2:(t + 1) * 2], alone[t][i].detach(), rtol=1e-6, atol=1e-7)


class _DeviceLrSGD(SGD):
    """The update rule as the captured step runs it (lr from a device tensor), filled before each eager
    step: the same arithmetic as the captured body, so the two trainings must agree bitwise."""

    def step(self, closure=None):
        if self.lr_tensors is None:
            self.lr_tensors = [torch.zeros(()) for _ in self.param_groups]
        for t, grp in zip(self.lr_tensors, self.param_groups):
            t.fill_(grp["lr"])
        super().step()


def _tiny_training(device, cuda_graph, spy=None, run=None, epochs=2):
    """A pack of two masked BN ResNets (``resnet8_w8_s2``), lrs 0.05 / 0.01, their own data orders, 200
    images at batch 64 (a partial last batch), cosine lr (a new lr every step), Nesterov, evaluation
    every epoch. Returns (histories, final state, packed mask); ``spy`` collects the CapturedSteps."""
    g = torch.Generator().manual_seed(0)
    data = D.TensorData(torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (200,), generator=g), "t", "t").to(device)
    models, masks = [], []
    for i in range(2):
        m = build_model("resnet8_w8_s2", 1, 10, 28, init_seed=i)
        params = dict(m.named_parameters())
        mask = global_magnitude_mask({k: params[k] for k in load_profile("resnet8_w8_s2")}, 0.5)
        apply_mask(m, mask)
        models.append(m)
        masks.append(mask)
    net = packing.pack(models).to(device)
    mask = {f"inner.{k}": v for k, v in packing.pack_tensors(masks, net.layout).items()}
    loaders = [D.Batches(data, 64, (0.3,), (0.3,), True, seed=s, device=device) for s in (1, 2)]
    test = D.Batches(data, 100, (0.3,), (0.3,), False, device=device)
    recipe = Recipe(epochs=epochs, lr=0.05, batch_size=64, momentum=0.9, weight_decay=1e-3, nesterov=True,
                    lr_schedule="cosine")
    real_init = capture.CapturedStep.__init__

    def spying_init(self, *a, **kw):
        real_init(self, *a, **kw)
        spy.append(self)
    capture.CapturedStep.__init__ = spying_init if spy is not None else real_init
    try:
        hist = train(net, mask, packing.TicketBatches(loaders, [0, 1]), test, recipe, torch.device(device), run,
                     ticket_lrs=[0.05, 0.01], cuda_graph=cuda_graph)
    finally:
        capture.CapturedStep.__init__ = real_init
    return hist, {k: v.detach().cpu() for k, v in net.state_dict().items()}, mask


def _assert_same_training(a, b, atol):
    """Same lrs, losses within ``10 * atol``, final weights within ``atol`` (0: bitwise)."""
    (ha, fa, _), (hb, fb, _) = a, b
    for ta, tb in zip(ha, hb):
        for ra, rb in zip(ta, tb):
            assert ra["lr"] == rb["lr"]
            assert abs(ra["train_loss"] - rb["train_loss"]) <= 10 * atol
    for k in fa:
        if fa[k].is_floating_point():
            assert float((fa[k] - fb[k]).abs().max()) <= atol, k


def _assert_masks_hold(trained):
    _, final, mask = trained
    assert mask and set(mask) <= set(final)
    for k, m in mask.items():
        assert bool(final[k][~m.cpu()].eq(0).all()) and bool(final[k][m.cpu()].ne(0).any()), k


def test_captured_step_body_trains_like_the_step(monkeypatch):
    """The captured path (on a CPU: the same body, static buffers, lrs copied to tensors before each step)
    trains bitwise like the eager loop running the same update arithmetic. No float tolerance, so it holds
    on any CPU; the lr one step late in the replayed steps changes the weights (1e-3 on a CPU)."""
    from lthlib import training
    monkeypatch.setattr(training, "SGD", _DeviceLrSGD)
    eager = _tiny_training("cpu", False, epochs=3)
    monkeypatch.undo()
    steps, calls = [], []
    body = training.Step.body
    monkeypatch.setattr(training.Step, "body", lambda self, x, y: calls.append(x.shape[0]) or body(self, x, y))
    graph = _tiny_training("cpu", True, steps, epochs=3)
    # 4 batches per epoch (3 full + 1 partial of 8), 3 epochs: every step is the body; 3 full ones
    # eagerly first, then the static buffers hold the batches (the CPU stand-in for the replays)
    assert len(steps) == 1 and calls == [64, 64, 64, 8] * 3 and steps[0].static is not None
    assert steps[0].opt.lr_tensors is steps[0].lrs
    _assert_same_training(eager, graph, 0.0)
    _assert_masks_hold(graph)


def test_captured_step_resumes_bitwise(tmp_path):
    """Killed after epoch 1 and resumed, a cuda_graph run ends with the weights of an uninterrupted one
    (every step, eager or replayed, does the same arithmetic)."""
    from lthlib import training
    from lthlib.runs import RunDir
    whole = _tiny_training("cpu", True, run=RunDir(tmp_path / "whole"), epochs=3)
    real, kept = training.Checkpoint.__call__, tmp_path / "after1.pt"

    def keep_first(self, st):
        real(self, st)
        if st.epoch == 1:
            kept.write_bytes(self.run.checkpoint.read_bytes())
    training.Checkpoint.__call__ = keep_first
    try:
        _tiny_training("cpu", True, run=RunDir(tmp_path / "first"), epochs=3)
    finally:
        training.Checkpoint.__call__ = real
    (tmp_path / "resumed").mkdir()
    (tmp_path / "resumed" / "checkpoint.pt").write_bytes(kept.read_bytes())
    resumed = _tiny_training("cpu", True, run=RunDir(tmp_path / "resumed"), epochs=3)
    assert all(torch.equal(whole[1][k], resumed[1][k]) for k in whole[1])
    assert [r["train_loss"] for r in whole[0][0]] == [r["train_loss"] for r in resumed[0][0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)")
def test_cuda_graph_trains_like_eager_on_cuda():
    eager = _tiny_training("cuda", False, epochs=3)
    steps = []
    graph = _tiny_training("cuda", True, steps, epochs=3)
    assert steps[0].graph is not None  # captured and replayed, not eager throughout
    _assert_same_training(eager, graph, 1e-3)
    _assert_masks_hold(graph)


@pytest.mark.parametrize("kw,word", [(dict(mixup=0.2), "mixup"), (dict(amp="fp16", pack="off"), "amp"),
                                     (dict(nproc=2), "nproc"), (dict(compile=True, compile_mode="reduce-overhead"),
                                                                "compile_mode")])
def test_cuda_graph_refuses_what_it_cannot_capture(kw, word):
    with pytest.raises(L.ConfigError, match=f"cuda_graph.*{word}"):
        L.make_experiment(None, cuda_graph=True, **kw)
    L.make_experiment(None, cuda_graph=False, **kw)
