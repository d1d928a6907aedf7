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
# # Random pruning
#
# A random mask with the same per-layer density as the LT-OMP mask (`random_mode: layerwise`) or uniform over the prunable weights (`global`), applied to θ0 and trained with the full recipe. Our addition to the study's settings.
#
# Runs land in `outputs/<grid>/runs/`, one self-describing folder per training run; a finished run is
# skipped and an interrupted one resumes from its last epoch.

# %% tags=["parameters"]
params_file = "params/demo.yaml"  # the grid: recipe, sparsities, rounds (path relative to the project root)
lr = 0.1  # this notebook's learning rate (one of the grid's lrs)
seed = 1  # this notebook's seed: init and data order of the LT runs

# %%
import lthlib
from lthlib import results

exp = lthlib.from_namespace(globals(), params_file)
print(f"{exp.model} on {exp.dataset}, lr {exp.lr:g}, seed {exp.seed}, {exp.epochs} epochs")

# %%
runs = lthlib.random_prune(exp)

# %%
results.show_runs(runs, title="Random pruning, lr %g, seed %d" % (exp.lr, exp.seed))
