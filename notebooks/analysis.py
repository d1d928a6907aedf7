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
# # Does the winning ticket win the jackpot? — analysis
#
# Reads the run folders of one grid (never trains) and compares lottery tickets (LT: the pruned mask on
# the original init θ0) with random re-initializations (RR: the same mask on a fresh init), following
# Ma et al., NeurIPS 2021. All accuracies are **final-epoch** test accuracies.

# %% tags=["parameters"]
params_file = "params/demo.yaml"  # the grid to analyse
tol = 0.0  # tolerance (accuracy points) of the matching conditions C1 and C3
alpha = 0.05  # significance level of the one-sided paired test in C2
overrides = {}  # any other key of the params schema (make passes SET= and out_root here)

# %%

from IPython.display import Markdown, display

import lthlib
from lthlib import results as R
from lthlib.runs import project_path

exp = lthlib.load(params_file, overrides)
df, unfinished = R.collect(exp.out_root, exp.name)
figures = project_path(exp.out_root) / exp.name / "reports" / "figures"
if len(df):
    R.save_table(df, project_path(exp.out_root) / exp.name / "results.csv")
    everything, _ = R.collect(exp.out_root)
    R.save_table(everything, project_path(exp.out_root) / "results.csv")
display(Markdown("## Scale and environment\n\n" + R.scale_markdown(exp, df)))

# %% [markdown]
# ## Completeness
# Expected against finished runs; a missing or unfinished run leaves a gap in the figures below rather
# than failing the report.

# %%
display(R.completeness(exp, df, unfinished))
if unfinished:
    print("unfinished runs:", *unfinished, sep="\n  ")

# %% [markdown]
# ## Accuracy vs sparsity
# Mean final test accuracy over seeds with a ±1 std band; the solid black line is the dense model at the
# same learning rate, the dash-dotted line the dense model at the best learning rate.

# %%
for (model, dataset, epochs), _ in (df.groupby(["model", "dataset", "epochs"]) if len(df) else []):
    fig = R.plot_accuracy_vs_sparsity(df, model, dataset, epochs)
    R.save_figure(fig, figures, f"accuracy_vs_sparsity_{model}_{dataset}_{epochs}ep")
    R.plt.show()

# %% [markdown]
# ## Winning-ticket verdicts
# Per sparsity: **C1** LT ≥ dense at the same lr − tol; **C2** LT − RR > 0 with a one-sided paired
# t-test over seeds (p < alpha); **C3** LT ≥ the best-lr dense model − tol. A ticket *wins* when all
# three hold. The paper's exact tolerances are not available to us; tol is a parameter of this report.

# %%
v = R.verdicts(df, tol=tol, alpha=alpha) if len(df) else R.pd.DataFrame()
display(Markdown("\n".join(f"- {line}" for line in R.verdict_summary(v))))
if len(v):
    R.save_table(v, figures.parent / "verdicts.csv")
    display(v.style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## Layerwise sparsity of the masks
# Per prunable tensor: IMP vs OMP vs random (layerwise) masks at a few global sparsities (first lr and
# seed of the grid). The x axis is the model's pruning profile; the dashed line is the global sparsity.

# %%
if len(df):
    levels = sorted(set(df.loc[df["setting"] == "lt_omp", "target_sparsity"]))[-3:]
    table = R.layerwise_table(df, exp.lrs[0], exp.seeds[0], levels)
    fig = R.plot_layerwise(table, f"{exp.model}, lr {exp.lrs[0]:g}, seed {exp.seeds[0]}")
    if fig is not None:
        R.save_figure(fig, figures, "layerwise_sparsity")
        R.plt.show()

# %% [markdown]
# ## Initial vs trained weights
# For each dense run: Pearson correlation of θ0 and θT over the prunable weights, and the overlap of
# the top-k positions of |θ0| and |θT| at the grid's highest OMP sparsity (both metrics ours; the
# paper's exact metric is not known to us). High overlap means the mask is largely fixed at init.

# %%
if len(df):
    s_corr = max(exp.sparsities) if exp.sparsities else 0.59
    wc = R.weight_correlation(df, s_corr)
    fig = R.plot_weight_correlation(wc, s_corr)
    if fig is not None:
        R.save_figure(fig, figures, "init_vs_trained")
        R.plt.show()
    display(wc[wc["layer"] == "(global)"].groupby("lr")[["pearson r", "top-k overlap", "chance overlap"]].mean())

# %% [markdown]
# ## Where this project differs from the official code

# %%
display(Markdown(R.DIFFERENCES))
