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
