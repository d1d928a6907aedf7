"""Model registry and pruning profiles.

Every model is built by ``build_model(name, in_channels, num_classes, input_size)``. Its pruning
profile -- the explicit list of prunable tensors (SPEC section 3) -- is data under
``params/profiles/<name>.yaml``; ``derive_profile`` re-derives it from the rule so a test can check
that the file and the architecture agree.

Initialization follows the official code (SPEC section 3, "Initialization"); each registry entry says
which scheme it uses in ``init_doc``. A model whose scheme changed after runs existed carries an ``init``
tag, which the engine adds to every run's identity so runs made with the old scheme are not reused.

Your own model joins ``MODELS`` through ``lthlib.ownmodels.register_model`` (its prunable tensors are
held by its registration, not a profile file); ``BUILTIN`` names lthlib's own.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from .errors import ConfigError
from .runs import atomic_write_text

# The pruning profiles: params/profiles in a checkout (the source of truth); an installed wheel carries
# them as lthlib/profiles (pyproject.toml maps params/profiles there), used when no checkout is around.
PROFILE_DIR = next((d for d in (Path(__file__).resolve().parent.parent / "params" / "profiles",
                                Path(__file__).resolve().parent / "profiles") if d.is_dir()),
                   Path(__file__).resolve().parent.parent / "params" / "profiles")


# --------------------------------------------------------------------------- initialization
def init_official(model: nn.Module, conv_mode: str = "fan_out", linear: str = "default") -> nn.Module:
    """The official code's initializers: every conv kaiming-normal (``conv_mode`` fan_out or fan_in,
    relu gain, bias 0), every BatchNorm weight 1 / bias 0, and the linear layers either PyTorch's
    default (``linear="default"``) or N(0, 0.01) with bias 0 (``linear="normal"``). A model on the meta
    device (counted, not trained: ``_meta_count``) has no values to set."""
    if any(p.is_meta for p in model.parameters()):
        return model
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
    official code), 'pad' (He et al. option A: strided identity, zero-padded channels) or 'none' (no
    residual connection at all: the block is two plain conv-BN-ReLU layers)."""
    expansion = 1  # output channels per unit of width

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        if shortcut not in ("conv", "pad", "none"):
            raise ValueError(f"shortcut must be 'conv', 'pad' or 'none', got {shortcut!r}")
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.residual = shortcut != "none"
        self.pad = 0
        self.shortcut = nn.Sequential()
        if self.residual and (stride != 1 or c_in != c_out):
            if shortcut == "conv":
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                              nn.BatchNorm2d(c_out))
            else:
                self.pad = c_out - c_in
                self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.residual:
            return F.relu(out)
        if self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        else:
            sc = self.shortcut(x)
        return F.relu(out + sc)


