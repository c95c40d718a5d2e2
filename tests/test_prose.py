"""lrtools.prose: the numbers and figures a chapter's text shows (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from lrtools import prose  # noqa: E402

BOOK = Path(__file__).resolve().parents[1]


def test_a_glued_number_reads_back_as_g_dot_name():
    prose.glue("test_gap", 0.0123)
    assert prose.G.test_gap == 0.0123
    assert f"{prose.G.test_gap:.3f}" == "0.012"  # the form the text's eval roles use


def test_a_name_never_glued_says_which_cell_to_run():
    with pytest.raises(AttributeError, match="no number glued as 'never_glued'"):
        prose.G.never_glued  # noqa: B018


@pytest.mark.parametrize("name", ["two words", "fig-a", "1st", "class", 3])
def test_a_name_the_text_cannot_read_is_a_clear_error(name):
    with pytest.raises(ValueError, match="name must be a Python identifier"):
        prose.glue(name, 1.0)
    with pytest.raises(ValueError, match="name must be a Python identifier"):
        prose.save_figure(name, None)


def test_a_figure_is_saved_beside_the_chapter_as_the_png_the_text_shows(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a chapter runs in its own folder
    figure, axes = plt.subplots(figsize=(4, 3), dpi=50)
    axes.plot([0, 1], [1, 0])
    path = prose.save_figure("fig_line", figure)
    assert not plt.fignum_exists(figure.number)  # the text shows it, not the cell
    assert path == prose.FIGURE_FOLDER / "fig_line.png"
    data = (tmp_path / path).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(data[16:20], "big")
    assert 0 < width <= 4 * 50  # the figure's own dpi, cropped to what is drawn


def test_the_book_lets_eval_roles_read_glued_numbers_only():
    """_config.yml's nb_eval_name_regex admits the two forms the chapters use."""
    with open(BOOK / "_config.yml", encoding="utf-8") as config:
        regex = yaml.safe_load(config)["sphinx"]["config"]["nb_eval_name_regex"]
    for allowed in ["G.best_lr", 'f"{G.best_lr:.0e}"', 'f"{G.share:.0%}"']:
        assert re.match(regex, allowed), allowed
    for refused in ["best_lr", 'f"{best_lr:.3f}"', '__import__("os")', "G.a + 1"]:
        assert not re.match(regex, refused), refused
