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
# Reads the run folders of one grid (it never trains) and judges its lottery tickets by the rules of
# Ma et al., NeurIPS 2021 ("Sanity Checks for Lottery Tickets"). All accuracies are **final-epoch**
# test accuracies, means over seeds.
#
# **Terms.** A *dense* model is the unpruned network trained from its init θ0 (*pretraining*). A mask
# m keeps the largest-magnitude weights of the trained dense model θT at sparsity s (the fraction of
# prunable weights removed): found in one shot (*OMP*) or by iterative pruning, 20% of what remains per
# round (*IMP*). A *lottery ticket* (LT) trains θ0 ⊙ m; its *random re-initialization* (RR) trains the
# same mask on a fresh init θ0' ⊙ m; *SDT* is a small dense network of the same depth and parameter
# count; *WR* (weight rewinding) starts from the dense weights after a few epochs instead of θ0. A
# *ticket* is one (family IMP/OMP, sparsity, learning rate), and the paper asks five conditions of it:
# ① a non-trivial sparsity (≥ 0.6) and a full training schedule, ② SDT is clearly worse, ③ LT is
# clearly better than RR trained at *any* lr, ④ LT is similar to (or above) the dense model at the same
# lr, ⑤ LT is similar to (or above) the *best dense model*, trained with the best lr and the full
# schedule. A **Jackpot** ticket meets ①–⑤; a **secondary prize** ticket meets ①–④ but not ⑤; otherwise
# it is **none**. A condition whose inputs are missing is **not evaluated** (never counted as failed), and
# so is a class that depends on it. A ticket is **at the boundary** when a deciding gap lies within its
# seed noise of the threshold. The tickets meeting ① are the *candidates*; "a network has a secondary
# prize ticket" is a claim over all of them, so it comes with their number and the count that survives
# *Holm's correction* for that many comparisons. Only runs whose identity is the one the grid's
# *current* parameters give are counted.

# %% tags=["parameters"]
from typing import Optional

params_file: str = "params/demo.yaml"  # the grid to analyse
similar: Optional[float] = None  # ④ ⑤ similar: the drop (points) allowed below the dense model; None: the paper's for the dataset
clear_gap: Optional[float] = None  # ③ clear gap (points) LT must beat the best RR by; None: the paper's 0.5
sdt_gap: Optional[float] = None  # ② the gap (points) LT must beat SDT by; None: the clear gap (the paper gives no number)
nontrivial: float = 0.6  # ① the smallest non-trivial sparsity
alpha: float = 0.05  # 1 - the confidence of every interval; Holm's correction at this level
pool_grids: Optional[list] = None  # grid names pooled for the training-length axis and the best dense model; None: every grid found
params_dir: str = "params"  # where the pooled grids' params files are (each pooled grid counts its runs by its own)
rp_sparsity: float = 0.832  # the sparsity R_p is measured at (the nearest OMP sparsity of the grid when absent)
rp_p: float = 0.1  # R_p's top fraction p of the remaining weights
trajectory_grid: int = 7  # loss-surface lattice points per axis (its cost: grid² forward passes of the subset per run)
trajectory_images: int = 256  # training images the loss surface is measured on (a fixed stratified subset)
overrides: dict = {}  # any other key of the params schema as a mapping (make passes SET and out_root here)

# %%
from IPython.display import HTML, Markdown, display

import lthlib
from lthlib import layout
from lthlib import plots as P
from lthlib import report
from lthlib import registry
from lthlib import results as R
from lthlib import trajectory as T
from lthlib import verdicts as V

