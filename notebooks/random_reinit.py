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
# The LT masks (from LT-IMP rounds or LT-OMP) on a *fresh* initialization θ0' (seed + `rr_seed_offset`). By default only the init changes, so LT vs RR is a paired comparison on the same data order (`rr_changes_data: true` reproduces the official code, where one seed changes both).
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
params_file = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr = 0.1  # this notebook's learning rate (one of the grid's lrs)
seed = 1  # this notebook's seed: init and data order of the LT runs
mask_from = "imp"  # "imp": the LT-IMP masks of every round; "omp": the LT-OMP masks

# %%
import lthlib
from lthlib import results

exp = lthlib.from_namespace(globals(), params_file)
print(f"{exp.model} on {exp.dataset}, lr {exp.lr:g}, seed {exp.seed}, {exp.epochs} epochs")

# %%
runs = lthlib.rr(exp, mask_from)

# %%
results.show_runs(runs, title="Random re-initialization (RR-IMP / RR-OMP), lr %g, seed %d" % (exp.lr, exp.seed))
