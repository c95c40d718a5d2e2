import pytest

from lrtools import _progress


@pytest.mark.parametrize(
    ("value", "off"),
    [("1", True), ("True", True), (" yes ", True), ("0", False), ("", False)],
)
def test_the_environment_switches_bars_off(monkeypatch, value, off):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert _progress.disabled_by_environment() is off
    bar = _progress.progress_bar(range(3), desc="d", unit="u")
    assert bar.disable is off
    assert list(bar) == [0, 1, 2]


def test_a_bar_can_be_switched_off_by_the_caller(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert _progress.progress_bar(range(2), desc="d", unit="u", enabled=False).disable
    assert not _progress.progress_bar(range(2), desc="d", unit="u").disable


def test_the_notebook_bar_obeys_the_environment(monkeypatch):
    # tqdm.notebook turns a missing `disable` into False, ignoring TQDM_DISABLE;
    # progress_bar passes it explicitly. (Needs ipywidgets, which the book requires.)
    from tqdm.notebook import tqdm as notebook_tqdm

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not notebook_tqdm(range(2), display=False).disable
    monkeypatch.setattr(_progress, "tqdm", notebook_tqdm)
    assert _progress.progress_bar(range(2), desc="d", unit="u").disable
