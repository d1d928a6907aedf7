"""Open every report page in headless Chromium at a 1280 px wide viewport and check what a reader sees:
no element wider than the page (the document's scrollWidth <= 1280 and each table's scrollWidth <= its
container's width), no table of more columns than a reader can take in and no elided ('...') cell,
every figure loaded and shown at no less than 3/4 of its size, every local link pointing at a file that
exists, no console errors, and an analysis report that states its premise check before any verdict,
with the accuracy-vs-learning-rate figure right after it. Writes a full-page screenshot of each page.

    python scripts/check_report.py [OUT]      (make check-report)

Needs Debian's chromium and the playwright Python package (driver only; it uses /usr/bin/chromium):
`make check-report` installs both when missing. Screenshots go to OUT/reports/screenshots/. Exit
status 0 when every page passes, 1 when one fails, 2 when there is nothing to check.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from lthlib.report import MAX_TABLE_COLUMNS, table_problems

WIDTH, HEIGHT = 1280, 900
MIN_FIGURE_SCALE = 0.75  # a figure shown smaller than this share of its size has unreadable text
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# measured in the page: its width, each table's width against its container's, each figure's size
MEASURE = """() => ({
  page: document.documentElement.scrollWidth,
  tables: [...document.querySelectorAll('table')].map(t => ({
    width: t.scrollWidth, room: t.parentElement.clientWidth, right: t.getBoundingClientRect().right,
    head: (t.rows[0] ? t.rows[0].innerText : '').replace(/\\s+/g, ' ').slice(0, 60)})),
  figures: [...document.querySelectorAll('img')].map(e => ({
    done: e.complete, natural: e.naturalWidth, shown: e.getBoundingClientRect().width,
    right: e.getBoundingClientRect().right})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
})"""


def pages(out: Path) -> list[Path]:
    index = out / "reports" / "index.html"
    found = [f for f in (index, out / "reports" / "params.html") if f.exists()]
    found += sorted(out.glob("*/reports/analysis.html"))
    found += sorted(out.glob("*/notebooks/*.html"))[:4]  # a sample of the executed setting notebooks
    return found


def section_order(text: str) -> str | None:
    """What is wrong with an analysis report's order (SPEC 8.1/8.2: the premise check comes first, the
    accuracy-vs-learning-rate figure right after it, before any other figure or verdict), or None."""
    premise, verdicts = text.find("Premise check"), text.find("Ticket verdicts")
    if premise < 0:
        return "no premise check"
    if 0 <= verdicts < premise:
        return "verdicts come before the premise check"
    lr = text.find("Accuracy vs learning rate", premise)
    later = [i for i in (text.find("Accuracy vs sparsity", premise), verdicts) if i > premise]
    if lr < 0 or any(i < lr for i in later):
        return "the accuracy-vs-learning-rate figure does not follow the premise check"
    return None


def broken_links(page_path: Path, hrefs: list[str]) -> list[str]:
    """The local links of a page (relative paths, file: URLs) whose target does not exist."""
    missing = []
    for href in hrefs:
        url = urlparse(href)
        if url.scheme not in ("", "file") or not url.path:
            continue  # a web link or an anchor in the page
        target = Path(unquote(url.path)) if url.scheme == "file" else page_path.parent / unquote(url.path)
        if not target.exists():
            missing.append(href)
    return missing


def layout_problems(m: dict) -> list[str]:
    """What the measurements ``m`` (MEASURE's result) show wrong at a 1280 px viewport."""
    problems = [f"the page is {m['page']} px wide, more than {WIDTH}"] if m["page"] > WIDTH else []
    for i, t in enumerate(m["tables"], 1):
        if t["width"] > t["room"] or t["right"] > WIDTH:
            problems.append(f"table {i} ({t['head']}) is {t['width']} px wide in {t['room']} px")
    for i, f in enumerate(m["figures"], 1):
        if not f["done"] or f["natural"] == 0:
            problems.append(f"figure {i} did not load")
        elif f["right"] > WIDTH or f["shown"] < MIN_FIGURE_SCALE * f["natural"]:
            problems.append(f"figure {i} is {f['natural']} px wide, shown at {f['shown']:.0f} px")
    return problems


def check_page(browser, page_path: Path, shot: Path) -> tuple[list[str], dict]:
    """Open one page at 1280 px: (its problems, its measurements); writes its screenshot to ``shot``."""
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors = []
    page.on("console", lambda m: errors.append(f"console: {m.text[:200]}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {str(e)[:200]}"))
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    m = page.evaluate(MEASURE)
    page.screenshot(path=str(shot), full_page=True)
    problems = errors + layout_problems(m) + table_problems(page.content(), MAX_TABLE_COLUMNS)
    problems += [f"broken link: {href}" for href in broken_links(page_path, m["links"])]
    order = section_order(page.inner_text("body")) if page_path.name == "analysis.html" else None
    page.close()
    return problems + ([f"report order: {order}"] if order else []), m


def main(out="outputs") -> int:
    from playwright.sync_api import sync_playwright
    out = Path(out)
    targets = pages(out)
    if not targets:
        print(f"error: no reports under {out}/: run `make demo` (or `make report`) first", file=sys.stderr)
        return 2
    shots = out / "reports" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    failures = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        for page_path in targets:
            shot = shots / "_".join(page_path.relative_to(out).with_suffix(".png").parts)
            problems, m = check_page(browser, page_path, shot)
            failures += bool(problems)
            widest = max([t["width"] for t in m["tables"]] + [f["shown"] for f in m["figures"]], default=0)
            print(f"{'FAIL' if problems else 'ok':4s} {page_path}  width={m['page']}px (viewport {WIDTH}) "
                  f"tables={len(m['tables'])} figures={len(m['figures'])} widest={widest:.0f}px  -> {shot}")
            for problem in problems[:10]:
                print(f"     {problem}")
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
