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
# # Small-dense training (SDT): the baseline a ticket must beat
#
# For each sparsity s of the grid, a *dense* network of the same architecture and depth but reduced
# widths, with as many parameters as the subnetwork keeps at s, trained from its own fresh init with the
# full recipe. The paper's condition ② asks a ticket to beat it clearly: a sparse mask is only worth
# finding if it does better than simply training a smaller dense network.
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
from typing import Optional

params_file: str = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr: Optional[float] = 0.1  # this notebook's learning rate (one of the grid's lrs); None: every lr of the grid
seed: Optional[int] = 1  # this notebook's seed: the small network's init and its data order (the LT runs' order); None: every seed of the grid
overrides: dict = {}  # any other key of the params schema as a mapping, e.g. epochs 2 (make passes SET and out_root here)

# %%
import lthlib
from lthlib import plots
from IPython.display import Markdown

exp = lthlib.load_cells(params_file, overrides, lr, seed)  # one (lr, seed) cell, or every cell
print(f"{exp.model} on {exp.dataset}, {lthlib.settings.describe_cells(exp)}, {exp.epochs} epochs, data order: {exp.data_order}")
sizes = [p.facts["sdt"] for p in lthlib.settings.plan(exp, "sdt")]
Markdown("| sparsity | widths per stage | subnetwork non-zeros | small-dense parameters |\n|---|---|---|---|\n"
         + "\n".join(f"| {p.sparsity:.3f} | {f['widths']} | {f['target_params']:,} | {f['sd_params']:,} |"
                     for p, f in zip(lthlib.settings.plan(exp, "sdt"), sizes)))

# %%
runs = lthlib.run_cells(exp, "sdt")

# %%
plots.show_runs(runs, title=f"Small-dense training, {lthlib.settings.describe_cells(exp)}")
