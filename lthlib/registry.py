"""The study's settings, declared once: name, the notebook that tells its story, what it depends on, how
it is drawn, and how many runs one (lr, seed) cell of a grid holds.

Everything that lists settings reads this table: the schema (valid ``settings`` values), the planner
(notebook targets and their order), the run functions (``lthlib.settings`` defines one function per
entry, of the same name) and the reports (labels, colours, completeness). Adding a setting is one
entry here, one function in ``settings.py`` and one notebook.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Setting:
    name: str                      # also the name of its function in lthlib.settings
    label: str                     # how reports name it
    color: str
    notebook: str                  # notebooks/<notebook>.py
    depends: tuple[str, ...]       # settings whose runs it needs finished first
    runs_per_cell: Callable        # exp -> number of runs one (lr, seed) cell holds
    notebook_params: dict = field(default_factory=dict)  # extra papermill parameters
    style: str = "-"               # line style in accuracy-vs-sparsity plots
    marker: str = "o"
    sequential: bool = False       # its runs form a chain (each needs the previous one finished)


def _rounds(exp) -> int:
    return exp.imp_rounds


def _sparsities(exp) -> int:
    return len(exp.sparsities)


SETTINGS = (
    Setting("pretrain", "dense", "#222222", "pretrain", (), lambda exp: 1, marker=""),
    Setting("lt_imp", "LT-IMP", "#1f5fa8", "lt_imp", ("pretrain",), _rounds, sequential=True),
    Setting("rr_imp", "RR-IMP", "#7fb2e5", "random_reinit", ("lt_imp",), _rounds, {"mask_from": "imp"}, "--"),
    Setting("lt_omp", "LT-OMP", "#c0392b", "lt_omp", ("pretrain",), _sparsities, marker="s"),
    Setting("rr_omp", "RR-OMP", "#f1948a", "random_reinit", ("pretrain",), _sparsities, {"mask_from": "omp"},
            "--", "s"),
    Setting("oneshot_retrain", "one-shot prune + retrain", "#2e8b57", "oneshot_retrain", ("pretrain",),
            _sparsities, marker="^"),
    Setting("random_prune", "random pruning", "#8e8e8e", "random_prune", ("pretrain",), _sparsities, style=":",
            marker="x"),
)
BY_NAME = {s.name: s for s in SETTINGS}
NAMES = tuple(BY_NAME)
# the LT-vs-RR comparisons of the study: (family, LT setting, RR setting)
PAIRS = (("IMP", "lt_imp", "rr_imp"), ("OMP", "lt_omp", "rr_omp"))


def get(name: str) -> Setting:
    from .errors import ConfigError
    if name not in BY_NAME:
        raise ConfigError(f"setting: unknown setting {name!r}; known: {', '.join(NAMES)}")
    return BY_NAME[name]


def label(name: str) -> str:
    return BY_NAME[name].label if name in BY_NAME else name
