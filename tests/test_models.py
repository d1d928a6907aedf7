import math

import pytest
import torch
import torch.nn as nn
import yaml

from lthlib import ConfigError
from lthlib.models import (MODELS, BasicBlock, build_model, build_scaled, derive_profile, load_profile, n_trainable,
                           profile_input, profile_path, sdt_widths, sparse_count)

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
                                        (DEMO_MODEL, 1, 10, 28), ("resnet18_cifar", 3, 100, 32),
                                        ("resnet32_wide_noresidual", 3, 10, 32), ("resnet18_tiny", 3, 200, 64),
                                        ("resnet50_tiny", 3, 200, 64)])
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
    "resnet32_wide_noresidual": ("fan_out", "normal"), "resnet18_cifar": ("fan_out", "default"),
    "resnet18_tiny": ("fan_out", "default"), "resnet50_tiny": ("fan_out", "default"),
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
    exp = lthlib.load(None, {"model": "resnet20", "dataset": "fashion_mnist", "epochs": 1})
    ident = lthlib.settings.plan(exp, "pretrain")[0].identity
    assert ident["init"] == MODELS["resnet20"].init_tag


# ----------------------------------------------------------------------------- the paper's networks
def _natural_count(name: str) -> int:
    """Parameters at the class count and geometry of the dataset Table 2 lists the model for."""
    from lthlib.data import DATASETS
    data = DATASETS[MODELS[name].paper_dataset]
    return sum(p.numel() for p in build_model(name, data.channels, data.classes, data.size).parameters())


@pytest.mark.parametrize("name", sorted(n for n in MODELS if MODELS[n].in_paper))
def test_paper_models_have_table_2s_parameter_count_or_say_why_not(name):
    """Within 1% of Table 2 at the dataset's class count (10 CIFAR-10, 200 Tiny-ImageNet, 1000 ImageNet);
    otherwise (or with no count in the paper) ``paper_params_note`` says why, quoting our exact count."""
    from lthlib.data import DATASETS
    spec = MODELS[name]
    assert spec.paper_dataset in DATASETS and DATASETS[spec.paper_dataset].model_kind == spec.input_kind
    n = _natural_count(name)
    off = None if spec.paper_params is None else n / (spec.paper_params * 1e6) - 1
    print(f"{name}: {n:,} at {DATASETS[spec.paper_dataset].classes} classes, paper {spec.paper_params}M, "
          f"{'no count' if off is None else f'{off:+.2%}'}")
    if off is None or abs(off) > 0.01:
        assert f"{n:,}" in spec.paper_params_note, (name, n, spec.paper_params_note)


def test_the_paper_counts_we_match_and_the_ones_we_do_not():
    """Pinned, so a change of architecture cannot slip through a note: ours vs Table 2."""
    assert {n: _natural_count(n) for n in ("resnet20", "resnet32_wide_official", "mobilenet_v1", "resnet18_cifar",
                                           "vgg16", "resnet18_tiny", "resnet50_tiny", "resnet18", "resnet50",
                                           "resnet32_wide_noresidual")} == {
        "resnet20": 272_474, "resnet32_wide_official": 1_860_522, "mobilenet_v1": 3_217_226,
        "resnet18_cifar": 11_173_962, "vgg16": 14_724_042, "resnet18_tiny": 11_271_432, "resnet50_tiny": 23_910_152,
        "resnet18": 11_689_512, "resnet50": 25_557_032, "resnet32_wide_noresidual": 1_849_898}
    # what the notes claim: Table 2's CIFAR RN-18 is ours at 100 classes, its Tiny RN-18 ours at 1000
    assert n_trainable(build_model("resnet18_cifar", 3, 100, 32)) == 11_220_132
    assert n_trainable(build_model("resnet18_tiny", 3, 1000, 64)) == 11_681_832


def test_cifar_resnet18_layout_and_profile():
    m = build_model("resnet18_cifar")
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and m.conv1.out_channels == 64
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.modules())
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert [getattr(m, f"layer{i}")[1].conv2.out_channels for i in range(1, 5)] == [64, 128, 256, 512]
    names = load_profile("resnet18_cifar")
    convs = [n for n, p in m.named_parameters() if p.dim() == 4]
    assert names == convs[1:] and len(names) == 19 and sum("shortcut" in n for n in names) == 3
    assert "linear.weight" not in names and "conv1.weight" not in names


