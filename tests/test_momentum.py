"""Keras's and PyTorch's SGD momentum: the same at a constant rate, not after a drop.

Keras 3 keeps a velocity that carries the rate, ``v = m v - lr g; w += v`` (Nesterov:
``w += m v - lr g``); PyTorch keeps a buffer of gradients, ``b = m b + g; w -= lr b``
(Nesterov: ``w -= lr (g + m b)``). At a constant rate ``v = -lr b`` after every update,
so both take the same steps. When the rate drops from ``lr`` to ``lr'``, Keras's
velocity keeps the old scale while PyTorch's step uses the new rate at once; multiplying
PyTorch's buffer by ``lr / lr'`` at the drop makes the two agree again. The momentum
chapter (``chapters/momentum.md``) states all three; these tests prove them on the real
frameworks: float64 twins (same weights, same batches, see ``test_parity.py``) over a
few epochs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from lrtools import data
from lrtools import keras_tools as kt
from lrtools import torch_tools as tt
from lrtools.keras_tools import keras

LR, FACTOR, MOMENTUM = 0.01, 0.1, 0.9
DROP_AT, EPOCHS = 2, 4  # the rate drops after 2 of 4 epochs (16 updates each)
SEED = 4
SAME = 1e-10  # float64 rounding over a few dozen updates (measured: up to 2e-12)
MOMENTA = pytest.mark.parametrize(
    "nesterov", [False, True], ids=["heavy-ball", "nesterov"]
)


def f32(x: float) -> float:
    """Keras stores rates and momentum in float32: PyTorch gets the same numbers."""
    return float(np.float32(x))


class RescaledStepLR(torch.optim.lr_scheduler.StepLR):
    """StepLR that multiplies each momentum buffer by old_lr / new_lr at a change."""

    def step(self, epoch=None):
        old = [group["lr"] for group in self.optimizer.param_groups]
        super().step()
        for group, old_lr in zip(self.optimizer.param_groups, old, strict=True):
            for p in group["params"]:
                buffer = self.optimizer.state[p].get("momentum_buffer")
                if buffer is not None and group["lr"] != old_lr:
                    buffer.mul_(old_lr / group["lr"])


class Snapshots:
    """Wraps an epoch scheduler: records the weights at each epoch's end, then steps."""

    def __init__(self, model, scheduler):
        self.model, self.scheduler, self.weights = model, scheduler, []

    def step(self):
        self.weights.append(tt.get_weights(self.model))
        self.scheduler.step()


@functools.cache
def keras_run(nesterov: bool, drop: bool):
    """Initial weights and the weights after each epoch of a float64 Keras run."""
    split = data.make_blobs_split(dtype="float64")
    model = kt.build_mlp(seed=SEED, dtype="float64")
    model.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate=LR, momentum=MOMENTUM, nesterov=nesterov
        ),
        loss=keras.losses.CategoricalCrossentropy(dtype="float64"),
        metrics=["accuracy"],
        steps_per_execution=16,
    )
    start = model.get_weights()
    weights = []
    callbacks = [
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: weights.append(model.get_weights())
        )
    ]
    if drop:
        callbacks.insert(
            0,
            keras.callbacks.LearningRateScheduler(
                lambda epoch, lr: LR if epoch < DROP_AT else LR * FACTOR
            ),
        )
    history = kt.fit(model, split, epochs=EPOCHS, seed=SEED, callbacks=callbacks)
    return start, weights, history["learning_rate"]


def torch_run(start, nesterov: bool, drop: bool, scheduler_class=None):
    """The PyTorch twin: weights after each epoch, and the rate of each epoch."""
    split = data.make_blobs_split(dtype="float64")
    model = tt.build_mlp(seed=SEED, dtype=torch.float64)
    tt.set_weights(model, start)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=f32(LR), momentum=f32(MOMENTUM), nesterov=nesterov
    )
    # No drop: a StepLR that never fires. With a drop, Keras's float32 new rate.
    gamma = f32(LR * FACTOR) / f32(LR) if drop else 1.0
    scheduler_class = scheduler_class or torch.optim.lr_scheduler.StepLR
    recorder = Snapshots(
        model, scheduler_class(optimizer, step_size=DROP_AT, gamma=gamma)
    )
    history = tt.fit(
        model, optimizer, split, epochs=EPOCHS, seed=SEED, scheduler=recorder
    )
    return recorder.weights, history["learning_rate"]


def gaps(keras_weights, torch_weights):
    """Largest weight difference after each epoch."""
    return np.array(
        [
            max(np.abs(k - t).max() for k, t in zip(ke, te, strict=True))
            for ke, te in zip(keras_weights, torch_weights, strict=True)
        ]
    )


