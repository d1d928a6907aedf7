"""lthlib: the helper package behind the lottery-ticket sanity-check notebooks.

One module per concern (README, "Layout"): ``params`` (the typed schema), ``registry`` (the settings),
``settings`` (the protocol, as plans), ``plans`` (run plans: start points, masks, identity), ``engine``
(realizes plans as run folders, once), ``training`` (the loop and its hooks), ``sgd`` (the update rule),
``runs`` and ``layout`` (files and where they land), ``models``, ``data``, ``pruning``, ``packing``,
``distributed``, ``schedule``, ``plan``, ``results``, ``stats``, ``plots``, ``report``, ``verdicts``,
``trajectory`` (loss-surface trajectories), ``ownmodels`` (your own models: ``lthlib.register_model``),
``paramsdoc``, ``tickets``, ``readme``.

    exp = lthlib.load("params/demo.yaml", lr=0.01, seed=2)          # one (lr, seed) cell of a grid
    exp = lthlib.make_experiment(None, model="resnet20", epochs=2)   # from keyword values, no file
    runs = lthlib.run_setting(exp, "lt_imp")                          # finished RunDirs
    runs = lthlib.lt_imp(exp)                                         # the same, for every setting
    plans = lthlib.settings.plan(exp, "lt_imp")                       # what it needs, without training
"""
import functools

from . import registry as _registry
from ._version import __version__
from .errors import LTHError, ConfigError, DatasetMissingError, CheckpointError, MaskError
from .params import Experiment, load, make_experiment, load_params_file
from .registry import NAMES as SETTINGS
from .engine import run_setting, run_cells, load_cells, pretrain, rr, realize
from . import settings
from .settings import grid_plans
from .runs import RunDir
from .ownmodels import register_model, unregister_model, import_model_module


def __getattr__(name: str):
    """``lthlib.<setting>(exp, sparsities=None, rounds=None)`` is ``run_setting(exp, "<setting>")`` for
    every setting of the registry (``lthlib.pretrain`` returns the one dense run)."""
    if name in _registry.BY_NAME:
        return functools.partial(run_setting, setting=name)
    raise AttributeError(f"module 'lthlib' has no attribute {name!r}")


__all__ = ["__version__", "LTHError", "ConfigError", "DatasetMissingError", "CheckpointError", "MaskError", "Experiment",
           "load", "make_experiment", "load_params_file", "SETTINGS", "run_setting", "run_cells", "load_cells", "pretrain",
           "rr", "realize",
           "settings", "grid_plans", "RunDir", "register_model", "unregister_model", "import_model_module"]