def test_tiny_resnets_are_the_small_image_layout_at_64px():
    r18, r50 = build_model("resnet18_tiny", 3, 200, 64), build_model("resnet50_tiny", 3, 200, 64)
    assert load_profile("resnet18_tiny") == load_profile("resnet18_cifar")
    assert {k: v.shape for k, v in r18.state_dict().items()} == {
        k: v.shape for k, v in build_model("resnet18_cifar", 3, 200, 32).state_dict().items()}
    assert [len(getattr(r50, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert r50.layer2[0].conv2.stride == (2, 2) and r50.layer2[0].conv1.stride == (1, 1)  # v1.5
    assert r50.linear.in_features == 2048 and r50.conv1.kernel_size == (3, 3)
    names = load_profile("resnet50_tiny")
    assert len(names) == 52 and sum("shortcut" in n for n in names) == 4 and "conv1.weight" not in names


def test_resnet32_without_residual_connections_is_the_official_one_minus_shortcuts():
    wide, plain = build_model("resnet32_wide_official", init_seed=0), build_model("resnet32_wide_noresidual", init_seed=0)
    ws, ps = wide.state_dict(), plain.state_dict()
    assert set(ps) == {k for k in ws if "shortcut" not in k}
    assert all(ps[k].shape == ws[k].shape for k in ps)
    assert n_trainable(wide) - n_trainable(plain) == 32 * 64 + 64 * 128 + 2 * (64 + 128)
    assert load_profile("resnet32_wide_noresidual") == load_profile("resnet32_wide_official")
    blocks = [b for b in plain.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 15 and not any(b.residual for b in blocks)
    plain.load_state_dict({k: ws[k] for k in ps})
    wide.eval(), plain.eval()
    x = torch.randn(2, 3, 32, 32)
    for name in ("layer1.1", "layer2.0"):  # an identity and a conv shortcut in the residual net
        pb, wb = plain.get_submodule(name), wide.get_submodule(name)
        h = torch.randn(2, pb.conv1.in_channels, 16, 16)
        body = pb.bn2(pb.conv2(torch.relu(pb.bn1(pb.conv1(h)))))
        assert torch.allclose(pb(h), torch.relu(body), atol=1e-5)  # no add of any kind
        assert torch.allclose(wb(h), torch.relu(body + wb.shortcut(h)), atol=1e-5)
    assert not torch.allclose(plain(x), wide(x))
    assert "without residual connections" in MODELS["resnet32_wide_noresidual"].about


# ----------------------------------------------------------------------------- small-dense training (SDT)
@pytest.mark.parametrize("name,geometry,sparsities", [
    ("resnet20", (3, 10, 32), (0.59, 0.832, 0.914)),
    (DEMO_MODEL, (1, 10, 28), (0.2, 0.36, 0.488, 0.59)),
])
def test_sdt_widths_match_the_subnetworks_nonzero_count(name, geometry, sparsities):
    for s in sparsities:
        d = sdt_widths(name, s, *geometry)
        print(f"{name} s={s}: widths {d['widths']} (proportional {d['proportional_widths']}), subnetwork "
              f"{d['target_params']:,}, small-dense {d['sd_params']:,} ({d['rel_error']:+.2%})")
        assert abs(d["sd_params"] / d["target_params"] - 1) < 0.01
        assert d["sd_params"] == n_trainable(build_scaled(name, d["widths"], *geometry))
        assert d["stem"] == d["widths"][0] and all(w >= 1 for w in d["widths"])
        assert all(abs(a - b) <= 2 for a, b in zip(d["widths"], d["proportional_widths"]))
        assert all(w < b for w, b in zip(d["widths"], MODELS[name].base_widths))


def test_sdt_counts_the_prunable_weights_kept_plus_every_parameter_never_pruned():
    c = sparse_count("resnet20", 0.914)
    kept = 269_824 - round(0.914 * 269_824)
    assert c == {"dense_params": 272_474, "prunable_dense": 269_824, "prunable_kept": kept,
                 "target_params": 272_474 - 269_824 + kept}
    dense = sdt_widths("resnet20", 0.0)
    assert dense["widths"] == [16, 32, 64] and dense["sd_params"] == dense["target_params"] == 272_474


def test_scaled_models_keep_the_models_own_builder_and_init():
    for name, spec in MODELS.items():
        if not spec.width_scalable:
            continue
        c, s = profile_input(name)
        a = build_scaled(name, list(spec.base_widths), c, 10, s, init_seed=5).state_dict()
        b = build_model(name, c, 10, s, init_seed=5).state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a), name
    assert {n for n, m in MODELS.items() if m.width_scalable} >= {
        "resnet20", DEMO_MODEL, "resnet32", "resnet56", "resnet32_wide_official", "resnet32_wide_noresidual",
        "resnet18_cifar", "resnet18_tiny", "resnet50_tiny", "vgg16", "vgg19"}
    small = build_scaled("vgg16", [24, 48, 96, 192, 192], init_seed=0)
    assert small.features[0].out_channels == 24 and small.classifier.in_features == 192
    assert init_problems(small, *EXPECTED_INIT["vgg16"]) == []
    r20 = build_scaled("resnet20", sdt_widths("resnet20", 0.832), init_seed=0)
    assert init_problems(r20, *EXPECTED_INIT["resnet20"]) == []
    assert r20(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_sdt_refuses_what_it_cannot_build():
    for name in ("mobilenet_v1", "resnet18", "lenet5"):
        assert not MODELS[name].width_scalable
        with pytest.raises(ConfigError, match=f"model '{name}' cannot be built at other widths.*resnet20"):
            sdt_widths(name, 0.5)
        with pytest.raises(ConfigError, match="cannot be built at other widths"):
            build_scaled(name, [8, 16, 32])
    for bad in ([8, 16], [8, 16, 0], [8.0, 16, 32], "abc", None):
        with pytest.raises(ConfigError, match="widths must be 3 integers >= 1"):
            build_scaled("resnet20", bad)
    with pytest.raises(ConfigError, match="sparsity must be in"):
        sdt_widths("resnet20", 1.0)


@pytest.mark.parametrize("name,widths", [("resnet32_wide_noresidual", [4, 8, 8]), ("resnet18_cifar", [4, 8, 8, 8]),
                                         ("resnet50_tiny", [4, 4, 8, 8])])
def test_new_models_pack(name, widths):
    """The engine trains tickets packed: the new blocks (no-residual, four-stage, bottleneck) pack exactly."""
    from lthlib import packing
    models = [build_scaled(name, widths, 3, 10, 32, init_seed=i) for i in range(2)]
    net = packing.pack(models).eval()
    x = torch.randn(2, 3, 32, 32)
    out = net(x)
    for i, m in enumerate(models):
        assert torch.allclose(out[:, i], m.eval()(x), atol=1e-4, rtol=1e-4)
