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
# # LT-OMP: one-shot magnitude pruning of θT, applied to θ0
#
# One global magnitude mask of the dense model's trained weights θT per sparsity; the ticket is θ0 ⊙ m trained with the full recipe.
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
from typing import Optional

params_file: str = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr: Optional[float] = 0.1  # this notebook's learning rate (one of the grid's lrs); None: every lr of the grid
seed: Optional[int] = 1  # this notebook's seed: θ0 and the dense run's data order; None: every seed of the grid
overrides: dict = {}  # any other key of the params schema as a mapping, e.g. epochs 2 (make passes SET and out_root here)

# %%
import lthlib
from lthlib import plots
from IPython.display import Markdown

exp = lthlib.load_cells(params_file, overrides, lr, seed)  # one (lr, seed) cell, or every cell
print(f"{exp.model} on {exp.dataset}, {lthlib.settings.describe_cells(exp)}, {exp.epochs} epochs, data order: {exp.data_order}")
Markdown(f"Sparsities: {', '.join(f'{s:g}' for s in exp.sparsities)}.")

# %%
runs = lthlib.run_cells(exp, "lt_omp")

# %%
plots.show_runs(runs, title=f"LT-OMP, {lthlib.settings.describe_cells(exp)}")
