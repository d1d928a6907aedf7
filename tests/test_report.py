"""The report's text blocks, figures, HTML index and command line."""
import importlib.util
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fakeruns import experiment, fake_run, lt_rr_grid, stale_copy
from lthlib import plots as P
from lthlib import registry, report
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
    assert "`v1` (1 runs), `v2` (1 runs)" in text and "mixed" in text and "the full schedule ① and ⑤ ask for: 160" in text
    assert "Scale warning" in text and "10 epochs" in text
    one = report.code_versions(R.gather(exp).counted.iloc[:1])
    assert "mixed" not in one


def test_the_environment_says_which_precision_the_convolutions_used(tmp_path):
    """On CUDA "fp32" convolutions run in TF32 unless deterministic: true; config.json records which."""
    exp = experiment(tmp_path)
    fake_run(exp, "pretrain", 0.1, 1, 90.0, device="cuda:0", tf32=True)
    fake_run(exp, "pretrain", 0.1, 2, 90.0, device="cuda:0", tf32=False)
    fake_run(exp, "pretrain", 0.1, 3, 90.0, device="cpu")
    fake_run(exp, "pretrain", 0.01, 1, 90.0, device="cuda", tf32=None)
    df = R.gather(exp).counted
    text = report.conv_precision(df)
    assert "TF32 convolutions (CUDA default; `deterministic: false`) (1 runs)" in text
    assert "exact fp32 convolutions (`deterministic: true`) (1 runs)" in text and "exact fp32 (CPU) (1 runs)" in text
    assert "TF32 switch not recorded" in text and "mixed" in text
    assert "| convolution precision | " in report.scale_markdown(exp, df)
    assert report.conv_precision(df[df["device"] == "cpu"]) == "exact fp32 (CPU) (1 runs)"
    assert report.conv_precision(df.assign(amp="bf16")).startswith("bf16 autocast (mixed precision) (4 runs)")


def test_differences_table_covers_spec_section_7():
    for words in ("final-epoch", "θ0 is a saved file", "separate init and data-order seeds", "10% sparsity",
                  "re-pruning", "crash"):
        assert words in report.DIFFERENCES


def test_an_imagenet_report_names_the_recipes_choices(tmp_path):
    cifar = experiment(tmp_path)
    assert report.differences_markdown(cifar) == report.DIFFERENCES
    imagenet = report.differences_markdown(cifar.replace(dataset="imagenet", model="resnet50"))
    assert imagenet.startswith(report.DIFFERENCES)
    for words in ("whole global batch of 1,024", "normalizes each GPU's own 128 images", "stepped **every iteration**",
                  "mixup under DDP", "one mixing weight λ per global batch"):
        assert words in imagenet, words


def test_tables_for_reading_have_no_index_and_two_decimals():
    df = pd.DataFrame({"lr": [0.1, 0.01], "sparsity": [0.832, 0.59], "mean": [91.23456, float("nan")], "x": 1})
    html = report.table(df, ["lr", "sparsity", "mean"], {"mean": "accuracy"}).to_html()
    assert "91.23" in html and "91.235" not in html and "0.832" in html and "0.590" in html and ">0.01<" in html
    assert "accuracy" in html and ">x<" not in html and "–" in html
    assert "row_heading" not in html and "blank level0" not in html
    text = report.table(df.assign(note="words"), ["lr", "note"]).to_html()
    assert re.search(r"\.col1 \{\s*text-align: left;", text) and ".col0 {" not in text  # text left, numbers right


# ----------------------------------------------------------------------------- verdicts in the report
def _ticket_runs(tmp_path, epochs=160, sparsity=0.832, **kw):
    exp = experiment(tmp_path, epochs=epochs, sparsities=[sparsity], settings=["pretrain", "lt_omp", "rr_omp"], **kw)
    for i, s in enumerate(exp.seeds):
        for lr, dense, lt in ((0.1, 92.0, 90.0), (0.01, 90.0, 89.8)):
            fake_run(exp, "pretrain", lr, s, dense + 0.1 * i)
            fake_run(exp, "lt_omp", lr, s, lt + 0.2 * i, sparsity=sparsity)
            fake_run(exp, "rr_omp", lr, s, lt - 2.0 + 0.1 * i, sparsity=sparsity)
    c = R.gather(exp)
    ref = R.best_dense_full_schedule(c.everything, exp)
    v = R.ticket_verdicts(c.counted, ref, exp)
    return exp, c, ref, v, R.ticket_summary(v, c.counted)


