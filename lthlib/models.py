"""Model registry and pruning profiles.

Every model is built by ``build_model(name, in_channels, num_classes, input_size)``. Its pruning
profile -- the explicit list of prunable tensors (SPEC section 3) -- is data under
``params/profiles/<name>.yaml``; ``derive_profile`` re-derives it from the rule so a test can check
that the file and the architecture agree.

Initialization follows the official code (SPEC section 3, "Initialization"); each registry entry says
which scheme it uses in ``init_doc``. A model whose scheme changed after runs existed carries an ``init``
tag, which the engine adds to every run's identity so runs made with the old scheme are not reused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from .errors import ConfigError

PROFILE_DIR = Path(__file__).resolve().parent.parent / "params" / "profiles"


# --------------------------------------------------------------------------- initialization
def init_official(model: nn.Module, conv_mode: str = "fan_out", linear: str = "default") -> nn.Module:
    """The official code's initializers: every conv kaiming-normal (``conv_mode`` fan_out or fan_in,
    relu gain, bias 0), every BatchNorm weight 1 / bias 0, and the linear layers either PyTorch's
    default (``linear="default"``) or N(0, 0.01) with bias 0 (``linear="normal"``)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear == "normal":
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear != "default":
            raise ValueError(f"linear init must be 'default' or 'normal', got {linear!r}")
    return model


# --------------------------------------------------------------------------- CIFAR ResNets
class BasicBlock(nn.Module):
    """3x3-3x3 residual block. ``shortcut``: 'conv' (1x1 conv + BN when the shape changes, as the
    official code) or 'pad' (He et al. option A: strided identity, zero-padded channels)."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pad = 0
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            if shortcut == "conv":
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                              nn.BatchNorm2d(c_out))
            else:
                self.pad = c_out - c_in
                self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        else:
            sc = self.shortcut(x)
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2: 3x3 stem, three stages of n basic blocks (``widths``), global
    avg-pool, one linear layer. ``stem_stride`` 2 halves the feature maps from the start (the CPU demo
    model only; the paper's ResNets use 1). ``linear_init``: see ``init_official``."""

    def __init__(self, depth: int, widths=(16, 32, 64), stem: int | None = None, shortcut="conv",
                 in_channels=3, num_classes=10, linear_init="default", stem_stride: int = 1):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        stem = stem or widths[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        layers, c = [], stem
        for i, w in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(c, w, 2 if (i > 0 and j == 0) else 1, shortcut))
                c = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(c, num_classes)
        init_official(self, "fan_out", linear_init)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# --------------------------------------------------------------------------- VGG / MobileNet
