"""lthlib: the helper package behind the lottery-ticket sanity-check notebooks.

One module per concern: ``models`` (registry + pruning profiles), ``data`` (datasets, batched
augmentation), ``pruning`` (masks), ``training`` (the engine), ``runs`` (run folders, atomic files),
``params`` (the parameter schema), ``settings`` (the study's settings as functions), ``results``
(collecting runs, verdicts, plots).
"""
from .errors import LTHError, ConfigError, DatasetMissingError, CheckpointError, MaskError
from .params import Experiment, make_experiment, from_namespace, load_params_file, SETTINGS
from .settings import (pretrain, lt_imp, rr_imp, rr, lt_omp, rr_omp, oneshot_retrain, random_prune,
                       run_setting, omp_mask)
from .runs import RunDir

__all__ = ["LTHError", "ConfigError", "DatasetMissingError", "CheckpointError", "MaskError", "Experiment",
           "make_experiment", "from_namespace", "load_params_file", "SETTINGS", "pretrain", "lt_imp", "rr_imp", "rr",
           "lt_omp", "rr_omp", "oneshot_retrain", "random_prune", "run_setting", "omp_mask", "RunDir"]
