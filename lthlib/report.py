"""Report rendering: the text blocks every analysis report carries -- the headline (what the grid found,
in the paper's terms), the thresholds and our readings of the paper's rules, the verdict and Table-3
tables for reading (pandas Stylers: no index, 2 decimals), scale and environment (with the precision
the convolutions ran in), code versions, runs not counted, completeness, where this project differs
from the official code (with the ImageNet recipe's choices on ImageNet) -- the executed notebook
rendered to self-contained HTML, and the index page of every report and notebook (a jinja2 template).
It takes tables, never reads run folders itself.

    python -m lthlib.report render NOTEBOOK.ipynb OUT.html [--show-input]
    python -m lthlib.report index [OUT_ROOT]
    python -m lthlib.report retarget GRID/reports/analysis.params.yaml OUT_ROOT    (make report)
    python -m lthlib.report failed GRID/reports/analysis.failed.ipynb GRID/reports/analysis.html
"""
from __future__ import annotations

import argparse
import html
import math
import os
import platform
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import yaml

from . import layout, registry
from . import stats as S
from .data import DATASETS
from .models import MODELS
from .runs import atomic_write_text, code_version
from .settings import grid_plans

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
# the ImageNet recipe's choices where the NVIDIA code may do otherwise: stated when the grid is ImageNet
IMAGENET_CHOICES = """\
| BatchNorm statistics over the **whole global batch of 1,024** under DDP (SyncBatchNorm on CUDA, an all-reduced BatchNorm on CPU), so a DDP run matches its single-process version | NVIDIA's recipe normalizes each GPU's own 128 images |
| cosine LR (after 5 linear warmup epochs) stepped **every iteration** | the NVIDIA code computes its cosine policy from the epoch (as we read it) |
| mixup under DDP: **one mixing weight λ per global batch**, the same on every rank, each image mixed with the reversed order of its own rank's slice (so the mixed pairs depend on the number of ranks: a mixup run is not the single-process run) | each GPU's loader mixes its own batch with a λ of its own (as we read it) |
"""
# our readings of the paper's rules (SPEC section 2), stated in every report
READINGS = [
    "A ticket is one (family, sparsity s, learning rate): ③, ④ and ⑤ are judged at that lr, and a network's "
    "class is the best over its tickets and lrs.",
    "\"RR trained with any lr\" (③) is the best RR at the same sparsity over the grid's lrs, each RR using the mask "
    "found at its own lr (as the paper's Figure 3 curves are drawn).",
    "The thresholds apply to seed means; beside each decision the gap comes with its paired 95% confidence "
    "interval over the seeds both sides have (⑤: paired against this grid's own dense runs, else Welch's "
    "interval against the best dense model's mean, std and n) and n.",
    "The dense model is trained at the pretraining lr and every subnetwork run of that cell (each IMP round, "
    "LT-OMP, RR) at the same lr (the paper's default; its Table 4 varies the sparse lr, not run here).",
]
SPARSE_LR_READING = (
    "The dense model is trained at the pretraining lr {pre} and every subnetwork run (each IMP round, LT-OMP, "
    "RR) at each sparse lr {sparse} (the paper's Table 4); a ticket's lr is its sparse lr, so ④ (dense at the "
    "ticket's own lr) is evaluated only where a sparse lr equals a pretraining lr, and ③'s best RR is over the "
    "sparse lrs.")


def readings(exp) -> list[str]:
    """Our readings of the paper's rules for grid ``exp``: ``READINGS``, its last one for a grid with a
    separate sparse-training lr (``sparse_lrs``) saying how such a grid's runs are trained and judged."""
    if not exp.sparse_lrs:
        return list(READINGS)
    lrs = lambda xs: ", ".join(f"{x:g}" for x in xs)
    return READINGS[:-1] + [SPARSE_LR_READING.format(pre=lrs(exp.lrs), sparse=lrs(exp.sparse_lrs))]


def differences_markdown(exp) -> str:
    """The DIFFERENCES table, with the ImageNet recipe's choices when the grid's dataset is ImageNet."""
    if exp.dataset != "imagenet":
        return DIFFERENCES
    return DIFFERENCES + IMAGENET_CHOICES
DATA_ORDER = {"replay": "replay: LT runs retrace the dense run's data order (the official behaviour)",
              "fresh": "fresh: LT and RR share a data order the dense run did not use"}


def bullets(lines) -> str:
    """Lines as a markdown list. A line may hold text from files (a run folder's name, a field's value):
    raw HTML in it is shown as text and brackets cannot make a link; emphasis and code spans stay."""
    return "\n".join(f"- {_no_links(html.escape(' '.join(str(line).split()), quote=False))}" for line in lines)


