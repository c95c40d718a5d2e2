"""Progress bars that the book build can switch off.

``tqdm.auto`` gives a widget in Jupyter and a text bar on a terminal. The environment
variable ``TQDM_DISABLE=1`` is meant to hide both, but tqdm's notebook bar overrides it
(it turns a missing ``disable`` into ``False``), so a built page would show a stale
widget with one machine's timings. This module reads the variable itself.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

_OFF = {"1", "true", "yes", "on"}


def disabled_by_environment() -> bool:
    """True when ``TQDM_DISABLE`` is set to 1/true/yes/on (any case)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF


def progress_bar(iterable, *, desc: str, unit: str, enabled: bool = True):
    """``tqdm(iterable)``, hidden if ``enabled`` is False or the environment says so."""
    disable = not enabled or disabled_by_environment()
    return tqdm(iterable, desc=desc, unit=unit, disable=disable)
