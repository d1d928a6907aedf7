"""The experiment parameters: one flat schema, YAML files under params/, strict validation.

A params file is flat ``key: value`` YAML (the same keys the notebooks' ``parameters`` cells use, so
papermill can take it with ``-f``). Every key must be known and of the right type; errors name the
file and the key.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, asdict
from pathlib import Path

import yaml

from .errors import ConfigError
from .models import MODELS
from .data import DATASETS

SETTINGS = ("pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune")


@dataclass
class Experiment:
    """Resolved parameters of one (grid, lr, seed) cell of the study. Docs are the field comments."""
    name: str = "adhoc"             # grid name: runs land in <out_root>/<name>/runs/
    description: str = ""           # free text shown in reports
    model: str = "lenet5"           # see lthlib.models.MODELS
    dataset: str = "fashion_mnist"  # cifar10, cifar100, fashion_mnist, imagenet
    data_root: str = "outputs/data"  # where datasets live (downloaded there when online)
    download: bool = True           # try to download a missing dataset
    n_train: int = 0                # stratified training subset size; 0 = full training set
    n_test: int = 0                 # stratified test subset size; 0 = full test set
    subset_seed: int = 0            # seed of the subsets
    epochs: int = 160
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    wd_on_bn: bool = True
    nesterov: bool = False
    lr_schedule: str = "multistep"  # multistep | cosine
    milestones: list = None         # fractions of training where the LR drops x gamma
    gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    mixup: float = 0.0              # mixup alpha (ImageNet recipe: 0.2); 0 = off
    augment: bool = True            # random crop (zero pad) + horizontal flip
    seed: int = 1                   # init seed and data-order seed of LT runs
    rr_seed_offset: int = 1000      # RR init seed = seed + rr_seed_offset
    rr_changes_data: bool = False   # True: RR also changes the data order (the official behaviour)
    imp_rounds: int = 14            # LT-IMP/RR-IMP rounds; round r has sparsity 1 - (1-imp_rate)^r
    imp_rate: float = 0.2           # fraction of remaining weights pruned per IMP round
    sparsities: list = None         # OMP / one-shot retrain / random-pruning sparsities
    prune_cap: float = 0.99         # no layer pruned beyond this sparsity; 1.0 disables the cap
    random_mode: str = "layerwise"  # random pruning: layerwise (LT-OMP densities) | global
    amp: str = "none"               # none | bf16 | fp16 (fp16 on CUDA only)
    channels_last: bool = False
    eval_batch_size: int = 1024
    compile: bool = False           # torch.compile the forward pass (pays on GPU; not on this CPU)
    cudnn_benchmark: bool = True    # cuDNN autotuning on CUDA; False when bitwise determinism is wanted
    pack: str = "auto"              # train several tickets in one packed pass: auto (on CUDA) | on | off
    pack_size: int = 16             # most tickets per pack
    nproc: int = 1                  # processes (GPUs) per run: > 1 launches torchrun (DDP) from the setting
    threads: int = 0                # torch threads; 0 = torch's default. Recorded in every run.
    device: str = "auto"            # auto (cuda when present) | cpu | cuda | cuda:N
    out_root: str = "outputs"
    # grid axes, read by the planner (Makefile); a notebook runs one (lr, seed) cell
    lrs: list = None
    seeds: list = None
    settings: list = None           # which settings the grid runs (default: all)

    def __post_init__(self):
        for key, default in (("milestones", [0.5, 0.75]), ("sparsities", []), ("lrs", [self.lr]),
                             ("seeds", [self.seed]), ("settings", list(SETTINGS))):
            if getattr(self, key) is None:
                setattr(self, key, list(default))

    def as_dict(self) -> dict:
        return asdict(self)


# type of each field for validation: (python types accepted, element type for lists)
_INT, _FLOAT, _STR, _BOOL = (int,), (int, float), (str,), (bool,)
TYPES = {
    "name": _STR, "description": _STR, "model": _STR, "dataset": _STR, "data_root": _STR, "download": _BOOL,
    "n_train": _INT, "n_test": _INT, "subset_seed": _INT, "epochs": _INT, "batch_size": _INT, "lr": _FLOAT,
    "momentum": _FLOAT, "weight_decay": _FLOAT, "wd_on_bn": _BOOL, "nesterov": _BOOL, "lr_schedule": _STR,
    "milestones": ("list", _FLOAT), "gamma": _FLOAT, "warmup_epochs": _INT, "label_smoothing": _FLOAT, "mixup": _FLOAT, "nproc": _INT,
    "augment": _BOOL, "seed": _INT, "rr_seed_offset": _INT, "rr_changes_data": _BOOL, "imp_rounds": _INT,
    "imp_rate": _FLOAT, "sparsities": ("list", _FLOAT), "prune_cap": _FLOAT, "random_mode": _STR,
    "amp": _STR, "channels_last": _BOOL, "pack": _STR, "pack_size": _INT, "compile": _BOOL, "cudnn_benchmark": _BOOL, "eval_batch_size": _INT, "threads": _INT, "device": _STR,
    "out_root": _STR, "lrs": ("list", _FLOAT), "seeds": ("list", _INT), "settings": ("list", _STR),
}
CHOICES = {"lr_schedule": ("multistep", "cosine"), "random_mode": ("layerwise", "global"),
           "amp": ("none", "bf16", "fp16"), "pack": ("auto", "on", "off"), "model": tuple(MODELS), "dataset": tuple(DATASETS)}
assert set(TYPES) == {f.name for f in fields(Experiment)}


def _type_ok(value, types) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _tname(types) -> str:
    return "number" if types == _FLOAT else types[0].__name__


def validate(values: dict, source: str) -> dict:
    """Check keys and types of ``values``; ``source`` (a file name) prefixes every error."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: a params file must be a mapping of key: value, got {type(values).__name__}")
    for key, value in values.items():
        if key not in TYPES:
            close = difflib.get_close_matches(str(key), list(TYPES), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}.{hint} Known keys: {', '.join(TYPES)}.")
        t = TYPES[key]
        if isinstance(t[0], str):  # list
            if not isinstance(value, list) or not all(_type_ok(v, t[1]) for v in value):
                raise ConfigError(f"{source}: key {key!r} must be a list of {_tname(t[1])}s, got {value!r}")
        elif not _type_ok(value, t):
            raise ConfigError(f"{source}: key {key!r} must be a {_tname(t)}, got {value!r} "
                              f"({type(value).__name__})")
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"{source}: key {key!r} = {value!r} is not one of {', '.join(CHOICES[key])}")
    return values