class Bottleneck(nn.Module):
    """1x1 (width) - 3x3 (width, carrying the stride, as torchvision's ResNet v1.5) - 1x1 (4 x width)
    bottleneck with a 1x1-conv + BN shortcut when the shape changes."""
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int, shortcut: str = "conv"):
        super().__init__()
        if shortcut != "conv":
            raise ValueError(f"Bottleneck supports shortcut 'conv' only, got {shortcut!r}")
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2: 3x3 stem, three stages of n basic blocks (``widths``), global
    avg-pool, one linear layer. ``shortcut``: see BasicBlock ('none': no residual connections). ``stem_stride`` 2 halves the feature maps from the start (the CPU demo
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


class StageResNet(nn.Module):
    """ResNet-18/50 for small images (32-64 px): a 3x3 stride-1 stem conv as wide as stage 1, no max-pool,
    four stages of ``blocks`` blocks (``widths``, stride 2 at the start of stages 2-4), global avg-pool,
    one linear layer. ``BasicBlock`` with (2, 2, 2, 2) is the CIFAR ResNet-18, ``Bottleneck`` with
    (3, 4, 6, 3) a ResNet-50. Convs kaiming-normal fan_out (relu), BN 1/0, linear PyTorch's default."""

    def __init__(self, block, blocks, widths=(64, 128, 256, 512), in_channels=3, num_classes=10):
        super().__init__()
        if len(blocks) != 4 or len(widths) != 4:
            raise ValueError(f"StageResNet has 4 stages: got blocks {blocks}, widths {widths}")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c, stages = widths[0], []
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = []
            for j in range(n):
                stage.append(block(c, w, 2 if (i > 0 and j == 0) else 1, "conv"))
                c = w * block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(c, num_classes)
        init_official(self, "fan_out", "default")

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# --------------------------------------------------------------------------- VGG / MobileNet
VGG_CFG = {
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class CifarVGG(nn.Module):
    """conv3x3+BN+ReLU stages, max-pool after stages 1-4 only, global avg-pool, one linear layer.
    ``widths``: one width per stage (every conv of a stage, the first conv included), default VGG_CFG's."""

    def __init__(self, depth: int, in_channels=3, num_classes=10, widths=None):
        super().__init__()
        if widths is not None and len(widths) != 5:
            raise ValueError(f"VGG has 5 stages: got widths {widths}")
        cfg = VGG_CFG[depth] if widths is None else [[w] * len(st) for st, w in zip(VGG_CFG[depth], widths)]
        layers, c = [], in_channels
        for i, stage in enumerate(cfg):
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

def _stage_resnet_pruned(block, blocks) -> dict:
    """A stage ResNet entry whose every conv in layer1-4 is prunable (shortcuts included)."""
    return dict(**_stage_resnet(block, blocks), rule=lambda n, p: _rule_resnet_stages(n, p, True))


_SMALL_RESNET_INIT = ("convs kaiming-normal fan_out (relu), BN 1/0, FC PyTorch default: not in the official "
                      "code, which has no {what}; the CIFAR ResNets' convention (the official ResNet-20's init, "
                      "also torchvision's own conv init)")


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
    input_kind: str = "small"  # "small": 28-64 px images (CIFAR, Fashion-MNIST, Tiny-ImageNet); "imagenet": 224 px
    in_paper: bool = False  # one of the paper's networks (its Table 2, or the no-residual ResNet-32 of section 3.1)
    paper_params: float | None = None  # the paper's parameter count (millions, Table 2), where it lists one
    default_rates: dict = field(default_factory=dict)  # {"cpu"|"gpu": {pack size: ticket-img/s}} (README)
    paper_dataset: str | None = None  # the dataset whose class count paper_params is compared at
    paper_params_note: str = ""  # why our count differs from paper_params (or why there is none)
    base_widths: tuple | None = None  # per-stage widths of the model (the stem follows stage 1)
    build_widths: Callable | None = None  # (stage widths, in_channels, num_classes, input_size) -> nn.Module
    # your own models (lthlib.ownmodels.register_model): the prunable tensors (a built-in model's are in its
    # profile file), the file that registered it and (module, qualname) of its builder
    profile: tuple | None = None
    origin: str = "lthlib/models.py"
    owner: tuple = ()

    @property
    def width_scalable(self) -> bool:
        """Whether the model can be built at other per-stage widths (small-dense training, SDT)."""
        return self.build_widths is not None


def _scalable(builder: Callable, base: tuple) -> dict:
    """Registry fields of a model built by ``builder(widths, c, k, s)``, at its own ``base`` widths."""
    return dict(build=lambda c, k, s: builder(tuple(base), c, k, s), build_widths=builder, base_widths=tuple(base))


def _he_resnet(depth: int, size: str) -> dict:
    """He et al.'s CIFAR ResNet-``depth`` (option-A shortcuts): not in the official code, so it takes the
    official ResNet-20's init and differs only in depth and shortcut."""
    return dict(
        **_scalable(lambda w, c, k, s: CifarResNet(depth, widths=w, shortcut="pad", in_channels=c, num_classes=k),
                    (16, 32, 64)),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about=f"He et al. CIFAR ResNet-{depth} (16/32/64, option-A shortcuts, {size} params)",
        init_doc=_CIFAR_RESNET_INIT.replace("(official ResNet-20)", "(not in the official code: its "
                                            "ResNet-20 init, so only depth and shortcut differ)"),
        init_tag=OFFICIAL_INIT)


def _wide_resnet32(shortcut: str) -> dict:
    """The official 2x-wide ResNet-32 (stem 32, 32/64/128, 5 blocks a stage), with or without shortcuts."""
    return _scalable(lambda w, c, k, s: CifarResNet(32, widths=w, stem=w[0], shortcut=shortcut, in_channels=c,
                                                    num_classes=k, linear_init="normal"), (32, 64, 128))


def _stage_resnet(block, blocks) -> dict:
    return _scalable(lambda w, c, k, s: StageResNet(block, blocks, w, c, k), (64, 128, 256, 512))


# measured rates (README "Benchmark"): the CPU 2-core machine, two 1-thread runs; one H100, captured step
_RESNET20_RATES = {"cpu": {1: 1000.0}, "gpu": {1: 22700.0, 6: 52300.0, 12: 64500.0, 32: 69500.0, 64: 72800.0}}
_TINY_NOTE = ("Table 2's Tiny-ImageNet count is that of the network with ImageNet's 1000-way classifier "
              "({thousand}); at Tiny-ImageNet's 200 classes ours has {ours}, torchvision's {tv} (7x7 stem + "
              "max-pool), neither near it. We keep the 200-way classifier the dataset needs.")
_MODELS = dict(
    resnet20=dict(
        **_scalable(lambda w, c, k, s: CifarResNet(20, widths=w, in_channels=c, num_classes=k), (16, 32, 64)),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="CIFAR ResNet-20 (16/32/64, 1x1-conv shortcuts as the official code; shortcuts pruned)",
        init_doc=_CIFAR_RESNET_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=0.27,
        paper_dataset="cifar10", default_rates=_RESNET20_RATES),
    resnet8_w8_s2=dict(
        **_scalable(lambda w, c, k, s: CifarResNet(8, widths=w, in_channels=c, num_classes=k, stem_stride=2),
                    (8, 16, 32)),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="the CPU demo model: a CIFAR-style ResNet-8 (3x3 stem, one basic block per stage) at half "
              "width (8/16/32), BN, 1x1-conv shortcuts (pruned), and a stride-2 stem (28x28 -> 14x14 maps) "
              "for CPU speed; 20k params, ResNet-20's design at a fraction of its depth, width and compute",
        init_doc=_CIFAR_RESNET_INIT, input=(1, 28)),
    resnet32_wide_official=dict(
        **_wide_resnet32("conv"),
        rule=lambda n, p: _rule_resnet_stages(n, p, False),
        about="the official code's 'ResNet-32': 2x wide (32/64/128), 1.86M params, shortcuts not pruned",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=1.86, paper_dataset="cifar10"),
    resnet32_wide_noresidual=dict(
        **_wide_resnet32("none"),
        rule=lambda n, p: _rule_resnet_stages(n, p, False),
        about="the paper's ResNet-32-like network without residual connections (section 3.1, Figures 4/5): "
              "the official 2x-wide ResNet-32 (stem 32, 32/64/128, 5 blocks a stage) with every shortcut "
              "removed (no identity add, no 1x1 shortcut conv), all else intact: 31 conv-BN-ReLU layers + "
              "avg-pool + linear, 1.85M params; every conv but the stem pruned",
        init_doc=_WIDE_INIT + ", as resnet32_wide_official", in_paper=True, paper_dataset="cifar10",
        paper_params_note="not in Table 2 (the paper gives no count): resnet32_wide_official's 1,860,522 less "
                          "its two 1x1 shortcut convs and their BN, 1,849,898"),
    **{f"resnet{d}": _he_resnet(d, size) for d, size in ((32, "0.46M"), (56, "0.85M"))},
    resnet18_cifar=dict(
        **_stage_resnet_pruned(BasicBlock, (2, 2, 2, 2)),
        about="CIFAR ResNet-18: 3x3 stride-1 stem conv 64, no max-pool, 4 stages of 2 basic blocks "
              "(64/128/256/512), 1x1-conv + BN shortcuts, avg-pool, linear; not in the official code. Every "
              "conv but the stem pruned (shortcuts included), never the classifier",
        init_doc=_SMALL_RESNET_INIT.format(what="CIFAR ResNet-18"), in_paper=True, paper_params=11.22,
        paper_dataset="cifar10",
        paper_params_note="11,173,962 at CIFAR-10's 10 classes, 0.4% under Table 2's 11.22M; with CIFAR-100's "
                          "100-way classifier it has 11,220,132, which is Table 2's number"),
    resnet18_tiny=dict(
        **_stage_resnet_pruned(BasicBlock, (2, 2, 2, 2)),
        about="ResNet-18 for Tiny-ImageNet (64x64): the same network as resnet18_cifar (3x3 stride-1 stem "
              "conv 64, no max-pool, 64/128/256/512, 8x8 maps in the last stage), at the 64x64 input and 200 "
              "classes. Not in the official code and not described in the paper: the 3x3 stem is what Table 2's "
              "11.68M implies (a 7x7 stem adds 7,680). Every conv in layer1-4 pruned, shortcuts included (as "
              "the ImageNet ResNets), not the stem or the classifier",
        init_doc=_SMALL_RESNET_INIT.format(what="Tiny-ImageNet code"), input=(3, 64), in_paper=True,
        paper_params=11.68, paper_dataset="tiny_imagenet",
        paper_params_note=_TINY_NOTE.format(thousand="11,681,832 with this 3x3 stem", ours="11,271,432",
                                            tv="11,279,112")),
    resnet50_tiny=dict(
        **_stage_resnet_pruned(Bottleneck, (3, 4, 6, 3)),
        about="ResNet-50 for Tiny-ImageNet (64x64): torchvision's ResNet-50 v1.5 layout (bottlenecks "
              "3/4/6/3, widths 64/128/256/512 x4, stride in the 3x3 conv) with resnet18_tiny's 3x3 stride-1 "
              "stem conv and no max-pool. Not in the official code and not described in the paper. Every conv "
              "in layer1-4 pruned, shortcuts included (as the ImageNet ResNets), not the stem or the classifier",
        init_doc=_SMALL_RESNET_INIT.format(what="Tiny-ImageNet code"), input=(3, 64), in_paper=True,
        paper_params=25.56, paper_dataset="tiny_imagenet",
        paper_params_note=_TINY_NOTE.format(thousand="25,557,032 for torchvision's ResNet-50; 25,549,352 with "
                                            "this 3x3 stem", ours="23,910,152", tv="23,917,832")),
    vgg16=dict(
        **_scalable(lambda w, c, k, s: CifarVGG(16, in_channels=c, num_classes=k, widths=w),
                    tuple(st[0] for st in VGG_CFG[16])),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "features.0.weight"),
        about="CIFAR VGG-16 (BN, max-pool after stages 1-4, avg-pool, one linear)",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT, in_paper=True, paper_params=14.72, paper_dataset="cifar10",
        paper_params_note="14,724,042 at 10 classes: Table 2's 14.72M"),
    vgg19=dict(
        **_scalable(lambda w, c, k, s: CifarVGG(19, in_channels=c, num_classes=k, widths=w),
                    tuple(st[0] for st in VGG_CFG[19])),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "features.0.weight"),
        about="CIFAR VGG-19 (BN, max-pool after stages 1-4, avg-pool, one linear; Frankle & Carbin's "
              "network, not evaluated by the paper)",
        init_doc=_WIDE_INIT, init_tag=OFFICIAL_INIT),
    mobilenet_v1=dict(
        build=lambda c, k, s: MobileNetV1(in_channels=c, num_classes=k),
        rule=lambda n, p: _rule_all_convs_but_stem(n, p, "conv1.weight"),
        about="CIFAR MobileNet-v1 (13 depthwise-separable blocks)",
        init_doc=_DEFAULT_INIT + ", BN 1/0 (the official MobileNet sets no init of its own)", in_paper=True,
        paper_params=3.21, paper_dataset="cifar10",
        paper_params_note="3,217,226 at 10 classes (the official code's MobileNet has the same layers), 0.2% "
                          "over Table 2's 3.21M, which reads as truncated rather than rounded (3.22M)"),
    resnet18=dict(
        build=lambda c, k, s: _imagenet_resnet("resnet18", c, k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="torchvision ResNet-18 (ImageNet); layer1-4 convs incl. downsample pruned",
        init_doc=_IMAGENET_INIT, init_tag=OFFICIAL_INIT, input=(3, 224), input_kind="imagenet", in_paper=True,
        paper_params=11.69, paper_dataset="imagenet"),
    resnet50=dict(
        build=lambda c, k, s: _imagenet_resnet("resnet50", c, k),
        rule=lambda n, p: _rule_resnet_stages(n, p, True),
        about="torchvision ResNet-50 (ImageNet, v1.5: stride in the 3x3 conv); layer1-4 convs incl. "
              "downsample pruned",
        init_doc=_IMAGENET_INIT, init_tag=OFFICIAL_INIT, input=(3, 224), input_kind="imagenet", in_paper=True,
        paper_params=25.56, paper_dataset="imagenet"),
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
BUILTIN = frozenset(MODELS)  # lthlib's own; lthlib.ownmodels.register_model adds yours to MODELS


def model_spec(name: str, source: str = "model") -> ModelSpec:
    """The spec of model ``name``; an unknown name is a ConfigError listing the known ones."""
    check_model_name(name, source)
    return MODELS[name]


def check_model_name(name: str, source: str = "model") -> None:
    if name not in MODELS:
        raise ConfigError(f"{source}: unknown model {name!r}. Known models: {', '.join(sorted(MODELS))}. Your own "
                          f"model? Name the module that registers it (lthlib.register_model) in the params file, "
                          f"e.g. model_module: mypkg.mynet (README, \"Your own model\").")


def _seeded(build: Callable, init_seed: int | None) -> nn.Module:
    """``build()``; with ``init_seed`` its random draws depend on that seed only (global RNG untouched)."""
    if init_seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return build()


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                init_seed: int | None = None) -> nn.Module:
    """Build a model on the CPU; with ``init_seed`` its initial weights depend on that seed only."""
    check_model_name(name)
    return _seeded(lambda: MODELS[name].build(in_channels, num_classes, input_size), init_seed)


# --------------------------------------------------------------------------- small-dense training (SDT)
def _scalable_spec(model_name: str) -> ModelSpec:
    spec = model_spec(model_name)
    if not spec.width_scalable:
        fits = ", ".join(n for n, m in MODELS.items() if m.width_scalable)
        raise ConfigError(f"model {model_name!r} cannot be built at other widths, so it has no small-dense "
                          f"(SDT) network. Models that can: {fits}.")
    return spec


def _stage_widths(spec: ModelSpec, widths) -> tuple[int, ...]:
    """``widths`` (a list of per-stage widths, or sdt_widths' dict) checked against the model's stages."""
    w = widths["widths"] if isinstance(widths, dict) else widths
    try:
        w = tuple(w)
    except TypeError:
        w = None
    if (w is None or len(w) != len(spec.base_widths)
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in w)):
        raise ConfigError(f"model {spec.name!r}: widths must be {len(spec.base_widths)} integers >= 1, one per "
                          f"stage (the model's own: {list(spec.base_widths)}), got {widths!r}")
    return w


