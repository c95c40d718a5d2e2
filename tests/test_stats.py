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


# --------------------------------------------------------------------------------------
# Verdict helpers: equivalence margin, p-values, multiplicity
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        (stats.Interval(0.001, -0.004, 0.006), stats.EQUIVALENT),
        (stats.Interval(-0.003, -0.006, -0.001), stats.NEGLIGIBLE),
        (stats.Interval(-0.05, -0.07, -0.03), stats.DIFFERENT),
        (stats.Interval(0.008, 0.001, 0.015), stats.DIFFERENT),
        (stats.Interval(0.002, -0.009, 0.013), stats.INCONCLUSIVE),
        # a bound on the margin is not inside it
        (stats.Interval(0.0, -0.01, 0.005), stats.INCONCLUSIVE),
    ],
)
def test_equivalence_sorts_intervals_against_the_margin(interval, verdict):
    assert stats.equivalence(interval, 0.01) == verdict


def test_p_value_inverts_the_normal_interval():
    rng = np.random.default_rng(3)
    values = rng.normal(0.3, 1.0, 40)
    interval = stats.mean_interval(values)
    se = values.std(ddof=1) / math.sqrt(40)
    expected = 2 * (1 - stats.NormalDist().cdf(abs(values.mean()) / se))
    assert stats.p_value(interval) == pytest.approx(expected, rel=1e-9)
    # The 95 % interval just touching 0 has p = 0.05.
    assert stats.p_value(stats.Interval(1.0, 0.0, 2.0)) == pytest.approx(0.05)
    assert stats.p_value(stats.Interval(1.0, 0.0, 2.0), null=1.0) == 1.0


def test_p_values_of_true_nulls_are_uniform():
    rng = np.random.default_rng(4)
    p = [stats.p_value(stats.mean_interval(rng.normal(0, 1, 100))) for _ in range(2000)]
    assert 0.04 < np.mean(np.array(p) < 0.05) < 0.065


def test_holm_by_hand():
    # sorted: 0.01*3, 0.02*2, 0.04*1 -> 0.03, 0.04, 0.04 (made non-decreasing)
    got = stats.holm([0.04, 0.01, 0.02])
    np.testing.assert_allclose(got, [0.04, 0.03, 0.04])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    assert stats.holm([0.03]) == pytest.approx([0.03])


def test_holm_keeps_the_familywise_error_rate():
    rng = np.random.default_rng(5)
    false_findings = sum(
        (stats.holm(rng.uniform(size=20)) < 0.05).any() for _ in range(2000)
    )
    assert false_findings / 2000 < 0.06


def test_bonferroni_level():
    assert stats.bonferroni_level(0.95, 40) == pytest.approx(0.99875)
    assert stats.bonferroni_level(0.95, 1) == 0.95


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stats.equivalence(stats.Interval(0, -1, 1), 0), "margin must be > 0"),
        (lambda: stats.equivalence(stats.Interval(0, -1, 1), np.nan), "margin"),
        (lambda: stats.equivalence((0, -1, 1), 0.01), "interval must be an Interval"),
        (lambda: stats.equivalence(stats.Interval(2, -1, 1), 0.01), "low <= estimate"),
        (lambda: stats.p_value(stats.Interval(0.5, 0.0, 2.0)), "symmetric"),
        (lambda: stats.p_value(stats.Interval(1, 0, 2), level=1), "level must lie in"),
        (lambda: stats.holm([]), "at least one"),
        (lambda: stats.holm([0.5, 1.2]), r"lie in \[0, 1\]"),
        (lambda: stats.bonferroni_level(0.95, 0), "m must be an integer >= 1"),
        (lambda: stats.bonferroni_level(1.5, 3), "level must lie in"),
    ],
)
def test_verdict_helpers_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
