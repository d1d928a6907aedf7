"""The captured training step (lthlib.capture): the same SGD, the same training, at float tolerance.
On a CPU the step body runs eagerly; the graph test runs where CUDA is present (scripts/gpu_check.sh)."""
import pytest
import torch

import lthlib as L
from lthlib import capture, packing
from lthlib import data as D
from lthlib.models import build_model, load_profile
from lthlib.params import Recipe
from lthlib.pruning import apply_mask, global_magnitude_mask
from lthlib.training import TicketSGD, train


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(4, generator=g))]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("tickets", [False, True])
def test_sgd_update_is_torch_sgd(nesterov, tickets):
    ref, ours = _params(0), _params(0)
    groups = lambda ps: [{"params": [ps[0]], "weight_decay": 1e-2}, {"params": [ps[1]], "weight_decay": 0.0}]
    if tickets:  # 2 tickets of 2 rows: lrs 0.1 and 0.01
        make = lambda ps: TicketSGD(groups(ps), [0.1, 0.01], 0.9, nesterov)
    else:
        make = lambda ps: torch.optim.SGD(groups(ps), lr=0.1, momentum=0.9, nesterov=nesterov)
    o_ref, o_ours = make(ref), make(ours)
    lrs = [torch.zeros(()) for _ in o_ours.param_groups]
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=g) for p in ref]
        for ps in (ref, ours):
            for p, d in zip(ps, grads):
                p.grad = d.clone()
        for o in (o_ref, o_ours):
            for grp in o.param_groups:
                grp["lr"] = 0.5 ** step * (1.0 if tickets else 0.1)
        o_ref.step()
        if step == 0:
            o_ours.step()  # the eager first step makes the momentum buffers
        else:
            for t, grp in zip(lrs, o_ours.param_groups):
                t.fill_(grp["lr"])
            capture.sgd_update(o_ours, lrs)
    for a, b, start in zip(ref, ours, _params(0)):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
        assert (a - start).abs().max() > 0.01  # it moved


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
    """Same lrs and losses, final weights within ``atol`` (3 epochs on a CPU: float noise 2.4e-7; the lr one
    step late in the replayed steps: 3.5e-3)."""
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
    eager = _tiny_training("cpu", False, epochs=3)
    steps = []
    calls = []
    body = capture.CapturedStep._body
    monkeypatch.setattr(capture.CapturedStep, "_body", lambda self, x, y: calls.append(x.shape[0]) or body(self, x, y))
    graph = _tiny_training("cpu", True, steps, epochs=3)
    # 4 batches per epoch (3 full + 1 partial of 8), 3 epochs: every step is the body; 3 full ones
    # eagerly first, then the static buffers hold the batches (the CPU stand-in for the replays)
    assert len(steps) == 1 and calls == [64, 64, 64, 8] * 3 and steps[0].static is not None
    _assert_same_training(eager, graph, 1e-5)
    _assert_masks_hold(graph)


def test_captured_step_resumes_bitwise(tmp_path):
    """Killed after epoch 1 and resumed, a cuda_graph run ends with the weights of an uninterrupted one
    (every step, eager or replayed, does the same arithmetic)."""
    from lthlib import training
    from lthlib.runs import RunDir
    whole = _tiny_training("cpu", True, run=RunDir(tmp_path / "whole"), epochs=3)
    real, kept = training._checkpoint, tmp_path / "after1.pt"

    def keep_first(st, run, tag):
        real(st, run, tag)
        if st.epoch == 1:
            kept.write_bytes(run.checkpoint.read_bytes())
    training._checkpoint = keep_first
    try:
        _tiny_training("cpu", True, run=RunDir(tmp_path / "first"), epochs=3)
    finally:
        training._checkpoint = real
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
