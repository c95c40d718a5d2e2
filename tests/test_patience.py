"""Keras's and PyTorch's ReduceLROnPlateau: when each cuts, and how to make them agree.

Keras 3 counts an epoch as an improvement when ``loss < best - min_delta`` (absolute)
and cuts once ``patience`` bad epochs have passed; after a cut, a cooldown of ``c``
ignores ``c - 1`` epochs; it keeps cutting while the rate is above ``min_lr``.
PyTorch's default threshold is relative (``loss < best * (1 - threshold)``), it cuts
once *more than* ``patience`` bad epochs have passed, its cooldown ignores ``c``
epochs, and it skips a cut smaller than ``eps``. ``lrtools.plateau`` drives the real
objects with fixed loss sequences; these tests show that
``torch_options_for_keras`` makes PyTorch cut on Keras's epochs, on hand-made
sequences (ties exactly at the threshold, cooldown, a floor) and on random walks,
and that the literal translation of the same arguments does not. The plateau
chapter (``chapters/patience.md``) states all of it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrtools import plateau

LR = 0.01


def keras_cuts(losses, lr=LR, **options):
    return plateau.cut_epochs(
        plateau.keras_rates(losses, learning_rate=lr, **options), lr
    )


def torch_cuts(losses, lr=LR, **options):
    return plateau.cut_epochs(
        plateau.torch_rates(losses, learning_rate=lr, **options), lr
    )


def matched_cuts(losses, lr=LR, **keras_options):
    options = plateau.torch_options_for_keras(**keras_options)
    return torch_cuts(losses, lr, **options)


# Losses, min_delta and rates on a dyadic grid: float32 (Keras) and float64 (PyTorch)
# hold them exactly, so a tie at the threshold is a tie in both.
FLAT = [1.0] + [0.5] * 12  # one improvement, then a plateau


def test_keras_cuts_after_patience_bad_epochs_and_torch_one_later():
    for p in (1, 2, 5):
        assert keras_cuts(FLAT, patience=p)[0] == 2 + p
        assert torch_cuts(FLAT, patience=p)[0] == 3 + p
    # patience 0 means one bad epoch in both
    assert keras_cuts(FLAT, patience=0)[:2] == [3, 4]
    assert torch_cuts(FLAT, patience=0)[:2] == [3, 4]


def test_a_tie_at_the_threshold_is_no_improvement_in_either():
    # 0.75 is exactly min_delta below the best 1.0: not an improvement.
    losses = [1.0, 0.75, 0.75, 0.5, 0.5, 0.5]
    assert keras_cuts(losses, patience=2, min_delta=0.25) == [3, 6]
    assert matched_cuts(losses, patience=2, min_delta=0.25) == [3, 6]
    # Just past the threshold it is one, and the first cut comes an epoch later.
    losses = [1.0, 0.6875, 0.6875, 0.5, 0.5, 0.5]
    assert keras_cuts(losses, patience=2, min_delta=0.25) == [4, 6]
    assert matched_cuts(losses, patience=2, min_delta=0.25) == [4, 6]


def test_relative_threshold_scales_with_the_loss():
    # Losses near 4 falling by 1/16 an epoch: each step beats an absolute min_delta
    # of 1/32, but not a relative threshold of 1/32 (1/8 here).
    losses = [4 - k / 16 for k in range(8)]
    assert keras_cuts(losses, patience=2, min_delta=1 / 32) == []
    assert matched_cuts(losses, patience=2, min_delta=1 / 32) == []
    assert torch_cuts(losses, patience=1, threshold=1 / 32) == [3]


def test_cooldown_keras_ignores_one_epoch_less():
    losses = [1.0] + [1.0] * 20
    # Keras: a cut after 2 bad epochs, then cooldown 3 ignores 2 epochs.
    assert keras_cuts(losses, patience=2, cooldown=3)[:3] == [3, 7, 11]
    assert torch_cuts(losses, patience=2, cooldown=3)[:3] == [4, 10, 16]
    assert matched_cuts(losses, patience=2, cooldown=3)[:3] == [3, 7, 11]
    assert keras_cuts(losses, patience=2, cooldown=1) == keras_cuts(losses, patience=2)


def test_min_lr_floor_and_eps():
    losses = [1.0] * 40
    k = plateau.keras_rates(losses, patience=1, factor=0.1, min_lr=1e-4)
    t = plateau.torch_rates(
        losses, **plateau.torch_options_for_keras(patience=1, factor=0.1, min_lr=1e-4)
    )
    assert plateau.cut_epochs(k, LR) == plateau.cut_epochs(t, LR) == [2, 3]
    assert k[-1] == pytest.approx(1e-4, rel=1e-6) and t[-1] == pytest.approx(1e-4)
    # Without a floor Keras cuts until its float32 rate underflows to zero; PyTorch's
    # default eps = 1e-8 stops it at 1e-8.
    long = [1.0] * 120
    k = plateau.keras_rates(long, patience=1)
    t = plateau.torch_rates(long, patience=0)
    assert k[-1] == 0.0 and len(plateau.cut_epochs(k, LR)) > 40
    assert t[-1] == pytest.approx(1e-8) and len(plateau.cut_epochs(t, LR)) == 6
    t0 = plateau.torch_rates(long, **plateau.torch_options_for_keras(patience=1))
    assert plateau.cut_epochs(t0, LR)[:40] == plateau.cut_epochs(k, LR)[:40]


def random_walks(n, rng):
    """Loss walks on a grid of 1/64 (exact ties) with random Keras settings."""
    for _ in range(n):
        steps = rng.choice([-2, -1, 0, 0, 1], size=60) / 64
        losses = np.maximum(1.0 + np.cumsum(steps), 1 / 64)
        options = {
            "patience": int(rng.integers(0, 7)),
            "cooldown": int(rng.integers(0, 4)),
            "min_delta": float(rng.choice([0.0, 1 / 64, 1 / 32])),
            "factor": float(rng.choice([0.5, 0.25])),
            "min_lr": float(rng.choice([0.0, 2.0**-12])),
        }
        yield losses, options


def test_matched_settings_cut_on_kerass_epochs_on_random_walks():
    rng = np.random.default_rng(9)
    lr = 2.0**-4  # exact in float32, as every rate after a cut by 1/2 or 1/4
    agree = literal = n = 0
    for losses, options in random_walks(150, rng):
        k = plateau.keras_rates(losses, learning_rate=lr, **options)
        m = plateau.torch_rates(
            losses, learning_rate=lr, **plateau.torch_options_for_keras(**options)
        )
        # The same rates, not only the same cut epochs.
        agree += bool(np.array_equal(k, m))
        same_words = {
            "patience": options["patience"],
            "threshold": options["min_delta"],
            "cooldown": options["cooldown"],
            "factor": options["factor"],
            "min_lr": options["min_lr"],
        }
        t = plateau.torch_rates(losses, learning_rate=lr, **same_words)
        literal += plateau.cut_epochs(k, lr) == plateau.cut_epochs(t, lr)
        n += 1
    assert agree == n
    # The same numbers under the same names cut elsewhere on most walks.
    assert literal < n / 3, literal


def test_study_settings_differ_by_default_and_agree_when_matched():
    # A loss that falls, then wanders on a plateau, as val_loss does in the study.
    rng = np.random.default_rng(3)
    epochs = np.arange(60)
    losses = 0.45 + 0.5 * np.exp(-epochs / 6) + 0.01 * rng.standard_normal(60)
    for p in (2, 5, 10):
        keras = keras_cuts(losses, patience=p, min_delta=1e-7)
        literal = torch_cuts(losses, patience=p, threshold=1e-7)
        assert keras and keras != literal
        assert matched_cuts(losses, patience=p, min_delta=1e-7) == keras


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plateau.keras_rates([]), "losses must be"),
        (lambda: plateau.torch_rates([1.0, float("nan")]), "losses must be"),
        (lambda: plateau.keras_rates([[1.0]]), "losses must be"),
        (lambda: plateau.torch_rates([1.0], learning_rate=0), "learning_rate must"),
        (lambda: plateau.torch_options_for_keras(patience=-1), "patience must"),
        (lambda: plateau.torch_options_for_keras(patience=1.5), "patience must"),
        (lambda: plateau.torch_options_for_keras(patience=2, cooldown=-1), "cooldown"),
        (lambda: plateau.torch_options_for_keras(patience=2, factor=1.0), "factor"),
        (
            lambda: plateau.torch_options_for_keras(patience=2, min_delta=-1),
            "min_delta",
        ),
        (lambda: plateau.torch_options_for_keras(patience=2, min_lr=np.inf), "min_lr"),
        (lambda: plateau.cut_epochs([0.1], learning_rate=-1), "learning_rate must"),
        (lambda: plateau.cut_epochs([[0.1]], learning_rate=1), "rates must be 1-D"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_replica_engine_under_matched_settings_cuts_on_kerass_epochs():
    """The hundred-seed claim of the chapter in small: the engine's PyTorch rules with
    ``torch_options_for_keras`` give Keras's rules' cut epochs in training."""
    import torch

    from lrtools import replicas

    keras_options = {"patience": 2, "cooldown": 2, "min_delta": 1e-3, "factor": 0.5}
    torch_options = plateau.torch_options_for_keras(**keras_options)
    common = {
        "learning_rate": 2.0**-5,  # exact in float32, as are its halvings
        "seeds": range(6),
        "epochs": 60,
        "dtype": torch.float64,
        "plateau": True,
        "progress": False,
    }
    keras = replicas.train(
        semantics="keras",
        plateau_patience=keras_options["patience"],
        plateau_cooldown=keras_options["cooldown"],
        plateau_min_delta=keras_options["min_delta"],
        plateau_factor=keras_options["factor"],
        **common,
    ).frame
    matched = replicas.train(
        semantics="torch",
        plateau_patience=torch_options["patience"],
        plateau_cooldown=torch_options["cooldown"],
        plateau_min_delta=torch_options["threshold"],
        plateau_threshold_mode=torch_options["threshold_mode"],
        plateau_eps=torch_options["eps"],
        plateau_min_lr=torch_options["min_lr"],
        plateau_factor=torch_options["factor"],
        **common,
    ).frame
    literal = replicas.train(
        semantics="torch",
        plateau_patience=keras_options["patience"],
        plateau_cooldown=keras_options["cooldown"],
        plateau_min_delta=keras_options["min_delta"],
        plateau_factor=keras_options["factor"],
        **common,
    ).frame
    rates = {
        name: frame.pivot(index="epoch", columns="seed", values="learning_rate")
        for name, frame in [
            ("keras", keras),
            ("matched", matched),
            ("literal", literal),
        ]
    }
    assert (rates["keras"].nunique() > 2).all()  # several cuts on every seed
    assert rates["matched"].equals(rates["keras"])
    assert not rates["literal"].equals(rates["keras"])
