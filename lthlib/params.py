"""The experiment parameters: one typed schema, flat YAML files under params/, strict validation.

The schema is a few small dataclasses -- ``Data``, ``Recipe`` (the training recipe, which the engine
takes as it is), ``Pruning``, ``Runtime`` and ``Grid`` -- combined into ``Experiment``. Each field's
annotation is its type (``Literal`` for choices, ``list[float]`` ...), its metadata holds its bounds,
its doc, and whether it belongs to a run's identity (``identity="always"``; ``"if_set"`` for options
added after runs existed, which enter the identity only away from their default, so adding an option
never renames finished runs; ``"setting"`` for a parameter one setting owns, which enters only the
identity of that setting's runs, see ``lthlib.registry``). ``identity(exp)`` -- the experiment-wide
part of a run's identity -- and the run-folder hash (``lthlib.plans``) derive from that.

A params file is flat ``key: value`` YAML (the notebooks' ``parameters`` use the same keys). Every key
must be known and of the right type; errors name the file and the key and say what is accepted.

    exp = lthlib.load("params/demo.yaml", lr=0.01, seed=2)
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import shlex
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml

from . import registry, variants
from .data import DATASETS
from .errors import ConfigError
from .models import MODELS
from .ownmodels import import_model_module
from .runs import project_path


def opt(default, doc: str = "", identity: str | None = None, ge=None, gt=None, le=None, lt=None,
        choices=None, pattern: str | None = None, max_len: int | None = None):
    """A schema field: its default, doc, identity role and bounds (checked by ``validate``; ``max_len``:
    the most entries a list may hold)."""
    meta = {"doc": doc, "identity": identity, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices,
            "pattern": pattern, "max_len": max_len}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


NAME_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"  # a plain name: no path, no leading dot
# identity roles: in every run's identity; only away from the default (options added after runs existed);
# in the identity of the runs of the settings that name the field in their registry ``params`` only
ALWAYS, IF_SET, SETTING = "always", "if_set", "setting"
# Upper bounds: generous (far beyond any grid of the paper) so that only a typo or a unit mistake hits
# them, and low enough that such a typo is refused at load time, not after hours of planning or training.
MAX_EPOCHS = 10_000     # the paper's longest schedule is 160 epochs (90 on ImageNet): 60x that
MAX_BATCH = 65_536      # the paper's largest batch is 1,024 (ImageNet): 64x that
MAX_ROUNDS = 100        # IMP round 100 keeps 0.8^100 = 2e-10 of the weights: nothing left to prune
MAX_SEED = 2**31 - 1    # seeds are combined (seed * 1,000,003 + epoch, seed + offsets) within 64 bits
MAX_LIST = 100          # lrs, seeds, sparsities, milestones per grid: the paper's grids use <= 14
MAX_THREADS = 1024      # more threads (or processes) than the largest machines have cores


@dataclass
class Data:
    dataset: str = opt("fashion_mnist", "cifar10 | cifar100 | fashion_mnist | imagenet", ALWAYS,
                       choices=lambda: tuple(DATASETS))
    data_root: str = opt("outputs/data", "where datasets live (relative to the project root)")
    download: bool = opt(True, "try to download a missing dataset")
    n_train: int = opt(0, "stratified training subset size, at most the dataset's; 0 = the full training set",
                       ALWAYS, ge=0)
    n_test: int = opt(0, "stratified test subset size, at most the dataset's; 0 = the full test set", ALWAYS,
                      ge=0)
    subset_seed: int = opt(0, "seed of the subsets", ALWAYS, ge=0, le=MAX_SEED)
    augment: bool = opt(True, "random crop (zero pad) + horizontal flip", ALWAYS)


@dataclass
class Recipe:
    """The training recipe; defaults are the official CIFAR recipe (SPEC section 5)."""
    epochs: int = opt(160, "training epochs of every run", ALWAYS, ge=1, le=MAX_EPOCHS)
    batch_size: int = opt(64, "global batch size", ALWAYS, ge=1, le=MAX_BATCH)
    lr: float = opt(0.1, "base learning rate of this cell", ALWAYS, gt=0)
    momentum: float = opt(0.9, "SGD momentum", ALWAYS, ge=0, lt=1)
    weight_decay: float = opt(1e-4, "L2 weight decay", ALWAYS, ge=0)
    wd_on_bn: bool = opt(True, "decay BN parameters and biases too (ImageNet recipe: false)", ALWAYS)
    nesterov: bool = opt(False, "Nesterov momentum", ALWAYS)
    lr_schedule: Literal["multistep", "cosine"] = opt("multistep", "per-iteration LR schedule", ALWAYS)
    milestones: list[float] = opt([0.5, 0.75], "fractions of training where the LR drops x gamma", ALWAYS,
                                  ge=0, le=1, max_len=MAX_LIST)
    gamma: float = opt(0.1, "LR drop factor at each milestone", ALWAYS, gt=0, le=1)
    warmup_epochs: int = opt(0, "linear warmup epochs (fewer than epochs)", ALWAYS, ge=0, le=MAX_EPOCHS)
    label_smoothing: float = opt(0.0, "cross-entropy label smoothing", ALWAYS, ge=0, lt=1)
    mixup: float = opt(0.0, "mixup alpha (ImageNet recipe: 0.2); 0 = off", IF_SET, ge=0)
    amp: Literal["none", "bf16", "fp16"] = opt("none", "autocast precision (fp16: CUDA only)", ALWAYS)
    channels_last: bool = opt(False, "NHWC memory format", ALWAYS)
    eval_batch_size: int = opt(1024, "test-set batch size", ge=1, le=MAX_BATCH)
    eval_every: int = opt(1, "evaluate the test set every N epochs (the last epoch always)", IF_SET, ge=1,
                          le=MAX_EPOCHS)


@dataclass
class Pruning:
    seed: int = opt(1, "this cell's seed: init and data order of the dense and LT runs", ge=0, le=MAX_SEED)
    rr_seed_offset: int = opt(1000, "RR init seed = seed + rr_seed_offset", ge=1, le=MAX_SEED)
    rr_changes_data: bool = opt(False, "RR also changes the data order (the official behaviour)")
    data_order: Literal["replay", "fresh"] = opt(
        "replay", "replay: LT replays the dense run's data order (official); fresh: LT and RR both use a "
        "data order the dense run did not", IF_SET)
    imp_rounds: int = opt(14, "LT-IMP/RR-IMP rounds; round r has sparsity 1 - (1-imp_rate)^r", ge=0,
                         le=MAX_ROUNDS)
    imp_rate: float = opt(0.2, "fraction of the remaining weights pruned per IMP round", gt=0, lt=1)
    sparsities: list[float] = opt([], "OMP / one-shot retrain / random-pruning sparsities", ge=0, lt=1,
                                  max_len=MAX_LIST)
    prune_cap: float = opt(0.99, "no layer pruned beyond this sparsity; 1.0 disables the cap", ALWAYS, gt=0,
                           le=1)
    random_mode: Literal["layerwise", "global"] = opt(
        "layerwise", "random pruning: LT-OMP per-layer densities, or uniform over the prunable pool")
    rewind_epoch: int = opt(0, "weight rewinding: the dense run's weights after this epoch start the WR runs, "
                            "which train the remaining epochs; 0 = 5% of the epochs (8 of 160, the paper's), "
                            "at least 1", SETTING, ge=0, le=MAX_EPOCHS)
    trajectory_points: int = opt(0, "loss-surface trajectories (report): the LT-IMP and LT-OMP runs at the "
                                 "sparsity nearest trajectory_sparsity, first seed, every lr, keep their weights "
                                 "after this many evenly spaced epochs (0: none; not in any identity)", ge=0, le=200)
    trajectory_sparsity: float = opt(0.832, "the sparsity whose LT runs keep trajectory weights (the nearest "
                                     "IMP round / one-shot sparsity of the grid)", ge=0, lt=1)


@dataclass
class Runtime:
    compile: bool = opt(False, "torch.compile the forward pass (pays on GPU)")
    compile_mode: Literal["default", "reduce-overhead"] = opt(
        "default", "torch.compile mode; reduce-overhead captures the forward pass as CUDA graphs (full "
        "batches; the last partial batch and evaluation run eagerly, so the recipe is unchanged)")
    cuda_graph: bool = opt(False, "CUDA: capture the whole training step of a full batch (forward, backward, "
                           "masks, SGD) as one CUDA graph and replay it; the first 3 batches, the last partial "
                           "batch and evaluation run eagerly, so the recipe is unchanged. Ignored on CPU")
    cudnn_benchmark: bool = opt(True, "cuDNN autotuning on CUDA (off under deterministic)")
    deterministic: bool = opt(False, "CUDA: deterministic kernels, no TF32, fixed cuBLAS workspace "
                              "(bitwise repeatable, slower); CPU runs are repeatable anyway")
    pack: Literal["auto", "on", "off"] = opt("auto", "train several tickets in one packed pass: auto = on CUDA")
    pack_size: int = opt(16, "most tickets per pack", ge=1, le=MAX_BATCH)
    nproc: int = opt(1, "processes (GPUs) per run: > 1 launches torchrun (DDP)", ge=1, le=MAX_THREADS)
    threads: int = opt(0, "torch threads; 0 = torch's default", ge=0, le=MAX_THREADS)
    workers: int = opt(1, "CPU: train the runs of one wave in this many processes at once (two 1-thread "
                       "processes beat one 2-thread process); results are the same", ge=1, le=64)
    step_variant: str = opt("auto", "the training step's formulation (lthlib.variants): auto = the fastest "
                            "`make bench` measured for this model, device and pack size (else the flags); "
                            "flags = cuda_graph/compile as set; or a name such as s2d+graph. fp32 variants "
                            "train the same run up to float noise (not in any identity)",
                            pattern=r"[a-z0-9+-]+")
    device: str = opt("auto", "auto (cuda when present) | cpu | cuda | cuda:N", pattern=r"auto|cpu|cuda(:\d+)?")
    out_root: str = opt("outputs", "output root (relative to the project root)")
    notebooks: Literal["per_cell", "per_setting"] = opt(
        "per_cell", "make's setting notebooks: one per (setting, lr, seed), or one per setting running every "
        "cell of the grid (fewer kernel start-ups: the CPU demo)")


@dataclass
class Grid:
    name: str = opt("adhoc", "grid name: runs land in <out_root>/<name>/runs/", pattern=NAME_PATTERN)
    description: str = opt("", "free text shown in reports")
    model: str = opt("lenet5", "see lthlib.models.MODELS (or a model of yours: model_module)", ALWAYS,
                     choices=lambda: tuple(MODELS))
    model_module: str = opt("", "a module of yours that registers models (lthlib.register_model), imported "
                            "before 'model' is looked up: a dotted name, or a .py file relative to the project "
                            "root; '' = none (the run's identity holds the model's fingerprint, not this)")
    lrs: list[float] = opt([], "the grid's learning rates (default: [lr])", gt=0, max_len=MAX_LIST)
    seeds: list[int] = opt([], "the grid's seeds (default: [seed])", ge=0, le=MAX_SEED, max_len=MAX_LIST)
    settings: list[str] = opt([], "the settings the grid runs (default: all)", choices=lambda: registry.NAMES)
    sparse_lrs: list[float] = opt([], "the sparse-training lrs (paper Table 4): the dense model of a cell trains "
                                  "at the cell's lr, every subnetwork run at each of these; [] = the cell's lr",
                                  gt=0, max_len=MAX_LIST)
    normal_lr: float = opt(0.0, "the recipe's normal learning rate (the paper sweeps from extremely small to normal, "
                           "then to very large): the premise check compares the best dense model at or above it "
                           "with the best below it, and Table 3's 'prefers small LR?' the lrs below it with it; "
                           "0 = the grid's largest lr (analysis only: in no identity)", ge=0)
    full_epochs: int = opt(0, "the full training schedule of this recipe (condition ⑤'s best dense model is looked up "
                           "at this length); 0 = this grid's epochs", ge=0, le=MAX_EPOCHS)


@dataclass
class Experiment(Grid, Data, Recipe, Pruning, Runtime):
    """Resolved parameters of one (grid, lr, seed) cell. Flat access: ``exp.lr``, ``exp.model``."""

    def __post_init__(self):
        self.lrs = self.lrs or [self.lr]
        self.seeds = self.seeds or [self.seed]
        self.settings = self.settings or list(registry.NAMES)

    def __setstate__(self, state: dict):
        """Unpickled in another process (a worker, a spawned wave): import model_module first, so that
        the model it registers is known there too."""
        if state.get("model_module"):
            import_model_module(state["model_module"], "parameters (unpickled)")
        self.__dict__.update(state)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def recipe(self) -> Recipe:
        return Recipe(**{f.name: getattr(self, f.name) for f in fields(Recipe)})

    def replace(self, **changes) -> "Experiment":
        return dataclasses.replace(self, **changes)


FIELDS = {f.name: f for f in fields(Experiment)}
HINTS = typing.get_type_hints(Experiment)
# YAML 1.1 reads on/off/yes/no as booleans: take them back as the words the user wrote
_YAML_BOOL_WORDS = {True: "on", False: "off"}


def identity(exp: Experiment) -> dict:
    """The fields of ``exp`` that change a run's result (see the module doc)."""
    out = {}
    for name, f in FIELDS.items():
        role, value = f.metadata["identity"], getattr(exp, name)
        if role == ALWAYS or (role == IF_SET and value != _default(f)):
            out[name] = value
    return out


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def describe() -> list[tuple[str, str, object, str]]:
    """(key, type, default, doc) of every field: the schema as a table."""
    return [(n, _type_name(HINTS[n]), _default(f), f.metadata["doc"]) for n, f in FIELDS.items()]


