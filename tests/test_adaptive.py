"""Keras 3's and PyTorch's RMSprop, Adagrad and Adam: matched settings, float64 twins.

The adaptive-optimizers chapter (``chapters/adaptive.md``) states, for each optimizer,
the settings under which Keras 3 and ``torch.optim`` take the same steps, and why
RMSprop has none at a useful epsilon. These tests prove each statement on the real
frameworks: a float64 Keras model and its PyTorch twin (same initial weights, same
mini-batches, see ``test_parity.py``), compared after every epoch, with
:mod:`lrtools.adaptive` providing the PyTorch side.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from lrtools import adaptive, data
from lrtools import keras_tools as kt
from lrtools import torch_tools as tt
from lrtools.keras_tools import keras

SEED, EPOCHS = 3, 6
SAME = 1e-9  # float64 rounding over ~100 updates (measured: up to 1e-16)
SPLIT64 = data.make_blobs_split(dtype="float64")


def f32(x: float) -> float:
    return float(np.float32(x))


KERAS = {
    "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=0.001),
    "rmsprop tiny epsilon": lambda: keras.optimizers.RMSprop(
        learning_rate=0.001, epsilon=1e-30
    ),
    "adagrad": lambda: keras.optimizers.Adagrad(learning_rate=0.001),
    "adagrad from zero": lambda: keras.optimizers.Adagrad(
        learning_rate=0.01, initial_accumulator_value=0.0
    ),
    "adam": lambda: keras.optimizers.Adam(learning_rate=0.001),
}


@functools.cache
def keras_run(name: str):
    """Initial weights and weights after each epoch of a float64 Keras 3 run."""
    model = kt.build_mlp(seed=SEED, dtype="float64")
    model.compile(
        optimizer=KERAS[name](),
        loss=keras.losses.CategoricalCrossentropy(dtype="float64"),
        metrics=["accuracy"],
        steps_per_execution=16,
    )
    start = model.get_weights()
    weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(model.get_weights())
    )
    kt.fit(model, SPLIT64, epochs=EPOCHS, seed=SEED, callbacks=[record])
    return start, weights


class EveryUpdate:
    """Steps an update-wise helper (or nothing) and snapshots at each epoch's end."""

    def __init__(self, model, helper, updates_per_epoch):
        self.model, self.helper, self.per_epoch = model, helper, updates_per_epoch
        self.updates, self.weights = 0, []

    def step(self):
        if self.helper is not None:
            self.helper.step()
        self.updates += 1
        if self.updates % self.per_epoch == 0:
            self.weights.append(tt.get_weights(self.model))


def torch_run(start, make_optimizer, make_helper=None):
    """The PyTorch twin's weights after each epoch."""
    model = tt.build_mlp(seed=SEED, dtype=torch.float64)
    tt.set_weights(model, start)
    optimizer = make_optimizer(model.parameters())
    helper = make_helper(optimizer) if make_helper else None
    recorder = EveryUpdate(
        model, helper, data.steps_per_epoch(len(SPLIT64.x_train), 32)
    )
    tt.fit(
        model,
        optimizer,
        SPLIT64,
        epochs=EPOCHS,
        seed=SEED,
        scheduler=recorder,
        scheduler_interval="step",
    )
    return recorder.weights


def gaps(keras_weights, torch_weights):
    """Largest weight difference after each epoch."""
    assert len(keras_weights) == len(torch_weights) == EPOCHS
    return np.array(
        [
            max(np.abs(k - t).max() for k, t in zip(ke, te, strict=True))
            for ke, te in zip(keras_weights, torch_weights, strict=True)
        ]
    )


def moved(name):
    start, weights = keras_run(name)
    return max(np.abs(a - b).max() for a, b in zip(start, weights[-1], strict=True))


MATCHED = {
    # Epsilon negligible in both places: sqrt(v + 1e-30) and sqrt(v) + 1e-30 are
    # sqrt(v) in float64 wherever v is not (nearly) zero, and 0 / tiny = 0 where it is.
    "rmsprop tiny epsilon": (
        lambda p: torch.optim.RMSprop(p, lr=f32(0.001), alpha=0.9, eps=1e-30),
        None,
    ),
    "adagrad": (
        lambda p: torch.optim.Adagrad(p, **adaptive.keras_adagrad_options(0.001)),
        None,
    ),
    "adagrad from zero": (
        lambda p: torch.optim.Adagrad(
            p, **adaptive.keras_adagrad_options(0.01, initial_accumulator_value=0.0)
        ),
        None,
    ),
    "adam": (
        lambda p: torch.optim.Adam(p, lr=0.001),
        lambda o: adaptive.KerasAdamSteps(o, epsilon=1e-7),
    ),
}


