"""Report rendering: the text blocks every analysis report carries (scale and environment, code versions,
runs not counted, completeness, where this project differs from the official code), the executed
notebook rendered to self-contained HTML, and the index page of every report and notebook (a jinja2
template). It takes tables, never reads run folders itself.

    python -m lthlib.report render NOTEBOOK.ipynb OUT.html [--show-input]
    python -m lthlib.report index [OUT_ROOT]
"""
from __future__ import annotations

import argparse
import platform
import re
import sys
from pathlib import Path

import pandas as pd

from . import registry
from .data import DATASETS
from .models import MODELS
from .runs import atomic_write_text, code_version, project_path

# SPEC section 7: each deliberate difference from the official code, stated in every report
DIFFERENCES = """\
| this project | the official code |
|---|---|
| prunes the **final-epoch** weights and reports **final-epoch** accuracy; best-epoch accuracy only as a labelled secondary number | prunes and reports the best-test-accuracy epoch (selects on the test set) |
| θ0 is a saved file (`init.pt` of the dense run) | "the same seed again", which gives different weights on different servers |
| separate init and data-order seeds; RR changes only the init, so LT vs RR is paired on the same data stream (`rr_changes_data: true` gives the official behaviour) | one seed changes both |
| every prunable tensor is masked at every step, whatever its sparsity | tensors under 10% sparsity are skipped and trained dense |
| no end-of-run re-pruning, no crash at the end of pretraining | hard-prunes every layer to >= 50% / 90% after the last epoch; pretraining crashes at its end |
| per-layer cap of 0.99 sparsity as a recorded parameter (`prune_cap`) | a fixed cap in code |
"""
DATA_ORDER = {"replay": "replay: LT runs retrace the dense run's data order (the official behaviour)",
              "fresh": "fresh: LT and RR share a data order the dense run did not use"}


def bullets(lines) -> str:
    """Lines as a markdown list."""
    return "\n".join(f"- {line}" for line in lines)


# ----------------------------------------------------------------------------- completeness
def expected_counts(exp) -> dict:
    """How many runs of each setting a complete grid holds (from the registry)."""
    cells = len(exp.lrs) * len(exp.seeds)
    return {s.name: cells * s.runs_per_cell(exp) for s in registry.SETTINGS if s.name in exp.settings}


def completeness(exp, counted: pd.DataFrame, unfinished: list[str], not_counted: pd.DataFrame | None = None):
    """Per setting: runs a complete grid holds, counted (current) runs, runs not counted (made with other
    parameters), unfinished (started) ones and the missing count."""
    def per_setting(df):
        return df["setting"].value_counts().to_dict() if df is not None and len(df) else {}
    found, stale = per_setting(counted), per_setting(not_counted)
    rows = []
    for s, n in expected_counts(exp).items():
        rows.append({"setting": registry.label(s), "expected runs": n, "counted": found.get(s, 0),
                     "not counted (other parameters)": stale.get(s, 0),
                     "unfinished (started)": sum(u.startswith(s + "-") for u in unfinished),
                     "missing": max(0, n - found.get(s, 0))})
    return pd.DataFrame(rows)


def not_counted_markdown(not_counted: pd.DataFrame) -> str:
    """The runs of the grid left out of every number, with the fields that differ."""
    if not len(not_counted):
        return "Every finished run of this grid matches its current parameters: all are counted."
    lines = [f"**{len(not_counted)} finished run(s) not counted**: made with other parameters than the grid's "
             f"current ones (the fields that differ: the run's value, then the grid's).", "",
             "| run | differs |", "|---|---|"]
    lines += [f"| `{r['run']}` | {r['differs']} |" for r in not_counted.to_dict("records")]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- scale and environment
def code_versions(df: pd.DataFrame) -> str:
    """The code versions the counted runs come from, flagging a mix."""
    counts = df["code_version"].fillna("unknown").value_counts() if len(df) else pd.Series(dtype=int)
    listed = ", ".join(f"`{v}` ({n} runs)" for v, n in counts.items()) or "no runs"
    mix = " — **mixed: the counted runs come from more than one code version**" if len(counts) > 1 else ""
    return f"runs: {listed}{mix}; this report: `{code_version()}`"


def _scale_warning(exp, n_train: int) -> str:
    data = DATASETS[exp.dataset]
    full = data.train_size
    reasons = [f"a {n_train:,}-image subset of {full:,}" if n_train < full else "",
               f"{exp.epochs} epochs (the paper's schedule: {data.paper_epochs})"
               if exp.epochs < data.paper_epochs else "",
               f"`{exp.model}`, not one of the paper's models" if not MODELS[exp.model].in_paper else "",
               f"`{exp.dataset}`, not one of the paper's datasets" if not data.in_paper else ""]
    reasons = [r for r in reasons if r]
    if not reasons:
        return ""
    return (f"\n\n> **Scale warning:** reduced scale ({'; '.join(reasons)}). Its numbers illustrate the "
            f"pipeline and the *direction* of effects; they are not the paper's numbers.")


