"""Each chapter downloads as a notebook that reads outside the site (issues 12 and 13).

The page's download menu links the ``.ipynb`` that ``_ext/notebook_download.py`` wrote
from the build's executed notebook; ``make test`` runs nbval on these very files, so a
downloaded chapter is also known to run top to bottom on a fresh kernel. Here: every
chapter that is a notebook offers one, and what it holds is what the page shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from _site import SITE

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
NOTEBOOK_CHAPTERS = sorted(
    path.stem for path in CHAPTERS.glob("*.md") if "kernelspec:" in path.read_text()
)
DOWNLOAD_LINK = re.compile(r'href="\.\./_sources/chapters/(?P<name>[\w-]+)\.ipynb"')


def _code(notebook) -> list[str]:
    return [cell.source.strip() for cell in notebook.cells if cell.cell_type == "code"]


def test_some_chapters_are_notebooks():
    assert len(NOTEBOOK_CHAPTERS) >= 10, NOTEBOOK_CHAPTERS


@pytest.mark.parametrize("chapter", NOTEBOOK_CHAPTERS)
def test_the_page_offers_its_notebook_and_the_notebook_is_the_chapter(chapter):
    page = (SITE / "chapters" / f"{chapter}.html").read_text()
    assert [m["name"] for m in DOWNLOAD_LINK.finditer(page)] == [chapter]

    downloaded = nbformat.read(SITE / "_sources" / "chapters" / f"{chapter}.ipynb", 4)
    nbformat.validate(downloaded)
    source = jupytext.read(CHAPTERS / f"{chapter}.md")
    # shown code is run code: the same cells, in the same order, each with the
    # outputs of the build (nbval re-runs these very files and compares them)
    assert _code(downloaded) == _code(source)
    assert any(c.outputs for c in downloaded.cells if c.cell_type == "code")

    markdown = "\n".join(
        c.source for c in downloaded.cells if c.cell_type == "markdown"
    )
    # the numbers filled in (any notebook front end, not only jupyterlab-myst)
    assert "{eval}" not in markdown and "{glue" not in markdown
    figures = len(
        re.findall(r"^`{3,}\{figure\}", (CHAPTERS / f"{chapter}.md").read_text(), re.M)
    )
    attached = sum(len(c.get("attachments", {})) for c in downloaded.cells)
    assert attached == figures
