"""Your own model: register a network and every setting, notebook and make target can run it.

    # mymodels/tiny.py (a module of yours)
    import torch.nn as nn
    from lthlib.ownmodels import register_model        # also lthlib.register_model

    @register_model("tiny", input=(1, 28), about="two convs and two linear layers")
    class Tiny(nn.Module):
        def __init__(self, in_channels=1, num_classes=10, input_size=28): ...

    # params/my_grid.yaml: the grid names the module, so every process that reads it (a papermill
    # notebook, make's planner, a worker) imports the module before it looks the model up
    model_module: mymodels.tiny        # a dotted name (the project root is searched too), or a file:
    # model_module: mymodels/tiny.py   # relative to the working directory, else the project root
    model: tiny

``register_model`` builds the network once (on the meta device: no memory, no init) to fix its prunable
set: by default every Conv and Linear weight except the first conv's and the last layer's (the
classifier), which reproduces the paper's profiles of every built-in model but the official wide ResNet-32
(whose shortcuts are kept dense); or the parameter names you list, or a rule ``(name, tensor) -> bool``.
The builder (a class or a function) must accept ``num_classes`` and may accept ``in_channels`` and
``input_size``; with ``base_widths`` it also takes ``widths`` (one width per stage), and small-dense
training (SDT) can build it narrower. Its runs carry a fingerprint of its layers (names and shapes) and
``version`` in their identity, so a changed network never reuses the runs of the old one; change
``version`` when you change only its initialization.

    python -m lthlib.ownmodels mymodels.tiny          # import it, list what it registers and prunes
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .errors import ConfigError
from .models import BUILTIN, MODELS, ModelSpec, n_trainable
from .runs import project_path

NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"  # a model name is part of every run folder's name
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_GEOMETRY = ("in_channels", "num_classes", "input_size")
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
INPUT_KINDS = ("small", "imagenet")


# ----------------------------------------------------------------------------- the prunable set
def auto_prunable(model: nn.Module) -> list[str]:
    """The paper's rule, in parameter order: the weight of every Conv and Linear layer except the first
    conv (the stem) and the last layer (the classifier), in the order the modules are registered."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _LAYERS)
              and isinstance(getattr(m, "weight", None), nn.Parameter)]
    convs = [n for n, m in layers if not isinstance(m, nn.Linear)]
    skip = set(convs[:1]) | {layers[-1][0]} if layers else set()
    chosen = {f"{n}.weight" if n else "weight" for n, _ in layers if n not in skip}
    return [n for n, _ in model.named_parameters() if n in chosen]


def _prunable_names(model: nn.Module, prunable, where: str) -> list[str]:
    """The prunable set of ``model`` from ``prunable`` ("auto", a list of names, or a rule), checked."""
    params = dict(model.named_parameters())
    if isinstance(prunable, str) and prunable == "auto":
        names = auto_prunable(model)
    elif callable(prunable):
        names = [n for n, p in params.items() if prunable(n, p)]
    elif isinstance(prunable, (list, tuple)) and all(isinstance(n, str) for n in prunable):
        missing = [n for n in prunable if n not in params]
        if missing:
            raise ConfigError(f"{where} key 'prunable': {', '.join(map(repr, missing[:5]))} "
                              f"{'is not a parameter' if len(missing) == 1 else 'are not parameters'} of the "
                              f"model; its parameters: {', '.join(list(params)[:40])}")
        if len(set(prunable)) != len(prunable):
            raise ConfigError(f"{where} key 'prunable' names a parameter twice: {list(prunable)}")
        names = [n for n in params if n in set(prunable)]
    else:
        raise ConfigError(f"{where} key 'prunable' must be 'auto', a list of parameter names or a rule "
                          f"(name, tensor) -> bool, got {prunable!r}"[:400])
    if not names:
        raise ConfigError(f"{where} key 'prunable': nothing to prune (no Conv/Linear weight between the first "
                          f"conv and the last layer); list the tensors: prunable=['fc1.weight', ...]")
    return names


# ----------------------------------------------------------------------------- registering
def _where(fn) -> str:
    """The file that defines ``fn`` (relative to the project root when under it), else its module."""
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if not path:
        return getattr(fn, "__module__", "?")
    try:
        return str(Path(path).resolve().relative_to(project_path(".").resolve()))
    except ValueError:
        return path