def _no_links(text: str) -> str:
    """``text`` with its brackets outside code spans backslash-escaped: no markdown link or image."""
    parts = re.split(r"(`[^`]+`)", text)
    return "".join(p if p.startswith("`") and p.endswith("`") and len(p) > 1 else re.sub(r"([\[\]])", r"\\\1", p)
                   for p in parts)


# markdown punctuation that would format or link text taken from files (raw HTML is escaped on top)
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]{}|~$!#])")


def md_text(value) -> str:
    """``value`` (text from a params file or a run folder: a description, a field's values) as markdown
    that shows exactly that text: on one line, markdown punctuation backslash-escaped, HTML escaped (a
    ``<script>`` is shown, never run)."""
    text = " ".join(str(value).split())
    return html.escape(_MD_PUNCTUATION.sub(r"\\\1", text), quote=False)


def md_code(value) -> str:
    """``value`` as a markdown code span when it is a plain word (a run name, a code version), else as
    escaped text (``md_text``): a backquote cannot end the span early."""
    text = str(value)
    return f"`{text}`" if re.fullmatch(r"[\w.,:;=+@/-]+", text) else md_text(text)


# ----------------------------------------------------------------------------- completeness
def expected_counts(exp) -> dict:
    """How many runs of each setting a complete grid holds (from the protocol's plans)."""
    counts = {s: 0 for s in registry.NAMES if s in exp.settings}
    for p in grid_plans(exp):
        counts[p.setting] += 1
    return counts


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
    lines += [f"| {md_code(r['run'])} | {md_text(r['differs'])} |" for r in not_counted.to_dict("records")]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- scale and environment
def code_versions(df: pd.DataFrame) -> str:
    """The code versions the counted runs come from, flagging a mix."""
    counts = df["code_version"].fillna("unknown").value_counts() if len(df) else pd.Series(dtype=int)
    listed = ", ".join(f"{md_code(v)} ({n} runs)" for v, n in counts.items()) or "no runs"
    mix = " — **mixed: the counted runs come from more than one code version**" if len(counts) > 1 else ""
    return f"runs: {listed}{mix}; this report: {md_code(code_version())}"


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


def _precision(r: dict) -> str:
    amp = r.get("amp")
    if isinstance(amp, str) and amp != "none":
        return f"{md_text(amp)} autocast (mixed precision)"
    if not str(r.get("device") or "").startswith("cuda"):
        return "exact fp32 (CPU)"
    tf32 = r.get("tf32")
    if tf32 is None or pd.isna(tf32):
        return "fp32 on CUDA, TF32 switch not recorded (the CUDA default is TF32 convolutions)"
    return "TF32 convolutions (CUDA default; `deterministic: false`)" if tf32 else \
        "exact fp32 convolutions (`deterministic: true`)"


def conv_precision(df: pd.DataFrame) -> str:
    """Which precision the runs' convolutions used, from each run's config.json (``determinism.tf32``,
    the device) and its ``amp``: on CUDA "fp32" convolutions run in TF32 unless ``deterministic: true``."""
    if not len(df):
        return "n/a"
    counts = pd.Series([_precision(r) for r in df.to_dict("records")]).value_counts()
    text = ", ".join(f"{k} ({n} runs)" for k, n in counts.items())
    return text + (" — **mixed**" if len(counts) > 1 else "")


def _n_train(exp, df: pd.DataFrame) -> int:
    """The training images the runs used (config.json), else the grid's ``n_train``."""
    return int(df["n_train"].max()) if len(df) and df["n_train"].notna().any() else exp.n_train


def devices(df: pd.DataFrame) -> list[str]:
    """The devices the runs of ``df`` trained on, each with its name where config.json recorded it
    (``cuda (NVIDIA H200)``; older runs name the device type alone)."""
    if not len(df) or "device" not in df:
        return []
    names = df["device_name"] if "device_name" in df else [None] * len(df)
    both = {f"{d} ({n})" if isinstance(n, str) and n else str(d)
            for d, n in zip(df["device"], names) if isinstance(d, str)}
    return sorted(both)