def build_scaled(model_name: str, widths, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                 init_seed: int | None = None) -> nn.Module:
    """The model at other per-stage ``widths`` (the stem follows stage 1), same depth and layout, with the
    model's own initializer: the small-dense network of SDT. ``widths``: a list, or sdt_widths' dict."""
    spec = _scalable_spec(model_name)
    w = _stage_widths(spec, widths)
    return _seeded(lambda: spec.build_widths(w, in_channels, num_classes, input_size), init_seed)


def n_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _meta_count(spec: ModelSpec, widths: tuple, geometry: tuple) -> int:
    """Trainable parameters of the model at ``widths``, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        return n_trainable(spec.build_widths(tuple(widths), *geometry))


def sparse_count(model_name: str, sparsity: float, in_channels: int = 3, num_classes: int = 10,
                 input_size: int = 32) -> dict:
    """Non-zero trainable parameters of the subnetwork at global ``sparsity``: the prunable weights kept
    (``n - round(sparsity * n)`` of the profile's n, as the pruner) plus every never-pruned parameter."""
    if not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity!r}")
    with torch.device("meta"):
        model = model_spec(model_name).build(in_channels, num_classes, input_size)
    dense, prunable = n_trainable(model), sum(dict(model.named_parameters())[n].numel()
                                              for n in derive_profile(model_name, model))
    kept = prunable - int(round(float(sparsity) * prunable))
    return {"dense_params": dense, "prunable_dense": prunable, "prunable_kept": kept,
            "target_params": dense - prunable + kept}


