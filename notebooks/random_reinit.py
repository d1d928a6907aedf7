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
# # Random re-initialization (RR-IMP / RR-OMP)
#
# The LT masks (from the LT-IMP rounds or LT-OMP) on a *fresh* initialization θ0'. LT vs RR is the study's question: does the original init matter once the mask is fixed?
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
from typing import Optional

params_file: str = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr: Optional[float] = 0.1  # this notebook's learning rate (one of the grid's lrs); None: every lr of the grid
seed: Optional[int] = 1  # this notebook's seed: θ0 and the dense run's data order; None: every seed of the grid
overrides: dict = {}  # any other key of the params schema as a mapping, e.g. epochs 2 (make passes SET and out_root here)
mask_from: str = "imp"  # "imp": the masks of every LT-IMP round; "omp": the LT-OMP masks

# %%
import lthlib
from lthlib import plots
from IPython.display import Markdown

exp = lthlib.load_cells(params_file, overrides, lr, seed)  # one (lr, seed) cell, or every cell
print(f"{exp.model} on {exp.dataset}, {lthlib.settings.describe_cells(exp)}, {exp.epochs} epochs, data order: {exp.data_order}")
Markdown(f"θ0' has init seed seed + {exp.rr_seed_offset}. "
         + ("RR changes the data order too (official behaviour)." if exp.rr_changes_data else
            f"RR trains on the same data order as the LT runs ({exp.data_order}), so LT vs RR is paired."))

# %%
runs = lthlib.run_cells(exp, lthlib.settings.check_mask_from(mask_from))

# %%
plots.show_runs(runs, title=f"Random re-initialization, {lthlib.settings.describe_cells(exp)}")
