"""The learning-rate range test in NumPy: the sweep, the smoothing, the suggestions.

A range test trains one short run while the rate grows exponentially, one value per
update, and reads a rate off the curve of loss against rate. These functions follow
``torch_lr_finder.LRFinder`` (0.2.2) exactly, so that its history, the Keras callback
:class:`lrtools.keras_tools.RangeTest` and the replica engine (through
:func:`exponential_schedule`) can be compared number for number:

- :func:`exponential_rates`: the rate of each iteration, ``start * (end / start) **
  (i / (num_iter - 1))`` for ``i = 0 .. num_iter - 1`` (LRFinder's ``ExponentialLR``
  sets it before the batch, and records it after);
- :func:`smooth_losses`: LRFinder's exponential smoothing, ``s_i = f * l_i + (1 - f) *
  s_{i-1}`` with ``s_0 = l_0`` (no bias correction);
- :func:`stop_index`: where LRFinder stops, the first smoothed loss above
  ``diverge_th`` times the best smoothed loss so far;
- :func:`steepest_descent` (LRFinder's ``plot(suggest_lr=True)``) and
  :func:`tenth_of_minimum` (fastai's ``lr_min``): the two rules of thumb.

:func:`quiet_lr_finder` runs LRFinder without its prints and its progress bar.
Importing this module imports neither framework.
"""

from __future__ import annotations

import contextlib
import io
import math
from numbers import Real

import numpy as np

from lrtools import _checks

__all__ = [
    "exponential_rates",
    "exponential_schedule",
    "smooth_losses",
    "stop_index",
    "steepest_descent",
    "tenth_of_minimum",
    "quiet_lr_finder",
]


def _sweep_bounds(start_lr, end_lr, num_iter) -> tuple[float, float, int]:
    start_lr = _checks.learning_rate("start_lr", start_lr)
    end_lr = _checks.learning_rate("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(
            f"end_lr must be greater than start_lr ({start_lr!r}), got {end_lr!r}"
        )
    num_iter = _checks.positive_int("num_iter", num_iter)
    if num_iter < 2:
        raise ValueError(f"num_iter must be an integer >= 2, got {num_iter!r}")
    return start_lr, end_lr, num_iter


def exponential_rates(start_lr: float, end_lr: float, num_iter: int) -> np.ndarray:
    """The rate of each iteration of an exponential sweep, as LRFinder applies it.

    Parameters
    ----------
    start_lr, end_lr : float
        The first and the last rate (per update), finite, ``0 < start_lr < end_lr``.
    num_iter : int
        Number of iterations (updates), >= 2.

    Returns
    -------
    numpy.ndarray of float64, shape (num_iter,)
        Entry ``i`` is the rate of update ``i`` (0-based); the first is ``start_lr``,
        the last ``end_lr``, the ratio between neighbours constant.
    """
    start_lr, end_lr, num_iter = _sweep_bounds(start_lr, end_lr, num_iter)
    return exponential_schedule(start_lr, end_lr, num_iter)(np.arange(num_iter))


def exponential_schedule(start_lr: float, end_lr: float, num_iter: int):
    """The sweep as a function of the update count (``replicas.train(rate_schedule=)``).

    Returns a function ``f(t)`` of an integer array of update counts giving
    ``start_lr * (end_lr / start_lr) ** (t / (num_iter - 1))``: the rate of the
    update after ``t`` updates. Beyond ``num_iter - 1`` it keeps growing at the same
    ratio, as LRFinder's scheduler would.
    """
    start_lr, end_lr, num_iter = _sweep_bounds(start_lr, end_lr, num_iter)
    ratio = end_lr / start_lr

    def rate(t):
        t = np.asarray(t)
        if not np.issubdtype(t.dtype, np.integer) or (t.size and t.min() < 0):
            raise ValueError(f"t must hold update counts, integers >= 0, got {t!r}")
        # LRFinder's ExponentialLR.get_lr, in Python floats: NumPy's power can differ
        # from C's pow in the last bit.
        rates = [start_lr * ratio ** (int(k) / (num_iter - 1)) for k in t.ravel()]
        return np.array(rates, dtype=np.float64).reshape(t.shape)

    return rate