def _neighbours(widths: tuple) -> list[tuple]:
    """Every width vector one step away: one stage one channel up or down, or one up and another down."""
    out, n = [], len(widths)
    for i in range(n):
        for j in range(n):
            for step in ((1, -1) if i == j else (1,)):
                w = list(widths)
                w[i] += step
                if i != j:
                    w[j] -= 1
                if min(w) >= 1:
                    out.append(tuple(w))
    return out


def _refine(widths: tuple, target: int, count: Callable, max_moves: int = 10, reach: int = 2) -> tuple:
    """Greedy: take the neighbour (``_neighbours``) whose count is closest to ``target`` while that is
    closer than the current widths; at most ``max_moves`` steps, no stage more than ``reach`` channels
    from ``widths`` (the proportional start), so the network keeps its shape."""
    best = tuple(widths)
    for _ in range(max_moves):
        near = [w for w in _neighbours(best) if max(abs(a - b) for a, b in zip(w, widths)) <= reach]
        if not near:
            break
        step = min(near, key=lambda w: (abs(count(w) - target), w))
        if abs(count(step) - target) >= abs(count(best) - target):
            break
        best = step
    return best


def sdt_widths(model_name: str, sparsity: float, in_channels: int = 3, num_classes: int = 10,
               input_size: int = 32) -> dict:
    """Per-stage widths of the small-dense network for global ``sparsity`` (SPEC section 2, SDT): the same
    architecture and depth, every width (stem and stages) scaled by one factor found by bisection and
    rounded (>= 1), then refined greedily one channel at a time (one stage up or down, or one up and
    another down: single steps alone stall where one stage's step is ~10% of the count), so its trainable
    parameter count is the closest to the subnetwork's non-zero count. Returns the widths, both counts
    and how they were found."""
    spec = _scalable_spec(model_name)
    counts = sparse_count(model_name, sparsity, in_channels, num_classes, input_size)
    target, geometry, memo = counts["target_params"], (in_channels, num_classes, input_size), {}

    def count(w: tuple) -> int:
        if w not in memo:
            memo[w] = _meta_count(spec, w, geometry)
        return memo[w]
    scale = lambda f: tuple(max(1, math.floor(b * f + 0.5)) for b in spec.base_widths)
    lo, hi = 0.0, 1.0  # count(scale(hi)) >= target throughout (hi = 1: the dense model)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if count(scale(mid)) >= target else (mid, hi)
    factor = min((lo, hi), key=lambda f: abs(count(scale(f)) - target))
    widths = _refine(scale(factor), target, count)
    return {"model": model_name, "sparsity": float(sparsity), "input": [in_channels, input_size, input_size],
            "num_classes": num_classes, "base_widths": list(spec.base_widths), "factor": factor,
            "proportional_widths": list(scale(factor)), "widths": list(widths), "stem": widths[0], **counts, "sd_params": count(widths),
            "rel_error": count(widths) / target - 1.0}


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
    """``PROFILE_DIR/<name>.yaml``: params/profiles/ in a checkout, lthlib/profiles/ in an installed wheel."""
    return PROFILE_DIR / f"{model_name}.yaml"