def scale_markdown(exp, df: pd.DataFrame) -> str:
    """The grid's scale, recipe, data order, random-pruning mode, environment and code versions."""
    dev = ", ".join(md_text(d) for d in devices(df)) or "n/a"
    torches = ", ".join(md_text(t) for t in sorted(df["torch"].dropna().astype(str).unique())) if len(df) else ""
    thr = ", ".join(str(int(t)) for t in sorted(df["threads"].dropna().unique())) if len(df) else "n/a"
    n_train = _n_train(exp, df)
    n_test = int(df["n_test"].max()) if len(df) and df["n_test"].notna().any() else exp.n_test
    full = DATASETS[exp.dataset].train_size
    subset = f" (stratified subset of {full:,})" if full and n_train and n_train < full else ""
    import torch
    return (f"**Grid** `{exp.name}` — {md_text(exp.description)}\n\n| | |\n|---|---|\n| model | `{exp.model}` |\n"
            f"| dataset | `{exp.dataset}`: {n_train:,} training images{subset}, {n_test:,} test images |\n"
            f"| recipe | {exp.epochs} epochs (the full schedule ① and ⑤ ask for: "
            f"{exp.full_epochs or exp.epochs}), batch "
            f"{exp.batch_size}, SGD momentum {exp.momentum}, wd {exp.weight_decay}, {exp.lr_schedule} LR "
            f"(milestones {exp.milestones}), lrs {exp.lrs} |\n"
            f"| seeds | {exp.seeds} (RR init seed = seed + {exp.rr_seed_offset}) |\n"
            f"| data order | {DATA_ORDER[exp.data_order]} |\n"
            f"| pruning | global magnitude over the profile, IMP {exp.imp_rounds} rounds of {exp.imp_rate:.0%}, "
            f"OMP at {exp.sparsities}, layer cap {exp.prune_cap} |\n"
            f"| random pruning | `random_mode: {exp.random_mode}` |\n"
            f"| environment | the runs: torch {torches or 'n/a'}, device {dev}, threads {thr}; this report: torch "
            f"{torch.__version__}, Python {platform.python_version()} |\n| convolution precision | {conv_precision(df)} |\n"
            f"| code version | {code_versions(df)} |" + _scale_warning(exp, n_train or 0))


# ----------------------------------------------------------------------------- tables for reading
LABEL_DECIMALS = {"sparsity": "{:.3f}", "lr": "{:g}", "best lr": "{:g}", "large lr": "{:g}", "other lr": "{:g}"}
# the most columns a table of the report shows: about a dozen fit a 1280 px page and can be read across;
# every other column stays in the CSV the report links (scripts/check_report.py and the tests hold to it)
MAX_TABLE_COLUMNS = 13


def table(df: pd.DataFrame, columns=None, rename: dict | None = None):
    """``df`` rendered for reading (a pandas Styler): only ``columns`` (all when None), renamed by
    ``rename``, no index column, numbers to 2 decimals (sparsity 3, learning rates as written), empty
    cells as '–', text columns left-aligned, ``df.attrs["caption"]`` (when set) as its caption. Every
    column stays in the CSV the report links."""
    caption = df.attrs.get("caption")
    d = df[[c for c in columns if c in df.columns]] if columns is not None else df
    d = d.rename(columns=rename or {})
    style = d.style.hide(axis="index").format(precision=2, na_rep="–", escape="html")
    for column, fmt in LABEL_DECIMALS.items():
        if column in d.columns and pd.api.types.is_numeric_dtype(d[column]):
            style = style.format(fmt, subset=[column], na_rep="–")
    text = [c for c in d.columns if not pd.api.types.is_numeric_dtype(d[c])]
    if text:  # header and cells, over the notebook's right-aligned default
        style = style.set_table_styles({c: [{"selector": "", "props": "text-align: left"}] for c in text},
                                       overwrite=False)
    if caption:
        style = style.set_caption(html.escape(caption)).set_table_styles(
            [{"selector": "caption", "props": "caption-side: bottom; text-align: left; font-size: 90%"}],
            overwrite=False)
    return style


class _Tables(HTMLParser):
    """The tables of an HTML page: per table its rows, per row its cells as [text, colspan]."""

    def __init__(self):
        super().__init__()
        self.tables, self._open = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._open.append([])
        elif tag == "tr" and self._open:
            self._open[-1].append([])
        elif tag in ("td", "th") and self._open and self._open[-1]:
            span = dict(attrs).get("colspan") or "1"
            self._open[-1][-1].append(["", int(span) if span.isdigit() else 1])

    def handle_endtag(self, tag):
        if tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data):
        if self._open and self._open[-1] and self._open[-1][-1]:
            self._open[-1][-1][-1][0] += data


ELIDED = ("...", "…")
_DECIMAL = re.compile(r"-?\d+\.\d+")


def _float_noise(text: str) -> bool:
    """Whether ``text`` holds a number printed to 6 or more significant digits (77.760002: a float32's
    noise); no table of the report needs that many."""
    return any(len(m.lstrip("-").replace(".", "").lstrip("0")) >= 6 for m in _DECIMAL.findall(text))