def test_verdict_view_shows_the_numbers_and_marks_and_table3_view_sits_beside_the_paper(tmp_path):
    exp, c, ref, v, t3 = _ticket_runs(tmp_path)
    view = report.verdict_view(v)
    assert list(view.columns) == ["family", "sparsity", "lr", "LT (%)", "seeds", "①", "② LT − SDT", "best RR (%)",
                                  "③ LT − best RR", "④ LT − dense", "⑤ LT − best dense", "class", "at the boundary"]
    assert len(view.columns) <= report.MAX_TABLE_COLUMNS
    row = view.set_index("lr").loc[0.01]
    assert row["class"] == "not evaluated" and row["② LT − SDT"] == "–"  # no SDT runs: ② not evaluated
    assert row["①"] == "✓" and row["at the boundary"] == "–" and row["LT (%)"] == pytest.approx(90.0)
    assert row["best RR (%)"] == "88.10 (lr 0.1)" and row["③ LT − best RR"] == "+1.90 ✓"
    assert row["④ LT − dense"] == "-0.10 ✓" and row["⑤ LT − best dense"] == "-2.10 ✗"
    assert view.set_index("lr").loc[0.1, "④ LT − dense"] == "-1.90 ✗"
    html = report.table(view).to_html()
    assert "✓ the condition holds" in html and "verdicts.csv" in html and "<caption>" in html
    t = report.table3_view(t3).iloc[0]
    assert t["candidate tickets (①)"] == 2 and t["Jackpot?"].startswith("not evaluated: 0 of 2 candidate tickets")
    assert "after Holm" in t["secondary prize?"] and t["the paper (Table 3)"].startswith("not in the paper")


def test_the_headline_says_what_was_found_in_the_papers_terms(tmp_path):
    exp, c, ref, v, t3 = _ticket_runs(tmp_path)
    text = report.headline(exp, v, t3, ["**Premise holds** for x."], c.counted)
    assert "**lenet5 / fashion_mnist**: Jackpot tickets: **not evaluated** (0 of 2 candidate tickets" in text
    assert "1 candidates are no ticket (④ fails at 1)" in text and "not evaluated: ② at 1 (no SDT runs" in text
    assert "- **Premise holds** for x." in text and "Scale warning" in text
    assert text.startswith("**Grid `g`**\n\n- **lenet5") and text.index("Grid") < text.index("Jackpot")
    exp2, c2, _, v2, t32 = _ticket_runs(tmp_path / "short", epochs=10, full_epochs=160)
    short = report.headline(exp2, v2, t32, [], c2.counted)
    assert "**no candidate ticket** — every ticket fails ① (trained 10 epochs where the full schedule is 160)" in short
    none = report.headline(exp2, v2.iloc[:0], pd.DataFrame(), [], c2.counted)
    assert "No ticket verdicts yet" in none


def test_thresholds_are_stated_with_where_they_come_from():
    from lthlib import verdicts as V
    text = report.thresholds_markdown(V.thresholds("fashion_mnist"), 0.6, 0.05, 160)
    assert "fashion_mnist is not in the paper: CIFAR-10's thresholds are used" in text
    assert "② has no number in the paper: the clear gap is used" in text and "≥ 160 epochs" in text
    assert "s ≥ 0.6" in text and "alpha = 0.05" in text and "Holm" in text
    assert "<summary>x</summary>" in report.details("x", ["a < b"]) and "a &lt; b" in report.details("x", ["a < b"])


# ----------------------------------------------------------------------------- figures
def _labels(fig):
    return [t.get_text() for lg in fig.legends for t in lg.get_texts()]