def load_profile(model_name: str) -> list[str]:
    """The prunable tensor names for ``model_name``: a built-in model's from its profile file
    (``profile_path``, read once while it is unchanged), your own model's as it was registered with."""
    check_model_name(model_name)
    spec = MODELS[model_name]
    if spec.profile is not None:
        return list(spec.profile)
    path = profile_path(model_name)
    if not path.exists():
        raise ConfigError(f"{path}: pruning profile missing. In a checkout, regenerate it with "
                          f"`python -m lthlib.models --write-profiles`; an installed lthlib ships every "
                          f"profile in lthlib/profiles/ (reinstall it from a wheel built from a checkout).")
    stat = path.stat()
    return list(_read_profile(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=None)
def _read_profile(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The ``prunable`` list of the profile file at ``path`` (cached per version of the file)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("prunable"), list):
        raise ConfigError(f"{path}: field 'prunable' must be a list of parameter names.")
    return tuple(str(x) for x in data["prunable"])


def profile_hash(names: list[str]) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:12]


def write_profiles() -> None:
    """Write every built-in model's profile to ``PROFILE_DIR`` (in a checkout: params/profiles, the source
    of truth that a wheel ships as lthlib/profiles); your own models' live in their registration."""
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    for name in [n for n in MODELS if n in BUILTIN]:
        model = profile_model(name)
        names = derive_profile(name, model)
        params = dict(model.named_parameters())
        total = sum(params[n].numel() for n in names)
        c, s = profile_input(name)
        doc = {"model": name, "about": MODELS[name].about, "init": MODELS[name].init_doc,
               "n_tensors": len(names), "n_weights": total, "n_weights_input": f"{c}x{s}x{s}",
               "prunable": names}
        atomic_write_text(
            profile_path(name),
            "# Prunable tensors of this model (SPEC section 3). Generated by\n"
            "# `python -m lthlib.models --write-profiles`; tests check it against the architecture.\n"
            + yaml.safe_dump(doc, sort_keys=False))