def table_problems(page_html: str, max_columns: int = MAX_TABLE_COLUMNS) -> list[str]:
    """What keeps the tables of an HTML page (a rendered report) from being read: a table of more than
    ``max_columns`` columns, an elided one (a '...' cell: pandas hides columns or rows), or a number
    printed with float noise (6+ significant digits, e.g. 77.760002). [] when none."""
    parser = _Tables()
    parser.feed(page_html)
    problems = []
    for i, rows in enumerate(parser.tables, 1):
        cells = [[" ".join(text.split()), span] for row in rows for text, span in row]
        name = f"table {i} ({', '.join([t for t, _ in cells if t][:3])[:60] or 'no header'})"
        width = max((sum(span for _, span in row) for row in rows), default=0)
        if width > max_columns:
            problems.append(f"{name}: {width} columns, more than {max_columns}")
        if any(text in ELIDED for text, _ in cells):
            problems.append(f"{name}: elided ('...' cells)")
        if noisy := [text for text, _ in cells if _float_noise(text)]:
            problems.append(f"{name}: float noise ({noisy[0][:40]})")
    return problems


def files_markdown() -> str:
    """Links from the report (``<grid>/reports/analysis.html``) to the tables beside it; each figure links
    its SVG and PNG below it (``plots.publish``), and the index lists every SVG of the grid."""
    return ("Files: [results.csv](../results.csv) (every finished run of this grid, counted or not, with why) · "
            "[verdicts.csv](verdicts.csv) (every column of the verdict table: means, stds, n, gaps, intervals, "
            "p-values) · [the index of every report](../../reports/index.html) (with this grid's SVG figures). "
            "Each figure below links its SVG (vector) and PNG.")


