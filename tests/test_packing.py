"""Packed multi-ticket training equals separate training (up to float tolerance); strided convolutions
computed as stride-1 ones are the same network."""
import copy
from pathlib import Path

import pytest
import torch

import lthlib as L
from lthlib import packing
from lthlib.models import build_model


@pytest.mark.parametrize("name,c,s", [("lenet5", 1, 28), ("resnet20", 3, 32), ("mobilenet_v1", 3, 32),
                                      ("lenet300_100", 1, 28)])
def test_pack_unpack_round_trip_and_forward(name, c, s):
    models = [build_model(name, c, 10, s, init_seed=i) for i in range(3)]
    net = packing.pack(models)
    back = packing.unpack_state(net)
    for m, st in zip(models, back):
        ref = m.state_dict()
        assert set(st) == set(ref) and all(torch.equal(st[k], ref[k]) for k in ref)
    x = torch.randn(4, c, s, s)
    for mode in ("eval", "train"):
        net.train(mode == "train")
        for m in models:
            m.train(mode == "train")
        out = net(x)
        assert out.shape == (4, 3, 10)
        for i, m in enumerate(models):
            assert torch.allclose(out[:, i], m(x), atol=1e-4, rtol=1e-4), (mode, i)


def test_option_a_shortcuts_cannot_be_packed():
    with pytest.raises(L.ConfigError, match="option A"):
        packing.pack([build_model("resnet32", init_seed=i) for i in range(2)])


def _compare(a_runs, b_runs, rel=0.05):
    """Same start; final weights differ by < ``rel`` of the training update (float noise), per tensor."""
    for a, b in zip(a_runs, b_runs):
        fa, fb, init = a.load_final(), b.load_final(), a.load_init()
        assert all(torch.equal(init[k], b.load_init()[k]) for k in init)
        for k in fa:
            if not fa[k].is_floating_point() or "running" in k:
                continue
            update = (fa[k] - init[k]).norm()
            assert (fa[k] - fb[k]).norm() <= rel * update + 1e-6, (a.name, k)
        assert abs(a.read_metrics()["final_test_acc"] - b.read_metrics()["final_test_acc"]) <= 1.0


def test_packed_lt_omp_equals_separate_runs_lenet5(tiny_exp, tmp_path):
    kw = dict(sparsities=[0.3, 0.6, 0.9], epochs=2, momentum=0.9, weight_decay=1e-3)
    alone = L.lt_omp(tiny_exp(out_root=str(tmp_path / "alone"), pack="off", **kw))
    packed = L.lt_omp(tiny_exp(out_root=str(tmp_path / "packed"), pack="on", **kw))
    assert [r.name for r in alone] == [r.name for r in packed]  # same identities, same folders
    assert packed[0].read_metrics()["packed_with"] == [r.name for r in packed]
    assert alone[0].read_metrics()["packed_with"] is None
    _compare(alone, packed)
    for r in packed:  # masks hold in the packed pass too
        final, mask = r.load_final(), r.load_mask()
        assert all(bool((final[n][~m] == 0).all()) for n, m in mask.items())


@pytest.mark.slow  # 45 s; the LeNet and demo-model packing tests cover packs in CI
def test_packed_rr_imp_equals_separate_runs_resnet20(cifar_root, tmp_path):
    # A small lr: early training of a BN ResNet at lr 0.05 on noise-like data is chaotic -- a 1e-7 change
    # of one weight of an unpacked run diverges by 5e-2 within 10 steps -- so no tolerance would hold.
    # At lr 5e-4 grouped-vs-separate float noise stays < 1% of the update; a real bug would be O(1).
    def exp(root, pack):
        return L.make_experiment(None, name="p", model="resnet20", dataset="cifar10", data_root=str(cifar_root),
                                 download=False, epochs=1, batch_size=50, lr=0.0005, imp_rounds=2, threads=1,
                                 out_root=str(root), device="cpu", pack=pack, wd_on_bn=False)
    alone = L.rr_imp(exp(tmp_path / "alone", "off"))
    packed = L.rr_imp(exp(tmp_path / "packed", "on"))
    _compare(alone, packed)


