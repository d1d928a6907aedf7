"""The report pages as a reader gets them: the analysis notebook run on made-up runs (in this process,
tests/fakereport.py) and rendered to HTML has tables a reader can take in -- no elided ('...') cell, no
more than ``report.MAX_TABLE_COLUMNS`` columns -- a title naming its grid, and local links that resolve;
the same page opened in headless Chromium at 1280 px (scripts/check_report.py) when chromium and
playwright are installed."""
import importlib.util
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fakereport import render_analysis, render_setting_page, small_grid
from lthlib import plots as P
from lthlib import report

ROOT = Path(__file__).resolve().parent.parent


def _check_report():
    spec = importlib.util.spec_from_file_location("check_report", ROOT / "scripts" / "check_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the table check itself
def test_table_problems_finds_elided_and_too_wide_tables():
    wide = pd.DataFrame([[1.0] * 30], columns=[f"c{i}" for i in range(30)])
    with pd.option_context("display.max_columns", 20):
        raw = wide._repr_html_()  # what a raw DataFrame shows in a notebook: 20 of 30 columns and '...'
    problems = report.table_problems(raw)
    assert any("elided" in p for p in problems) and any("columns, more than 13" in p for p in problems)
    assert report.table_problems(report.table(wide, [f"c{i}" for i in range(13)]).to_html()) == []
    assert any("14 columns" in p for p in report.table_problems(report.table(wide.iloc[:, :14]).to_html()))
    spanned = "<table><tr><th colspan='12'>a</th><th colspan='2'>b</th></tr><tr><td>…</td></tr></table>"
    assert report.table_problems(spanned) == ["table 1 (a, b, …): 14 columns, more than 13",
                                              "table 1 (a, b, …): elided ('...' cells)"]
    assert report.table_problems("<p>no table</p>") == []
    accuracy = pd.DataFrame({"run": ["lt_imp-r01"], "final test acc (%)": [77.76000213623047], "lr": [0.00025]})
    assert report.table_problems(accuracy.to_html()) == ["table 1 (run, final test acc (%), lr): float noise "
                                                         "(77.760002)"]
    assert report.table_problems(report.table(accuracy).to_html()) == []  # 77.76, lr 0.00025


# ----------------------------------------------------------------------------- a whole report, no browser
@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The analysis report of a small made-up grid, rendered without figures (tables and text only)."""
    root = tmp_path_factory.mktemp("pages")
    params = small_grid(root)
    return render_analysis(params, root / "params", root / "out", figures=False)


def test_every_table_of_the_report_can_be_read(page):
    text = page.read_text()
    assert text.count("<table") >= 6  # dense, verdicts, Table 3, LT - RR, pooled grids, completeness ...
    assert report.table_problems(text) == []
    verdicts = text[text.index("Ticket verdicts"):]
    assert "③ LT − best RR" in verdicts and "best RR (%)" in verdicts and "✓" in verdicts


def test_the_report_names_its_grid_and_its_links_resolve(page):
    text = page.read_text()
    assert "<title>small: analysis report</title>" in text and "**Grid" not in text
    assert "Grid <code>small</code>" in text
    hrefs = re.findall(r'href="([^"#][^"]*)"', text)
    local = [h for h in hrefs if not h.startswith(("http:", "https:", "data:"))]
    assert {"../results.csv", "verdicts.csv", "../../reports/index.html"} <= set(local)
    assert _check_report().broken_links(page, local) == []
    index = (page.parents[2] / "reports" / "index.html").read_text()
    assert 'href="../small/results.csv"' in index and 'href="../small/reports/verdicts.csv"' in index
    assert "reports of small</title>" in index


# ----------------------------------------------------------------------------- the same in Chromium
def _browser_ready() -> bool:
    return bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists()) and \
        importlib.util.find_spec("playwright") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _browser_ready(), reason="needs Debian's chromium and the playwright package "
                                                 "(make check-report installs both)")
def test_the_report_at_1280_px_in_chromium(tmp_path, capsys):
    """make check-report on a made-up grid with its figures (none with a legend over its data): every page
    passes and has its screenshot."""
    params = small_grid(tmp_path)
    render_setting_page(tmp_path / "out", "small", "lt_omp")
    drawn = []
    render_analysis(params, tmp_path / "params", tmp_path / "out", drawn=drawn)
    assert len(drawn) >= 3 and all(P.legend_overlaps(fig) == [] for fig in drawn)  # the notebook's own figures
    assert _check_report().main(str(tmp_path / "out")) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert re.search(r"ok +\S+analysis\.html +width=1280px", out) and "FAIL" not in out
    assert re.search(r"ok +\S+lt_omp_all_cells\.html +width=1280px \(viewport 1280\) tables=1 figures=2", out)
    shots = {p.name for p in (tmp_path / "out" / "reports" / "screenshots").iterdir()}
    assert shots == {"reports_index.png", "small_reports_analysis.png", "small_notebooks_lt_omp_all_cells.png"}


def test_the_browser_check_fails_a_page_wider_than_1280_px_a_cut_table_and_a_shrunken_figure(tmp_path):
    check = _check_report()
    fine = {"page": 1280, "tables": [{"width": 900, "room": 1234, "right": 923, "head": "lr family"}],
            "figures": [{"done": True, "natural": 1200, "shown": 1200, "right": 1223}], "links": []}
    assert check.layout_problems(fine) == []
    wide = {**fine, "page": 1500, "tables": [{"width": 1400, "room": 1234, "right": 1423, "head": "lr family"}]}
    assert check.layout_problems(wide) == ["the page is 1500 px wide, more than 1280",
                                           "table 1 (lr family) is 1400 px wide in 1234 px"]
    shrunk = {**fine, "figures": [{"done": True, "natural": 2400, "shown": 1234, "right": 1257},
                                  {"done": False, "natural": 0, "shown": 0, "right": 0}]}
    assert check.layout_problems(shrunk) == ["figure 1 is 2400 px wide, shown at 1234 px", "figure 2 did not load"]
    (tmp_path / "verdicts.csv").write_text("x")
    page = tmp_path / "analysis.html"
    assert check.broken_links(page, ["verdicts.csv", "../results.csv", "#premise", "https://example.org/x",
                                     (tmp_path / "verdicts.csv").as_uri()]) == ["../results.csv"]
