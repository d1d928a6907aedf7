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
# Reads the run folders of one grid (it never trains) and compares lottery tickets (LT: the pruned
# mask on the original init θ0) with random re-initializations (RR: the same mask on a fresh init),
# following Ma et al., NeurIPS 2021. All accuracies are **final-epoch** test accuracies.
#
# Only runs whose identity is the one the grid's *current* parameters give are counted; any other
# finished run of the grid is listed below as not counted, with the fields that differ.

# %% tags=["parameters"]
params_file = "params/demo.yaml"  # the grid to analyse
tol = 0.0  # tolerance (accuracy points) of the matching conditions C1 and C3
alpha = 0.05  # significance level of the one-sided paired tests (LT beats RR / RR beats LT)
overrides = {}  # any other key of the params schema (make passes SET= and out_root here)

# %%
from IPython.display import Markdown, display

import lthlib
from lthlib import plots as P
from lthlib import report
from lthlib import results as R
from lthlib import stats
from lthlib.runs import project_path

exp = lthlib.load(params_file, overrides)
runs = R.gather(exp)
grid_dir = project_path(exp.out_root) / exp.name
figures = grid_dir / "reports" / "figures"
R.save_table(R.grid_table(runs), grid_dir / "results.csv")
R.save_table(runs.everything, project_path(exp.out_root) / "results.csv")
s_corr = R.correlation_sparsity(exp)
wc = R.weight_correlation(runs.counted, s_corr)
dense = R.dense_by_lr(runs.counted, wc)
premise = R.premise(dense)

# %% [markdown]
# ## Premise check
# The paper's comparison presumes that the **largest learning rate gives the better dense model**;
# its claim is that LT beats RR only at the small one. The premise *holds* only when the large lr's
# dense accuracy exceeds the next best by more than the seed spread (the larger of the two seed
# standard deviations). Where it fails, the LT-vs-RR comparison below is not the paper's comparison.
# The last column of the table is the Pearson correlation of θ0 and θT over the prunable weights
# (ours), per lr.

# %%
display(Markdown(report.bullets(R.premise_summary(premise))))
display(dense.round(3))

# %% [markdown]
# ## Scale and environment

# %%
display(Markdown(report.scale_markdown(exp, runs.counted)))

# %% [markdown]
# ## Which runs count
# Expected against counted runs per setting; a missing or unfinished run leaves a gap in the figures
# rather than failing the report.

# %%
display(report.completeness(exp, runs.counted, runs.unfinished, runs.not_counted))
display(Markdown(report.not_counted_markdown(runs.not_counted)))
display(Markdown(report.bullets(runs.unfinished) or "No unfinished run."))

# %% [markdown]
# ## Accuracy vs sparsity
# Mean final test accuracy over seeds with a ±1 std band. Solid black line: the dense model at the
# same learning rate. Dash-dotted line: C3's reference, the best-lr dense model trained with the full
# schedule (looked up in every grid of this output root; when none exists the panel says so instead
# of drawing a shorter-schedule stand-in).

# %%
reference = R.c3_reference(runs.everything, exp)
display(Markdown(R.reference_summary(reference, exp)))
fig = P.plot_accuracy_vs_sparsity(runs.counted, reference)
P.save_figure(fig, figures, "accuracy_vs_sparsity")
P.plt.show()

# %% [markdown]
# ## Winning-ticket verdicts

# %%
display(Markdown(
    f"Per sparsity: **C1** LT ≥ dense at the same lr − tol; **C2** LT beats RR (one-sided paired t-test "
    f"over the seeds both have, p < alpha); **C3** LT ≥ C3's reference − tol. A ticket *wins* when all "
    f"three hold. Here tol = {tol:g} points and alpha = {alpha:g}; the paper's exact tolerances are not "
    f"available to us. Each LT−RR gap comes with its paired {stats.CONFIDENCE:.0%} confidence interval and "
    f"n; a result is worded *LT beats RR*, *RR beats LT* or *not resolved at n*, and *underpowered* "
    f"below {stats.UNDERPOWERED_BELOW} paired seeds. The last column says how many seeds a CI half-width "
    f"of 0.5 points would need at the observed spread."))
v = R.verdicts(runs.counted, reference, tol=tol, alpha=alpha)
display(Markdown(report.bullets(R.verdict_summary(v))))
R.save_table(v, grid_dir / "reports" / "verdicts.csv")
display(v.round(3))

# %% [markdown]
# ## LT − RR against training length
# The recipe variable the paper fixes (160 epochs on CIFAR): every grid under this output root with
# this grid's recipe except the learning rate, the number of epochs and the data order is pooled.
# One panel per family and lr, one line per sparsity; bars are the paired confidence intervals of the
# verdicts above (none where fewer than 2 seeds pair).

# %%
lengths = R.length_table(runs.everything, exp, alpha)
display(Markdown(f"Training lengths found: {sorted(set(lengths['epochs']))} epochs "
                 f"(this grid: {exp.epochs}; data order shown: `{exp.data_order}`)." if len(lengths) else
                 "No LT/RR pair finished in any grid of this recipe yet."))
fig = P.plot_gap_vs_epochs(lengths, exp.data_order)
P.save_figure(fig, figures, "gap_vs_epochs")
P.plt.show()

# %% [markdown]
# ## Data order: replay vs fresh
# Under `replay` (the official behaviour) an LT run retraces the dense run's data order while RR
# differs only in its init, so part of an LT advantage can come from that replay. Under `fresh`, LT
# and RR share a data order the dense run did not use. Both are shown side by side at every training
# length where runs of both exist.

# %%
display(Markdown(f"This grid uses data order `{exp.data_order}`."))
fig = P.plot_data_order(lengths)
P.save_figure(fig, figures, "data_order")
display(Markdown("No grid of this recipe with both data orders at one training length yet." if fig is None
                 else "LT − RR under both data orders, with their paired confidence intervals."))
P.plt.show()

# %% [markdown]
# ## Layerwise sparsity of the masks
# Per prunable tensor: IMP vs OMP vs random masks at the grid's highest OMP sparsities (first lr and
# seed of the grid). The x axis is the model's pruning profile; the dashed line is the global sparsity.

# %%
table = R.layerwise_table(runs.counted, exp.lrs[0], exp.seeds[0], sorted(exp.sparsities)[-3:])
fig = P.plot_layerwise(table, f"{exp.model}, lr {exp.lrs[0]:g}, seed {exp.seeds[0]}, random masks: {exp.random_mode}")
P.save_figure(fig, figures, "layerwise_sparsity")
P.plt.show()

# %% [markdown]
# ## Initial vs trained weights
# For each dense run: Pearson correlation of θ0 and θT over the prunable weights, and the overlap of
# the top-k positions of |θ0| and |θT| (both metrics ours; the paper's exact metric is not known to
# us). High overlap means the mask is largely fixed at init.

# %%
display(Markdown(f"Top-k overlap measured at sparsity {s_corr:g}: chance overlap is {1 - s_corr:.3f}."))
fig = P.plot_weight_correlation(wc, s_corr)
P.save_figure(fig, figures, "init_vs_trained")
P.plt.show()

# %% [markdown]
# ## Where this project differs from the official code

# %%
display(Markdown(report.DIFFERENCES))