exp = lthlib.load(params_file, overrides)
runs = R.gather(exp)
figures = layout.figures_dir(exp.out_root, exp.name)
R.save_table(R.grid_table(runs, exp.normal_lr), layout.grid_results(exp.out_root, exp.name))
R.save_table(runs.everything, layout.all_results(exp.out_root))
pool_exps, pool_notes = R.pool_experiments(exp, pool_grids, overrides, params_dir)
pool = R.pooled_runs(runs.everything, exp, pool_exps)
reference = R.best_dense_full_schedule(pool.runs, exp)
thr = V.thresholds(exp.dataset, similar, clear_gap, sdt_gap)
v = R.ticket_verdicts(runs.counted, reference, exp, similar, clear_gap, sdt_gap, nontrivial, alpha)
R.save_table(v, layout.verdicts_csv(exp.out_root, exp.name))
t3 = R.ticket_summary(v, runs.counted, alpha, exp.normal_lr)
wc, wc_skipped = R.weight_correlation(runs.counted)
dense = R.dense_by_lr(runs.counted, wc)
premise = R.premise(dense, exp.normal_lr)

# %% [markdown]
# ## What this report found

# %%
display(Markdown(report.headline(exp, v, t3, R.premise_summary(premise), runs.counted)))
display(Markdown(report.files_markdown()))

# %% [markdown]
# ## Premise check
# The paper's comparison presumes that a **large learning rate gives the better dense model**;
# its claim is that tickets appear only at small ones. "Large" is the recipe's normal lr and above
# (`normal_lr`; the grid's largest lr when it is not set: the paper sweeps from extremely small to
# normal, then to very large). The premise *holds* only when the best dense accuracy at a large lr
# exceeds the best below it by more than the seed spread (the larger of the two seed standard
# deviations). Where it fails, the comparisons below are not the paper's. The last column is
# the Pearson correlation of θ0 and θT over the prunable weights (ours), per lr.

# %%
display(Markdown(report.bullets(R.premise_summary(premise))))
display(report.table(dense, ["epochs", "lr", "mean", "std", "n", "θ0-θT pearson r"],
                     {"mean": "dense accuracy (%)", "std": "seed std", "n": "seeds"}))

# %% [markdown]
# ## Accuracy vs learning rate (the paper's Figure 3)
# Per sparsity, the final test accuracy of every setting against the learning rate (log axis), mean
# over seeds with a ±1 std band: the dense model (pretraining), LT and RR of both mask families, SDT and
# weight rewinding where the grid runs them. The dash-dotted line is the best dense model and the
# shaded band under it is "similar" (④ ⑤): a ticket inside or above the band matches it. A ticket's
# line above both RR lines by the clear gap meets ③. Sparsities shown: the grid's OMP sparsities (at
# most six).

# %%
display(Markdown(R.reference_summary(reference, exp)))
fig = P.plot_accuracy_vs_lr(runs.counted, P.lr_panel_sparsities(runs.counted, exp.sparsities), reference,
                            thr["similar"])
P.publish(fig, figures, "accuracy_vs_lr", "No sparse run finished yet.")

# %% [markdown]
# ## Accuracy vs sparsity
# Per learning rate, every setting against the share of prunable weights kept (log axis), mean over
# seeds with a ±1 std band. Solid black line: the dense model at the same learning rate. Dash-dotted:
# the best dense model of the full schedule (looked up in the pooled grids; when none exists the
# panel says so instead of drawing a shorter-schedule stand-in).

# %%
P.publish(P.plot_accuracy_vs_sparsity(runs.counted, reference), figures, "accuracy_vs_sparsity")

# %% [markdown]
# ## Ticket verdicts by the paper's definition
# One row per ticket: its LT accuracy and, for each condition ②-⑤, the gap in points with ✓ (holds),
# ✗ (fails) or – (not evaluated); "best RR" gives the accuracy and lr ③ compares with. Below the table,
# "The same verdicts as sentences" gives each gap with its 95% confidence interval, n and the threshold,
# and what the statistics say at this n ("LT beats RR" only when the interval lies above 0; "not
# resolved at n" otherwise); verdicts.csv holds every number. The thresholds, and our readings of the
# paper's rules:

