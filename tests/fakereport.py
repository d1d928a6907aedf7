"""The analysis notebook (notebooks/analysis.py) executed in the test process on made-up runs and rendered
to HTML as make renders it, without a kernel or papermill: every code cell runs in one namespace, the
parameters injected after the parameters cell (as papermill does), and what a cell displays becomes
that cell's output with the MIME type a kernel would give it (HTML for tables, markdown, PNG for
figures). Fast enough for the default test run; ``figures=False`` skips drawing altogether."""
from __future__ import annotations

import base64
import contextlib
import io
from pathlib import Path
from unittest import mock

import jupytext
import nbformat

import lthlib
from fakeruns import fake_run
from lthlib import plots as P
from lthlib import report
from lthlib import settings as protocol

ROOT = Path(__file__).resolve().parent.parent

SMALL_GRID = """name: {name}
description: a small made-up grid for the report page tests
model: lenet5
dataset: fashion_mnist
n_train: 1000
n_test: 500
epochs: 10
full_epochs: 10
lrs: [0.1, 0.01]
seeds: [1, 2, 3]
imp_rounds: 2
sparsities: [0.36]
settings: [pretrain, lt_imp, rr_imp, lt_omp, rr_omp]
"""
SHIFT = {"pretrain": 0.0, "lt_imp": -0.3, "rr_imp": -1.5, "lt_omp": -0.6, "rr_omp": -1.4}


def small_grid(root, name: str = "small") -> Path:
    """params/<name>.yaml under ``root`` and every run of its plan finished under ``root/out`` (LeNet-5,
    two lrs, three seeds, IMP two rounds and OMP at 0.36; LT runs carry layer sparsities). Returns the
    params file."""
    params = Path(root) / "params" / f"{name}.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(SMALL_GRID.format(name=name))
    exp = lthlib.load(params, {"out_root": str(Path(root) / "out")})
    layers = {f"conv{i}.weight": 0.2 * i for i in (1, 2)} | {f"fc{i}.weight": 0.3 + 0.1 * i for i in (1, 2, 3)}
    for plan in protocol.grid_plans(exp):
        lr, seed = plan.cell.lr, plan.cell.seed
        acc = {0.1: 90.0, 0.01: 88.5}[lr] + SHIFT[plan.setting] - 2 * (plan.sparsity or 0) + 0.1 * seed
        fake_run(exp, plan.setting, lr, seed, round(acc, 3), sparsity=None if plan.round else plan.sparsity,
                 rnd=plan.round, layer_sparsity=layers if plan.setting.startswith("lt_") else None)
    return params


def _bundle(obj) -> dict:
    """The MIME bundle a kernel would send for ``obj`` (figures as the inline backend's PNG at 100 dpi)."""
    if isinstance(obj, P.plt.Figure):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return {"image/png": base64.b64encode(buf.getvalue()).decode()}
    for kind, method in (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_")):
        if hasattr(obj, method) and (text := getattr(obj, method)()) is not None:
            return {kind: text}
    return {"text/plain": repr(obj)}


def execute_analysis(params_file, params_dir, out_root, figures: bool = True, pool_grids=None, drawn=None):
    """Run every code cell of the analysis notebook on the grid of ``params_file``; returns the notebook
    with each cell's displayed outputs (and appends every figure shown to the list ``drawn``)."""
    import IPython.display
    nb = jupytext.read(ROOT / "notebooks" / "analysis.py")
    shown: list = []
    inject = {"params_file": str(params_file), "params_dir": str(params_dir), "pool_grids": pool_grids,
              "overrides": {"out_root": str(out_root)}}
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.chdir(ROOT))
        stack.enter_context(mock.patch.object(IPython.display, "display", lambda *objs, **kw: shown.extend(objs)))
        if not figures:
            for name in [n for n in dir(P) if n.startswith("plot_")]:
                stack.enter_context(mock.patch.object(P, name, lambda *a, **k: None))
        namespace: dict = {}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            exec(compile(cell.source, f"analysis.py cell {nb.cells.index(cell)}", "exec"), namespace)
            if "parameters" in cell.metadata.get("tags", []):
                namespace.update(inject)
            cell.outputs = [nbformat.v4.new_output("display_data", data=_bundle(obj)) for obj in shown]
            if drawn is not None:
                drawn.extend(obj for obj in shown if isinstance(obj, P.plt.Figure))
            shown.clear()
            P.plt.close("all")
    return nb


def render_analysis(params_file, params_dir, out_root, figures: bool = True, pool_grids=None, drawn=None) -> Path:
    """The analysis report of the grid of ``params_file`` at its place under ``out_root``
    (``<grid>/reports/analysis.html``, beside its tables and figures), and the index page."""
    exp = lthlib.load(params_file, {"out_root": str(out_root)})
    nb = execute_analysis(params_file, params_dir, out_root, figures, pool_grids, drawn)
    done = Path(out_root) / exp.name / "reports" / "analysis.ipynb"
    done.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(done))
    report.render(done, done.with_suffix(".html"))
    report.write_index(out_root)
    return done.with_suffix(".html")


def render_setting_page(out_root, grid: str, setting: str) -> Path:
    """A setting notebook's page as the index renders it (code shown): ``plots.show_runs`` over the
    grid's finished runs of ``setting`` (their history.csv made up, 10 epochs), at
    ``<grid>/notebooks/<setting>_all_cells.html``."""
    import IPython.display
    import pandas as pd
    from lthlib.runs import HISTORY_COLUMNS, RunDir
    runs = [RunDir(p) for p in sorted((Path(out_root) / grid / "runs").glob(f"{setting}-*"))]
    for i, rd in enumerate(runs):
        epochs = pd.Series(range(1, 11))
        history = pd.DataFrame({c: 0.0 for c in HISTORY_COLUMNS}, index=epochs.index)
        pd.DataFrame(history.assign(epoch=epochs, test_acc=60 + 3 * epochs - 0.2 * i, train_loss=2.0 / epochs)
                     ).to_csv(rd.history, index=False)
    shown: list = []
    with mock.patch.object(IPython.display, "display", lambda *objs, **kw: shown.extend(objs)):
        P.show_runs(runs, title=f"{setting}, every cell of grid {grid}")
    code = nbformat.v4.new_code_cell(f"plots.show_runs(runs, title='{setting}')",
                                     outputs=[nbformat.v4.new_output("display_data", data=_bundle(o)) for o in shown])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {setting} (made-up runs)"), code])
    done = Path(out_root) / grid / "notebooks" / f"{setting}_all_cells.ipynb"
    done.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(done))
    report.render(done, done.with_suffix(".html"), show_input=True)
    P.plt.close("all")
    return done.with_suffix(".html")
