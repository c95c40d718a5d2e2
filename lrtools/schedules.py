"""Learning-rate schedules in pure NumPy: the formulas behind the book's plots.

Each function computes, vectorized over ``step`` (or ``epoch``), the rate that a
framework's own schedule object gives, with keyword arguments named as the library
names them, so a reader can move between the formula and the object:

- as ``keras.optimizers.schedules``, counting **optimizer updates** (``step``):
  :func:`exponential_decay`, :func:`inverse_time_decay`,
  :func:`piecewise_constant_decay`, :func:`polynomial_decay`, :func:`cosine_decay`,
  :func:`cosine_decay_restarts`;
- as ``torch.optim.lr_scheduler``, counting **calls to** ``scheduler.step()``
  (epochs, usually), where ``lr`` is the optimizer's initial rate: :func:`step_lr`,
  :func:`cosine_annealing_lr`, and :func:`one_cycle_lr` (stepped per update).

They exist to teach and to plot; training uses the frameworks' own objects.
``tests/test_schedules.py`` checks every one against the library object over many
random settings. Keras computes in float32, these in float64. Importing this module
imports neither framework.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from lrtools import _checks

__all__ = [
    "exponential_decay",
    "inverse_time_decay",
    "piecewise_constant_decay",
    "polynomial_decay",
    "cosine_decay",
    "cosine_decay_restarts",
    "step_lr",
    "cosine_annealing_lr",
    "one_cycle_lr",
]


# -- argument checks ----------------------------------------------------------------


def _counts(name: str, value) -> np.ndarray:
    """``value`` as a float64 array of whole counts >= 0, or a ValueError."""
    counts = np.asarray(value)
    whole = counts.dtype != bool and (
        np.issubdtype(counts.dtype, np.integer) or counts.size == 0
    )
    if isinstance(value, bool) or not whole:
        raise ValueError(f"{name} must be integers >= 0 (a count), got {value!r}")
    if counts.size and counts.min() < 0:
        raise ValueError(
            f"{name} must be integers >= 0 (a count), got a minimum of {counts.min()}"
        )
    return counts.astype(np.float64)


def _real(name: str, value, *, low: float, low_open: bool, high=math.inf) -> float:
    """``value`` as a float, or ValueError unless finite and in the stated range."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, Real)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        upper = "" if high == math.inf else f" and <= {high:g}"
        raise ValueError(
            f"{name} must be a finite number {bound}{upper}, got {value!r}"
        )
    return float(value)


def _positive(name: str, value) -> float:
    return _real(name, value, low=0.0, low_open=True)


def _bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _result(rates: np.ndarray):
    """A float for a scalar step, else the float64 array."""
    return float(rates) if rates.ndim == 0 else rates


# -- keras.optimizers.schedules (count optimizer updates) ---------------------------


def exponential_decay(
    step, initial_learning_rate, decay_steps, decay_rate, staircase=False
):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, as
    ``keras.optimizers.schedules.ExponentialDecay``; with ``staircase`` the exponent
    is floored, so the rate drops every ``decay_steps`` updates.

    ``step``: updates done (int >= 0, array-like); ``decay_steps`` > 0;
    ``decay_rate`` > 0 (below 1 to decay).

    >>> round(exponential_decay(100, 0.1, decay_steps=100, decay_rate=0.5), 6)
    0.05
    """
    step = _counts("step", step)
    lr0 = _checks.learning_rate("initial_learning_rate", initial_learning_rate)
    decay_steps = _positive("decay_steps", decay_steps)
    decay_rate = _positive("decay_rate", decay_rate)
    p = step / decay_steps
    if _bool("staircase", staircase):
        p = np.floor(p)
    return _result(lr0 * decay_rate**p)


def inverse_time_decay(
    step, initial_learning_rate, decay_steps, decay_rate, staircase=False
):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``, as
    ``keras.optimizers.schedules.InverseTimeDecay`` (floored with ``staircase``).

    With ``decay_steps=1`` it is Keras 2's ``SGD(lr=..., decay=decay_rate)``, which
    applied it before every update from its update counter (``keras/optimizers.py``
    of Keras 2.2.4, lines 188 to 190), and PyTorch's
    ``LambdaLR(optimizer, lambda t: 1 / (1 + decay_rate * t))`` stepped after every
    ``optimizer.step()``. ``step``: updates done (0 for the first update).

    The study's two extremes after 200 epochs of 16 updates:

    >>> round(inverse_time_decay(3200, 0.01, decay_steps=1, decay_rate=0.1), 10)
    3.11526e-05
    >>> round(inverse_time_decay(3200, 0.01, decay_steps=1, decay_rate=1e-4), 8)
    0.00757576
    """
    step = _counts("step", step)
    lr0 = _checks.learning_rate("initial_learning_rate", initial_learning_rate)
    decay_steps = _positive("decay_steps", decay_steps)
    decay_rate = _checks.non_negative("decay_rate", decay_rate)
    p = step / decay_steps
    if _bool("staircase", staircase):
        p = np.floor(p)
    return _result(lr0 / (1.0 + decay_rate * p))