def test_packed_training_resumes_identically(tiny_exp, tmp_path):
    import subprocess, sys, textwrap
    kw = dict(sparsities=[0.3, 0.6], epochs=3, pack="on")
    ref = L.lt_omp(tiny_exp(out_root=str(tmp_path / "ref"), **kw))
    exp = tiny_exp(out_root=str(tmp_path / "cut"), **kw)
    script = textwrap.dedent(f"""
        import os, signal, torch, lthlib as L
        import lthlib.training as T
        torch.set_num_threads(1)
        real = T.atomic_torch_save
        def dying(obj, path):
            real(obj, path)
            os.kill(os.getpid(), signal.SIGKILL)
        T.atomic_torch_save = dying
        L.lt_omp(L.make_experiment(None, **{exp.as_dict()!r}))
    """)
    assert subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == -9
    cut = L.lt_omp(exp)
    for a, b in zip(ref, cut):
        fa, fb = a.load_final(), b.load_final()
        assert all(torch.equal(fa[k], fb[k]) for k in fa)


@pytest.mark.slow
def test_compiled_forward_trains_like_eager(tiny_exp, tmp_path):
    eager = L.pretrain(tiny_exp(out_root=str(tmp_path / "e"), epochs=1))
    compiled = L.pretrain(tiny_exp(out_root=str(tmp_path / "c"), epochs=1, compile=True))
    assert eager.name == compiled.name
    fa, fb = eager.load_final(), compiled.load_final()
    assert all(torch.allclose(fa[k].float(), fb[k].float(), atol=1e-4) for k in fa)


# ----------------------------------------------------------------------------- strided convolutions as stride-1
# The rewrite is exact in real arithmetic, so it is checked in float64, where the two forms agree to
# <= 4e-11 (relative, per tensor; measured on these models and layouts: ResNet-20 1e-14, MobileNet's
# cancelling BN-gradients 4e-11): a tolerance of 1e-8 leaves 250x that, while a real bug (a phase off by
# one pixel, a kernel tap in the wrong place, a missing gradient) is O(0.1-1). In float32 the whole-network
# gradients of a BN net in train mode differ from float64 by ~2e-3 even without the rewrite (small-batch
# BN amplifies rounding), so float32 is checked per convolution, where the forms differ by <= 3e-6.
def _grads(net, x, y):
    net.train()
    net.zero_grad()
    x = x.clone().requires_grad_()
    out = net(x)
    torch.nn.functional.cross_entropy(out.permute(0, 2, 1), y).backward()
    return {"out": out.detach(), "input": x.grad, **{k: p.grad for k, p in net.named_parameters()}}


@pytest.mark.parametrize("name,c,s,n_sub,n_s2d", [("resnet20", 3, 32, 2, 4), ("resnet8_w8_s2", 1, 28, 2, 5),
                                                  ("mobilenet_v1", 3, 32, 0, 4)])
@pytest.mark.parametrize("mf", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_the_strided_rewrite_is_the_same_network_forward_and_backward(name, c, s, n_sub, n_s2d, mf):
    models = [build_model(name, c, 10, s, init_seed=i) for i in range(2)]
    plain = packing.pack(models).double().to(memory_format=mf)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 2, c, s, s, generator=g, dtype=torch.float64), torch.randint(0, 10, (3, 2), generator=g)
    ref = _grads(plain, x, y)
    for mode, count in (("subsample", n_sub), ("s2d", n_s2d)):
        fast = packing.pack(models, strided=mode).double().to(memory_format=mf)
        assert sum(type(m) is not torch.nn.Conv2d and isinstance(m, torch.nn.Conv2d) for m in fast.modules()) == count
        assert fast.layout == plain.layout and list(fast.state_dict()) == list(plain.state_dict())
        got = _grads(fast, x, y)
        for k, v in ref.items():
            assert (got[k] - v).norm() <= 1e-8 * v.norm(), (mode, k, float((got[k] - v).norm() / v.norm()))


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups,size", [
    (16, 32, 1, 2, 0, 1, 32), (32, 64, 3, 2, 1, 2, 16), (8, 8, 3, 2, 1, 8, 15), (1, 8, 3, 2, 1, 1, 28),
    (3, 16, 7, 2, 3, 1, 33), (6, 6, 5, 3, 2, 3, 17), (4, 4, 4, 2, 1, 1, 16)])
