import math

import pytest
import torch
import torch.nn as nn
import yaml

from lthlib import ConfigError
from lthlib.models import (MODELS, BasicBlock, build_model, derive_profile, load_profile, profile_input, profile_path)

DEMO_MODEL = yaml.safe_load(open(profile_path("resnet20").parent.parent / "demo.yaml"))["model"]


def test_resnet20_profile_has_20_tensors_and_269824_weights():
    names = load_profile("resnet20")
    params = dict(build_model("resnet20").named_parameters())
    assert len(names) == 20
    assert sum(params[n].numel() for n in names) == 269_824
    assert sum("shortcut" in n for n in names) == 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_profile_file_matches_architecture(name):
    c, s = profile_input(name)
    model = build_model(name, c, 10, s)
    names = load_profile(name)
    assert names == derive_profile(name, model)
    doc = yaml.safe_load(profile_path(name).read_text())
    params = dict(model.named_parameters())
    assert doc["n_weights"] == sum(params[n].numel() for n in names)
    assert doc["n_weights_input"] == f"{c}x{s}x{s}"
    # never the stem conv, the classifier or a BatchNorm/bias tensor
    assert all(params[n].dim() >= 2 for n in names)
    first = next(iter(params))
    last_weight = [n for n, p in params.items() if p.dim() == 2][-1]
    assert last_weight not in names
    if params[first].dim() == 4:  # conv nets: the stem conv stays dense
        assert first not in names


def test_lenet_profiles_count_the_28x28_fashion_mnist_model():
    """conv2 6*16*5*5 + fc1 (16*5*5)*120 + fc2 120*84 for the 1x28x28 LeNet-5 the demo and tests train."""
    assert yaml.safe_load(profile_path("lenet5").read_text())["n_weights"] == 2_400 + 48_000 + 10_080
    model = build_model("lenet5", 1, 10, 28)
    assert sum(p.numel() for n, p in model.named_parameters() if n in load_profile("lenet5")) == 60_480
    assert yaml.safe_load(profile_path("lenet300_100").read_text())["n_weights"] == 784 * 300 + 300 * 100


def test_official_wide_resnet32_and_he_resnet32_sizes():
    wide = sum(p.numel() for p in build_model("resnet32_wide_official").parameters())
    he = sum(p.numel() for p in build_model("resnet32").parameters())
    assert 1.85e6 < wide < 1.87e6
    assert 0.45e6 < he < 0.47e6
    assert not any("shortcut" in n for n in load_profile("resnet32_wide_official"))


def test_demo_model_is_a_residual_bn_net_that_packs():
    """The CPU demo model has BatchNorm and residual blocks with 1x1-conv shortcuts (packable, pruned)."""
    from lthlib import packing
    models = [build_model(DEMO_MODEL, 1, 10, 28, init_seed=i) for i in range(2)]
    mods = list(models[0].modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in mods)
    assert not any(getattr(m, "pad", 0) for m in mods)
    shortcuts = [n for n in load_profile(DEMO_MODEL) if "shortcut" in n]
    assert len(shortcuts) == 2 and all(dict(models[0].named_parameters())[n].shape[2:] == (1, 1)
                                       for n in shortcuts)
    assert any(isinstance(m, BasicBlock) for m in mods)
    net = packing.pack(models).eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(net(x)[:, 1], models[1].eval()(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,c,k,s", [("resnet20", 3, 100, 32), ("vgg16", 3, 10, 32), ("vgg19", 1, 10, 28),
                                        ("mobilenet_v1", 3, 10, 32), ("lenet5", 1, 10, 28), ("lenet5", 3, 10, 32),
                                        ("lenet300_100", 1, 10, 28), ("resnet32", 1, 10, 28),
                                        (DEMO_MODEL, 1, 10, 28)])
def test_forward_shapes_follow_dataset(name, c, k, s):
    out = build_model(name, c, k, s)(torch.randn(2, c, s, s))
    assert out.shape == (2, k)


