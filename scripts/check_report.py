"""Open every report page in headless Chromium: no console errors, every figure loaded, and an analysis
report states its premise check before any verdict, with the accuracy-vs-learning-rate figure right
after it; screenshots.

    python scripts/check_report.py [OUT]      (make check-report)

Needs Debian's chromium and the playwright Python package (driver only; it uses /usr/bin/chromium):
`make check-report` installs both when missing. Screenshots go to OUT/reports/screenshots/.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def pages(out: Path) -> list[Path]:
    index = out / "reports" / "index.html"
    found = [index] if index.exists() else []
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
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            errors = []
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
            broken = [i for i, (done, w) in enumerate(imgs) if not done or w == 0]
            name = "_".join(page_path.relative_to(out).with_suffix(".png").parts)
            page.screenshot(path=str(shots / name), full_page=True)
            order = section_order(page.inner_text("body")) if page_path.name == "analysis.html" else None
            if order:
                errors.append(f"report order: {order}")
            status = "ok" if not errors and not broken else "FAIL"
            failures += status == "FAIL"
            print(f"{status:4s} {page_path}  figures={len(imgs)} broken={len(broken)} console_errors={len(errors)}"
                  f"  -> {shots / name}")
            for e in errors[:5]:
                print(f"     console: {e[:200]}")
            page.close()
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