def thresholds_markdown(thr: dict, nontrivial: float, alpha: float, full_epochs: int) -> str:
    """The thresholds the verdicts use, with where each comes from (``verdicts.thresholds``)."""
    similar_note, clear_note, sdt_note = (thr["note"].split("; ") + ["", "", ""])[:3]
    rows = [("① non-trivial sparsity", f"s ≥ {nontrivial:g}", "paper: unstructured pruning above about 60%"),
            ("① sufficient training", f"≥ {full_epochs} epochs", "the recipe's full schedule (`full_epochs`)"),
            ("④ ⑤ similar", f"a drop of at most {thr['similar']:g} points", similar_note),
            ("③ clear gap", f"LT − best RR > {thr['clear']:g} points", clear_note),
            ("② SDT gap", f"LT − SDT > {thr['sdt']:g} points", sdt_note),
            ("statistics", f"alpha = {alpha:g}", f"two-sided {1 - alpha:.0%} confidence intervals; Holm's "
                                                  f"correction at {alpha:g} for every \"exists\" claim")]
    return "\n".join(["| condition | threshold | where it comes from |", "|---|---|---|"]
                     + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def _boundary_text(r: dict) -> str:
    b = r["at the boundary"]
    if b is None or pd.isna(b):
        return "–"
    return f"yes ({r['boundary conditions']})" if b else "no"


def _mark(holds) -> str:
    """✓ holds, ✗ fails, – not evaluated (a missing input)."""
    return "–" if holds is None or pd.isna(holds) else ("✓" if holds else "✗")


def _finite(x) -> bool:
    return x is not None and not pd.isna(x) and math.isfinite(x)


def _gap_cell(r: dict, c: str) -> str:
    """Condition ``c``'s gap in points with its mark ('+1.46 ✓'); '–' when it is not evaluated."""
    if r[c] is None or pd.isna(r[c]) or not _finite(r[f"{c} gap"]):
        return "–"
    return f"{S.fmt_signed(r[f'{c} gap'])} {_mark(r[c])}"


VERDICT_CAPTION = ("Accuracies in %, gaps in points (seed means). ✓ the condition holds, ✗ it fails, – not "
                   "evaluated (an input is missing). ③ compares with the best RR over the grid's lrs (its "
                   "accuracy and lr in \"best RR\"), ④ with the dense model at the ticket's lr, ⑤ with the best "
                   "dense model. "
                   "Each gap's 95% interval, n and the statistics' words: the sentences below; every number: "
                   "verdicts.csv.")


def verdict_view(v: pd.DataFrame) -> pd.DataFrame:
    """The verdict table for reading, one row per ticket: its LT accuracy and seeds, each condition ①-⑤
    as its gap in points with ✓ / ✗ / – (not evaluated), the best RR's accuracy and lr, the class and
    "at the boundary"; a caption (``attrs["caption"]``, which ``table`` shows) says how to read it, with
    the tickets' notes (a missing input, the seeds a gap is paired over, an lr the grid still misses). The
    intervals and words are in ``verdicts.verdict_lines``, every column in verdicts.csv."""
    rows = []
    for r in v.to_dict("records"):
        rr = f"{r['c3 mean']:.2f} (lr {r['c3 RR lr']:g})" if _finite(r["c3 mean"]) else "–"
        rows.append({"family": r["family"], "sparsity": r["sparsity"], "lr": r["lr"], "LT (%)": r["LT mean"],
                     "seeds": r["LT n"], "①": _mark(r["c1"]), "② LT − SDT": _gap_cell(r, "c2"),
                     "best RR (%)": rr, "③ LT − best RR": _gap_cell(r, "c3"),
                     "④ LT − dense": _gap_cell(r, "c4"),
                     "⑤ LT − best dense": _gap_cell(r, "c5"), "class": r["class"],
                     "at the boundary": _boundary_text(r)})
    out = pd.DataFrame(rows)
    notes = [f"{r['family']} s={r['sparsity']:.3f} lr {r['lr']:g}: {r['notes']}" for r in v.to_dict("records")
             if isinstance(r.get("notes"), str) and r["notes"]]
    out.attrs["caption"] = VERDICT_CAPTION + (" Notes: " + "; ".join(notes) + "." if notes else "")
    return out


def _exists_text(answer: str, rows: int, holm: int, candidates: int) -> str:
    return f"{answer}: {rows} of {candidates} candidate tickets by the means, {holm} after Holm"


def table3_view(t3: pd.DataFrame) -> pd.DataFrame:
    """The Table-3 summary for reading: ours beside the paper's entry, every "exists" answer with its
    number of comparisons and the Holm-corrected count."""
    rows = []
    for r in t3.to_dict("records"):
        second = _exists_text(r["secondary prize?"], r["secondary prize rows"], r["secondary prize Holm"],
                              r["candidates"])
        if r["secondary prize rows"]:
            second += f"; up to s = {r['secondary prize up to']:.3f} at {r['secondary prize at']}"
        rows.append({"network": f"{r['model']} / {r['dataset']}", "candidate tickets (①)": r["candidates"],
                     "Jackpot?": _exists_text(r["Jackpot?"], r["Jackpot rows"], r["Jackpot Holm"], r["candidates"]),
                     "secondary prize?": second, "at the boundary": r["at the boundary"] or "none",
                     "prefers small LR?": f"{r['prefers small LR?']} ({r['small LR basis']})",
                     "prefers IMP?": f"{r['prefers IMP?']} ({r['IMP basis']})", "the paper (Table 3)": r["paper"]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the headline
def _no_candidates(vn: pd.DataFrame) -> str:
    """Why no ticket of a network meets ① (too short a schedule, too low a sparsity)."""
    why = []
    if (vn["epochs"] < vn["full epochs"]).all():
        why.append(f"trained {', '.join(str(e) for e in sorted(set(vn['epochs'])))} epochs where the full schedule "
                   f"is {int(vn['full epochs'].iloc[0])}")
    if (vn["sparsity"] < vn["nontrivial"]).any():
        why.append(f"sparsities up to {vn['sparsity'].max():.3f}, and non-trivial means "
                   f"≥ {vn['nontrivial'].iloc[0]:g}")
    return "; ".join(why) or "① fails"


def _open_conditions(cand: pd.DataFrame) -> str:
    """For candidates classed 'not evaluated': which conditions lack their inputs, how often, and why."""
    ne = cand[cand["class"] == "not evaluated"]
    parts = []
    for c, sym in zip(("c2", "c3", "c4", "c5"), "②③④⑤"):
        na = ne[ne[c].isna()]
        if len(na):
            parts.append(f"{sym} at {len(na)} ({na[f'{c} note'].iloc[0]})")
    return "; ".join(parts)


def _failed_conditions(cand: pd.DataFrame) -> str:
    """For candidates classed 'none': how often each of ②-④ fails."""
    none = cand[cand["class"] == "none"]
    fails = {sym: int(none[c].eq(False).fillna(False).sum()) for c, sym in zip(("c2", "c3", "c4"), "②③④")}
    return ", ".join(f"{sym} fails at {n}" for sym, n in fails.items() if n)


def network_headline(r: dict, vn: pd.DataFrame) -> str:
    """One network's finding in the paper's terms (a row of ``verdicts.table3`` and its tickets)."""
    where = f"**{r['model']} / {r['dataset']}**"
    if not r["candidates"]:
        return (f"{where}: **no candidate ticket** — every ticket fails ① ({_no_candidates(vn)}), so this grid "
                f"cannot hold a Jackpot or secondary prize ticket; the LT − RR gaps below still say where the "
                f"lottery ticket beats its random re-initialization. The paper: {r['paper']}.")
    cand = vn[vn["c1"].fillna(False)]
    text = [f"Jackpot tickets: {_class_answer(r, 'Jackpot', cand)} ({r['Jackpot rows']} of {r['candidates']} "
            f"candidate tickets by the means, {r['Jackpot Holm']} after Holm)",
            f"secondary prize tickets: {_class_answer(r, 'secondary prize', cand)} ({r['secondary prize rows']} of "
            f"{r['candidates']}, {r['secondary prize Holm']} after Holm" +
            (f"; up to s = {r['secondary prize up to']:.3f} at {r['secondary prize at']})" if
             r["secondary prize rows"] else ")")]
    if (none := _failed_conditions(cand)):
        text.append(f"{int((cand['class'] == 'none').sum())} candidates are no ticket ({none})")
    if (open_ := _open_conditions(cand)):
        text.append(f"not evaluated: {open_}")
    if r["at the boundary"]:
        text.append(f"at the boundary: {r['at the boundary']}")
    unknown = cand[cand["at the boundary"].isna() & (cand["class"] != "not evaluated")]
    if len(unknown):
        text.append(f"{len(unknown)} decided candidates have no CI (one seed, or no spread), so whether seed "
                    f"noise could change their class is unknown")
    return f"{where}: " + "; ".join(text) + f". The paper: {r['paper']}."


def _class_answer(r: dict, cls: str, cand: pd.DataFrame) -> str:
    """The bold answer to "a ``cls`` ticket?": a "yes" that no ticket supports after Holm says so."""
    if r[f"{cls}?"] != "yes" or r[f"{cls} Holm"]:
        return f"**{r[f'{cls}?']}**"
    n = int(cand.loc[cand["class"] == cls, "LT n"].max())
    return "**yes by the means, not resolved**" + (f" (n = {n}: no CI)" if n < 2 else " (from seed noise)")


def headline(exp, v: pd.DataFrame, t3: pd.DataFrame, premise_lines: list[str], counted: pd.DataFrame) -> str:
    """What the report found, first: the grid (name, description), then per network which tickets are
    Jackpot / secondary prize / none, up to which sparsity and at which lr (Holm-corrected counts beside),
    then the premise (``premise_lines``) and the scale of the ``counted`` runs."""
    lines = [network_headline(r, v[(v["model"] == r["model"]) & (v["dataset"] == r["dataset"])])
             for r in t3.to_dict("records")] if len(t3) else ["**No ticket verdicts yet**: no lottery-ticket run "
                                                               "of this grid has finished."]
    grid = f"**Grid `{exp.name}`**" + (f" — {md_text(exp.description)}" if exp.description else "")
    return grid + "\n\n" + bullets(lines + premise_lines) + _scale_warning(exp, _n_train(exp, counted) or 0)


def details(summary: str, lines) -> str:
    """HTML: ``lines`` as preformatted text, folded under ``summary``."""
    body = html.escape("\n".join(lines)) or "(none)"
    return (f"<details><summary>{html.escape(summary)}</summary>"
            f"<pre style=\"white-space: pre-wrap\">{body}</pre></details>")


# ----------------------------------------------------------------------------- HTML
def page_title(ipynb) -> str:
    """The title of a rendered notebook's page, naming its grid: '<grid>: analysis report' for
    ``<grid>/reports/analysis.ipynb``, '<grid>: <notebook>' for an executed setting notebook."""
    path = Path(ipynb)
    grid = path.parent.parent.name or "lthlib"
    stem = path.name.removesuffix(".ipynb")
    return f"{grid}: {'analysis report' if path.parent.name == 'reports' and stem == 'analysis' else stem}"


def render(ipynb, html_path, show_input: bool = False, title: str | None = None) -> None:
    """Render an executed notebook to self-contained HTML (figures embedded), inputs hidden by default;
    the page's title names its grid (``page_title``) unless ``title`` is given."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(exclude_input=not show_input, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(
        nb, resources={"metadata": {"name": title or page_title(ipynb)}})
    # self-contained and offline: drop the CDN scripts (require.js, MathJax) the template links
    body = re.sub(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', "", body)
    atomic_write_text(html_path, body)


INDEX_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8">
<title>Lottery-ticket sanity checks: reports of {{ grids | map(attribute="name") | join(", ") or "no grid yet" }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
li.failed a{color:#b00} li.unreadable{color:#b00} ul.notebooks{columns:2} p.files{margin:.3rem 0}</style></head><body>
<h1>Lottery-ticket sanity checks &mdash; reports</h1>
<p>Code version {{ version }}. Each grid: its analysis report and the tables and figures beside it, then
every executed setting notebook (failed ones in red; an unreadable notebook is named with the reason).
{% if all_results %}Every run of every grid, counted or not: <a href="../results.csv">results.csv</a>.{% endif %}</p>
<p><a href="params.html">Parameter reference</a>: every params key, its type, default, accepted values and doc.</p>
{% for grid in grids %}<h2>{{ grid.name }}</h2>
{% if grid.report %}<p><a href="../{{ grid.name }}/reports/analysis.html"><b>analysis report</b></a></p>{% endif %}
{% if grid.files or grid.figures %}<p class="files">{% for f in grid.files %}<a href="../{{ grid.name }}/{{ f.path }}">{{ f.name }}</a> ({{ f.what }}){% if not loop.last %} &middot; {% endif %}{% endfor %}</p>
{% if grid.figures %}<p class="files">Figures (SVG): {% for f in grid.figures %}<a href="../{{ grid.name }}/reports/figures/{{ f }}">{{ f }}</a>{% if not loop.last %} &middot; {% endif %}{% endfor %}</p>{% endif %}{% endif %}
<ul class="notebooks">
{% for nb in grid.notebooks %}{% if nb.error %}<li class="unreadable">{{ nb.stem }}: unreadable ({{ nb.error }})</li>
{% else %}<li{% if nb.failed %} class="failed"{% endif %}><a href="../{{ grid.name }}/notebooks/{{ nb.page }}">{{ nb.stem }}</a></li>
{% endif %}{% endfor %}{% if not grid.report and not grid.notebooks %}<li>nothing yet</li>{% endif %}</ul>
{% else %}<p>No runs yet: run <code>make demo</code>.</p>{% endfor %}
</body></html>
"""
# the tables beside a grid's report the index links, when they exist: (path under the grid, what it holds)
GRID_FILES = (("results.csv", "every finished run of the grid, counted or not"),
              ("reports/verdicts.csv", "every column of the ticket verdicts"))


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


def _grid_entry(grid_dir: Path) -> dict:
    """One grid for the index: its report, the tables and SVG figures beside it that exist, its notebooks."""
    notebooks = [_notebook_entry(nb) for nb in sorted((grid_dir / "notebooks").glob("*.ipynb"))
                 if ".tmp" not in nb.name]
    files = [{"path": f, "name": Path(f).name, "what": what} for f, what in GRID_FILES if (grid_dir / f).is_file()]
    figures = sorted(p.name for p in (grid_dir / "reports" / "figures").glob("*.svg"))
    return {"name": grid_dir.name, "report": (grid_dir / "reports" / "analysis.html").exists(),
            "notebooks": notebooks, "files": files, "figures": figures}


def write_index(out_root="outputs") -> Path:
    """OUT_ROOT/reports/index.html: every grid's report, its results.csv, verdicts.csv and SVG figures,
    every executed setting notebook, and OUT_ROOT/results.csv."""
    import jinja2
    root = layout.root(out_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such output folder; run a grid first (make demo) or pass the "
                                f"output root that holds the grids")
    grids = [_grid_entry(grid_dir) for grid_dir in sorted(p for p in root.iterdir()
                                                          if (p / "notebooks").is_dir() or (p / "reports").is_dir())]
    from . import paramsdoc
    paramsdoc.write(layout.index_page(out_root).parent / "params.html", "html")
    page = jinja2.Environment(autoescape=True).from_string(INDEX_TEMPLATE).render(
        version=code_version(), grids=grids, all_results=layout.all_results(out_root).is_file())
    path = layout.index_page(out_root)
    atomic_write_text(path, page)
    return path


# ----------------------------------------------------------------------------- make report: another root, a failure
def retarget(params_yaml, out_root) -> bool:
    """Point an analysis notebook's parameters (``<grid>/reports/analysis.params.yaml``, written by the
    plan with the output root of that time) at ``out_root``, so ``make report OUT=X`` reads X's runs and
    writes X's tables and figures, also when X is a copy of another root. Rewritten (atomically) only when
    it changes; make re-executes the report then. Returns whether it changed."""
    from .params import read_yaml
    path = Path(params_yaml)
    text = path.read_text(encoding="utf-8")
    values = read_yaml(text, str(path))
    if not isinstance(values, dict) or not isinstance(values.get("overrides"), dict):
        raise ValueError(f"{path}: not the parameters `python -m lthlib.plan` writes (no overrides mapping); "
                         f"run the grid's target again to rewrite it")
    root = str(out_root)
    if values["overrides"].get("out_root") == root:
        return False
    values["overrides"]["out_root"] = root
    dump = lambda obj: yaml.safe_dump(obj, sort_keys=False, default_flow_style=None, width=10_000,
                                      allow_unicode=True)
    comment = "#   " + yaml.safe_dump({"out_root": root}, default_flow_style=False, width=10_000).strip()
    header = [comment if line.startswith("#   out_root:") else line for line in text.splitlines()
              if line.startswith("#")]
    atomic_write_text(path, "\n".join(header) + "\n" + dump(values))
    return True


FAILED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{grid}: the report failed</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}</style></head>
<body><h1>{grid}: the last report failed</h1>
<p>The analysis notebook of this grid failed ({when}). The tables and figures beside this page
(<code>results.csv</code>, <code>verdicts.csv</code>, <code>figures/</code>) may come partly from that run, so
the report they belonged to was withdrawn. Read the executed notebook with its error: {link}. Fix the cause
and run <code>make report</code> (or the grid's target) again.</p></body></html>
"""


def render_failed(failed_ipynb, html_path) -> Path:
    """After a failed analysis notebook: ``html_path`` (the report) replaced by a page that says so and
    links the failed notebook (rendered beside it with its inputs when it can be), so no older report
    stands beside newer tables and figures. The page is dated 1970, so make renders the report again
    next time."""
    failed, page = Path(failed_ipynb), Path(html_path)
    link = f'<a href="{html.escape(failed.name)}">{html.escape(failed.name)}</a>'
    try:
        render(failed, failed.with_suffix(".html"), show_input=True)
        link = f'<a href="{html.escape(failed.with_suffix(".html").name)}">{html.escape(failed.stem)}</a> ({link})'
    except Exception:  # noqa: BLE001 -- an unreadable notebook: link the file itself
        pass
    when = pd.Timestamp.fromtimestamp(failed.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    grid = html.escape(page.parent.parent.name)
    atomic_write_text(page, FAILED_PAGE.format(grid=grid, when=when, link=link))
    os.utime(page, (0, 0))
    return page


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="Render an analysis notebook to HTML, or build the "
                                 "index page of every report and executed notebook.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="an executed notebook to self-contained HTML")
    r.add_argument("notebook")
    r.add_argument("html")
    r.add_argument("--show-input", action="store_true", help="keep the code cells")
    i = sub.add_parser("index", help="OUT_ROOT/reports/index.html")
    i.add_argument("out_root", nargs="?", default="outputs")
    t = sub.add_parser("retarget", help="point an analysis.params.yaml at OUT_ROOT (make report)")
    t.add_argument("params_yaml")
    t.add_argument("out_root")
    f = sub.add_parser("failed", help="replace a report by a page naming its failed notebook")
    f.add_argument("failed_ipynb")
    f.add_argument("html")
    return ap


def _run(a) -> str | None:
    if a.command == "render":
        render(a.notebook, a.html, a.show_input)
        return a.html
    if a.command == "retarget":
        return f"{a.params_yaml}: out_root {a.out_root}" if retarget(a.params_yaml, a.out_root) else None
    if a.command == "failed":
        return f"{render_failed(a.failed_ipynb, a.html)}: the report failed; read {a.failed_ipynb}"
    return str(write_index(a.out_root))


def main(argv=None, prog: str = "python -m lthlib.report") -> int:
    a = _parser(prog).parse_args(argv)
    try:
        said = _run(a)
    except Exception as exc:  # noqa: BLE001 -- one line naming the file, no traceback
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if a.command == "render":
            msg = (f"{a.notebook}: cannot render it ({type(exc).__name__}: {msg}). Execute the notebook "
                   f"again (make report) and retry.")
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if said:
        print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DIFFERENCES", "IMAGENET_CHOICES", "READINGS", "readings", "differences_markdown", "bullets", "expected_counts",
           "completeness", "not_counted_markdown", "code_versions", "conv_precision", "scale_markdown", "table",
           "MAX_TABLE_COLUMNS", "table_problems", "files_markdown", "thresholds_markdown", "verdict_view",
           "table3_view", "headline", "details", "page_title", "render", "write_index", "md_text", "md_code",
           "retarget", "render_failed", "main"]