def _losses(name: str, values) -> np.ndarray:
    losses = np.asarray(values, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got {values!r}")
    return losses


def smooth_losses(losses, smooth_f: float = 0.05) -> np.ndarray:
    """LRFinder's exponential smoothing of the per-iteration losses.

    Parameters
    ----------
    losses : 1-D sequence of float
        Each iteration's training loss (one mini-batch's, before its update).
    smooth_f : float in [0, 1)
        Weight of the *new* loss: ``s_i = smooth_f * l_i + (1 - smooth_f) * s_{i-1}``,
        ``s_0 = l_0``; 0 turns smoothing off. LRFinder's default 0.05 averages over
        about 20 iterations and lags behind a rising loss.
    """
    losses = _losses("losses", losses)
    smooth_f = _checks.in_unit_interval("smooth_f", smooth_f)
    smoothed = losses.copy()
    if smooth_f > 0:
        for i in range(1, len(smoothed)):
            smoothed[i] = smooth_f * losses[i] + (1 - smooth_f) * smoothed[i - 1]
    return smoothed


def stop_index(smoothed, diverge_th: float = 5) -> int | None:
    """The iteration at which LRFinder stops, or None if it runs to the end.

    LRFinder stops after the first iteration whose smoothed loss exceeds
    ``diverge_th`` times the best smoothed loss so far (that iteration is still
    recorded: keep ``smoothed[: index + 1]``).

    Parameters
    ----------
    smoothed : 1-D sequence of float
        Smoothed losses (:func:`smooth_losses`).
    diverge_th : float
        Finite and > 1 (LRFinder's default 5).
    """
    smoothed = _losses("smoothed", smoothed)
    if (
        isinstance(diverge_th, bool)
        or not isinstance(diverge_th, Real)
        or not math.isfinite(diverge_th)
        or diverge_th <= 1
    ):
        raise ValueError(f"diverge_th must be a finite number > 1, got {diverge_th!r}")
    best = np.minimum.accumulate(smoothed)
    above = np.flatnonzero(smoothed > diverge_th * best)
    return int(above[0]) if above.size else None


def _trimmed(rates, losses, skip_start, skip_end) -> tuple[np.ndarray, np.ndarray]:
    rates, losses = _losses("rates", rates), _losses("losses", losses)
    if rates.shape != losses.shape:
        raise ValueError(
            f"rates and losses must have the same length, got {len(rates)} and "
            f"{len(losses)}"
        )
    skip_start = _checks.non_negative_int("skip_start", skip_start)
    skip_end = _checks.non_negative_int("skip_end", skip_end)
    if len(rates) < skip_start + skip_end + 2:
        raise ValueError(
            f"rates and losses must hold at least skip_start + skip_end + 2 = "
            f"{skip_start + skip_end + 2} points, got {len(rates)}"
        )
    end = len(rates) - skip_end
    return rates[skip_start:end], losses[skip_start:end]


def steepest_descent(rates, losses, *, skip_start: int = 10, skip_end: int = 5):
    """The rate where the loss falls fastest: LRFinder's suggestion.

    As ``LRFinder.plot(suggest_lr=True)``: drop the first ``skip_start`` and the last
    ``skip_end`` points, then take the rate at the minimum of ``numpy.gradient`` of
    the losses. The gradient is per iteration, and the rates are spaced evenly on a
    log scale, so this is the steepest descent against the logarithm of the rate.

    Parameters
    ----------
    rates, losses : 1-D sequences of the same length
        The range test's history (losses usually smoothed).
    skip_start, skip_end : int >= 0
        Points dropped at each end (LRFinder's defaults 10 and 5); at least two
        points must remain.
    """
    rates, losses = _trimmed(rates, losses, skip_start, skip_end)
    return float(rates[np.gradient(losses).argmin()])


def tenth_of_minimum(rates, losses, *, skip_start: int = 10, skip_end: int = 5):
    """A tenth of the rate at the lowest loss (fastai's ``lr_min``).

    The arguments are those of :func:`steepest_descent`; the same points are dropped.
    """
    rates, losses = _trimmed(rates, losses, skip_start, skip_end)
    return float(rates[losses.argmin()] / 10)


@contextlib.contextmanager
def quiet_lr_finder():
    """Silence ``LRFinder.range_test`` and ``plot``: no prints, no progress bar.

    LRFinder prints its progress and draws a bar with ``tqdm.autonotebook``, whose
    notebook widget ignores ``TQDM_DISABLE``; in a book page both would be noise that
    changes from run to run. Inside this context the bar is off and the prints are
    dropped.
    """
    from torch_lr_finder import lr_finder

    saved = lr_finder.tqdm
    lr_finder.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        lr_finder.tqdm = saved
