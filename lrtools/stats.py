"""95 % intervals for the verdicts drawn from many seeds.

Every function returns an :class:`Interval`: an estimate with its lower and upper bound.
The chapters use four kinds:

- :func:`mean_interval`: the mean of a per-run number (normal approximation, fine from a
  few dozen runs on);
- :func:`paired_difference`: the mean difference between two settings run with the
  *same* seeds, seed by seed (what a seed's luck adds to both settings cancels);
- :func:`share_interval`: the share of runs for which something holds (Wilson's score
  interval, which stays inside [0, 1] and behaves at shares of 0 and 1);
- :func:`median_interval`: the median, with a distribution-free interval from order
  statistics (it copes with runs that never reach a target, counted as infinite).

And three helpers to draw verdicts from them:

- :func:`equivalence`: "no practical difference", "a difference", or neither, judged
  against a margin stated in advance;
- :func:`p_value`: the two-sided p-value behind a symmetric (normal) interval;
- :func:`holm` and :func:`bonferroni_level`: adjustments for reading many intervals at
  once.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pandas as pd


class Interval(NamedTuple):
    """An estimate with the bounds of its confidence interval."""

    estimate: float
    low: float
    high: float

    def text(self, digits: int = 3) -> str:
        """``"0.822 [0.817, 0.827]"``: the estimate, then its interval."""
        number = f"{{:.{digits}f}}".format
        return f"{number(self.estimate)} [{number(self.low)}, {number(self.high)}]"


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def _z(level: float) -> float:
    _check_level(level)
    return NormalDist().inv_cdf(0.5 + level / 2)


def _finite_values(name: str, values, *, minimum: int = 2) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(array) < minimum:
        raise ValueError(f"{name} needs at least {minimum} values, got {len(array)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} must be finite (a diverged run is NaN: drop it first)"
        )
    return array


def mean_interval(values, *, level: float = 0.95) -> Interval:
    """Mean of ``values`` with its ``level`` confidence interval, mean ± z·sd/√n."""
    z = _z(level)
    x = _finite_values("values", values)
    half = z * x.std(ddof=1) / math.sqrt(len(x))
    return Interval(float(x.mean()), float(x.mean() - half), float(x.mean() + half))


def paired_difference(a: pd.Series, b: pd.Series, *, level: float = 0.95) -> Interval:
    """Mean of ``a - b`` over runs paired by index (the seed), with its interval.

    ``a`` and ``b`` must hold the same seeds: each seed's run of one setting is compared
    with the same seed's run of the other.
    """
    if not isinstance(a, pd.Series) or not isinstance(b, pd.Series):
        raise ValueError("a and b must be pandas Series indexed by seed")
    if not a.index.sort_values().equals(b.index.sort_values()):
        raise ValueError("a and b must be indexed by the same seeds, to be paired")
    return mean_interval((a - b.reindex(a.index)).to_numpy(), level=level)


def share_interval(holds, *, level: float = 0.95) -> Interval:
    """Share of runs for which ``holds`` (booleans) is true, with Wilson's interval."""
    z = _z(level)
    flags = np.asarray(holds).reshape(-1)
    if flags.dtype != bool:
        raise ValueError(f"holds must be booleans, got dtype {flags.dtype}")
    n = len(flags)
    if n == 0:
        raise ValueError("holds needs at least one value")
    p = flags.mean()
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(float(p), max(0.0, centre - half), min(1.0, centre + half))


def median_interval(values, *, level: float = 0.95) -> Interval:
    """Median of ``values`` with a distribution-free interval from order statistics.

    The bounds are the ``j``-th smallest and ``j``-th largest values, ``j`` the largest
    rank whose binomial tail keeps the coverage at least ``level`` (for 100 values: the
    40th and 61st). ``inf`` is allowed (a run that never got there); NaN is not. A bound
    may then be ``inf``: the median is not known to be finite.
    """
    _check_level(level)
    x = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    n = len(x)
    if np.isnan(x).any():
        raise ValueError("values must not be NaN")
    j = _order_statistic_rank(n, level)
    if j == 0:
        raise ValueError(
            f"values needs more entries for a {level:.0%} interval of the median, "
            f"got {n}"
        )
    return Interval(float(np.median(x)), float(x[j - 1]), float(x[n - j]))