def _accepted(fn) -> set[str]:
    """The keywords of ``fn`` lthlib may pass (all of them when it takes ``**kwargs`` or has no signature)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {*_GEOMETRY, "widths"}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {*_GEOMETRY, "widths"}
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _builders(fn, base_widths, where: str) -> tuple[Callable, Callable | None]:
    """(build(c, k, s), build_widths(widths, c, k, s) or None) calling ``fn`` with the keywords it takes."""
    ok = _accepted(fn)
    if "num_classes" not in ok:
        raise ConfigError(f"{where}: {getattr(fn, '__qualname__', fn)!r} must accept num_classes (and may "
                          f"accept in_channels and input_size): lthlib builds it for each dataset")
    if base_widths is not None and "widths" not in ok:
        raise ConfigError(f"{where} key 'base_widths': {getattr(fn, '__qualname__', fn)!r} must accept widths "
                          f"(one per stage) to be built at other widths; or leave base_widths out")

    def build_widths(widths, c, k, s):
        values = {"in_channels": c, "num_classes": k, "input_size": s, "widths": widths}
        return fn(**{key: v for key, v in values.items() if key in ok and (key != "widths" or v is not None)})
    if base_widths is None:
        return lambda c, k, s: build_widths(None, c, k, s), None
    return lambda c, k, s: build_widths(tuple(base_widths), c, k, s), build_widths


def _probe(build: Callable, geometry: tuple[int, int], where: str) -> nn.Module:
    """The model at ``geometry`` (channels, size) and 10 classes: on the meta device, else on the CPU
    (the global RNG untouched); a builder that fails or returns no nn.Module is a ConfigError."""
    c, s = geometry
    try:
        with torch.device("meta"):
            model = build(c, 10, s)
    except Exception:  # noqa: BLE001 -- a builder meta tensors do not suit: build it for real
        try:
            with torch.random.fork_rng(devices=[]):
                model = build(c, 10, s)
        except Exception as exc:
            raise ConfigError(f"{where}: building the model ({c} channels, {s}x{s} input, 10 classes) failed: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where}: the builder returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _fingerprint(model: nn.Module, version: str) -> str:
    """``own-<hash>`` of ``version`` and the names and shapes of the model's tensors (its run identity)."""
    shapes = [[n, list(t.shape)] for n, t in model.state_dict().items()]
    return "own-" + hashlib.sha256(json.dumps([version, shapes]).encode()).hexdigest()[:12]


def _check_args(name, input, input_kind, base_widths, where: str) -> None:
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise ConfigError(f"{where}: the model name {name!r} must be a plain name: letters, digits, _ - and ., "
                          f"not starting with a dot")
    if (not isinstance(input, (tuple, list)) or len(input) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in input)):
        raise ConfigError(f"{where} key 'input' must be (channels, size), two integers >= 1, e.g. (1, 28) "
                          f"for Fashion-MNIST or (3, 32) for CIFAR, got {input!r}")
    if input_kind not in INPUT_KINDS:
        raise ConfigError(f"{where} key 'input_kind' must be one of {', '.join(INPUT_KINDS)}, got {input_kind!r}")
    if base_widths is not None and (not isinstance(base_widths, (tuple, list)) or not base_widths or not all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in base_widths)):
        raise ConfigError(f"{where} key 'base_widths' must be a list of integers >= 1 (one per stage), "
                          f"got {base_widths!r}")


def _check_free(name: str, owner: tuple, replace: bool, where: str) -> None:
    """A built-in name, or one another builder registered, is a ConfigError (the same builder registering
    again -- a notebook cell run twice, a module reloaded -- replaces its model)."""
    if name in BUILTIN:
        raise ConfigError(f"{where}: duplicate model name {name!r}: it is one of lthlib's own models "
                          f"(lthlib/models.py); give yours another name")
    old = MODELS.get(name)
    if old is not None and old.owner != owner and not replace:
        raise ConfigError(f"{where}: duplicate model name {name!r}: {old.origin} registered it already "
                          f"({'.'.join(old.owner)}); give yours another name, or pass replace=True")


def register_model(name: str, *, prunable="auto", about: str = "", input=(3, 32), input_kind: str = "small",
                   init_doc: str = "", version: str = "", base_widths=None, replace: bool = False) -> Callable:
    """A decorator registering a model class or builder function as model ``name`` (also a plain call:
    ``register_model("mynet")(MyNet)``); returns it unchanged. ``prunable``: "auto" (module doc), a list
    of parameter names, or a rule ``(name, tensor) -> bool``. ``input``: (channels, size) the model is
    checked and its weights counted at; ``input_kind``: "small" (28-64 px) or "imagenet" (224 px), the
    datasets it accepts. ``version``: change it when you change the init only. ``base_widths``: per-stage
    widths, when the builder takes ``widths`` (small-dense training). Errors name the defining file."""
    def register(fn):
        where = f"{_where(fn)}: register_model({name!r})"
        owner = (getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", name))
        _check_args(name, input, input_kind, base_widths, where)
        _check_free(name, owner, replace, where)
        build, build_widths = _builders(fn, base_widths, where)
        model = _probe(build, tuple(input), where)
        names = tuple(_prunable_names(model, prunable, where))
        keep = frozenset(names)
        spec = ModelSpec(name, build=build, rule=lambda n, p: n in keep,
                         about=about or f"your own model {getattr(fn, '__qualname__', name)} ({_where(fn)})",
                         init_doc=init_doc or "the model's own", init_tag=_fingerprint(model, str(version)),
                         input=tuple(input), input_kind=input_kind, build_widths=build_widths,
                         base_widths=None if base_widths is None else tuple(base_widths), profile=names,
                         origin=_where(fn), owner=owner)
        MODELS[name] = spec
        return fn
    return register


def unregister_model(name: str) -> None:
    """Remove your model ``name`` from MODELS (nothing when it is not registered; lthlib's own stay)."""
    if name in BUILTIN:
        raise ConfigError(f"model {name!r} is one of lthlib's own models; only your own can be unregistered")
    MODELS.pop(name, None)


# ----------------------------------------------------------------------------- importing the module named in a params file
def _failed(key: str, exc: BaseException) -> ConfigError:
    """A ConfigError for a module whose import raised ``exc``: where in its files, and what."""
    if isinstance(exc, ConfigError):
        return ConfigError(f"{key}: {exc}")
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and not f.filename.startswith("<frozen")]
    if isinstance(exc, SyntaxError) and exc.filename:
        at = f" at {exc.filename}:{exc.lineno}"
    else:
        at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return ConfigError(f"{key}: importing it failed{at}: {type(exc).__name__}: {str(exc)[:300]}")


