"""The output layout, in one place: where every file the project writes lands under an output root.

    <out_root>/<grid>/runs/<run name>/          one training run (``lthlib.runs.RunDir``: its files)
    <out_root>/<grid>/notebooks/<setting>_lr<lr>_s<seed>.ipynb (+ .params.yaml, .failed.ipynb, .html)
    <out_root>/<grid>/reports/analysis.{ipynb,html,params.yaml}, figures/, verdicts.csv
    <out_root>/<grid>/results.csv, <out_root>/<grid>/plan.mk
    <out_root>/results.csv, <out_root>/reports/index.html, <out_root>/bench/rates.json
    <out_root>/.nbsrc/                           notebooks converted from notebooks/*.py (make)

A run's name is ``<setting>-<model>-<dataset>-lr<lr>-s<seed>[-rNN|-spS.SSS]-<hash of its identity>``.
The Makefile spells the same paths for make's targets.
"""
from __future__ import annotations

from pathlib import Path

from .runs import fmt_num, project_path

NBSRC = ".nbsrc"


def root(out_root) -> Path:
    return project_path(out_root)


def grid_dir(out_root, grid: str) -> Path:
    return root(out_root) / grid


def _under_grid(*parts: str):
    """A function (out_root, grid) -> the path ``parts`` under the grid's folder."""
    return lambda out_root, grid: grid_dir(out_root, grid).joinpath(*parts)


runs_dir = _under_grid("runs")
notebooks_dir = _under_grid("notebooks")
reports_dir = _under_grid("reports")
figures_dir = _under_grid("reports", "figures")
grid_results = _under_grid("results.csv")
verdicts_csv = _under_grid("reports", "verdicts.csv")
plan_file = _under_grid("plan.mk")


def all_results(out_root) -> Path:
    return root(out_root) / "results.csv"


def index_page(out_root) -> Path:
    return root(out_root) / "reports" / "index.html"


def bench_rates(out_root) -> Path:
    return root(out_root) / "bench" / "rates.json"


def run_name(setting: str, model: str, dataset: str, lr: float, seed: int, round_: int | None,
             sparsity: float | None, digest: str) -> str:
    parts = [setting, model, dataset, f"lr{fmt_num(lr)}", f"s{seed}"]
    if round_ is not None:
        parts.append(f"r{round_:02d}")
    elif sparsity is not None:
        parts.append(f"sp{sparsity:.3f}")
    return f"{'-'.join(parts)}-{digest}"


def notebook_stem(setting: str, lr_text: str | None, seed: int | None) -> str:
    """An executed setting notebook's name without suffix (``lr_text``: the lr as target names write it);
    a notebook running every cell of the grid (``notebooks: per_setting``) is named by its setting."""
    return f"{setting}_all_cells" if lr_text is None else f"{setting}_lr{lr_text}_s{seed}"


__all__ = ["NBSRC", "root", "grid_dir", "runs_dir", "notebooks_dir", "reports_dir", "figures_dir", "grid_results",
           "verdicts_csv", "all_results", "index_page", "bench_rates", "plan_file", "run_name", "notebook_stem"]