def _print_sdt(model_name: str, geometry: list[str]) -> None:
    """``python -m lthlib.models --sdt MODEL [C K S]``: SDT widths at the 14 CIFAR IMP sparsities."""
    (c, s), k = profile_input(model_name), 10
    if geometry:
        c, k, s = (int(x) for x in geometry)
    print(f"{model_name} at {c}x{s}x{s}, {k} classes: sparsity, widths, subnetwork / small-dense params")
    for r in range(1, 15):
        d = sdt_widths(model_name, 1.0 - 0.8 ** r, c, k, s)
        print(f"{d['sparsity']:.4f}  {str(d['widths']):18s} {d['target_params']:>10,d} {d['sd_params']:>10,d}"
              f"  {d['rel_error']:+.2%}")


if __name__ == "__main__":
    import sys
    if "--write-profiles" in sys.argv:
        write_profiles()
        print(f"wrote {len(BUILTIN)} profiles to {PROFILE_DIR}")
    elif len(sys.argv) >= 3 and sys.argv[1] == "--sdt":
        _print_sdt(sys.argv[2], sys.argv[3:6])
    else:
        for name, spec in MODELS.items():
            m = profile_model(name)
            print(f"{name:24s} {sum(p.numel() for p in m.parameters()):>10,d}  {spec.about}")