def test_accuracy_figure_draws_the_best_dense_model_or_says_it_is_missing(tmp_path):
    exp = experiment(tmp_path)
    lt_rr_grid(exp, gap=1.0)
    df = R.gather(exp).counted
    fig = P.plot_accuracy_vs_sparsity(df, {"lr": 0.1, "epochs": 160, "mean": 93.0})
    P.save_figure(fig, tmp_path / "fig", "acc")
    assert (tmp_path / "fig" / "acc.png").stat().st_size > 10_000 and (tmp_path / "fig" / "acc.svg").exists()
    labels = _labels(fig)
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, below the panels
    assert any("LT-IMP (n=3)" in s for s in labels) and any("dense, lr 0.1" in s for s in labels)
    assert any("full 160-epoch schedule (93.00%)" in s for s in labels)
    missing = P.plot_accuracy_vs_sparsity(df, None)
    assert not any("best dense" in s for s in _labels(missing))
    assert any("best dense model (full schedule) missing" in t.get_text() for t in missing.axes[0].texts)


def test_accuracy_vs_lr_has_a_panel_per_sparsity_and_skips_settings_the_registry_lacks(tmp_path):
    exp = experiment(tmp_path, imp_rounds=2, sparsities=[0.36])
    lt_rr_grid(exp, gap=1.0)
    for s in exp.seeds:
        for lr in exp.lrs:
            fake_run(exp, "lt_omp", lr, s, 88.0, sparsity=0.36)
            fake_run(exp, "rr_omp", lr, s, 87.0, sparsity=0.36)
    df = R.gather(exp).counted
    extra = df[df["setting"] == "rr_omp"].assign(setting="sdt", final_acc=80.0)  # drawn once the registry has it
    df = pd.concat([df, extra, extra.assign(setting="no_such_setting")], ignore_index=True)
    sparsities = P.lr_panel_sparsities(df, exp.sparsities)
    assert sparsities == [0.36] and P.lr_panel_sparsities(df, []) == [0.2, 0.36]
    fig = P.plot_accuracy_vs_lr(df, [0.2, 0.36], {"lr": 0.1, "epochs": 10, "mean": 90.0}, similar=0.5)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2 and [ax.get_title() for ax in visible] == ["sparsity 0.200", "sparsity 0.360"]
    assert visible[0].get_xscale() == "log" and all(ax.get_legend() is None for ax in fig.axes)
    labels = _labels(fig)
    drawn = {"dense (pretraining)", "LT-IMP", "RR-IMP", "LT-OMP", "RR-OMP"}
    assert drawn <= set(labels) and "'similar' band: within 0.5 points below the best dense" in labels
    assert ("sdt" in registry.BY_NAME) == any(registry.label("sdt") == s for s in labels)
    assert not any("no_such_setting" in s for s in labels)
    assert "best dense of these runs (not the full schedule) (90.00%)" in _labels(P.plot_accuracy_vs_lr(df, [0.36]))
    assert P.plot_accuracy_vs_lr(df.iloc[:0], [0.36]) is None


def test_at_most_six_sparsity_panels_in_rows_of_three():
    df = pd.DataFrame({"setting": "lt_imp", "model": "m", "dataset": "d", "epochs": 1, "lr": 0.1, "seed": 1,
                       "final_acc": 80.0, "target_sparsity": [1 - 0.8 ** r for r in range(1, 15)]})
    chosen = P.lr_panel_sparsities(df)
    assert len(chosen) == 6 and chosen[0] == 0.2 and chosen[-1] == round(1 - 0.8 ** 14, 3)
    fig = P.plot_accuracy_vs_lr(df, chosen)
    assert len(fig.axes) == 6 and fig.get_size_inches()[0] * 110 <= 1400


def test_correlation_indicator_figure_has_the_chance_line():
    t = pd.DataFrame({"epochs": 10, "lr": [0.1, 0.1, 0.01], "seed": [1, 2, 1], "sparsity": 0.832, "p": 0.1,
                      "R_p(θ0⊙m, θT⊙m)": [0.3, 0.32, 0.5], "R_p(θ0'⊙m, θT⊙m)": [0.1, float("nan"), 0.11]})
    fig = P.plot_correlation_indicator(t)
    labels = _labels(fig)
    assert "chance: R_p = p = 0.1" in labels and "R_p(θ0 ⊙ m (LT), θT ⊙ m)" in labels
    assert fig.axes[0].get_title() == "sparsity 0.832, 10 epochs" and P.plot_correlation_indicator(t.iloc[:0]) is None


