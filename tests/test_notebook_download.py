"""The notebook a chapter's page offers for download (``_ext/notebook_download.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from notebook_download import PREFACE, downloadable_notebook  # noqa: E402

PNG_BYTES = b"\x89PNG\r\n\x1a\n"  # a PNG's signature: the function copies the bytes
PNG = "iVBORw0KGgo="  # the same bytes in base64, as a notebook attachment holds them

GLUED = {
    "accuracy": {"data": {"text/plain": "0.81234"}},
    "epochs": {"data": {"text/plain": "41"}},
    "label": {"data": {"text/plain": "'plain SGD'"}},
}

FIGURE = """Before.

```{figure} _figures/fig_curves.png
:name: fig-curves
:alt: Two curves, [training] and test.

Training (dash-dotted) and test (solid) accuracy
of {eval}`G.label` by epoch.
```

After, {numref}`fig-curves`."""


@pytest.fixture
def folder(tmp_path):
    """A chapter's folder, with the one figure the chapter saved."""
    (tmp_path / "_figures").mkdir()
    (tmp_path / "_figures" / "fig_curves.png").write_bytes(PNG_BYTES)
    return tmp_path


def _notebook(*markdown: str, code: str = "x = 1") -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": s} for s in markdown]
    cells.append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": code,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
            "execution_count": 1,
        }
    )
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _markdown(notebook: dict) -> list[str]:
    return [c["source"] for c in notebook["cells"] if c["cell_type"] == "markdown"]


def test_eval_roles_become_the_numbers_formatted_as_myst_nb_formats_them(folder):
    source = (
        'Accuracy {eval}`f"{G.accuracy:.3f}"` after {eval}`G.epochs` epochs of '
        '{eval}`G.label`, {eval}`f"{G.accuracy:.1%}"`.'
    )
    notebook = downloadable_notebook(_notebook("# T", source), GLUED, folder)
    [_, _, text] = _markdown(notebook)
    assert text == "Accuracy 0.812 after 41 epochs of plain SGD, 81.2%."


def test_a_saved_figure_becomes_an_attachment_with_its_alt_text_and_caption(folder):
    notebook = downloadable_notebook(_notebook("# T", FIGURE), GLUED, folder)
    cell = notebook["cells"][2]
    assert cell["attachments"] == {"fig_curves.png": {"image/png": PNG}}
    assert cell["source"] == (
        "Before.\n\n"
        "![Two curves, (training) and test.](attachment:fig_curves.png)\n\n"
        "*Figure.* Training (dash-dotted) and test (solid) accuracy of plain SGD by "
        "epoch.\n\nAfter, {numref}`fig-curves`."
    )


def test_code_cells_and_outputs_are_untouched_and_the_preface_follows_the_title(
    folder,
):
    original = _notebook("# Title", "Text.", code="print(1)")
    notebook = downloadable_notebook(original, GLUED, folder)
    assert notebook["cells"][-1] == original["cells"][-1]
    assert _markdown(notebook) == ["# Title", PREFACE, "Text."]
    assert "pip install -e ." in PREFACE and "not** `pip install lrtools`" in PREFACE


def test_links_to_other_chapters_point_to_their_notebooks(folder):
    source = "See [The blobs problem](blobs.md) and [the code](../lrtools/data.py)."
    notebook = downloadable_notebook(_notebook("# T", source), GLUED, folder)
    [_, _, text] = _markdown(notebook)
    assert (
        text
        == "See [The blobs problem](blobs.ipynb) and [the code](../lrtools/data.py)."
    )


@pytest.mark.parametrize(
    "source",
    [
        '{eval}`f"{G.missing:.2f}"`',
        FIGURE.replace("fig_curves", "fig_missing"),
    ],
)
def test_a_name_never_glued_or_a_figure_never_saved_is_an_error(source, folder):
    with pytest.raises(KeyError, match="missing"):
        downloadable_notebook(_notebook(source), GLUED, folder)
