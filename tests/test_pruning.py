import pytest
import torch
import torch.nn.utils.prune as tprune

from lthlib import MaskError
from lthlib.models import build_model, load_profile
from lthlib.pruning import (MaskEnforcer, apply_mask, check_mask, global_magnitude_mask, global_sparsity,
                            imp_sparsity, random_mask, sparsity_table)


def reference_topk(weights, sparsity):
    """Independent implementation: threshold by k-th largest |w| over the pool."""
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    k = flat.numel() - int(round(sparsity * flat.numel()))
    thresh = torch.topk(flat, k).values.min()
    return {n: w.abs() >= thresh for n, w in weights.items()}


def test_global_pruning_equals_independent_topk_on_hand_made_tensors():
    w = {"a": torch.tensor([[0.1, -0.9], [0.5, 0.05]]), "b": torch.tensor([0.3, -0.2, 0.8, -0.01, 0.6, 0.7])}
    m = global_magnitude_mask(w, 0.5, layer_cap=None)
    assert m["a"].tolist() == [[False, True], [True, False]]
    assert m["b"].tolist() == [False, False, True, False, True, True]
    g = torch.Generator().manual_seed(0)
    w2 = {f"t{i}": torch.randn(5, 7, generator=g) for i in range(4)}
    for s in (0.2, 0.5, 0.9):
        got, ref = global_magnitude_mask(w2, s, layer_cap=None), reference_topk(w2, s)
        assert all(torch.equal(got[n], ref[n]) for n in w2)


def test_global_pruning_equals_torch_global_unstructured_on_resnet20():
    model = build_model("resnet20", init_seed=0)
    names = load_profile("resnet20")
    params = dict(model.named_parameters())
    ours = global_magnitude_mask({n: params[n] for n in names}, 0.738, layer_cap=None)
    modules = dict(model.named_modules())
    targets = [(modules[n.rsplit(".", 1)[0]], "weight") for n in names]
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=0.738)
    for n in names:
        assert torch.equal(ours[n], modules[n.rsplit(".", 1)[0]].weight_mask.bool()), n


def test_ties_break_deterministically_and_zeros_are_counted():
    w = {"a": torch.zeros(10), "b": torch.ones(10)}
    m1 = global_magnitude_mask(w, 0.6, layer_cap=None)
    m2 = global_magnitude_mask(w, 0.6, layer_cap=None)
    assert torch.equal(m1["a"], m2["a"]) and torch.equal(m1["b"], m2["b"])
    assert int(m1["b"].sum()) == 8 and int(m1["a"].sum()) == 0  # zeros go first, equal ones by position
    assert m1["b"].tolist() == [True] * 8 + [False] * 2


def test_imp_rounds_give_density_0_8_to_the_r_and_masks_only_shrink():
    model = build_model("resnet20", init_seed=1)
    names = load_profile("resnet20")
    w = {n: p.detach().clone() for n, p in model.named_parameters() if n in names}
    mask = None
    g = torch.Generator().manual_seed(5)
    for r in range(1, 8):
        new = global_magnitude_mask(w, imp_sparsity(r), mask, layer_cap=0.99)
        assert abs((1 - global_sparsity(new)) - 0.8 ** r) < 1e-5
        if mask is not None:
            assert all(not bool((new[n] & ~mask[n]).any()) for n in names)
        mask = new
        for n in names:  # "training" moves surviving weights; pruned ones are zero
            w[n] = (w[n] + 0.01 * torch.randn(w[n].shape, generator=g)) * mask[n]
    assert [round(imp_sparsity(r), 3) for r in (1, 2, 3, 4, 14)] == [0.2, 0.36, 0.488, 0.59, 0.956]


def test_layer_cap_keeps_every_layer_alive():
    w = {"small": torch.full((100,), 1e-3), "big": torch.ones(1000)}
    capped = global_magnitude_mask(w, 0.5, layer_cap=0.99)
    assert int(capped["small"].sum()) == 1  # ceil(1% of 100)
    assert int(capped["small"].sum() + capped["big"].sum()) == 550
    uncapped = global_magnitude_mask(w, 0.5, layer_cap=None)
    assert int(uncapped["small"].sum()) == 0


def test_random_masks_keep_density():
    ref = global_magnitude_mask({"a": torch.randn(50, 20), "b": torch.randn(300)}, 0.7, layer_cap=None)
    g = torch.Generator().manual_seed(0)
    lw = random_mask(ref, "layerwise", g)
    assert all(int(lw[n].sum()) == int(ref[n].sum()) for n in ref)
    assert not torch.equal(lw["a"], ref["a"])
    gl = random_mask(ref, "global", g)
    assert sum(int(m.sum()) for m in gl.values()) == sum(int(m.sum()) for m in ref.values())
    with pytest.raises(MaskError):
        random_mask(ref, "blockwise", g)


def test_masks_hold_through_training_with_momentum_and_weight_decay():
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28, init_seed=0)
    names = load_profile("lenet5")
    params = dict(model.named_parameters())
    # make some surviving weights negative and large so a value-based mask would misfire
    mask = global_magnitude_mask({n: params[n] for n in names}, 0.8)
    apply_mask(model, mask)
    before = {n: params[n].detach().clone() for n in names}
    enf = MaskEnforcer(model, mask)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(5):
        x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        enf.mask_grads()
        opt.step()
        enf.mask_weights()
    for n in names:
        assert bool((params[n][~mask[n]] == 0).all())
        neg = mask[n] & (before[n] < 0)
        assert bool(neg.any()) and bool((params[n][neg] != before[n][neg]).any()), "negative survivors must train"


def test_check_mask_rejects_masks_that_do_not_fit():
    model = build_model("lenet5", 1, 10, 28)
    names = load_profile("lenet5")
    params = dict(model.named_parameters())
    good = {n: torch.ones_like(params[n], dtype=torch.bool) for n in names}
    check_mask(good, model, names)
    with pytest.raises(MaskError, match="do not match the pruning profile"):
        check_mask({k: v for k, v in good.items() if k != names[0]}, model, names)
    bad_shape = dict(good, **{names[0]: torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(MaskError, match="has shape"):
        check_mask(bad_shape, model, names, source="x.pt")
    with pytest.raises(MaskError, match="bool tensor"):
        check_mask(dict(good, **{names[0]: good[names[0]].float()}), model, names)


def test_sparsity_table_rows():
    m = {"a": torch.tensor([True, False, False, False]), "b": torch.tensor([True, True])}
    rows = sparsity_table(m)
    assert rows[0] == {"layer": "a", "numel": 4, "kept": 1, "sparsity": 0.75}
    assert abs(global_sparsity(m) - 0.5) < 1e-9


@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5, "0.5"])
def test_sparsity_outside_range_is_rejected(s):
    with pytest.raises(MaskError, match=r"\[0, 1\)"):
        global_magnitude_mask({"a": torch.randn(10)}, s)