def _order_statistic_rank(n: int, level: float) -> int:
    """Largest ``j`` with P(Binomial(n, 1/2) <= j - 1) <= (1 - level) / 2 (0: none)."""
    tail, j = 0.0, 0
    while j < n:
        tail += math.comb(n, j) / 2**n  # now P(B <= j)
        if tail > (1 - level) / 2:
            break
        j += 1
    return j


#: The verdicts of :func:`equivalence`.
EQUIVALENT = "equivalent"
NEGLIGIBLE = "negligible difference"
DIFFERENT = "different"
INCONCLUSIVE = "inconclusive"


def _finite_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_interval(interval) -> Interval:
    if not isinstance(interval, Interval):
        raise ValueError(f"interval must be an Interval, got {type(interval).__name__}")
    if not interval.low <= interval.estimate <= interval.high:
        raise ValueError(
            f"interval must satisfy low <= estimate <= high, got {interval!r}"
        )
    return interval


def equivalence(interval: Interval, margin: float) -> str:
    """Verdict on a difference from its interval and a margin stated in advance.

    Parameters
    ----------
    interval : Interval
        Interval of a difference (e.g. from :func:`paired_difference`), in the units
        of ``margin``.
    margin : float > 0
        The smallest difference that would matter in practice (the book uses 0.01 of
        test accuracy: 5 of 500 test points).

    Returns
    -------
    str
        - ``"equivalent"`` (:data:`EQUIVALENT`): the interval lies inside
          (-margin, margin) and contains 0: no difference that matters;
        - ``"negligible difference"`` (:data:`NEGLIGIBLE`): inside (-margin, margin)
          but excluding 0: a difference is detected, and it is too small to matter;
        - ``"different"`` (:data:`DIFFERENT`): the interval excludes 0 and reaches
          beyond the margin;
        - ``"inconclusive"`` (:data:`INCONCLUSIVE`): it contains 0 and reaches beyond
          the margin: more runs are needed to say either.
    """
    interval = _check_interval(interval)
    margin = _finite_number("margin", margin)
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    within = -margin < interval.low and interval.high < margin
    excludes_zero = interval.low > 0 or interval.high < 0
    if within:
        return NEGLIGIBLE if excludes_zero else EQUIVALENT
    return DIFFERENT if excludes_zero else INCONCLUSIVE


def p_value(interval: Interval, *, level: float = 0.95, null: float = 0.0) -> float:
    """Two-sided p-value of "the true value is ``null``", from a normal interval.

    Valid for the symmetric intervals of :func:`mean_interval` and
    :func:`paired_difference` (estimate ± z·se), computed at ``level``: the standard
    error is recovered from the width. Not for share or median intervals.

    Parameters
    ----------
    interval : Interval
        A symmetric interval (its estimate halfway between its bounds).
    level : float in (0, 1)
        The level the interval was computed at.
    null : float
        The value tested.
    """
    interval = _check_interval(interval)
    z = _z(level)
    null = _finite_number("null", null)
    half = (interval.high - interval.low) / 2
    centre = (interval.high + interval.low) / 2
    if not math.isclose(centre, interval.estimate, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            "interval must be symmetric around its estimate (a mean or paired "
            f"interval), got {interval!r}"
        )
    if half == 0:
        return 1.0 if interval.estimate == null else 0.0
    statistic = abs(interval.estimate - null) / (half / z)
    return float(2 * (1 - NormalDist().cdf(statistic)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values.

    A result whose adjusted p-value is below 0.05 survives the adjustment: the chance
    of at least one false finding in the whole family stays below 5 %, whatever the
    dependence between the tests.

    Parameters
    ----------
    p_values : sequence of float in [0, 1]
        One p-value per test of the family (at least one).

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the order given: the k-th smallest p-value times
        (m - k + 1), made non-decreasing along that order, capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if len(p) == 0:
        raise ValueError("p_values needs at least one value, got none")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values must lie in [0, 1], got {p_values!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def bonferroni_level(level: float, m: int) -> float:
    """The level of each of ``m`` intervals so that all hold together at ``level``.

    ``1 - (1 - level) / m``: for 40 intervals at 95 %, each at 99.875 %.

    Parameters
    ----------
    level : float in (0, 1)
        Joint level wanted for the whole family.
    m : int >= 1
        Number of intervals in the family.
    """
    _check_level(level)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be an integer >= 1, got {m!r}")
    return 1 - (1 - level) / int(m)
