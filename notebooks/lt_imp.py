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
# # LT-IMP: iterative magnitude pruning with rewinding to θ0
#
# Round r prunes 20% of the remaining weights (global magnitude over the pruning profile) of round r-1's *trained* weights, then trains θ0 ⊙ m_r with the full recipe. Sparsity after round r is 1 - 0.8^r.
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
runs = lthlib.lt_imp(exp)

# %%
results.show_runs(runs, title="LT-IMP: iterative magnitude pruning with rewinding to θ0, lr %g, seed %d" % (exp.lr, exp.seed))
