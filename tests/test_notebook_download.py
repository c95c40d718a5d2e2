"""The notebook a chapter's page offers for download (``_ext/notebook_download.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from notebook_download import PREFACE, downloadable_notebook  # noqa: E402

PNG = "iVBORw0KGgo="  # any base64 text: the function copies it, never decodes it

GLUED = {
    "accuracy": {"data": {"text/plain": "0.81234"}},
    "epochs": {"data": {"text/plain": "41"}},
    "label": {"data": {"text/plain": "'plain SGD'"}},
    "snippet": {"data": {"text/plain": "<Markdown>", "text/markdown": "`lr=0.1`"}},
    "fig_curves": {"data": {"text/plain": "<Figure>", "image/png": PNG}},
}

FIGURE = """Before.

```{glue:figure} fig_curves
:name: fig-curves
:alt: Two curves, [training] and test.

Training (dash-dotted) and test (solid) accuracy
of {glue:text}`label` by epoch.
```

After, {numref}`fig-curves`."""


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


def test_glued_text_is_formatted_as_myst_nb_formats_it():
    source = (
        "Accuracy {glue:text}`accuracy:.3f` after {glue:text}`epochs` epochs of "
        "{glue:text}`label`, {glue:text}`accuracy:.1%`."
    )
    [title, _, text] = _markdown(downloadable_notebook(_notebook("# T", source), GLUED))
    assert text == "Accuracy 0.812 after 41 epochs of plain SGD, 81.2%."


def test_a_glued_figure_becomes_an_attachment_with_its_alt_text_and_caption():
    notebook = downloadable_notebook(_notebook("# T", FIGURE), GLUED)
    cell = notebook["cells"][2]
    assert cell["attachments"] == {"fig_curves.png": {"image/png": PNG}}
    assert cell["source"] == (
        "Before.\n\n"
        "![Two curves, (training) and test.](attachment:fig_curves.png)\n\n"
        "*Figure.* Training (dash-dotted) and test (solid) accuracy of plain SGD by "
        "epoch.\n\nAfter, {numref}`fig-curves`."
    )


def test_code_cells_and_their_outputs_are_untouched_and_the_preface_follows_the_title():
    original = _notebook("# Title", "Text.", code="print(1)")
    notebook = downloadable_notebook(original, GLUED)
    assert notebook["cells"][-1] == original["cells"][-1]
    assert _markdown(notebook) == ["# Title", PREFACE, "Text."]
    assert "pip install -e ." in PREFACE and "not** `pip install lrtools`" in PREFACE


def test_glued_markdown_is_pasted_in_place_of_its_directive():
    source = "Keras:\n\n```{glue:md} snippet\n:format: myst\n```\n\nDone."
    [_, _, text] = _markdown(downloadable_notebook(_notebook("# T", source), GLUED))
    assert text == "Keras:\n\n`lr=0.1`\n\nDone."


@pytest.mark.parametrize(
    "source",
    [
        "{glue:text}`missing:.2f`",
        FIGURE.replace("fig_curves", "fig_missing"),
        "```{glue:md} missing\n:format: myst\n```",
    ],
)
def test_a_name_that_was_never_glued_is_an_error(source):
    with pytest.raises(KeyError, match="missing"):
        downloadable_notebook(_notebook(source), GLUED)