def test_length_and_data_order_figures(tmp_path):
    grids = [experiment(tmp_path, name=n, epochs=e, data_order=o)
             for n, e, o in (("e10", 10, "replay"), ("e40", 40, "replay"), ("e10f", 10, "fresh"))]
    for g in grids:
        lt_rr_grid(g, gap=1.0)
    t = R.length_table(R.pooled_runs(R.gather(grids[0]).everything, grids[0], grids).runs)
    fig = P.plot_gap_vs_epochs(t, "replay")
    assert len(fig.axes) == 2 and [int(x) for x in fig.axes[0].get_xticks()] == [10, 40]
    assert set(_labels(fig)) == {"sparsity 0.200", "sparsity 0.360"}
    order = P.plot_data_order(t)
    assert set(_labels(order)) == {"fresh", "replay"}
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
    assert "<title>Lottery-ticket sanity checks: reports of g</title>" in page
    assert "results.csv" not in page and "verdicts.csv" not in page and "Figures (SVG)" not in page  # none yet
    (tmp_path / "g" / "results.csv").write_text("run\n")
    (tmp_path / "g" / "reports" / "verdicts.csv").write_text("class\n")
    (tmp_path / "g" / "reports" / "figures").mkdir()
    for name in ("accuracy_vs_lr.svg", "accuracy_vs_lr.png", "layerwise_sparsity.svg"):
        (tmp_path / "g" / "reports" / "figures" / name).write_text("<svg/>")
    (tmp_path / "results.csv").write_text("run\n")
    page = report.write_index(tmp_path).read_text()
    for href in ("../g/results.csv", "../g/reports/verdicts.csv", "../g/reports/figures/accuracy_vs_lr.svg",
                 "../g/reports/figures/layerwise_sparsity.svg", "../results.csv"):
        assert f'href="{href}"' in page, href
    assert "accuracy_vs_lr.png" not in page
    # the parameter reference, generated from the schema beside the index, and linked from it
    ref = tmp_path / "reports" / "params.html"
    assert 'href="params.html"' in page and ref.exists() and 'id="trajectory_points"' in ref.read_text()


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


def test_page_titles_name_the_grid_not_notebook(tmp_path):
    done = tmp_path / "demo" / "reports" / "analysis.ipynb"
    setting = tmp_path / "demo" / "notebooks" / "lt_imp_all_cells.ipynb"
    assert report.page_title(done) == "demo: analysis report"
    assert report.page_title(setting) == "demo: lt_imp_all_cells"
    for nb in (done, setting):
        _notebook(nb)
        report.render(nb, nb.with_suffix(".html"))
    assert "<title>demo: analysis report</title>" in done.with_suffix(".html").read_text()
    assert "<title>demo: lt_imp_all_cells</title>" in setting.with_suffix(".html").read_text()
    assert "Notebook</title>" not in done.with_suffix(".html").read_text()
    report.render(done, tmp_path / "x.html", title="<b>x</b>")
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in (tmp_path / "x.html").read_text()


def test_code_versions_of_no_runs():
    assert report.code_versions(pd.DataFrame(columns=["code_version"])).startswith("runs: no runs")


