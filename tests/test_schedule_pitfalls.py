"""The framework behaviours behind the pitfalls of the schedules chapter.

``chapters/schedules.md`` shows each pitfall once, on the study's problem; these tests
pin the behaviour itself, with the real objects, so that a framework upgrade that
changes it fails here first:

- Keras 3's ``LearningRateScheduler`` calls its function at each epoch's start with
  the epoch (an ``int`` from 0) and the current rate (a ``float``), and falls back to
  the epoch alone for a one-argument function;
- an optimizer built on a ``LearningRateSchedule`` refuses a new rate with a
  ``TypeError``, which ``ReduceLROnPlateau`` triggers at its first cut;
- Keras 3's ``ReduceLROnPlateau`` silently ignores Keras 2's ``epsilon``;
- a schedule object is evaluated at the optimizer's update count, and
  ``float(optimizer.learning_rate)`` reads it; ``optimizer.lr`` is gone;
- PyTorch warns when ``scheduler.step()`` comes before ``optimizer.step()``, and every
  rate then comes one step early; ``StepLR(step_size=s)`` first drops at step ``s``.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import torch

from lrtools import data, keras_tools, schedules
from lrtools.keras_tools import keras

LR = 0.1


def tiny_split(n_train=64):
    """A small slice of the study's blobs: a fit of a few epochs takes a second."""
    split = data.make_blobs_split()
    return data.BlobsSplit(
        split.x_train[:n_train],
        split.y_train[:n_train],
        split.x_test,
        split.y_test,
    )


def compiled_model(learning_rate):
    model = keras_tools.build_mlp(seed=0)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_learning_rate_scheduler_passes_the_epoch_from_0_and_the_current_rate():
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return lr / 2

    model = compiled_model(LR)
    keras_tools.fit(
        model,
        tiny_split(),
        epochs=4,
        batch_size=32,
        callbacks=[keras.callbacks.LearningRateScheduler(schedule)],
    )
    assert [epoch for epoch, _ in calls] == [0, 1, 2, 3]
    assert all(type(e) is int and type(lr) is float for e, lr in calls)
    # the rate passed in is what the function returned last time, in float32
    expected = [float(np.float32(LR / 2**k)) for k in range(4)]
    assert [lr for _, lr in calls] == expected


def test_learning_rate_scheduler_accepts_a_function_of_the_epoch_alone():
    callback = keras.callbacks.LearningRateScheduler(
        lambda epoch: LR * 0.1 ** (epoch // 20)
    )
    optimizer = keras.optimizers.SGD(learning_rate=LR)
    callback.set_model(types.SimpleNamespace(optimizer=optimizer))
    callback.on_epoch_begin(19)
    assert float(optimizer.learning_rate) == float(np.float32(LR))
    callback.on_epoch_begin(20)
    assert float(optimizer.learning_rate) == float(np.float32(LR / 10))


def test_learning_rate_scheduler_rejects_an_int_rate():
    callback = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1)
    callback.set_model(
        types.SimpleNamespace(optimizer=keras.optimizers.SGD(learning_rate=LR))
    )
    with pytest.raises(ValueError, match="should be a float"):
        callback.on_epoch_begin(0)


def test_a_schedule_optimizer_refuses_a_new_rate():
    schedule = keras.optimizers.schedules.ExponentialDecay(LR, 800, 0.01)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    with pytest.raises(TypeError, match="not settable"):
        optimizer.learning_rate = 0.05


def test_reduce_lr_on_plateau_raises_at_its_first_cut_on_a_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(LR, 800, 0.01)
    model = compiled_model(schedule)
    # patience 1 with a min_delta of 1: the second epoch cannot improve enough
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", patience=1, min_delta=1.0
    )
    split = tiny_split()
    with pytest.raises(TypeError, match="not settable"):
        keras_tools.fit(model, split, epochs=3, batch_size=32, callbacks=[callback])
    steps = data.steps_per_epoch(len(split.x_train), 32)
    assert int(model.optimizer.iterations) == 2 * steps  # raised after epoch 2


def test_reduce_lr_on_plateau_ignores_keras_2s_epsilon_silently():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback = keras.callbacks.ReduceLROnPlateau(epsilon=0.5)
    assert callback.min_delta == 1e-4 and caught == []


def test_a_schedule_counts_updates_and_float_learning_rate_reads_it():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        LR, decay_steps=50, decay_rate=0.01
    )
    model = compiled_model(schedule)
    split = tiny_split()
    keras_tools.fit(model, split, epochs=3, batch_size=32)
    updates = 3 * data.steps_per_epoch(len(split.x_train), 32)
    assert int(model.optimizer.iterations) == updates
    rate = float(model.optimizer.learning_rate)
    assert rate == pytest.approx(
        schedules.exponential_decay(updates, LR, 50, 0.01), rel=1e-5
    )
    with pytest.raises(AttributeError):
        model.optimizer.lr  # noqa: B018 (Keras 2's name)


def torch_epoch_rates(scheduler_first, epochs=25, step_size=20):
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size)
    used = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(epochs):
            if scheduler_first:
                scheduler.step()
            used.append(optimizer.param_groups[0]["lr"])
            parameter.grad = torch.ones(1)
            optimizer.step()
            if not scheduler_first:
                scheduler.step()
    return used, [str(w.message) for w in caught], scheduler


def test_scheduler_step_before_optimizer_step_warns_and_shifts_every_rate():
    wrong, wrong_warnings, _ = torch_epoch_rates(scheduler_first=True)
    right, right_warnings, _ = torch_epoch_rates(scheduler_first=False)
    assert right_warnings == []
    assert len(wrong_warnings) == 1
    assert "before `optimizer.step()`" in wrong_warnings[0]
    assert wrong[:-1] == right[1:]
    assert np.argmax(np.array(wrong) < LR) == 19
    assert np.argmax(np.array(right) < LR) == 20


def test_step_lr_drops_at_step_size_and_get_last_lr_reads_the_rate():
    right, _, scheduler = torch_epoch_rates(scheduler_first=False, epochs=20)
    assert right == [LR] * 20  # epochs 0..19 at the initial rate
    # after 20 steps the rate for epoch 20 is the dropped one
    assert scheduler.get_last_lr() == [pytest.approx(LR * 0.1)]
    assert scheduler.optimizer.param_groups[0]["lr"] == scheduler.get_last_lr()[0]
    assert schedules.step_lr(20, LR, step_size=20) == pytest.approx(LR * 0.1)


def test_one_cycle_lr_cycles_momentum_unless_told_not_to():
    for cycle_momentum, expected in [(True, {0.85, 0.95}), (False, {0.9})]:
        optimizer = torch.optim.SGD(
            [torch.zeros(1, requires_grad=True)], lr=LR, momentum=0.9
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=LR, total_steps=100, cycle_momentum=cycle_momentum
        )
        momenta = []
        for _ in range(99):
            optimizer.step()
            scheduler.step()
            momenta.append(round(optimizer.param_groups[0]["momentum"], 6))
        assert {min(momenta), max(momenta)} == expected
