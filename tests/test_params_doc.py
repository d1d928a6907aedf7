"""The parameter reference (issue 22 item 8): generated from the schema, every key once with its type,
default and doc, written atomically by ``python -m lthlib.cli params-doc``; and papermill reads every
notebook's parameters with a type."""
from __future__ import annotations

import html.parser
from pathlib import Path

import pytest

from lthlib import cli, params, paramsdoc

ROOT = Path(__file__).resolve().parent.parent


def test_every_schema_key_is_listed_once_with_its_type_default_and_doc():
    rows = paramsdoc.reference()
    assert [r["key"] for r in rows].count("lr") == 1 and {r["key"] for r in rows} == set(params.FIELDS)
    assert len(rows) == len(params.FIELDS)
    by_key = {r["key"]: r for r in rows}
    for key, kind, default, doc in params.describe():
        assert (by_key[key]["type"], by_key[key]["doc"]) == (kind, doc)
    assert by_key["lr"] | {"doc": None} == {"part": "Recipe", "key": "lr", "type": "number", "default": "0.1",
                                            "accepted": "> 0", "identity": "yes", "doc": None}
    assert by_key["milestones"]["default"] == "[0.5, 0.75]" and by_key["description"]["default"] == "''"
    assert by_key["lr_schedule"]["type"] == "multistep | cosine"
    assert by_key["mixup"]["identity"] == "when not the default" and by_key["threads"]["identity"] == "no"
    assert "resnet20" in by_key["model"]["accepted"]
    parts = [r["part"] for r in rows]
    assert parts == sorted(parts, key=[p for p, _ in paramsdoc.PARTS].index)  # grouped, in the schema's parts


def test_the_markdown_table_has_one_row_per_key_and_escapes_pipes():
    text = paramsdoc.markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(params.FIELDS)
    for row in rows:  # six cells: every pipe inside a cell is escaped
        assert row.replace("\\|", "").count("|") == 7, row
    assert "| `lr_schedule` | multistep \\| cosine | `multistep` |" in text
    assert "&lt;out_root>" in text  # not an HTML tag to a Markdown renderer


class _Rows(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr" and dict(attrs).get("id"):
            self.ids.append(dict(attrs)["id"])


def test_the_html_page_anchors_every_key_and_escapes_values():
    page = paramsdoc.html()
    parser = _Rows()
    parser.feed(page)
    assert parser.ids == [r["key"] for r in paramsdoc.reference()]
    assert "&lt;out_root&gt;/&lt;name&gt;/runs/" in page and "<out_root>" not in page
    assert "script" not in parser.tags


def test_the_command_writes_both_files_atomically(tmp_path, capsys):
    md, page = tmp_path / "doc" / "params.md", tmp_path / "reports" / "params.html"
    assert cli.main(["params-doc", "--markdown", str(md), "--html", str(page)]) == 0
    assert md.read_text() == paramsdoc.markdown() and page.read_text() == paramsdoc.html()
    assert capsys.readouterr().out == ""  # files only
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["params.html", "params.md"]
    assert cli.main(["params-doc"]) == 0
    assert capsys.readouterr().out == paramsdoc.markdown()
    assert cli.main(["params-doc", "--html", str(tmp_path)]) == 1  # a folder: a message, not a traceback
    assert "params-doc:" in capsys.readouterr().err


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_papermill_infers_a_type_for_every_notebook_parameter(tmp_path):
    """``papermill --help-notebook`` shows each parameter's type (it reads annotations; none: "Unknown
    type"), and it finds every parameter make passes (a line it cannot parse is dropped, and papermill
    then warns "Passed unknown parameter")."""
    jupytext, papermill = pytest.importorskip("jupytext"), pytest.importorskip("papermill")
    untyped = {}
    for py in NOTEBOOKS:
        ipynb = tmp_path / f"{py.stem}.ipynb"
        jupytext.write(jupytext.read(py), ipynb)
        found = papermill.inspect_notebook(str(ipynb))
        assert {"params_file", "overrides"} <= set(found), py.name
        untyped.update({f"{py.stem}.{k}": v for k, v in found.items() if v["inferred_type_name"] == "None"})
    assert not untyped, sorted(untyped)