@pytest.mark.parametrize("name", list(MATCHED))
def test_matched_settings_take_keras_steps(name):
    start, keras_weights = keras_run(name)
    make, helper = MATCHED[name]
    assert gaps(keras_weights, torch_run(start, make, helper)).max() < SAME
    assert moved(name) > 1e-2  # the weights really moved


NAIVE = {
    # The same-looking constants, epsilon where each framework puts it.
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=f32(0.001), alpha=0.9, eps=1e-7),
    "adagrad": lambda p: torch.optim.Adagrad(
        p, lr=f32(0.001), initial_accumulator_value=f32(0.1), eps=1e-7
    ),
    "adam": lambda p: torch.optim.Adam(p, lr=f32(0.001), eps=1e-7),
}


@pytest.mark.parametrize(
    ("name", "at_least"), [("rmsprop", 1e-4), ("adagrad", 1e-11), ("adam", 1e-7)]
)
def test_same_looking_constants_do_not_take_keras_steps(name, at_least):
    start, keras_weights = keras_run(name)
    far = gaps(keras_weights, torch_run(start, NAIVE[name]))
    assert far[-1] > at_least
    # Not rounding: far above the matched settings' agreement.
    assert far[-1] > 100 * SAME or name == "adagrad"


def test_no_constant_torch_epsilon_is_kerass_rmsprop():
    """sqrt(v + eps) = sqrt(v) + e needs e = sqrt(v + eps) - sqrt(v), moving with v."""
    eps = 1e-7
    v = np.array([1e-12, 1e-8, 1e-4, 1.0])
    needed = np.sqrt(v + eps) - np.sqrt(v)
    assert needed[0] / needed[-1] > 1e3  # from ~3e-4 down to 5e-8
    # Gradients below sqrt(eps): Keras's step is g / sqrt(eps)-limited, torch's is not.
    g = 1e-6
    keras_step, torch_step = g / math.sqrt(g**2 + eps), g / (math.sqrt(g**2) + eps)
    assert torch_step > 100 * keras_step


def test_keras_adam_steps_sets_eps_and_lr_per_update():
    weight = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    optimizer = torch.optim.Adam([weight], lr=0.001)
    helper = adaptive.KerasAdamSteps(optimizer, epsilon=1e-7)
    group = optimizer.param_groups[0]
    assert group["eps"] == pytest.approx(1e-7 / math.sqrt(1 - 0.999))
    for _ in range(3):
        helper.step()
    assert helper.updates == 3
    assert group["eps"] == pytest.approx(1e-7 / math.sqrt(1 - 0.999**4))
    # float32 rate and float32 bias corrections: close to, not equal to, 0.001
    assert group["lr"] == pytest.approx(0.001, rel=1e-4) and group["lr"] != 0.001
    assert helper.base_lrs == [0.001]


def test_keras_adagrad_options_move_epsilon_into_the_accumulator():
    options = adaptive.keras_adagrad_options(0.001)
    assert options == {
        "lr": f32(0.001),
        "initial_accumulator_value": f32(0.1) + 1e-7,
        "eps": 0.0,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": True}, "learning_rate must be a finite number > 0"),
        (
            {"learning_rate": 0.1, "initial_accumulator_value": -1.0},
            "initial_accumulator_value must be a finite number >= 0",
        ),
        ({"learning_rate": 0.1, "epsilon": -1e-7}, "epsilon must be a finite"),
        (
            {"learning_rate": 0.1, "initial_accumulator_value": 0.0, "epsilon": 0.0},
            "initial_accumulator_value \\+ epsilon must be > 0",
        ),
    ],
)
def test_keras_adagrad_options_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adaptive.keras_adagrad_options(**kwargs)


def test_keras_adam_steps_bad_input():
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Adam"):
        adaptive.KerasAdamSteps(torch.optim.SGD(params, lr=0.1))
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Adam"):
        adaptive.KerasAdamSteps(torch.optim.AdamW(params, lr=0.1))
    with pytest.raises(ValueError, match="amsgrad=False"):
        adaptive.KerasAdamSteps(torch.optim.Adam(params, amsgrad=True))
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        adaptive.KerasAdamSteps(torch.optim.Adam(params), epsilon=float("inf"))