VGG_CFG = {
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class CifarVGG(nn.Module):
    """conv3x3+BN+ReLU stages, max-pool after stages 1-4 only, global avg-pool, one linear layer."""

    def __init__(self, depth: int, in_channels=3, num_classes=10):
        super().__init__()
        layers, c = [], in_channels
        for i, stage in enumerate(VGG_CFG[depth]):
            for w in stage:
                layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            if i < 4:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)
        init_official(self, "fan_out", "normal")

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class MobileNetV1(nn.Module):
    """CIFAR MobileNet-v1: 3x3 stem, 13 depthwise-separable blocks, avg-pool, linear."""
    CFG = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]

    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, c = [], 32
        for item in self.CFG:
            w, s = (item, 1) if isinstance(item, int) else item
            blocks += [nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, w, 1, 1, 0, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# --------------------------------------------------------------------------- small CPU models
class LeNet5(nn.Module):
    """LeNet-5-like conv net (conv 6 -> conv 16 -> fc 120 -> fc 84 -> classes) with ReLU and max-pool:
    the CPU default. Sized by ``input_size`` so it fits 28x28 and 32x32 inputs."""

    def __init__(self, in_channels=1, num_classes=10, input_size=28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = (input_size // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class LeNet300100(nn.Module):
    """LeNet-300-100 MLP of Frankle & Carbin."""

    def __init__(self, in_channels=1, num_classes=10, input_size=28):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * input_size * input_size, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def _imagenet_resnet(arch: str, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision.models  # here, not at the top: it costs ~2 s of start-up in every notebook
    model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    # the official (NVIDIA) builder: convs kaiming-normal fan_in, BN 1/0 with no zero-init of the
    # blocks' last BN, FC PyTorch's default (torchvision's own init is fan_out)
    return init_official(model, "fan_in", "default")


# --------------------------------------------------------------------------- registry
def _rule_all_convs_but_stem(name: str, p: torch.Tensor, stem: str) -> bool:
    return p.dim() == 4 and name != stem


def _rule_resnet_stages(name, p, with_shortcut=True):
    if p.dim() != 4 or not name.startswith(("layer1", "layer2", "layer3", "layer4")):
        return False
    return with_shortcut or "shortcut" not in name


def _rule_hidden_layers(name, p, classifier):
    return p.dim() >= 2 and not name.startswith(classifier) and name != "conv1.weight"


OFFICIAL_INIT = "official-v1"  # the official code's init (issue 10 item 4); before it: kaiming fan_in
_CIFAR_RESNET_INIT = "convs kaiming-normal fan_out (relu), BN 1/0, FC PyTorch default (official ResNet-20)"
_WIDE_INIT = "convs kaiming-normal fan_out (relu), BN 1/0, Linear N(0, 0.01) bias 0 (official code)"
_IMAGENET_INIT = ("convs kaiming-normal fan_in (relu), BN 1/0 (no zero-init of the last BN), FC PyTorch "
                  "default (official NVIDIA builder, 'fanin' config)")
_DEFAULT_INIT = "PyTorch defaults throughout"

@dataclass(frozen=True)
class ModelSpec:
    """Everything the project knows about one model, in one place: how to build it, which tensors are
    prunable (``rule``; the profile file lists them), its init, what it is and whether it is the paper's."""
    name: str
    build: Callable  # (in_channels, num_classes, input_size) -> nn.Module, on the CPU
    rule: Callable  # (parameter name, tensor) -> prunable?
    about: str
    init_doc: str  # the initialization, in words
    init_tag: str | None = None  # a scheme changed after runs existed: part of every run's identity
    input: tuple[int, int] = (3, 32)  # (channels, size) the profile's n_weights is counted at
    input_kind: str = "small"  # "small": 28-64 px images (CIFAR, Fashion-MNIST); "imagenet": 224 px
    in_paper: bool = False  # one of the paper's networks (its Table 2)
    paper_params: float | None = None  # the paper's parameter count (millions), where it lists one
    default_rates: dict = field(default_factory=dict)  # {"cpu"|"gpu": {pack size: ticket-img/s}} (README)


def _he_resnet(depth: int, size: str) -> dict:
    """He et al.'s CIFAR ResNet-``depth`` (option-A shortcuts): not in the official code, so it takes the
    official ResNet-20's init and differs only in depth and shortcut."""
    return dict(
        build=lambda c, k, s: CifarResNet(depth, shortcut="pad", in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about=f"He et al. CIFAR ResNet-{depth} (16/32/64, option-A shortcuts, {size} params)",
        init_doc=_CIFAR_RESNET_INIT.replace("(official ResNet-20)", "(not in the official code: its "
                                            "ResNet-20 init, so only depth and shortcut differ)"),
        init_tag=OFFICIAL_INIT)


# measured rates (README "Benchmark"): the CPU 2-core machine, two 1-thread runs; one H100, captured step
_RESNET20_RATES = {"cpu": {1: 1000.0}, "gpu": {1: 22700.0, 6: 52300.0, 12: 64500.0, 32: 69500.0, 64: 72800.0}}
_MODELS = dict(
    resnet20=dict(
        build=lambda c, k, s: CifarResNet(20, in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="CIFAR ResNet-20 (16/32/64, 1x1-conv shortcuts as the official code; shortcuts pruned)",
        init_doc=_CIFAR_RESNET_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=0.27,
        default_rates=_RESNET20_RATES),
    resnet8_w8_s2=dict(
        build=lambda c, k, s: CifarResNet(8, widths=(8, 16, 32), in_channels=c, num_classes=k, stem_stride=2),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="the CPU demo model: a CIFAR-style ResNet-8 (3x3 stem, one basic block per stage) at half "
              "width (8/16/32), BN, 1x1-conv shortcuts (pruned), and a stride-2 stem (28x28 -> 14x14 maps) "
              "for CPU speed; 20k params, ResNet-20's design at a fraction of its depth, width and compute",
        init_doc=_CIFAR_RESNET_INIT, input=(1, 28)),
    resnet32_wide_official=dict(
        build=lambda c, k, s: CifarResNet(32, widths=(32, 64, 128), stem=32, in_channels=c, num_classes=k,
                                          linear_init="normal"),
        rule=lambda n, p: _rule_resnet_stages(n, p, False),
        about="the official code's 'ResNet-32': 2x wide (32/64/128), 1.86M params, shortcuts not pruned",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=1.86),
    **{f"resnet{d}": _he_resnet(d, size) for d, size in ((32, "0.46M"), (56, "0.85M"))},
    vgg16=dict(
        build=lambda c, k, s: CifarVGG(16, in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "features.0.weight"),
        about="CIFAR VGG-16 (BN, max-pool after stages 1-4, avg-pool, one linear)",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=14.72),
    vgg19=dict(
        build=lambda c, k, s: CifarVGG(19, in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "features.0.weight"),
        about="CIFAR VGG-19 (BN, max-pool after stages 1-4, avg-pool, one linear; Frankle & Carbin's "
              "network, not evaluated by the paper)",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT),
    mobilenet_v1=dict(
        build=lambda c, k, s: MobileNetV1(in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "conv1.weight"),
        about="CIFAR MobileNet-v1 (13 depthwise-separable blocks)",
        init_doc=_DEFAULT_INIT + ", BN 1/0 (the official MobileNet sets no init of its own)", in_paper=True,
        paper_params=3.21),
    resnet18=dict(
        build=lambda c, k, s: _imagenet_resnet("resnet18", c, k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="torchvision ResNet-18 (ImageNet); layer1-4 convs incl. downsample pruned",
        init_doc=_IMAGENET_INIT, init_tag=OFFICIAL_INIT, input=(3, 224), input_kind="imagenet", in_paper=True,
        paper_params=11.69),
    resnet50=dict(
        build=lambda c, k, s: _imagenet_resnet("resnet50", c, k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="torchvision ResNet-50 (ImageNet, v1.5: stride in the 3x3 conv); layer1-4 convs incl. "
              "downsample pruned",
        init_doc=_IMAGENET_INIT, init_tag=OFFICIAL_INIT, input=(3, 224), input_kind="imagenet", in_paper=True,
        paper_params=25.56),
    lenet5=dict(
        build=lambda c, k, s: LeNet5(c, k, s),
        rule=lambda n, p: _rule_hidden_layers(n, p, "fc3"),
        about="LeNet-5-like conv net (no BN, no residual path); conv2, fc1, fc2 pruned (not the stem conv "
              "or classifier)",
        init_doc=_DEFAULT_INIT + " (not in the official code)", input=(1, 28),
        default_rates={"cpu": {1: 25000.0}}),
    lenet300_100=dict(
        build=lambda c, k, s: LeNet300100(c, k, s),
        rule=lambda n, p: p.dim() >= 2 and not n.startswith("fc3"),
        about="LeNet-300-100 MLP; fc1, fc2 pruned (not the classifier)",
        init_doc=_DEFAULT_INIT + " (not in the official code)", input=(1, 28)),
)
MODELS: dict[str, ModelSpec] = {name: ModelSpec(name, **kw) for name, kw in _MODELS.items()}


def model_spec(name: str, source: str = "model") -> ModelSpec:
    """The spec of model ``name``; an unknown name is a ConfigError listing the known ones."""
    check_model_name(name, source)
    return MODELS[name]


def check_model_name(name: str, source: str = "model") -> None:
    if name not in MODELS:
        raise ConfigError(f"{source}: unknown model {name!r}. Known models: {', '.join(sorted(MODELS))}.")


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                init_seed: int | None = None) -> nn.Module:
    """Build a model on the CPU; with ``init_seed`` its initial weights depend on that seed only."""
    check_model_name(name)
    if init_seed is None:
        return MODELS[name].build(in_channels, num_classes, input_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return MODELS[name].build(in_channels, num_classes, input_size)


def profile_input(model_name: str) -> tuple[int, int]:
    """(channels, size) of the input a profile's weight count refers to: the dataset the model is
    meant for (Fashion-MNIST 1x28x28 for the LeNets, whose fc1 depends on it; else 3x32x32)."""
    return tuple(MODELS[model_name].input)


def profile_model(model_name: str) -> nn.Module:
    """The model at its profile's input geometry (10 classes)."""
    c, s = profile_input(model_name)
    return build_model(model_name, c, 10, s)


def derive_profile(model_name: str, model: nn.Module | None = None) -> list[str]:
    """The prunable tensors by the model's rule, in parameter order."""
    model = model if model is not None else profile_model(model_name)
    rule = MODELS[model_name].rule
    return [n for n, p in model.named_parameters() if rule(n, p)]


def profile_path(model_name: str) -> Path:
    return PROFILE_DIR / f"{model_name}.yaml"


def load_profile(model_name: str) -> list[str]:
    """The prunable tensor names for ``model_name`` from params/profiles/<name>.yaml."""
    check_model_name(model_name)
    path = profile_path(model_name)
    if not path.exists():
        raise ConfigError(f"{path}: pruning profile missing. Regenerate it with "
                          f"`python -m lthlib.models --write-profiles`.")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("prunable"), list):
        raise ConfigError(f"{path}: field 'prunable' must be a list of parameter names.")
    return [str(x) for x in data["prunable"]]


def profile_hash(names: list[str]) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:12]


def write_profiles() -> None:
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        model = profile_model(name)
        names = derive_profile(name, model)
        params = dict(model.named_parameters())
        total = sum(params[n].numel() for n in names)
        c, s = profile_input(name)
        doc = {"model": name, "about": MODELS[name].about, "init": MODELS[name].init_doc,
               "n_tensors": len(names), "n_weights": total, "n_weights_input": f"{c}x{s}x{s}",
               "prunable": names}
        profile_path(name).write_text(
            "# Prunable tensors of this model (SPEC section 3). Generated by\n"
            "# `python -m lthlib.models --write-profiles`; tests check it against the architecture.\n"
            + yaml.safe_dump(doc, sort_keys=False))


if __name__ == "__main__":
    import sys
    if "--write-profiles" in sys.argv:
        write_profiles()
        print(f"wrote {len(MODELS)} profiles to {PROFILE_DIR}")
    else:
        for name, spec in MODELS.items():
            m = profile_model(name)
            print(f"{name:24s} {sum(p.numel() for p in m.parameters()):>10,d}  {spec.about}")
