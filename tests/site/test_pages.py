"""Every page of the built site, read in a real browser as a reader would (issue 12).

For each page: nothing is fetched from outside the site (MathJax included), the console
stays free of errors, every image decodes and has a text alternative, every formula is
typeset with no MathJax error and no raw TeX left in the text, and axe-core finds no
serious or critical accessibility violation. A full-page screenshot of each page goes
to ``_build/screenshots/`` for people to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _site import SCREENSHOTS, site_pages

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PAGES = site_pages()
# TeX a reader would see raw if MathJax had missed it (code blocks are left out).
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\$[^\s$][^$\n]*[^\s$]\$")


def visit(context, origin, name):
    """Open a page, recording every request and every console error."""
    page = context.new_page()
    record = {"requests": [], "errors": []}
    page.on("request", lambda request: record["requests"].append(request.url))
    page.on(
        "console",
        lambda message: (
            record["errors"].append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: record["errors"].append(str(error)))
    page.goto(f"{origin}/{name}", wait_until="networkidle")
    # MathJax typesets asynchronously; its startup promise settles when it is done.
    page.evaluate("() => window.MathJax?.startup?.promise ?? null")
    return page, record


def prose_text(page) -> str:
    """The article's visible text, without code, scripts and typeset math."""
    return page.evaluate(
        """() => {
          const article = document.querySelector("article") ?? document.body;
          const copy = article.cloneNode(true);
          copy.querySelectorAll("pre, code, script, style, mjx-container, .MathJax")
              .forEach((node) => node.remove());
          return copy.innerText;
        }"""
    )


def outside_requests(record, origin) -> list[str]:
    return [
        url
        for url in record["requests"]
        if not url.startswith(f"{origin}/") and not url.startswith(("data:", "blob:"))
    ]


def image_problems(page) -> list[str]:
    images = page.evaluate(
        """async () => Promise.all([...document.querySelectorAll("article img")].map(
             async (img) => {
               let decoded = true;
               try { await img.decode(); } catch (error) { decoded = false; }
               return {src: img.getAttribute("src"), alt: img.alt,
                       decoded: decoded && img.naturalWidth > 0,
                       caption: img.closest("figure")?.querySelector("figcaption")
                                   ?.innerText.trim() ?? ""};
             }))"""
    )
    problems = []
    for image in images:
        if not image["decoded"]:
            problems.append(f"does not decode: {image['src']}")
        # myst-nb's fallback alt text is the image's own file name: no help to a reader
        if not image["alt"].strip() or image["alt"].endswith((".png", ".svg")):
            problems.append(f"no text alternative: {image['src']}")
        if not image["caption"]:
            problems.append(f"no caption: {image['src']}")
    return problems


def math_problems(page) -> list[str]:
    counts = page.evaluate(
        """() => ({
          math: document.querySelectorAll("article .math").length,
          typeset: document.querySelectorAll("article .math mjx-container").length,
          errors: document.querySelectorAll("mjx-merror").length,
        })"""
    )
    problems = []
    if counts["typeset"] != counts["math"]:
        problems.append(f"untypeset math: {counts}")
    if counts["errors"]:
        problems.append(f"MathJax errors: {counts}")
    raw = RAW_TEX.findall(prose_text(page))
    if raw:
        problems.append(f"raw TeX in the text: {raw[:5]}")
    return problems


def accessibility_problems(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"axe {violation['id']} ({violation['impact']}): "
        f"{violation['nodes'][0]['html'][:120]}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("name", PAGES)
def test_page_as_a_reader_gets_it(context, origin, name):
    page, record = visit(context, origin, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=SCREENSHOTS / name.replace("/", "__").replace(".html", ".png"),
        full_page=True,
    )
    problems = [
        f"fetches from outside the site: {url}"
        for url in outside_requests(record, origin)
    ]
    problems += [f"console error: {error}" for error in record["errors"]]
    problems += image_problems(page)
    problems += math_problems(page)
    problems += accessibility_problems(page)
    assert not problems, f"{name}:\n" + "\n".join(problems)
