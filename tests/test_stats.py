import math

import numpy as np
import pandas as pd
import pytest

from lrtools import stats


def test_mean_interval_is_mean_plus_minus_z_standard_errors():
    values = [1.0, 2.0, 3.0, 4.0]
    got = stats.mean_interval(values)
    half = 1.959963984540054 * np.std(values, ddof=1) / 2
    assert got.estimate == 2.5
    assert got.low == pytest.approx(2.5 - half)
    assert got.high == pytest.approx(2.5 + half)


def test_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        interval = stats.mean_interval(rng.normal(3.0, 2.0, 100))
        hits += interval.low <= 3.0 <= interval.high
    assert 0.93 < hits / 2000 < 0.97


def test_median_interval_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        interval = stats.median_interval(rng.exponential(1.0, 100))
        hits += interval.low <= math.log(2) <= interval.high
    assert 0.945 < hits / 2000 < 0.98


def test_paired_difference_cancels_what_both_settings_share():
    rng = np.random.default_rng(1)
    seeds = pd.Index(range(50), name="seed")
    luck = pd.Series(rng.normal(0, 1.0, 50), index=seeds)
    noise = pd.Series(rng.normal(0, 0.01, 50), index=seeds)
    a, b = luck + 0.1 + noise, luck
    paired = stats.paired_difference(a, b)
    assert paired.estimate == pytest.approx(0.1, abs=0.01)
    assert paired.high - paired.low < 0.02
    # Unpaired, the shared luck swamps the difference.
    unpaired_half = 1.96 * math.sqrt(a.var() / 50 + b.var() / 50)
    assert unpaired_half > 0.3


def test_paired_difference_pairs_by_seed_not_by_position():
    a = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    b = pd.Series([3.0, 1.0, 2.0], index=[2, 0, 1])
    got = stats.paired_difference(a, b)
    assert got.estimate == 0 and got.low == 0 and got.high == 0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (pd.Series([1.0, 2.0]), [1.0, 2.0], "Series"),
        (
            pd.Series([1.0, 2.0], index=[0, 1]),
            pd.Series([1.0, 2.0], index=[0, 2]),
            "same",
        ),
    ],
)
def test_paired_difference_rejects_unpaired_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        stats.paired_difference(a, b)


def test_share_interval_matches_wilsons_formula():
    got = stats.share_interval(np.array([True] * 8 + [False] * 2))
    # Wilson 95 % interval for 8 of 10, from the textbook formula.
    assert got.estimate == 0.8
    assert got.low == pytest.approx(0.4902, abs=1e-4)
    assert got.high == pytest.approx(0.9433, abs=1e-4)


def test_share_interval_stays_inside_zero_and_one():
    all_true = stats.share_interval(np.ones(100, dtype=bool))
    assert all_true.estimate == 1 and all_true.high == 1 and 0.95 < all_true.low < 1
    none = stats.share_interval(np.zeros(100, dtype=bool))
    assert none.estimate == 0 and none.low == 0 and 0 < none.high < 0.05


def test_median_interval_uses_the_textbook_ranks():
    got = stats.median_interval(np.arange(1, 101))
    assert got == (50.5, 40.0, 61.0)
    assert stats.median_interval(np.arange(1, 11)) == (5.5, 2.0, 9.0)


def test_median_interval_accepts_runs_that_never_got_there():
    values = np.r_[np.arange(1.0, 91.0), np.full(10, np.inf)]
    got = stats.median_interval(values)
    assert math.isfinite(got.high) and got.estimate == 50.5
    mostly_never = np.r_[np.arange(1.0, 41.0), np.full(60, np.inf)]
    assert stats.median_interval(mostly_never).estimate == math.inf


def test_interval_text_shows_estimate_then_bounds():
    assert stats.Interval(0.8216, 0.81, 0.8333).text() == "0.822 [0.810, 0.833]"
    assert stats.Interval(41.0, 39.0, 44.0).text(0) == "41 [39, 44]"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stats.mean_interval([1.0]), "at least 2"),
        (lambda: stats.mean_interval([1.0, np.nan]), "finite"),
        (lambda: stats.mean_interval([1.0, 2.0], level=1.5), "level must lie in"),
        (lambda: stats.share_interval([1, 0]), "booleans"),
        (lambda: stats.share_interval(np.array([], dtype=bool)), "at least one"),
        (lambda: stats.median_interval([1.0, np.nan, 2.0]), "NaN"),
        (lambda: stats.median_interval([1.0, 2.0, 3.0]), "more entries"),
        (lambda: stats.median_interval([1.0, 2.0], level=0), "level must lie in"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