# %%
display(Markdown(report.thresholds_markdown(thr, nontrivial, alpha, exp.full_epochs or exp.epochs)))
display(Markdown(report.bullets(report.readings(exp))))
display(Markdown(R.reference_summary(reference, exp)))
display(report.table(report.verdict_view(v)) if len(v) else Markdown("No lottery-ticket run finished yet."))
display(HTML(report.details("The same verdicts as sentences", V.verdict_lines(v))))

# %% [markdown]
# ## Per network, in the form of the paper's Table 3
# Ours beside the paper's entry. "Candidate tickets" are those meeting ①; each "exists" answer gives
# how many candidates qualify by the means and how many stay supported after Holm's correction over
# all candidates (every condition's interval on the class's side of its threshold). "Prefers small
# LR?" compares the normal lr (`normal_lr`, else the largest) with the lr below it whose tickets reach
# the best class (on a tie, the one whose tickets have the higher mean accuracy), "prefers IMP?" IMP
# with OMP at matched tickets.

# %%
display(report.table(report.table3_view(t3)) if len(t3) else Markdown("No ticket verdicts yet."))

# %% [markdown]
# ## The sparse-training learning rate (the paper's Table 4)
# In a grid with `sparse_lrs` the dense model trains at the grid's lr (the *pretraining* lr) and every
# subnetwork run at each sparse-training lr. The paper's question: does a ticket's accuracy depend on the
# lr it is trained at, given the lr its mask was found at? Mean ± std over seeds (n); the paper's own
# numbers beside ours where SPEC section 6 has them (ResNet-20, CIFAR-10, s = 0.914).

# %%
t4, t4_note = R.sparse_lr_table(runs.counted, exp)
display(Markdown(t4_note) if len(t4) else Markdown("This grid trains every subnetwork at its dense model's lr "
                                                   "(no `sparse_lrs`): nothing to show here."))
if len(t4):
    display(report.table(t4))

# %% [markdown]
# ## LT − RR at the same learning rate
# The paired gap of each ticket over its RR at the same lr and sparsity, means and gap over the seeds
# both have (n), with the 95% interval and its words.

# %%
gaps = R.lt_rr_gaps(runs.counted, alpha)
display(report.table(gaps, ["lr", "family", "sparsity", "LT mean", "RR mean", "gap", "CI low", "CI high", "n",
                            "result", "note"]) if len(gaps) else Markdown("No LT/RR pair finished yet."))

# %% [markdown]
# ## LT − RR against training length
# The recipe variable the paper fixes (160 epochs on CIFAR). The pooled grids are those of
# `pool_grids` (by default every grid found under this output root with a params file in
# `params_dir`); of each, only
# the runs it counts under its own current parameters and with this grid's recipe except the learning
# rate, the number of epochs and the data order. The table lists exactly what was pooled. One panel per
# family and lr, one line per sparsity; bars are the paired confidence intervals.

# %%
display(report.table(pool.grids))
display(Markdown(report.bullets(pool_notes)))
lengths = R.length_table(pool.runs, alpha)
P.publish(P.plot_gap_vs_epochs(lengths, exp.data_order), figures, "gap_vs_epochs",
          "No LT/RR pair finished in the pooled grids yet.")

# %% [markdown]
# ## Data order: replay vs fresh
# Under `replay` (the official behaviour) an LT run retraces the dense run's data order while RR
# differs only in its init, so part of an LT advantage can come from that replay. Under `fresh`, LT
# and RR share a data order the dense run did not use. Both are shown side by side at every training
# length where pooled runs of both exist.

# %%
display(Markdown(f"This grid uses data order `{exp.data_order}`."))
P.publish(P.plot_data_order(lengths), figures, "data_order",
          "No pooled grid of this recipe with both data orders at one training length yet.")

# %% [markdown]
# ## The correlation indicator R_p (the paper's Figure 6)
# R_p(θ, θ') = Σ_l |T_p(θ^l) ∩ T_p(θ'^l)| / (p · Σ_l N_l), with T_p the positions of the top p·100% of
# the remaining weights of layer l by magnitude and N_l their number. It measures how much the largest
# weights of the trained dense model θT sit where the init has its largest weights, inside the LT-OMP
# mask m: R_p(θ0 ⊙ m, θT ⊙ m) for the ticket's own init, R_p(θ0' ⊙ m, θT ⊙ m) for RR's. R_p = p
# (dotted) is no correlation. θ0 and θT are the dense run's files, m the LT-OMP mask, θ0' ⊙ m the RR-OMP
# run's start; runs copied back without their weight files are skipped and listed.