def piecewise_constant_decay(step, boundaries, values):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``, as
    ``keras.optimizers.schedules.PiecewiseConstantDecay``: ``values[0]`` up to and
    including ``step == boundaries[0]``, ``values[-1]`` after the last boundary.

    ``boundaries``: strictly increasing ints >= 0; ``values``: one more than
    ``boundaries``, each finite and >= 0.

    >>> piecewise_constant_decay([0, 10, 11, 20], boundaries=[10], values=[0.1, 0.01])
    array([0.1 , 0.1 , 0.01, 0.01])
    """
    step = _counts("step", step)
    bounds = list(boundaries) if isinstance(boundaries, (list, tuple)) else None
    if (
        not bounds
        or not all(isinstance(b, Integral) and not isinstance(b, bool) for b in bounds)
        or min(bounds) < 0
        or any(b >= c for b, c in zip(bounds, bounds[1:], strict=False))
    ):
        raise ValueError(
            "boundaries must be a non-empty list of strictly increasing integers "
            f">= 0, got {boundaries!r}"
        )
    if not isinstance(values, (list, tuple)) or len(values) != len(bounds) + 1:
        raise ValueError(
            f"values must be a list of len(boundaries) + 1 = {len(bounds) + 1} "
            f"rates, got {values!r}"
        )
    rates = np.array([_checks.non_negative("values", v) for v in values])
    # the number of boundaries strictly below the step picks the value
    return _result(rates[np.searchsorted(bounds, step, side="left")])


def polynomial_decay(
    step,
    initial_learning_rate,
    decay_steps,
    end_learning_rate=0.0001,
    power=1.0,
    cycle=False,
):
    """From ``initial_learning_rate`` to ``end_learning_rate`` along
    ``(1 - step / decay_steps) ** power``, as
    ``keras.optimizers.schedules.PolynomialDecay``. After ``decay_steps`` updates the
    rate stays at ``end_learning_rate``, or, with ``cycle``, the decay restarts over a
    horizon stretched to the next multiple of ``decay_steps``.

    >>> polynomial_decay([0, 50, 100, 150], 0.1, decay_steps=100, end_learning_rate=0.0)
    array([0.1 , 0.05, 0.  , 0.  ])
    """
    step = _counts("step", step)
    lr0 = _checks.learning_rate("initial_learning_rate", initial_learning_rate)
    decay_steps = _positive("decay_steps", decay_steps)
    end = _checks.non_negative("end_learning_rate", end_learning_rate)
    power = _positive("power", power)
    if _bool("cycle", cycle):
        horizon = decay_steps * np.where(step == 0, 1.0, np.ceil(step / decay_steps))
    else:
        horizon = np.full_like(step, decay_steps)
        step = np.minimum(step, decay_steps)
    return _result((lr0 - end) * (1.0 - step / horizon) ** power + end)


def _cosine(fraction: np.ndarray, alpha: float) -> np.ndarray:
    """The cosine factor from 1 (fraction 0) down to ``alpha`` (fraction 1)."""
    return (1.0 - alpha) * 0.5 * (1.0 + np.cos(np.pi * fraction)) + alpha


def cosine_decay(
    step,
    initial_learning_rate,
    decay_steps,
    alpha=0.0,
    warmup_target=None,
    warmup_steps=0,
):
    """Cosine decay, with an optional linear warmup, as
    ``keras.optimizers.schedules.CosineDecay``.

    Without ``warmup_target``: from ``initial_learning_rate`` down to
    ``alpha * initial_learning_rate`` over ``decay_steps`` updates, then constant.
    With it: a straight line from ``initial_learning_rate`` up to ``warmup_target``
    over ``warmup_steps`` updates, then the cosine from ``warmup_target`` down to
    ``alpha * warmup_target`` over ``decay_steps`` more.

    >>> cosine_decay([0, 5, 10, 20], 0.0, 10, warmup_target=0.1, warmup_steps=10)
    array([0.  , 0.05, 0.1 , 0.  ])

    (``initial_learning_rate`` may be 0 here only when warming up.)
    """
    step = _counts("step", step)
    if warmup_target is None:
        lr0 = _checks.learning_rate("initial_learning_rate", initial_learning_rate)
    else:
        lr0 = _checks.non_negative("initial_learning_rate", initial_learning_rate)
    decay_steps = _positive("decay_steps", decay_steps)
    alpha = _real("alpha", alpha, low=0.0, low_open=False, high=1.0)
    if warmup_target is None:
        return _result(
            lr0 * _cosine(np.minimum(step, decay_steps) / decay_steps, alpha)
        )
    target = _positive("warmup_target", warmup_target)
    warmup = float(_checks.non_negative_int("warmup_steps", warmup_steps))
    step = np.minimum(step, decay_steps + warmup)
    warming = step < warmup
    ramp = (target - lr0) * step / max(warmup, 1.0) + lr0
    decay = target * _cosine((step - warmup) / decay_steps, alpha)
    return _result(np.where(warming, ramp, decay))


def cosine_decay_restarts(
    step, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0
):
    """Cosine decay with warm restarts (SGDR), as
    ``keras.optimizers.schedules.CosineDecayRestarts``: the first cycle lasts
    ``first_decay_steps`` updates, each next one ``t_mul`` times longer and starting
    ``m_mul`` times lower; within a cycle the rate falls along a cosine to ``alpha``
    times the initial rate.

    >>> cosine_decay_restarts([0, 10, 20, 30], 0.1, first_decay_steps=10, t_mul=1.0)
    array([0.1, 0.1, 0.1, 0.1])
    """
    step = _counts("step", step)
    lr0 = _checks.learning_rate("initial_learning_rate", initial_learning_rate)
    first = _positive("first_decay_steps", first_decay_steps)
    t_mul = _positive("t_mul", t_mul)
    m_mul = _positive("m_mul", m_mul)
    alpha = _real("alpha", alpha, low=0.0, low_open=False, high=1.0)
    if t_mul < 1.0 and step.size and step.max() >= first / (1.0 - t_mul):
        # shrinking cycles add up to first / (1 - t_mul) updates; Keras gives NaN after
        raise ValueError(
            f"step must be < first_decay_steps / (1 - t_mul) = {first / (1 - t_mul):g} "
            f"when t_mul < 1 (the cycles shrink and run out), got {step.max():g}"
        )
    fraction = step / first
    if t_mul == 1.0:
        restarts = np.floor(fraction)
        fraction = fraction - restarts
    else:
        # cycle i starts after first * (1 + t + ... + t**(i-1)) = first * sum_r updates
        restarts = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / np.log(t_mul))
        sum_r = (1.0 - t_mul**restarts) / (1.0 - t_mul)
        fraction = (fraction - sum_r) / t_mul**restarts
    cosine = 0.5 * m_mul**restarts * (1.0 + np.cos(np.pi * fraction))
    return _result(lr0 * ((1.0 - alpha) * cosine + alpha))


# -- torch.optim.lr_scheduler (count scheduler.step() calls) ------------------------


def step_lr(epoch, lr, step_size, gamma=0.1):
    """``lr * gamma ** (epoch // step_size)``, as ``torch.optim.lr_scheduler.StepLR``
    after ``epoch`` calls to ``scheduler.step()``: the first drop is at epoch
    ``step_size`` (the epoch counted from 0), not after it.

    >>> step_lr([0, 9, 10, 20], 0.1, step_size=10)
    array([0.1  , 0.1  , 0.01 , 0.001])
    """
    epoch = _counts("epoch", epoch)
    lr = _checks.learning_rate("lr", lr)
    step_size = _checks.positive_int("step_size", step_size)
    gamma = _positive("gamma", gamma)
    return _result(lr * gamma ** np.floor(epoch / step_size))


def cosine_annealing_lr(epoch, lr, T_max, eta_min=0.0):  # noqa: N803 (torch's name)
    """``eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` after ``epoch`` calls to
    ``scheduler.step()``. Past ``T_max`` the cosine goes on: the rate climbs back
    towards ``lr`` (PyTorch does not hold it at ``eta_min``).

    >>> cosine_annealing_lr([0, 5, 10, 20], 0.1, T_max=10)
    array([0.1 , 0.05, 0.  , 0.1 ])
    """
    epoch = _counts("epoch", epoch)
    lr = _checks.learning_rate("lr", lr)
    t_max = _checks.positive_int("T_max", T_max)
    eta_min = _checks.non_negative("eta_min", eta_min)
    return _result(eta_min + (lr - eta_min) * (1.0 + np.cos(np.pi * epoch / t_max)) / 2)


def one_cycle_lr(
    step,
    max_lr,
    total_steps,
    pct_start=0.3,
    anneal_strategy="cos",
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
):
    """The one-cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR`` after
    ``step`` calls to ``scheduler.step()`` (once per update): from
    ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor``; with
    ``three_phase``, back down to the start before the final fall.

    ``step`` may reach ``total_steps`` (the last rate PyTorch computes), not beyond.

    >>> [round(float(r), 4) for r in one_cycle_lr([0, 29, 99], 0.1, total_steps=100)]
    [0.004, 0.1, 0.0]
    """
    step = _counts("step", step)
    max_lr = _checks.learning_rate("max_lr", max_lr)
    total = _checks.positive_int("total_steps", total_steps)
    pct = _real("pct_start", pct_start, low=0.0, low_open=False, high=1.0)
    strategy = _checks.choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
    initial = max_lr / _positive("div_factor", div_factor)
    final = initial / _positive("final_div_factor", final_div_factor)
    if step.size and step.max() > total:
        raise ValueError(
            f"step must be <= total_steps = {total}, got a maximum of {step.max():g}"
        )
    if _bool("three_phase", three_phase):
        phases = [
            (pct * total - 1, initial, max_lr),
            (2 * pct * total - 2, max_lr, initial),
            (total - 1, initial, final),
        ]
    else:
        phases = [(pct * total - 1, initial, max_lr), (total - 1, max_lr, final)]

    def anneal(start, end, fraction):
        if strategy == "cos":
            return end + (start - end) / 2.0 * (np.cos(np.pi * fraction) + 1.0)
        return (end - start) * fraction + start

    starts = [0.0] + [end for end, _, _ in phases[:-1]]
    if any(end == start for (end, _, _), start in zip(phases, starts, strict=True)):
        raise ValueError(
            "pct_start * total_steps makes a phase of zero length (PyTorch divides "
            f"by zero there), got pct_start={pct} and total_steps={total}"
        )
    # PyTorch walks the phases in order and takes the first whose end it has not
    # passed (the last phase takes every later step).
    rates = np.empty_like(step)
    done = np.zeros(step.shape, dtype=bool)
    for i, ((end_step, start_lr, end_lr), start_step) in enumerate(
        zip(phases, starts, strict=True)
    ):
        here = ~done & ((step <= end_step) | (i == len(phases) - 1))
        fraction = (step[here] - start_step) / (end_step - start_step)
        rates[here] = anneal(start_lr, end_lr, fraction)
        done |= here
    return _result(rates)
