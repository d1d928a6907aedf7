"""The study's settings, declared once: name, the notebook that tells its story, how reports draw it,
and the schema fields the setting owns.

Everything that lists settings reads this table: the schema (valid ``settings`` values), the protocol
(``lthlib.settings`` has one plan function per entry, of the same name, giving the runs one (lr, seed)
cell of a grid needs, with their dependencies -- so what a setting depends on and how many runs it
has come from its plans), the planner (notebook targets and their order) and the reports (labels,
colours, completeness). Adding a setting is:
  1. one entry here,
  2. one plan function in ``lthlib/settings.py``,
  3. one notebook ``notebooks/<notebook>.py``,
  4. and, when it has a parameter of its own, one field in ``lthlib/params.py`` with
     ``identity="setting"``, named in the entry's ``params``: it enters the identity of that setting's
     runs only, so adding it renames no other run.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    name: str                      # also the name of its plan function in lthlib.settings
    label: str                     # how reports name it
    color: str
    notebook: str                  # notebooks/<notebook>.py
    notebook_params: dict = field(default_factory=dict)  # extra papermill parameters
    style: str = "-"               # line style in accuracy-vs-sparsity plots
    marker: str = "o"
    params: tuple[str, ...] = ()   # schema fields (identity="setting") in this setting's runs' identity


SETTINGS = (
    Setting("pretrain", "dense", "#222222", "pretrain", marker=""),
    Setting("lt_imp", "LT-IMP", "#1f5fa8", "lt_imp"),
    Setting("rr_imp", "RR-IMP", "#7fb2e5", "random_reinit", {"mask_from": "imp"}, "--"),
    Setting("lt_omp", "LT-OMP", "#c0392b", "lt_omp", marker="s"),
    Setting("rr_omp", "RR-OMP", "#f1948a", "random_reinit", {"mask_from": "omp"}, "--", "s"),
    Setting("oneshot_retrain", "one-shot prune + retrain", "#2e8b57", "oneshot_retrain", marker="^"),
    Setting("random_prune", "random pruning", "#8e8e8e", "random_prune", style=":", marker="x"),
    Setting("sdt", "SDT (small dense)", "#9b59b6", "small_dense", style="-.", marker="D"),
    Setting("wr_imp", "WR-IMP", "#0b3d91", "weight_rewinding", {"mask_from": "imp"}, ":", "v",
            params=("rewind_epoch",)),
    Setting("wr_omp", "WR-OMP", "#922b21", "weight_rewinding", {"mask_from": "omp"}, ":", "P",
            params=("rewind_epoch",)),
)
BY_NAME = {s.name: s for s in SETTINGS}
NAMES = tuple(BY_NAME)
# the ticket families of the study: family -> (the ticket's setting, the RR setting it is judged against);
# with weight rewinding the ticket is the WR run and RR is still trained the full schedule (SPEC section 2)
FAMILIES = {"IMP": ("lt_imp", "rr_imp"), "OMP": ("lt_omp", "rr_omp"),
            "WR-IMP": ("wr_imp", "rr_imp"), "WR-OMP": ("wr_omp", "rr_omp")}
# the LT-vs-RR comparisons of the study: (family, LT setting, RR setting)
PAIRS = (("IMP", "lt_imp", "rr_imp"), ("OMP", "lt_omp", "rr_omp"))
SMALL_DENSE = "sdt"  # the small-dense network of a subnetwork's size (SPEC section 2)


def get(name: str) -> Setting:
    from .errors import ConfigError
    if name not in BY_NAME:
        raise ConfigError(f"setting: unknown setting {name!r}; known: {', '.join(NAMES)}")
    return BY_NAME[name]


def label(name: str) -> str:
    return BY_NAME[name].label if name in BY_NAME else name
