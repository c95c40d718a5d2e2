"""Each chapter downloads as the ``.ipynb`` the build executed (issues 12 and 13).

The page's download menu (sphinx-book-theme) offers a notebook when the page context
names one in ``ipynb_source``; nothing in jupyter-book 1 sets it, so this extension
does. The file is the notebook myst-nb executed inline and wrote, outputs included, to
``_build/jupyter_execute``, its code cells and outputs untouched (so
``make test`` runs nbval on these very files), and its Markdown made readable in any
notebook front end, not only JupyterLab with jupyterlab-myst:

- ``{eval}`G.name``` and ``{eval}`f"{G.name:fmt}"``` roles (``lrtools.prose``) become
  the numbers the site shows, from the build's glue record, formatted by myst-nb's own
  function;
- ``{figure}`` directives of a figure the chapter saved (``_figures/<name>.png``)
  become the figure itself (a cell attachment), its alt text and its caption;
- links to other chapters (``[title](blobs.md)``) point to their downloaded
  notebooks (``blobs.ipynb``), for a student who keeps the chapters in one folder;
- a first cell says where the notebook comes from and how to get ``lrtools``.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nbformat
from myst_nb.core.variables import format_plain_text

OUTPUT_FOLDER = "jupyter_execute"  # myst-nb's, beside the html folder

# The two forms of eval role lrtools.prose allows (the book's nb_eval_name_regex)
EVAL = re.compile(
    r'\{eval\}`(?:G\.(?P<key>\w+)|f"\{G\.(?P<fkey>\w+):(?P<fmt>[^"{}`]+)\}")`'
)
# A {figure} directive of a saved figure: path, options (":key: value" lines), a blank
# line, then the caption up to the closing fence.
FIGURE = re.compile(
    r"^(?P<fence>`{3,})\{figure\}[ \t]+(?P<path>_figures/(?P<key>\w+)\.png)[ \t]*\n"
    r"(?P<options>(?:[ \t]*:[\w-]+:[^\n]*\n)*)"
    r"(?P<caption>.*?)\n(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# A Markdown link to another chapter's source: [title](blobs.md) or (blobs.md#label)
CHAPTER_LINK = re.compile(r"\]\((?P<page>[\w-]+)\.md(?P<anchor>#[\w-]+)?\)")
OPTION = re.compile(r"^[ \t]*:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$", re.MULTILINE)

PREFACE = """\
```{note}
This notebook is a chapter of *Learning-Rate Dynamics*, downloaded with the outputs of
the build that made the site. It needs the book's own `lrtools` package: from a clone of
the repository, `pip install -r requirements.txt` and `pip install -e .`
(**not** `pip install lrtools`: PyPI's package of that name is an unrelated project).
Numbers in the text are those of the build; run the cells to recompute them.
```"""


def _glued_text(glued: dict, key: str, fmt: str | None) -> str:
    try:
        plain = glued[key]["data"]["text/plain"]
    except KeyError as missing:
        raise KeyError(f"no glued text/plain value named {key!r}") from missing
    return format_plain_text(plain, fmt or "")


def _replace_figures(source: str, folder: Path, attachments: dict) -> str:
    def figure(match: re.Match) -> str:
        key = match["key"]
        try:
            png = base64.b64encode((folder / match["path"]).read_bytes()).decode()
        except FileNotFoundError as missing:
            raise KeyError(f"no saved figure {match['path']!r}") from missing
        options = {
            m["key"]: m["value"].strip() for m in OPTION.finditer(match["options"])
        }
        alt = options.get("alt", key).replace("]", ")").replace("[", "(")
        attachments[f"{key}.png"] = {"image/png": png}
        caption = " ".join(match["caption"].split())
        return f"![{alt}](attachment:{key}.png)\n\n*Figure.* {caption}"

    return FIGURE.sub(figure, source)


def _replace_text(source: str, glued: dict) -> str:
    return EVAL.sub(
        lambda m: _glued_text(glued, m["key"] or m["fkey"], m["fmt"]), source
    )


def downloadable_notebook(notebook: dict, glued: dict, folder: Path) -> dict:
    """The executed ``notebook``, its numbers and figures filled in.

    ``glued`` maps each glue name to its output (myst-nb's ``<page>.glue.json``);
    ``folder`` is the chapter's own, where its ``_figures`` are. Code cells are
    returned unchanged; a name that ``glued`` lacks, or a missing figure, is a
    KeyError (the site build would have failed on it too).
    """
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            attachments = dict(cell.get("attachments", {}))
            source = _replace_figures(source, folder, attachments)
            source = _replace_text(source, glued)
            source = CHAPTER_LINK.sub(r"](\g<page>.ipynb\g<anchor>)", source)
            cell = {**cell, "source": source}
            if attachments:
                cell["attachments"] = attachments
        cells.append(cell)
    preface = {
        "cell_type": "markdown",
        "id": "downloaded-from-the-book",
        "metadata": {},
        "source": PREFACE,
    }
    # after the title cell when the first cell holds the chapter's heading
    at = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
    return {**notebook, "cells": [*cells[:at], preface, *cells[at:]]}


def _write_download(app, pagename, templatename, context, doctree) -> None:
    executed = Path(app.outdir).parent / OUTPUT_FOLDER / f"{pagename}.ipynb"
    if not executed.is_file():  # a page that is not a notebook
        return
    glue_file = executed.with_suffix(".glue.json")
    glued = json.loads(glue_file.read_text()) if glue_file.is_file() else {}
    run = nbformat.read(executed, as_version=4)
    folder = (Path(app.srcdir) / pagename).parent
    notebook = downloadable_notebook(json.loads(nbformat.writes(run)), glued, folder)
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    # the theme's download menu lists it (its handler runs at priority 501)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", _write_download, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