# %%
rp_used, rp_note = R.nearest_omp_sparsity(runs.counted, rp_sparsity)
rp, rp_skipped = R.indicator_table(runs.counted, rp_used, rp_p)
display(Markdown(rp_note + (" Skipped: " + "; ".join(rp_skipped) if rp_skipped else "")))
P.publish(P.plot_correlation_indicator(rp), figures, "correlation_indicator", "No R_p measured.")

# %% [markdown]
# ## Training trajectories on the loss surface (the paper's Figures 4/5)
# A subnetwork's weights during training — θ0 ⊙ m (circle), the weights kept after evenly spaced epochs,
# θT (star) — projected on the first two principal directions of its own trajectory (centred on θT, over
# the weights its mask keeps), over filled contours of the training loss on that plane (log scale; a
# fixed stratified subset of training images, BatchNorm on the subset's batch statistics). LT-IMP vs
# LT-OMP at the grid's sparsity nearest `trajectory_sparsity`, at its smallest and largest lr, first seed.
# The axes give the share of the trajectory's variance each direction explains; a plane that explains
# little of it shows the path only roughly. Only runs of a grid with `trajectory_points` > 0 keep the
# weights this needs.

# %%
trajs, traj_notes = T.trajectories(runs.counted, exp, trajectory_grid, trajectory_images) if exp.trajectory_points \
    else ([], ["This grid keeps no trajectory weights (`trajectory_points: 0`): set `trajectory_points` (e.g. 10) "
               "in its params file to draw this figure; the runs it names train once more to keep them."])
display(Markdown(report.bullets(traj_notes)))
if trajs:
    display(report.table(T.table(trajs)))
P.publish(T.plot(trajs, registry.label) if trajs else None, figures, "trajectories", "No trajectory to draw.")

# %% [markdown]
# ## Layerwise sparsity of the masks
# Per prunable tensor: IMP vs OMP vs random masks at the grid's highest OMP sparsities (first lr and
# seed of the grid). The x axis is the model's pruning profile; the dashed line is the global sparsity.

# %%
table = R.layerwise_table(runs.counted, exp.lrs[0], exp.seeds[0], sorted(exp.sparsities)[-3:])
P.publish(P.plot_layerwise(table, f"{exp.model}, lr {exp.lrs[0]:g}, seed {exp.seeds[0]}, random masks: "
                                  f"{exp.random_mode}"), figures, "layerwise_sparsity", "No masks to compare yet.")

# %% [markdown]
# ## Initial vs trained weights (ours)
# For each dense run: the Pearson correlation of θ0 and θT per prunable layer and over all of them
# (a metric of ours, beside the paper's R_p above).

# %%
display(Markdown("Skipped (weights not readable): " + "; ".join(wc_skipped) if wc_skipped else
                 "No dense run was skipped."))
P.publish(P.plot_weight_correlation(wc), figures, "init_vs_trained", "No dense weights to compare.")

# %% [markdown]
# ## Scale and environment

# %%
display(Markdown(report.scale_markdown(exp, runs.counted)))

# %% [markdown]
# ## Which runs count
# Expected against counted runs per setting; a missing or unfinished run leaves a gap in the figures
# rather than failing the report.

# %%
display(report.table(report.completeness(exp, runs.counted, runs.unfinished, runs.not_counted)))
display(Markdown(report.not_counted_markdown(runs.not_counted)))
display(Markdown(report.bullets(runs.unfinished) or "No unfinished run."))

# %% [markdown]
# ## Where this project differs from the official code

# %%
display(Markdown(report.differences_markdown(exp)))