def _import_dotted(name: str, key: str):
    """``importlib.import_module(name)``; when Python cannot find the module itself, the project root is
    searched too (appended to sys.path)."""
    root = str(project_path(".").resolve())
    for last_try in (root in sys.path, True):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not (exc.name and (name == exc.name or name.startswith(exc.name + "."))):
                raise _failed(key, exc) from exc  # a module it imports is missing
            if last_try:
                raise ConfigError(f"{key}: no module {name!r} on the Python path or under the project root "
                                  f"{root}; give a dotted name Python can import (a package under the project "
                                  f"root, or installed) or a .py file path, e.g. mymodels/tiny.py") from None
            sys.path.append(root)
        except Exception as exc:  # noqa: BLE001 -- whatever the module raised: name the file and line
            raise _failed(key, exc) from exc


def _import_file(text: str, key: str):
    """The .py file ``text`` imported once per process, as a module named after its resolved path."""
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists():
        path = project_path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"{key}: no such .py file (a relative path is read from the working directory, else "
                          f"the project root {project_path('.')}); give the file that registers your model, or "
                          f"a dotted module name")
    path = path.resolve()
    modname = (f"lthlib_own_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_"
               f"{hashlib.sha256(str(path).encode()).hexdigest()[:8]}")
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 -- whatever the file raised: name the file and line
        sys.modules.pop(modname, None)
        raise _failed(key, exc) from exc
    return module


def import_model_module(value, source: str = "parameters"):
    """Import the module a params file's ``model_module`` names (once per process): a dotted name or a
    .py file. Returns the module (None for ""); a module that cannot be imported, or whose registration
    fails, is a ConfigError naming ``source``, the key and the file."""
    key = f"{source}: key 'model_module' = {value!r}"[:300]
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a module name (mymodels.tiny) or a .py file (mymodels/tiny.py)")
    text = value.strip()
    if not text:
        return None
    if text.endswith(".py") or "/" in text or "\\" in text:
        return _import_file(text, key)
    if not _DOTTED.fullmatch(text):
        raise ConfigError(f"{key}: not a module name; give a dotted module name (mymodels.tiny) or a .py "
                          f"file (mymodels/tiny.py)")
    return _import_dotted(text, key)


def registered_by(module) -> list[str]:
    """The names of the models whose builders ``module`` defines."""
    return [n for n, spec in MODELS.items() if spec.owner[:1] == (module.__name__,)]


def describe(name: str) -> str:
    """Model ``name`` in a few lines: what it is, its parameter count and its prunable tensors."""
    spec = MODELS[name]
    c, s = spec.input
    model = _probe(spec.build, spec.input, f"model {name!r}")
    params = dict(model.named_parameters())
    prunable = [n for n in params if spec.rule(n, params[n])]
    n_prunable = sum(params[n].numel() for n in prunable)
    return "\n".join([f"{name}: {spec.about}", f"  registered by {spec.origin}; input {c}x{s}x{s}, "
                      f"{n_trainable(model):,} parameters, {n_prunable:,} of them prunable; identity tag "
                      f"{spec.init_tag}", *(f"  prune {n} {tuple(params[n].shape)}" for n in prunable),
                      f"  kept dense: {', '.join(n for n in params if n not in set(prunable))}"])


def main(argv=None) -> int:
    """``python -m lthlib.ownmodels MODULE``: import it, describe every model it registers."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lthlib.ownmodels MODULE   (a dotted name or a .py file)", file=sys.stderr)
        return 2
    try:
        module = import_model_module(argv[0], "python -m lthlib.ownmodels")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    names = registered_by(module)
    print("\n".join(describe(n) for n in names) if names else f"{argv[0]} registers no model: decorate your "
          f"model with @lthlib.register_model(name)")
    return 0 if names else 1


__all__ = ["register_model", "unregister_model", "import_model_module", "auto_prunable", "registered_by",
           "describe", "main"]

if __name__ == "__main__":
    sys.exit(main())