def test_init_seed_determines_weights():
    a = build_model("resnet20", init_seed=3).state_dict()
    b = build_model("resnet20", init_seed=3).state_dict()
    c = build_model("resnet20", init_seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layer1.0.conv1.weight"], c["layer1.0.conv1.weight"])


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown model 'resnet21'.*Known models"):
        build_model("resnet21")


# ----------------------------------------------------------------------------- initialization
# The official code's init per model (SPEC section 3), written out here independently of models.py:
# (conv scheme, linear scheme). fan_out / fan_in: kaiming-normal, std sqrt(2 / fan); default: PyTorch's
# kaiming-uniform(a=sqrt(5)), std 1/sqrt(3 fan_in); normal: N(0, 0.01) with bias 0.
EXPECTED_INIT = {
    "resnet20": ("fan_out", "default"), "resnet32": ("fan_out", "default"), "resnet56": ("fan_out", "default"),
    DEMO_MODEL: ("fan_out", "default"),
    "resnet32_wide_official": ("fan_out", "normal"), "vgg16": ("fan_out", "normal"), "vgg19": ("fan_out", "normal"),
    "mobilenet_v1": ("default", "default"), "lenet5": ("default", "default"), "lenet300_100": ("default", "default"),
    "resnet18": ("fan_in", "default"), "resnet50": ("fan_in", "default"),
}
CHANGED_INIT = {"resnet20", "resnet32", "resnet56", "resnet32_wide_official", "vgg16", "vgg19", "resnet18",
                "resnet50"}


def _expected_weight_std(w: torch.Tensor, scheme: str) -> tuple[float, bool]:
    """(std the scheme gives this weight, whether it is a normal draw)."""
    rf = w[0, 0].numel() if w.dim() > 2 else 1
    fan_in, fan_out = w.shape[1] * rf, w.shape[0] * rf
    return {"fan_out": (math.sqrt(2 / fan_out), True), "fan_in": (math.sqrt(2 / fan_in), True),
            "default": (1 / math.sqrt(3 * fan_in), False), "normal": (0.01, True)}[scheme]


def _weight_problems(name: str, w: torch.Tensor, scheme: str) -> list[str]:
    std, normal = _expected_weight_std(w, scheme)
    n, got = w.numel(), w.std().item()
    out = []
    if abs(got / std - 1) > 6 / math.sqrt(2 * n):  # 6 standard errors of a sample std
        out.append(f"{name}: std {got:.4g}, {scheme} gives {std:.4g}")
    if abs(w.mean().item()) > 6 * std / math.sqrt(n):
        out.append(f"{name}: mean {w.mean().item():.3g}")
    tail = (w.abs() > 2 * std).float().mean().item()  # a normal has 4.55% beyond 2 std, a uniform none
    if n >= 2000 and (normal and not 0.03 < tail < 0.065 or not normal and tail > 0):
        out.append(f"{name}: {tail:.2%} beyond 2 std: not a {'normal' if normal else 'uniform'} draw")
    return out


def init_problems(model: nn.Module, conv: str, linear: str) -> list[str]:
    """Every deviation of ``model``'s weights from the (conv, linear) init scheme; [] when it matches."""
    out = []
    for mname, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out += _weight_problems(f"{mname}.weight", m.weight.detach(), conv)
        elif isinstance(m, nn.Linear):
            w, b = m.weight.detach(), m.bias.detach()
            out += _weight_problems(f"{mname}.weight", w, linear)
            bound = 1 / math.sqrt(w.shape[1])
            if linear == "normal" and b.abs().max() > 0 or linear == "default" and b.abs().max() > bound:
                out.append(f"{mname}.bias: not the {linear} bias init")
        elif isinstance(m, nn.BatchNorm2d) and not (bool((m.weight == 1).all()) and bool((m.bias == 0).all())):
            out.append(f"{mname}: BN weight/bias not 1/0")
    return out


def test_every_model_has_a_stated_init():
    assert set(EXPECTED_INIT) == set(MODELS)
    assert all(MODELS[n].init_doc for n in MODELS)
    # a changed scheme is part of the run identity, so runs made with the old init are retrained
    assert {n for n in MODELS if MODELS[n].init_tag} == CHANGED_INIT


@pytest.mark.parametrize("name", sorted(EXPECTED_INIT))
def test_per_layer_init_spread_matches_the_official_formula(name):
    c, s = profile_input(name)
    model = build_model(name, c, 10, s, init_seed=0)
    assert init_problems(model, *EXPECTED_INIT[name]) == []


def test_init_check_catches_the_old_schemes():
    """The check above fails on what the models used before: kaiming fan_in on ResNet-20's convs and
    linear, PyTorch's default linear on VGG, torchvision's fan_out on ResNet-18."""
    old = build_model("resnet20", init_seed=0)
    for m in old.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
    problems = init_problems(old, "fan_out", "default")
    assert any(p.startswith("conv1.weight: std") for p in problems)
    assert any(p.startswith("linear.weight") for p in problems)
    vgg = build_model("vgg16", init_seed=0)
    vgg.classifier.reset_parameters()
    assert any(p.startswith("classifier.weight") for p in init_problems(vgg, "fan_out", "normal"))
    r18 = build_model("resnet18", init_seed=0)
    nn.init.kaiming_normal_(r18.layer2[0].conv1.weight, mode="fan_out", nonlinearity="relu")
    assert any(p.startswith("layer2.0.conv1.weight: std") for p in init_problems(r18, "fan_in", "default"))


def test_init_tag_enters_the_run_identity():
    import lthlib
    from lthlib.engine import RunSpec, run_identity
    exp = lthlib.load(None, {"model": "resnet20", "dataset": "fashion_mnist", "epochs": 1})
    ident = run_identity(exp, RunSpec("pretrain", 1, 1, start=None), load_profile("resnet20"))
    assert ident["init"] == MODELS["resnet20"].init_tag