# ----------------------------------------------------------------------------- validation
def _type_name(t) -> str:
    if get_origin(t) is Literal:
        return " | ".join(map(str, get_args(t)))
    if get_origin(t) is list:
        return f"list of {_type_name(get_args(t)[0])}s"
    return {float: "number", int: "int", bool: "bool (true/false)", str: "str"}[t]


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters: a long string, list or
    mapping is cut before its repr is built (a message never holds a huge value)."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlevel = limit, limit, 3
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 8
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (a message never holds a huge value)."""
    return text if len(text) <= limit else text[:limit] + "..."


# YAML 1.1 reads a number with an exponent but no dot (1e-3) or no exponent sign (1.0e3) as text
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value, t, key: str, source: str):
    """``value`` as type ``t`` (ints become floats where a number is asked for; ``1e-3``, which YAML 1.1
    reads as text, is a number there), or a ConfigError."""
    bad = ConfigError(f"{source}: key {key!r} must be a {_type_name(t)}, got {_short(value)} "
                      f"({type(value).__name__})")
    if get_origin(t) is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, get_args(t)[0], key, source) for v in value]
    if get_origin(t) is Literal:
        choices = get_args(t)
        if isinstance(value, bool) and _YAML_BOOL_WORDS[value] in choices:
            return _YAML_BOOL_WORDS[value]
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"{source}: key {key!r} = {_short(value)} is not one of {', '.join(choices)}")
        return value
    if t is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value.replace("_", ""))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):
            raise ConfigError(f"{source}: key {key!r} must be a finite number, got {_short(value)}")
        return float(value)
    if t is bool and isinstance(value, bool) or t in (int, str) and type(value) is t:
        return value
    if t is int and isinstance(value, str) and re.fullmatch(r"[-+]?0\d+", value.strip()):
        raise ConfigError(f"{source}: key {key!r} = {_short(value)} has a leading zero (YAML reads such a "
                          f"number as octal or as text); write it without the leading zero")
    raise bad


def _check_bounds(key: str, value, meta: dict, source: str) -> None:
    values = value if isinstance(value, list) else [value]
    ops = (("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
           ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<"))
    for v in values:
        for k, ok, sym in ops:
            if meta[k] is not None and isinstance(v, (int, float)) and not ok(v, meta[k]):
                what = "values" if isinstance(value, list) else "value"
                raise ConfigError(f"{source}: key {key!r} {what} must be {sym} {meta[k]}, got {_short(v)}")
        if meta["choices"] is not None and v not in meta["choices"]():
            raise ConfigError(f"{source}: key {key!r} = {_short(v)} is not one of {', '.join(meta['choices']())}")
        if meta["pattern"] is not None and not re.fullmatch(meta["pattern"], v):
            raise ConfigError(f"{source}: key {key!r} = {_short(v)} must match {meta['pattern']}"
                              + (" (a plain name, not a path): letters, digits, _ - and ., not starting with a "
                                 "dot" if meta["pattern"] == NAME_PATTERN else ""))
    if isinstance(value, list) and meta["max_len"] is not None and len(value) > meta["max_len"]:
        raise ConfigError(f"{source}: key {key!r} lists {len(value):,} values; at most {meta['max_len']} are "
                          f"accepted (a grid of that many is a mistake, or a job for several grids)")
    if isinstance(value, list) and len(set(value)) != len(value):
        raise ConfigError(f"{source}: key {key!r} lists a value twice: {_short(value)}")


def validate(values: dict, source: str) -> dict:
    """Known keys, right types, in bounds: ``values`` normalised (ints as floats where numbers are
    asked for, YAML's on/off as words). ``source`` (a file name) prefixes every error."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: a params file must be a mapping of key: value, got {type(values).__name__}")
    out = {}
    if values.get("model_module"):  # first: the model it registers is then a choice of 'model'
        values = {"model_module": values["model_module"], **values}
    for key, value in values.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key)[:100], list(FIELDS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown key {_short(key)}.{hint} Known keys: {', '.join(FIELDS)}.")
        out[key] = _coerce(value, HINTS[key], key, source)
        if out[key] == [] and key in ("lrs", "seeds", "settings"):
            raise ConfigError(f"{source}: key {key!r} is empty: a grid needs at least one (or leave it out)")
        _check_bounds(key, out[key], FIELDS[key].metadata, source)
        if key == "model_module" and out[key]:
            import_model_module(out[key], source)
    return out


def check_values(exp: Experiment, source: str) -> None:
    """Checks across fields."""
    model, data = MODELS[exp.model], DATASETS[exp.dataset]
    if model.input_kind != data.model_kind:
        fits = ", ".join(n for n, m in MODELS.items() if m.input_kind == data.model_kind)
        raise ConfigError(f"{source}: key 'model' {exp.model!r} is a model for {model.input_kind} images; "
                          f"dataset {exp.dataset!r} takes one of: {fits}")
    _check_sizes(exp, source)
    if exp.step_variant not in ("auto", "flags"):
        step = variants.parse(exp.step_variant, f"{source}: key 'step_variant'")
        if not variants.holds(exp, step):
            raise ConfigError(f"{source}: key 'step_variant' {exp.step_variant!r} trains in {step.amp} precision "
                              f"or as a captured graph, which this recipe (amp {exp.amp!r}, mixup {exp.mixup}, "
                              f"nproc {exp.nproc}) does not allow; give another, or auto")
    rewinds = {"wr_imp", "wr_omp"} & set(exp.settings)
    if rewinds and exp.rewind_epoch and exp.rewind_epoch >= exp.epochs:
        raise ConfigError(f"{source}: key 'rewind_epoch' {exp.rewind_epoch} leaves no epoch to train after "
                          f"rewinding ({exp.epochs} epochs); set it below epochs, or leave "
                          f"{', '.join(sorted(rewinds))} out of 'settings'")
    if exp.data_order == "fresh" and exp.rr_changes_data:
        raise ConfigError(f"{source}: key 'data_order' fresh gives LT and RR one shared fresh data order; "
                          f"rr_changes_data: true gives RR its own. Set one of them.")
    if exp.pack != "off" and exp.amp == "fp16":
        raise ConfigError(f"{source}: key 'amp' fp16 with packing would share one loss scale between the "
                          f"tickets of a pack (an overflow in one skips every ticket's step); use amp: bf16, "
                          f"or pack: off")
    _check_cuda_graph(exp, source)


def _check_sizes(exp: Experiment, source: str) -> None:
    """Subsets within the dataset (a larger one would be the full set under another name: another run
    identity for the same data) and a warm-up that ends before the run does."""
    data = DATASETS[exp.dataset]
    for key, full, what in (("n_train", data.train_size, "training"), ("n_test", data.test_size, "test")):
        if getattr(exp, key) > full:
            raise ConfigError(f"{source}: key {key!r} {getattr(exp, key):,} is more than the {full:,} {what} "
                              f"images of {exp.dataset}; give at most {full:,}, or 0 for the full set")
    if exp.warmup_epochs and exp.warmup_epochs >= exp.epochs:
        raise ConfigError(f"{source}: key 'warmup_epochs' {exp.warmup_epochs} is not shorter than the run "
                          f"({exp.epochs} epochs): the learning rate would never leave the warm-up; set "
                          f"warmup_epochs below epochs (0 for none, e.g. in a short smoke run)")


def _check_cuda_graph(exp: Experiment, source: str) -> None:
    """What a captured step cannot hold (see lthlib.capture)."""
    if not exp.cuda_graph:
        return
    why = {"mixup": (exp.mixup > 0, "mixup draws its mixing weight on the host every batch"),
           "amp": (exp.amp == "fp16", "fp16 checks its loss scale on the host every step"),
           "nproc": (exp.nproc > 1, "a DDP step (several processes) is not captured"),
           "compile_mode": (exp.compile and exp.compile_mode == "reduce-overhead",
                            "reduce-overhead captures graphs of its own")}
    for key, (bad, reason) in why.items():
        if bad:
            raise ConfigError(f"{source}: key 'cuda_graph' true with {key} {getattr(exp, key)!r}: {reason}; "
                              f"set cuda_graph: false (or change {key})")


# a params file is a flat mapping of a few dozen values: a document that expands (aliases counted each
# time they are used) to more nodes than this is refused before it is built (a "billion laughs" bomb)
MAX_YAML_NODES = 10_000


class _NumberError(ConfigError):
    """A YAML number written so YAML 1.1 reads it other than it looks (``010`` is 8)."""


def _yaml_children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_yaml_size(root, cap: int = MAX_YAML_NODES) -> None:
    """Refuse a YAML document whose nodes, each alias counted where it is used, exceed ``cap``, or an
    alias that refers to itself: linear in the document's size (every node's expanded size is kept)."""
    sizes, opened, stack = {}, set(), [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids = _yaml_children(node)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            if sizes[id(node)] > cap:
                raise ConfigError(f"line {node.start_mark.line + 1}: the YAML expands to more than {cap:,} "
                                  f"values (aliases counted each time they are used); a params file is a flat "
                                  f"list of key: value")
            continue
        if id(node) in opened:
            raise ConfigError(f"line {node.start_mark.line + 1}: a YAML alias refers to the value that holds it")
        opened.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one silently), a key that is not a
    plain value, an integer YAML 1.1 reads other than it looks (``010`` is octal 8, ``1:30`` is 90),
    and a document that expands to more than ``MAX_YAML_NODES`` values."""

    def construct_document(self, node):
        _check_yaml_size(node)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be a plain name, got a {kind}")
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"key {_short(key)} appears twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        text, line = str(node.value).replace("_", "").strip(), node.start_mark.line + 1
        value = super().construct_yaml_int(node)
        if re.fullmatch(r"[-+]?0[0-7]+", text):
            raise _NumberError(f"line {line}: {_short(text)} has a leading zero, which YAML reads as the octal "
                               f"number {value}; write it without the leading zero (quote it for text)")
        if ":" in text:
            raise _NumberError(f"line {line}: {_short(text)} is read by YAML as a base-60 number ({value}); "
                               f"write the number itself (quote it for text)")
        return value


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def read_yaml(text: str, source: str):
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _NumberError as exc:
        raise _NumberError(f"{source}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({str(exc)[:300]}).") from exc
    except RecursionError:
        raise ConfigError(f"{source}: the YAML is nested too deeply; a params file is a flat list of "
                          f"key: value") from None


def load_params_file(path) -> dict:
    """The validated values of a params file (relative paths: from the working directory, else the
    project root)."""
    path = Path(path)
    if not path.exists() and project_path(path).exists():
        path = project_path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found. The grids live in params/*.yaml.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8); a params file is YAML text of key: value "
                          f"lines") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file ({exc.strerror or exc}); give a readable "
                          f"YAML file") from None
    return validate(read_yaml(text, str(path)) or {}, str(path))


def load(params_file=None, overrides: dict | None = None, **kw) -> Experiment:
    """An Experiment from a params file (optional) with ``overrides`` (a mapping) and keywords on top,
    fully validated; errors name the file and key."""
    source = str(params_file) if params_file else "parameters"
    given = {**(overrides or {}), **kw}
    if isinstance(given.get("model_module"), str) and given["model_module"]:  # the file may name its model
        import_model_module(given["model_module"], f"{source} (overrides)")
    values = load_params_file(params_file) if params_file else {}
    values.update(validate(given, f"{source} (overrides)"))
    exp = Experiment(**values)
    check_values(exp, source)
    return exp


def parse_sets(pairs: list[str], source: str = "SET") -> dict:
    """``key=value`` pairs as validated overrides. A value is YAML (``1``, ``[1, 2]``, ``true``); one
    YAML reads as text (or cannot read) is taken exactly as written (``a #b`` keeps ``#b``), unless it
    is quoted YAML (``'a #b'``)."""
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"{source}: {_short(pair)} is not key=value (e.g. epochs=1, seeds=[1]; quote a "
                              f"value with spaces: description=\"a b\")")
        if key in out:
            raise ConfigError(f"{source}: key {_short(key)} is given twice; give it once")
        out[key] = _set_value(value, f"{source} {_cut(key, 40)}={_cut(value, 60)}")
    return validate(out, source)


def _set_value(value: str, source: str):
    quoted_or_yaml = value.strip()[:1] in ("'", '"', "[", "{")
    try:
        parsed = read_yaml(value, source)
    except _NumberError:
        raise
    except ConfigError:
        if quoted_or_yaml:
            raise
        return value  # text YAML cannot read (`@x`, a backquote): the text itself
    return value if (parsed is None or isinstance(parsed, str)) and not quoted_or_yaml else parsed


def split_set(text: str) -> list[str]:
    """make's ``SET='a=1 b=[1, 2]'`` as pairs, split like a shell line (quotes group, nothing expands)."""
    try:
        return shlex.split(text or "")
    except ValueError as exc:
        raise ConfigError(f"SET={_short(text)}: {exc}; close the quote") from None


make_experiment = load  # the name earlier notebooks and scripts use


__all__ = ["Experiment", "Data", "Recipe", "Pruning", "Runtime", "Grid", "load", "make_experiment",
           "load_params_file", "validate", "identity", "describe", "parse_sets", "split_set"]