def scale_markdown(exp, df: pd.DataFrame) -> str:
    """The grid's scale, recipe, data order, random-pruning mode, environment and code versions."""
    dev = ", ".join(sorted(df["device"].dropna().astype(str).unique())) if len(df) else "n/a"
    thr = ", ".join(str(int(t)) for t in sorted(df["threads"].dropna().unique())) if len(df) else "n/a"
    n_train = int(df["n_train"].max()) if len(df) and df["n_train"].notna().any() else exp.n_train
    n_test = int(df["n_test"].max()) if len(df) and df["n_test"].notna().any() else exp.n_test
    full = DATASETS[exp.dataset].train_size
    subset = f" (stratified subset of {full:,})" if full and n_train and n_train < full else ""
    import torch
    return (f"**Grid** `{exp.name}` — {exp.description}\n\n| | |\n|---|---|\n| model | `{exp.model}` |\n"
            f"| dataset | `{exp.dataset}`: {n_train:,} training images{subset}, {n_test:,} test images |\n"
            f"| recipe | {exp.epochs} epochs (C3's full schedule: {exp.full_epochs or exp.epochs}), batch "
            f"{exp.batch_size}, SGD momentum {exp.momentum}, wd {exp.weight_decay}, {exp.lr_schedule} LR "
            f"(milestones {exp.milestones}), lrs {exp.lrs} |\n"
            f"| seeds | {exp.seeds} (RR init seed = seed + {exp.rr_seed_offset}) |\n"
            f"| data order | {DATA_ORDER[exp.data_order]} |\n"
            f"| pruning | global magnitude over the profile, IMP {exp.imp_rounds} rounds of {exp.imp_rate:.0%}, "
            f"OMP at {exp.sparsities}, layer cap {exp.prune_cap} |\n"
            f"| random pruning | `random_mode: {exp.random_mode}` |\n"
            f"| environment | torch {torch.__version__}, Python {platform.python_version()}, device {dev}, "
            f"threads {thr} |\n| code version | {code_versions(df)} |" + _scale_warning(exp, n_train or 0))


# ----------------------------------------------------------------------------- HTML
def render(ipynb, html_path, show_input: bool = False) -> None:
    """Render an executed notebook to self-contained HTML (figures embedded), inputs hidden by default."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(exclude_input=not show_input, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    # self-contained and offline: drop the CDN scripts (require.js, MathJax) the template links
    body = re.sub(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', "", body)
    atomic_write_text(html_path, body)


INDEX_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8">
<title>Lottery-ticket sanity checks: reports</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
li.failed a{color:#b00} li.unreadable{color:#b00} ul{columns:2}</style></head><body>
<h1>Lottery-ticket sanity checks &mdash; reports</h1>
<p>Code version {{ version }}. Each grid: its analysis report, then every executed setting notebook
(failed ones in red; an unreadable notebook is named with the reason).</p>
{% for grid in grids %}<h2>{{ grid.name }}</h2><ul>
{% if grid.report %}<li><a href="../{{ grid.name }}/reports/analysis.html"><b>analysis report</b></a></li>{% endif %}
{% for nb in grid.notebooks %}{% if nb.error %}<li class="unreadable">{{ nb.stem }}: unreadable ({{ nb.error }})</li>
{% else %}<li{% if nb.failed %} class="failed"{% endif %}><a href="../{{ grid.name }}/notebooks/{{ nb.page }}">{{ nb.stem }}</a></li>
{% endif %}{% endfor %}{% if not grid.report and not grid.notebooks %}<li>nothing yet</li>{% endif %}</ul>
{% else %}<p>No runs yet: run <code>make demo</code>.</p>{% endfor %}
</body></html>
"""


def _notebook_entry(nb: Path) -> dict:
    """One executed notebook for the index, rendered to HTML beside it when missing or stale; a corrupt
    or truncated notebook is listed as unreadable instead of stopping the index."""
    page = nb.with_suffix(".html")
    entry = {"stem": nb.stem, "page": page.name, "failed": nb.name.endswith(".failed.ipynb"), "error": None}
    try:
        if not page.exists() or page.stat().st_mtime < nb.stat().st_mtime:
            render(nb, page, show_input=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable notebook: name it, go on
        entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return entry


def write_index(out_root="outputs") -> Path:
    """OUT_ROOT/reports/index.html: every grid's report and every executed setting notebook."""
    import jinja2
    root = project_path(out_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such output folder; run a grid first (make demo) or pass the "
                                f"output root that holds the grids")
    grids = []
    for grid_dir in sorted(p for p in root.iterdir() if (p / "notebooks").is_dir() or (p / "reports").is_dir()):
        notebooks = [_notebook_entry(nb) for nb in sorted((grid_dir / "notebooks").glob("*.ipynb"))
                     if ".tmp" not in nb.name]
        grids.append({"name": grid_dir.name, "report": (grid_dir / "reports" / "analysis.html").exists(),
                      "notebooks": notebooks})
    page = jinja2.Environment(autoescape=True).from_string(INDEX_TEMPLATE).render(version=code_version(),
                                                                                  grids=grids)
    path = root / "reports" / "index.html"
    atomic_write_text(path, page)
    return path


def main(argv=None, prog: str = "python -m lthlib.report") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Render an analysis notebook to HTML, or build the "
                                 "index page of every report and executed notebook.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="an executed notebook to self-contained HTML")
    r.add_argument("notebook")
    r.add_argument("html")
    r.add_argument("--show-input", action="store_true", help="keep the code cells")
    i = sub.add_parser("index", help="OUT_ROOT/reports/index.html")
    i.add_argument("out_root", nargs="?", default="outputs")
    a = ap.parse_args(argv)
    try:
        if a.command == "render":
            render(a.notebook, a.html, a.show_input)
            print(a.html)
        else:
            print(write_index(a.out_root))
    except Exception as exc:  # noqa: BLE001 -- one line naming the file, no traceback
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if a.command == "render":
            msg = (f"{a.notebook}: cannot render it ({type(exc).__name__}: {msg}). Execute the notebook "
                   f"again (make report) and retry.")
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DIFFERENCES", "bullets", "expected_counts", "completeness", "not_counted_markdown", "code_versions",
           "scale_markdown", "render", "write_index", "main"]