def test_each_strided_convolution_rewritten_agrees_in_float32(cin, cout, k, stride, pad, groups, size):
    """float32, one convolution (grouped as a pack's, depthwise, odd sizes, a 7x7 stem, stride 3): forward,
    input and weight gradients within 1e-4 of the largest value (measured <= 3e-6; a bug is O(1))."""
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=True)
    fast = copy.deepcopy(conv)
    assert packing.rewrite_strided(fast, "s2d") == [""]
    x = torch.randn(5, cin, size, size, generator=g)
    res = []
    for m in (conv, fast):
        xi = x.clone().requires_grad_()
        out = m(xi)
        out.backward(torch.ones_like(out) + out.detach())
        res.append((out.detach(), xi.grad, m.weight.grad, m.bias.grad))
    for a, b in zip(*res):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-4 * a.abs().max()
    assert packing.rewrite_strided(torch.nn.Conv2d(4, 4, 3, 2, 1), "subsample") == []  # a 3x3: only under s2d
    assert packing.rewrite_strided(torch.nn.Conv2d(4, 4, 3, 1, 1), "s2d") == []  # stride 1: left alone


def _fast_rates(exp, name):
    import json
    path = Path(exp.out_root) / "bench" / "rates.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({exp.model: {"cpu": {"pack_rates": {"1": 1.0}, "variants": {
        "eager": {"1": 100.0, "8": 100.0}, name: {"2": 500.0, "8": 500.0}, "bf16+graph": {"1": 10 ** 6, "8": 10 ** 6}}}}}))


def test_a_pack_chosen_to_train_in_the_rewrite_trains_like_the_plain_pack(tiny_exp, tmp_path, monkeypatch):
    """A made-up rates.json makes s2d+graph the fastest variant at packs of 2-8: the pack trains with it
    (recorded in config.json and metrics.json) and ends where the plain pack does (float noise); a run
    alone (no rate measured for s2d at 1) keeps the flags; bf16, measured fastest, is never chosen."""
    kw = dict(model="resnet8_w8_s2", sparsities=[0.5, 0.8], epochs=1, pack="on", lr=0.005, n_train=256)
    plain = tiny_exp(out_root=str(tmp_path / "plain"), **kw)
    fast = tiny_exp(out_root=str(tmp_path / "fast"), **kw)
    _fast_rates(fast, "s2d+graph")
    rewritten, real = [], packing.rewrite_strided
    monkeypatch.setattr(packing, "rewrite_strided", lambda m, mode: rewritten.append((mode, real(m, mode))) or rewritten[-1][1])
    a = L.lt_omp(plain)
    assert all(not names for _, names in rewritten)
    b = L.lt_omp(fast)
    assert rewritten[-1][0] == "s2d" and len(rewritten[-1][1]) == 5  # stem, two 3x3 and two 1x1 convs
    _compare(a, b)
    assert L.pretrain(fast).read_config()["step_variant"]["name"] == "eager"
    for r in b:
        rec = r.read_config()["step_variant"]
        assert rec["name"] == r.read_metrics()["step_variant"] == "s2d+graph" and rec["strided"] == "s2d"
        assert "fastest measured at a pack of 2" in rec["why"]
    assert a[0].read_config()["step_variant"]["name"] == "eager"
    assert "no rate measured" in a[0].read_config()["step_variant"]["why"]
