# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (lthlib)
#     language: python
#     name: lthlib
# ---

# %% [markdown]
# # Weight rewinding (WR-IMP / WR-OMP)
#
# The paper's Appendix B: instead of θ0, a ticket starts from θ_t, the dense run's weights after an early
# epoch t, times the LT-IMP mask of a round (WR-IMP) or the one-shot mask (WR-OMP), and trains the
# remaining T − t epochs, continuing the dense run's learning-rate schedule and data order from epoch t.
# The paper's conditions are the same, with the rewound ticket in place of LT; RR is still trained the
# full schedule.
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
from typing import Optional

params_file: str = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr: Optional[float] = 0.1  # this notebook's learning rate (one of the grid's lrs); None: every lr of the grid
seed: Optional[int] = 1  # this notebook's seed: the dense run θ_t comes from; None: every seed of the grid
overrides: dict = {}  # any other key of the params schema as a mapping, e.g. epochs 2 (make passes SET and out_root here)
mask_from: str = "imp"  # "imp": the mask of every LT-IMP round; "omp": the one-shot masks

# %%
import lthlib
from lthlib import plots, settings
from IPython.display import Markdown

exp = lthlib.load_cells(params_file, overrides, lr, seed)  # one (lr, seed) cell, or every cell
setting = settings.check_mask_from(mask_from, "wr")
t = settings.rewind_epoch(exp)
print(f"{exp.model} on {exp.dataset}, {lthlib.settings.describe_cells(exp)}, {exp.epochs} epochs, rewind to epoch {t}")
Markdown(f"Rewind epoch t = {t} of {exp.epochs}" + ("" if exp.rewind_epoch else
         " (5% of the schedule: the paper's 8 of 160)") + f"; each run trains epochs {t + 1}-{exp.epochs}.")

# %%
runs = lthlib.run_cells(exp, setting)

# %%
plots.show_runs(runs, title=f"{setting}, {lthlib.settings.describe_cells(exp)}")
