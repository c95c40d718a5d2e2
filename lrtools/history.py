"""Keras-style training histories (dicts of per-epoch lists), for both frameworks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def pad_history(
    history: Mapping[str, Sequence[float]], epochs: int
) -> dict[str, list[float]]:
    """Pad every series of a history that stopped early with NaN to ``epochs`` values.

    Known keys come first in :data:`HISTORY_KEYS` order, so histories from both
    frameworks line up.
    """
    keys = [k for k in HISTORY_KEYS if k in history] + [
        k for k in history if k not in HISTORY_KEYS
    ]
    return {
        k: [float(x) for x in history[k]] + [math.nan] * (epochs - len(history[k]))
        for k in keys
    }


def diverged_epoch(losses: Sequence[float]) -> int | None:
    """First 0-based epoch whose loss is not finite; None if the run never diverged."""
    for epoch, loss in enumerate(losses):
        if not math.isfinite(loss):
            return epoch
    return None