def test_check_report_wants_the_premise_first_and_figure_3_right_after_it():
    spec = importlib.util.spec_from_file_location("check_report", ROOT / "scripts" / "check_report.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    good = "What this report found ... Premise check ... Accuracy vs learning rate ... Ticket verdicts ..."
    assert check.section_order(good) is None
    assert check.section_order("Ticket verdicts ... Premise check ... Accuracy vs learning rate") == \
        "verdicts come before the premise check"
    assert check.section_order("Ticket verdicts") == "no premise check"
    assert check.section_order("Premise check ... Accuracy vs sparsity ... Accuracy vs learning rate") == \
        "the accuracy-vs-learning-rate figure does not follow the premise check"
    assert check.section_order("Premise check ... Ticket verdicts") == \
        "the accuracy-vs-learning-rate figure does not follow the premise check"


# ----------------------------------------------------------------------------- the analysis notebook itself
@pytest.mark.slow
def test_the_analysis_notebook_renders_a_report_on_fake_runs(tmp_path):
    """Headless, as make runs it: jupytext -> papermill (kernel lthlib) -> HTML, on a fake study of two
    grids (16 and 4 epochs; seed 3 without weight files). The report reads top to bottom."""
    import jupytext
    import papermill

    from fakeruns import fake_study
    params_dir = fake_study(tmp_path)
    out = tmp_path / "out"
    src = tmp_path / "analysis.ipynb"
    jupytext.write(jupytext.read(ROOT / "notebooks" / "analysis.py"), src)
    done = out / "study" / "reports" / "analysis.ipynb"
    done.parent.mkdir(parents=True)
    papermill.execute_notebook(str(src), str(done), kernel_name="lthlib", cwd=str(ROOT), progress_bar=False,
                               parameters={"params_file": str(params_dir / "study.yaml"),
                                           "params_dir": str(params_dir), "overrides": {"out_root": str(out)}})
    page = done.with_suffix(".html")
    report.render(done, page)
    text = re.sub(r"<[^>]+>", " ", page.read_text())
    spec = importlib.util.spec_from_file_location("check_report", ROOT / "scripts" / "check_report.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.section_order(text) is None
    found = text.index("What this report found")
    assert found < text.index("Premise check") and "secondary prize tickets: " in text[found:text.index("Premise check")]
    figures = {p.name for p in (out / "study" / "reports" / "figures").iterdir()}
    assert {"accuracy_vs_lr.svg", "accuracy_vs_sparsity.svg", "correlation_indicator.svg", "gap_vs_epochs.svg"} <= figures
    assert 'href="figures/accuracy_vs_lr.svg"' in page.read_text() and 'href="verdicts.csv"' in page.read_text()
    assert report.table_problems(page.read_text()) == [] and "<title>study: analysis report</title>" in page.read_text()
    v = pd.read_csv(out / "study" / "reports" / "verdicts.csv")
    assert {"class", "c1", "c5", "at the boundary"} <= set(v.columns) and len(v) > 0
    assert "study_4ep" in text and "results-only run folder" in text  # pooled grid listed, missing weights named


@pytest.mark.slow
def test_the_analysis_notebook_renders_with_no_runs_at_all(tmp_path):
    """A grid with nothing finished yet: every section says so instead of failing."""
    import jupytext
    import papermill
    src, done = tmp_path / "analysis.ipynb", tmp_path / "done.ipynb"
    jupytext.write(jupytext.read(ROOT / "notebooks" / "analysis.py"), src)
    papermill.execute_notebook(str(src), str(done), kernel_name="lthlib", cwd=str(ROOT), progress_bar=False,
                               parameters={"params_file": "params/demo.yaml", "overrides": {"out_root": str(tmp_path)}})
    report.render(done, tmp_path / "a.html")
    text = (tmp_path / "a.html").read_text()
    assert "No ticket verdicts yet" in text and "Premise not checked" in text and "No sparse run finished yet" in text


def test_the_readings_say_how_a_table4_grid_is_trained_and_judged():
    import lthlib
    plain = report.readings(lthlib.load(ROOT / "params" / "cifar10_resnet20.yaml"))
    assert plain == report.READINGS and "not run here" in plain[-1]
    t4 = report.readings(lthlib.load(ROOT / "params" / "cifar10_resnet20_table4_lr0.1.yaml"))
    assert "not run here" not in " ".join(t4) and len(t4) == len(plain)
    assert "pretraining lr 0.1 and every subnetwork run" in t4[-1] and "sparse lr 0.01, 0.05, 0.1, 0.15" in t4[-1]


def test_verdict_view_shows_the_notes_when_a_ticket_has_one(tmp_path):
    """An incomplete grid: the table's means are over every seed while a gap is paired over the seeds
    both sides have, so the caption says so (and which lr a condition still misses)."""
    exp, c, ref, v, t3 = _ticket_runs(tmp_path)
    v = v.assign(notes="")
    assert "Notes:" not in report.verdict_view(v).attrs["caption"]
    v.loc[(v["lr"] == 0.01) & (v["family"] == "OMP"), "notes"] = "gap and CI over the 2 seeds both have (LT n=3, RR n=2)"
    caption = report.verdict_view(v).attrs["caption"]
    assert caption.endswith("Notes: OMP s=0.832 lr 0.01: gap and CI over the 2 seeds both have (LT n=3, RR n=2).")