def check_values(exp: Experiment, source: str) -> None:
    """Range checks across fields."""
    def bad(key, why):
        raise ConfigError(f"{source}: key {key!r} {why}")
    for key in ("epochs", "batch_size", "eval_batch_size", "pack_size", "nproc"):
        if getattr(exp, key) < 1:
            bad(key, f"must be >= 1, got {getattr(exp, key)}")
    for key in ("n_train", "n_test", "threads", "imp_rounds", "warmup_epochs"):
        if getattr(exp, key) < 0:
            bad(key, f"must be >= 0, got {getattr(exp, key)}")
    for s in exp.sparsities:
        if not 0.0 <= s < 1.0:
            bad("sparsities", f"values must lie in [0, 1), got {s}")
    if not 0.0 < exp.imp_rate < 1.0:
        bad("imp_rate", f"must lie in (0, 1), got {exp.imp_rate}")
    if not 0.0 < exp.prune_cap <= 1.0:
        bad("prune_cap", f"must lie in (0, 1], got {exp.prune_cap}")
    if exp.lr <= 0 or any(v <= 0 for v in exp.lrs):
        bad("lr", "must be > 0")
    for s in exp.settings:
        if s not in SETTINGS:
            bad("settings", f"has unknown setting {s!r}; known: {', '.join(SETTINGS)}")
    if exp.dataset == "imagenet" and exp.model not in ("resnet18", "resnet50"):
        bad("model", f"{exp.model!r} is a CIFAR-size model; ImageNet runs use resnet18 or resnet50")


def load_params_file(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found. The grids live in params/*.yaml.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from exc
    return validate(values, str(path))


def make_experiment(params_file=None, **overrides) -> Experiment:
    """An Experiment from a params file (optional) with ``overrides`` on top, fully validated."""
    values = load_params_file(params_file) if params_file else {}
    source = f"{params_file}" if params_file else "parameters"
    validate(overrides, f"{source} (overrides)")
    values.update(overrides)
    exp = Experiment(**values)
    check_values(exp, source)
    return exp


def from_namespace(ns: dict, params_file=None) -> Experiment:
    """An Experiment from a notebook's variables: the values of ``params_file`` (relative to the project
    root), overridden by every schema key found in ``ns`` (the ``parameters`` cell plus what papermill
    injected with ``-f``/``-p``). Errors name the file and key."""
    values = {}
    if params_file:
        from .settings import project_path
        path = Path(params_file) if Path(params_file).exists() else project_path(params_file)
        values = load_params_file(path)
    source = str(params_file) if params_file else "notebook parameters"
    values.update(validate({k: ns[k] for k in TYPES if k in ns}, source))
    exp = Experiment(**values)
    check_values(exp, source)
    return exp


__all__ = ["Experiment", "SETTINGS", "make_experiment", "from_namespace", "load_params_file", "validate"]