def moved(weights, a, b):
    """How far the weights moved from the end of epoch a to the end of epoch b."""
    return max(np.abs(x - y).max() for x, y in zip(weights[b], weights[a], strict=True))


@MOMENTA
def test_the_same_steps_at_a_constant_rate(nesterov):
    start, keras_weights, _ = keras_run(nesterov, drop=False)
    torch_weights, _ = torch_run(start, nesterov, drop=False)
    assert gaps(keras_weights, torch_weights).max() < SAME
    # The weights really move: agreement of frozen runs would prove nothing.
    assert moved(keras_weights, 0, EPOCHS - 1) > 1e-2


@MOMENTA
def test_after_a_drop_the_frameworks_part(nesterov):
    start, keras_weights, keras_lr = keras_run(nesterov, drop=True)
    torch_weights, torch_lr = torch_run(start, nesterov, drop=True)
    # Both drop the rate at the same epoch, to the same number.
    np.testing.assert_allclose(keras_lr, torch_lr, rtol=1e-12)
    assert keras_lr[DROP_AT - 1] == pytest.approx(keras_lr[DROP_AT] / FACTOR)
    gap = gaps(keras_weights, torch_weights)
    assert gap[:DROP_AT].max() < SAME  # identical up to the drop ...
    assert gap[DROP_AT] > 1e-4 > 1e5 * SAME  # ... far apart right after it


@MOMENTA
def test_rescaling_the_torch_buffer_at_the_drop_restores_agreement(nesterov):
    start, keras_weights, _ = keras_run(nesterov, drop=True)
    torch_weights, _ = torch_run(
        start, nesterov, drop=True, scheduler_class=RescaledStepLR
    )
    assert gaps(keras_weights, torch_weights).max() < SAME


def test_rescaling_does_nothing_at_a_constant_rate():
    start, keras_weights, _ = keras_run(False, drop=False)
    torch_weights, _ = torch_run(
        start, False, drop=False, scheduler_class=RescaledStepLR
    )
    assert gaps(keras_weights, torch_weights).max() < SAME


def keras_steps(lrs, nesterov):
    """Steps of Keras's SGD on one float64 weight under a constant gradient of 1."""
    weight = keras.Variable(0.0, dtype="float64")
    optimizer = keras.optimizers.SGD(
        learning_rate=lrs[0], momentum=MOMENTUM, nesterov=nesterov
    )
    gradient = keras.ops.convert_to_tensor(1.0, dtype="float64")
    steps = []
    for lr in lrs:
        optimizer.learning_rate = lr
        before = float(weight.numpy())
        optimizer.apply_gradients([(gradient, weight)])
        steps.append(float(weight.numpy()) - before)
    return np.array(steps)


def torch_steps(lrs, nesterov, rescale=False):
    """The same with torch.optim.SGD (optionally rescaling the buffer at a change)."""
    weight = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD(
        [weight], lr=f32(lrs[0]), momentum=f32(MOMENTUM), nesterov=nesterov
    )
    steps = []
    for lr in lrs:
        group = optimizer.param_groups[0]
        buffer = optimizer.state[weight].get("momentum_buffer")
        if rescale and buffer is not None and f32(lr) != group["lr"]:
            buffer.mul_(group["lr"] / f32(lr))
        group["lr"] = f32(lr)
        before = float(weight.detach())
        weight.grad = torch.ones((), dtype=torch.float64)
        optimizer.step()
        steps.append(float(weight.detach()) - before)
    return np.array(steps)


@MOMENTA
def test_one_weight_keras_keeps_the_old_velocity_through_a_drop(nesterov):
    """The mechanism itself: 30 updates at 0.01, then 30 at 0.001, gradient 1."""
    n = 30
    lrs = [LR] * n + [LR * FACTOR] * n
    keras_s, torch_s = keras_steps(lrs, nesterov), torch_steps(lrs, nesterov)
    np.testing.assert_allclose(keras_s[:n], torch_s[:n], rtol=1e-12)
    # PyTorch's first step after the drop is about a tenth of its last before it;
    # Keras's velocity still carries the old rate: its step is several times larger,
    # and it shrinks by about m per update towards PyTorch's.
    assert torch_s[n] / torch_s[n - 1] == pytest.approx(FACTOR, rel=0.05)
    assert keras_s[n] / torch_s[n] > 5
    excess = keras_s[n:] - torch_s[n:]
    np.testing.assert_allclose(excess[1:] / excess[:-1], f32(MOMENTUM), rtol=1e-6)
    # Rescaling PyTorch's buffer by old_lr / new_lr at the drop gives Keras's steps.
    rescaled = torch_steps(lrs, nesterov, rescale=True)
    np.testing.assert_allclose(keras_s, rescaled, rtol=1e-9)
