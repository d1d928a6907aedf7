"""lthlib: the helper package behind the lottery-ticket sanity-check notebooks.

One module per concern (README, "Layout"): ``params`` (the typed schema), ``registry`` (the settings),
``settings`` (the protocol), ``engine`` (run folders trained once), ``training`` (the loop), ``runs``
(files), ``models``, ``data``, ``pruning``, ``packing``, ``distributed``, ``plan``, ``results``.
"""
from .errors import LTHError, ConfigError, DatasetMissingError, CheckpointError, MaskError
from .params import Experiment, load, make_experiment, load_params_file
from .registry import NAMES as SETTINGS
from .settings import (pretrain, lt_imp, rr_imp, rr, lt_omp, rr_omp, oneshot_retrain, random_prune,
                       run_setting, omp_mask)
from .runs import RunDir

__all__ = ["LTHError", "ConfigError", "DatasetMissingError", "CheckpointError", "MaskError", "Experiment",
           "load", "make_experiment", "load_params_file", "SETTINGS", "pretrain", "lt_imp", "rr_imp", "rr",
           "lt_omp", "rr_omp", "oneshot_retrain", "random_prune", "run_setting", "omp_mask", "RunDir"]
