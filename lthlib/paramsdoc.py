"""The parameter reference, generated from the schema (``lthlib.params``): every key a params file, make's
``SET='key=value ...'`` and a notebook's ``overrides`` accept, with its type, default, accepted values,
role in a run's identity and doc, grouped by the schema's parts (Grid, Data, Recipe, Pruning, Runtime).

    python -m lthlib.cli params-doc                      # Markdown on stdout
    python -m lthlib.cli params-doc --markdown PARAMS.md --html OUT/reports/params.html

Files are written atomically (a temporary name, then renamed). The HTML page gives every key an anchor
(``params.html#lr``).
"""
from __future__ import annotations

import dataclasses

import yaml

from . import params
from ._version import __version__
from .runs import atomic_write_text

# the schema's parts, in the order a reader meets them; a key of none of them is listed under "Other"
PARTS = (("Grid", params.Grid), ("Data", params.Data), ("Recipe", params.Recipe), ("Pruning", params.Pruning),
         ("Runtime", params.Runtime))
IDENTITY = {params.ALWAYS: "yes", params.IF_SET: "when not the default",
            params.SETTING: "for the settings that own it", None: "no"}
INTRO = ("Every key a params file (`params/*.yaml`, flat `key: value` YAML), make's `SET='key=value ...'` "
         "and a notebook's `overrides` accept, generated from the schema (`lthlib.params`). *Identity*: "
         "whether the key is part of a run's identity, so that changing it makes new runs instead of "
         "reusing finished ones.")
_BOUNDS = (("ge", ">= {}"), ("gt", "> {}"), ("le", "<= {}"), ("lt", "< {}"), ("max_len", "at most {} entries"))


def _yaml(value) -> str:
    """``value`` as it is written in a params file (YAML flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


def _accepted(meta: dict) -> str:
    """The bounds, choices and pattern of a field, in words."""
    out = [fmt.format(meta[k]) for k, fmt in _BOUNDS if meta.get(k) is not None]
    if meta.get("choices") is not None:
        out.append("one of " + ", ".join(map(str, meta["choices"]())))
    if meta.get("pattern") is not None:
        out.append(f"matches {meta['pattern']}")
    return "; ".join(out)


def reference() -> list[dict]:
    """One row per schema key, in the schema's parts: part, key, type, default (as YAML), accepted,
    identity and doc."""
    described = {key: (kind, default, doc) for key, kind, default, doc in params.describe()}
    part_of = {}
    for part, cls in PARTS:
        for f in dataclasses.fields(cls):
            part_of.setdefault(f.name, part)
    order = [p for p, _ in PARTS] + ["Other"]
    rows = []
    for key, (kind, default, doc) in described.items():
        meta = params.FIELDS[key].metadata
        rows.append({"part": part_of.get(key, "Other"), "key": key, "type": kind, "default": _yaml(default),
                     "accepted": _accepted(meta), "identity": IDENTITY.get(meta.get("identity"), "no"),
                     "doc": doc})
    return sorted(rows, key=lambda r: order.index(r["part"]))  # stable: the schema's order within a part


def _md_cell(text: str, code: bool = False) -> str:
    """``text`` for a Markdown table cell (in a code span when ``code``: only its pipes escaped)."""
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if code else text.replace("<", "&lt;")


def markdown(rows: list[dict] | None = None) -> str:
    """The reference as Markdown: a table per part of the schema."""
    rows = reference() if rows is None else rows
    out = [f"# Parameter reference (lthlib {__version__})", "", INTRO]
    for part in dict.fromkeys(r["part"] for r in rows):
        out += ["", f"## {part}", "", "| key | type | default | accepted | identity | what it does |",
                "|---|---|---|---|---|---|"]
        out += [f"| `{r['key']}` | {_md_cell(r['type'])} | {_md_cell(r['default'], True)} | {_md_cell(r['accepted'])} "
                f"| {r['identity']} | {_md_cell(r['doc'])} |" for r in rows if r["part"] == part]
    return "\n".join(out) + "\n"


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parameter reference (lthlib {{ version }})</title>
<style>body{font-family:system-ui,sans-serif;max-width:75rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin-bottom:1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f4f4} col.key{width:10rem} col.type{width:9rem} col.default{width:8rem}
col.accepted{width:15rem} col.identity{width:7rem} tr:target{background:#fff6cc} code{font-size:.95em}</style>
</head><body>
<h1>Parameter reference <small>(lthlib {{ version }})</small></h1>
<p>{{ intro }}</p>
<p>Parts: {% for part in parts %}<a href="#part-{{ part }}">{{ part }}</a>{% if not loop.last %} &middot; {% endif %}{% endfor %}</p>
{% for part in parts %}<h2 id="part-{{ part }}">{{ part }}</h2>
<table><colgroup><col class="key"><col class="type"><col class="default"><col class="accepted"><col class="identity"><col></colgroup>
<thead><tr><th>key</th><th>type</th><th>default</th><th>accepted</th><th>identity</th><th>what it does</th></tr></thead><tbody>
{% for r in rows if r.part == part %}<tr id="{{ r.key }}"><td><a href="#{{ r.key }}"><code>{{ r.key }}</code></a></td>
<td>{{ r.type }}</td><td><code>{{ r.default }}</code></td><td>{{ r.accepted }}</td><td>{{ r.identity }}</td><td>{{ r.doc }}</td></tr>
{% endfor %}</tbody></table>
{% endfor %}</body></html>
"""


def html(rows: list[dict] | None = None) -> str:
    """The reference as a self-contained HTML page (every value escaped, one anchor per key)."""
    import jinja2
    rows = reference() if rows is None else rows
    intro = INTRO.replace("`", "").replace("*", "")
    return jinja2.Environment(autoescape=True).from_string(HTML_TEMPLATE).render(
        version=__version__, intro=intro, rows=rows, parts=list(dict.fromkeys(r["part"] for r in rows)))


def write(path, fmt: str) -> None:
    """Write the reference to ``path`` atomically as ``fmt`` ("markdown" or "html")."""
    if fmt not in ("markdown", "html"):
        raise ValueError(f"format must be 'markdown' or 'html', got {fmt!r}")
    atomic_write_text(path, markdown() if fmt == "markdown" else html())


__all__ = ["reference", "markdown", "html", "write", "PARTS"]
