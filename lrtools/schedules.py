"""Pure NumPy learning-rate formulas: the single source of truth for the book's plots.

Each formula is checked against the frameworks' own schedules in
``tests/test_schedules.py`` (Keras's ``keras.optimizers.schedules``, PyTorch's
``torch.optim.lr_scheduler``). Importing this module imports neither framework.
"""

from __future__ import annotations

import numpy as np

from lrtools import _checks

__all__ = ["inverse_time_decay"]


def _decay_rate(value) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"decay must be a finite number >= 0, got {value!r}")
    return float(value)


def _update_counts(value) -> np.ndarray:
    """``value`` as an int64 array, or ValueError unless every entry is an int >= 0."""
    counts = np.asarray(value)
    whole = counts.dtype != bool and (
        np.issubdtype(counts.dtype, np.integer) or counts.size == 0
    )
    if isinstance(value, bool) or not whole:
        raise ValueError(
            f"updates must be integers >= 0 (optimizer updates done), got {value!r}"
        )
    if counts.size and counts.min() < 0:
        raise ValueError(
            "updates must be integers >= 0 (optimizer updates done), "
            f"got a minimum of {counts.min()}"
        )
    return counts.astype(np.int64)


def inverse_time_decay(initial_rate: float, decay: float, updates):
    """Keras 2's ``SGD(lr=initial_rate, decay=decay)`` rate after ``updates`` updates.

    ``initial_rate / (1 + decay * updates)``, as Keras 2's SGD computed it before
    every update from its update counter (``keras/optimizers.py`` of Keras 2.2.4,
    lines 188 to 190). The same numbers come from Keras 3's
    ``keras.optimizers.schedules.InverseTimeDecay(initial_rate, decay_steps=1,
    decay_rate=decay)`` (in float32) and from PyTorch's
    ``torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 / (1 + decay * t))``
    stepped after every ``optimizer.step()``.

    Parameters
    ----------
    initial_rate : float
        Learning rate of the first update, finite and > 0.
    decay : float
        Decay per *update* (not per epoch), finite and >= 0; 0 keeps the rate
        constant. At a batch size of 32 on the study's 500 training samples an
        epoch is 16 updates.
    updates : int or array_like of int
        Number of optimizer updates already done, >= 0 (0-based: the first update
        uses ``updates=0``, i.e. ``initial_rate``).

    Returns
    -------
    float or numpy.ndarray
        The learning rate (per update, in the units of ``initial_rate``) that the
        next update uses: a float for a scalar ``updates``, else a float64 array of
        the same shape.

    Examples
    --------
    The study's two extremes after 200 epochs of 16 updates:

    >>> round(inverse_time_decay(0.01, 0.1, 3200), 10)
    3.11526e-05
    >>> round(inverse_time_decay(0.01, 1e-4, 3200), 8)
    0.00757576
    """
    initial_rate = _checks.learning_rate("initial_rate", initial_rate)
    decay = _decay_rate(decay)
    counts = _update_counts(updates)
    rates = initial_rate / (1.0 + decay * counts)
    return float(rates) if rates.ndim == 0 else rates
