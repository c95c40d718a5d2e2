"""Numbers and figures a chapter's text shows, the same on the site and in JupyterLab.

A chapter records each number its prose quotes with ``glue("name", value)``, in the
cell that asserts what the sentence says, and the prose reads it back with MyST's
``eval`` role: ``{eval}`G.name``` or, formatted, ``{eval}`f"{G.name:.3f}"```. Both
myst-nb (the site, executing inline) and jupyterlab-myst (a student's notebook)
evaluate that role in the running kernel, so the text shows the number where its
cell has run; myst-nb's own ``glue`` role renders only on the site (issue 13).

``glue`` also hands the value to ``myst_nb.glue``: the site's downloadable notebook
takes the numbers from that record, and ``tests/test_chapter_verdicts.py`` finds the
asserting cell by it.

A figure is saved by ``save_figure`` as ``_figures/<name>.png`` beside the chapter and
shown by a plain ``{figure}`` directive after its cell (or in framework tabs), with a
name, alt text and caption: both renderers understand it and number it, where
``{glue:figure}`` and myst-nb's figure options of a code cell are unknown to
jupyterlab-myst.
"""

from __future__ import annotations

import keyword
from pathlib import Path
from types import SimpleNamespace

FIGURE_FOLDER = Path("_figures")


class _Glued(SimpleNamespace):
    """The values glued so far, by name (``G.name``)."""

    def __getattr__(self, name: str):
        # only reached for a name never glued: say so rather than a bare AttributeError
        raise AttributeError(
            f"no number glued as {name!r} yet: run the cell that glues it first"
        )


G = _Glued()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(
            f"name must be a Python identifier (the text reads it as G.<name>), "
            f"got {name!r}"
        )
    return name


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` for the text as ``G.<name>`` (and for myst-nb as ``name``)."""
    from myst_nb import glue as myst_glue

    setattr(G, _check_name(name), value)
    myst_glue(name, value, display=display)


def save_figure(name: str, figure) -> Path:
    """Save ``figure`` as ``_figures/<name>.png`` (beside the chapter) for the text.

    The PNG is what the notebook front end would show inline: the figure's own dpi,
    cropped to its drawn area. The figure is then closed: the text shows it (a
    ``{figure}`` directive right after the cell, with its number and caption), so the
    cell does not show it a second time.
    """
    import matplotlib.pyplot as plt

    path = FIGURE_FOLDER / f"{_check_name(name)}.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path
