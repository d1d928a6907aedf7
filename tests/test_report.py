"""The report's text blocks, figures, HTML index and command line."""
import importlib.util
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fakeruns import experiment, fake_run, lt_rr_grid, stale_copy
from lthlib import plots as P
from lthlib import report
from lthlib import results as R

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- text blocks
def test_completeness_counts_only_current_runs(tmp_path):
    exp = experiment(tmp_path, imp_rounds=2, sparsities=[0.5])
    lt_rr_grid(exp, gap=1.0)
    stale_copy(next((tmp_path / "g" / "runs").glob("pretrain-*-lr0.1-s1-*")), acc=10.0, momentum=0.5)
    (tmp_path / "g" / "runs" / "lt_omp-lenet5-half").mkdir()
    c = R.gather(exp)
    t = report.completeness(exp, c.counted, c.unfinished, c.not_counted).set_index("setting")
    assert t.loc["dense", "counted"] == 6 and t.loc["dense", "not counted (other parameters)"] == 1
    assert t.loc["dense", "missing"] == 0 and t.loc["LT-IMP", "expected runs"] == 12
    assert t.loc["LT-OMP", "missing"] == 6 and t.loc["LT-OMP", "unfinished (started)"] == 1
    text = report.not_counted_markdown(c.not_counted)
    assert "1 finished run(s) not counted" in text and "momentum: 0.5 (now 0.9)" in text


def test_scale_block_names_data_order_random_mode_and_a_code_version_mix(tmp_path):
    exp = experiment(tmp_path, random_mode="global", data_order="fresh", full_epochs=160)
    fake_run(exp, "pretrain", 0.1, 1, 90.0, code="v1")
    fake_run(exp, "pretrain", 0.1, 2, 90.0, code="v2")
    text = report.scale_markdown(exp, R.gather(exp).counted)
    assert "`random_mode: global`" in text and "fresh: LT and RR share a data order" in text
    assert "`v1` (1 runs), `v2` (1 runs)" in text and "mixed" in text and "C3's full schedule: 160" in text
    assert "Scale warning" in text and "10 epochs" in text
    one = report.code_versions(R.gather(exp).counted.iloc[:1])
    assert "mixed" not in one


def test_differences_table_covers_spec_section_7():
    for words in ("final-epoch", "θ0 is a saved file", "separate init and data-order seeds", "10% sparsity",
                  "re-pruning", "crash"):
        assert words in report.DIFFERENCES


# ----------------------------------------------------------------------------- figures
def test_accuracy_figure_draws_c3s_reference_or_says_it_is_missing(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=1.0)
    df = R.gather(exp).counted
    fig = P.plot_accuracy_vs_sparsity(df, {"lr": 0.1, "epochs": 160, "mean": 93.0})
    P.save_figure(fig, tmp_path / "fig", "acc")
    assert (tmp_path / "fig" / "acc.png").stat().st_size > 10_000 and (tmp_path / "fig" / "acc.svg").exists()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("LT-IMP (n=3)" in s for s in labels) and any("dense, lr 0.1" in s for s in labels)
    assert any("full 160-epoch schedule (93.00%)" in s for s in labels)
    missing = P.plot_accuracy_vs_sparsity(df, None)
    assert not any("best lr" in t.get_text() for t in missing.axes[0].get_legend().get_texts())
    assert any("C3 reference" in t.get_text() and "missing" in t.get_text() for t in missing.axes[0].texts)


def test_length_and_data_order_figures(tmp_path):
    for name, epochs, order in (("e10", 10, "replay"), ("e40", 40, "replay"), ("e10f", 10, "fresh")):
        lt_rr_grid(experiment(tmp_path, name=name, epochs=epochs, data_order=order), gap=1.0)
    exp = experiment(tmp_path, name="e10")
    t = R.length_table(R.gather(exp).everything, exp)
    fig = P.plot_gap_vs_epochs(t, "replay")
    assert len(fig.axes) == 2 and [int(x) for x in fig.axes[0].get_xticks()] == [10, 40]
    assert {s.get_text() for s in fig.axes[0].get_legend().get_texts()} == {"sparsity 0.200", "sparsity 0.360"}
    order = P.plot_data_order(t)
    assert {s.get_text() for s in order.axes[0].get_legend().get_texts()} == {"fresh", "replay"}
    assert P.plot_data_order(t[t["data_order"] == "replay"]) is None
    assert P.plot_gap_vs_epochs(t.iloc[:0]) is None


# ----------------------------------------------------------------------------- HTML and command line
def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# hello")])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_index_lists_reports_notebooks_and_unreadable_ones(tmp_path):
    nbs = tmp_path / "g" / "notebooks"
    _notebook(nbs / "pretrain_lr0.1_s1.ipynb")
    (nbs / "lt_imp_lr0.1_s1.failed.ipynb").write_text('{"cells": [')  # truncated
    (nbs / "lt_omp_lr0.1_s1.ipynb").write_text("")
    (tmp_path / "g" / "reports").mkdir()
    (tmp_path / "g" / "reports" / "analysis.html").write_text("<html></html>")
    page = report.write_index(tmp_path).read_text()
    assert 'href="../g/reports/analysis.html"' in page and 'href="../g/notebooks/pretrain_lr0.1_s1.html"' in page
    assert (nbs / "pretrain_lr0.1_s1.html").exists()
    assert page.count('class="unreadable"') == 2 and "lt_imp_lr0.1_s1.failed: unreadable" in page


def test_index_of_a_missing_folder_is_one_line_naming_it(tmp_path, capsys):
    assert report.main(["index", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err and "Traceback" not in err


def test_render_of_a_corrupt_notebook_names_it(tmp_path, capsys):
    bad = tmp_path / "analysis.ipynb"
    bad.write_text("{")
    assert R.main(["render", str(bad), str(tmp_path / "a.html")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Execute the notebook again" in err and not (tmp_path / "a.html").exists()


def test_results_command_line_help_exits_0(capsys):
    with pytest.raises(SystemExit) as done:
        R.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "usage: python -m lthlib.results" in out and "render" in out and "index" in out


def test_render_keeps_the_report_offline(tmp_path):
    _notebook(tmp_path / "a.ipynb")
    report.render(tmp_path / "a.ipynb", tmp_path / "a.html")
    html = (tmp_path / "a.html").read_text()
    assert "hello" in html and 'src="http' not in html


def test_code_versions_of_no_runs():
    assert report.code_versions(pd.DataFrame(columns=["code_version"])).startswith("runs: no runs")


def test_check_report_wants_the_premise_before_the_verdicts():
    spec = importlib.util.spec_from_file_location("check_report", ROOT / "scripts" / "check_report.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.section_order("Premise check ... Winning-ticket verdicts ...") is None
    assert check.section_order("Winning-ticket verdicts ... Premise check") == "verdicts come before the premise check"
    assert check.section_order("Winning-ticket verdicts") == "no premise check"
