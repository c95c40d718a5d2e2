"""lrtools.schedules against the frameworks' own schedules (parity), and its checks."""

import warnings

import numpy as np
import pytest
import torch
from _keras2_wheels import keras2_source

from lrtools import schedules
from lrtools.keras_tools import keras

DECAYS = [1e-1, 1e-2, 1e-3, 1e-4, 0.0]
UPDATES = np.arange(3201)  # 200 epochs of 16 updates


@pytest.mark.parametrize("decay", DECAYS)
def test_inverse_time_decay_equals_keras_inverse_time_decay(decay):
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        0.01, decay_steps=1, decay_rate=decay
    )
    keras_rates = np.array([float(schedule(t)) for t in range(0, 3201, 40)])
    ours = schedules.inverse_time_decay(0.01, decay, UPDATES[::40])
    # Keras computes in float32.
    np.testing.assert_allclose(ours, keras_rates, rtol=1e-6)


@pytest.mark.parametrize("decay", DECAYS)
def test_inverse_time_decay_equals_lambdalr_stepped_per_update(decay):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 1 / (1 + decay * t)
    )
    rates = []
    for _ in UPDATES:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(
        schedules.inverse_time_decay(0.01, decay, UPDATES), rates, rtol=1e-12
    )


def test_keras_schedule_counts_optimizer_updates():
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        0.01, decay_steps=1, decay_rate=0.1
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    weight = keras.Variable(np.zeros(1, dtype="float32"))
    for _ in range(5):
        optimizer.apply_gradients([(np.ones(1, dtype="float32"), weight)])
    assert int(optimizer.iterations) == 5
    assert float(optimizer.learning_rate) == pytest.approx(
        schedules.inverse_time_decay(0.01, 0.1, 5), rel=1e-6
    )


def test_keras3_rejects_lr_and_ignores_decay():
    with pytest.raises(ValueError, match="not recognized"):
        keras.optimizers.SGD(lr=0.01)
    with pytest.warns(UserWarning, match="decay"):
        optimizer = keras.optimizers.SGD(learning_rate=0.01, decay=0.1)
    weight = keras.Variable(np.zeros(1, dtype="float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            optimizer.apply_gradients([(np.ones(1, dtype="float32"), weight)])
    assert float(optimizer.learning_rate) == pytest.approx(0.01)  # not decayed


def test_the_studys_numbers():
    assert schedules.inverse_time_decay(0.01, 0.1, 3200) == pytest.approx(
        3.11526e-5, rel=1e-5
    )
    assert schedules.inverse_time_decay(0.01, 1e-4, 3200) == pytest.approx(
        0.00757576, rel=1e-6
    )


def test_shapes_and_types():
    assert isinstance(schedules.inverse_time_decay(0.01, 0.1, 0), float)
    assert schedules.inverse_time_decay(0.01, 0.1, 0) == 0.01
    assert schedules.inverse_time_decay(0.01, 0.1, np.int64(3)) == pytest.approx(
        0.01 / 1.3
    )
    rates = schedules.inverse_time_decay(0.01, 0.0, np.arange(6).reshape(2, 3))
    assert rates.shape == (2, 3) and (rates == 0.01).all()
    assert schedules.inverse_time_decay(0.01, 0.1, []).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial_rate": 0.0}, "initial_rate"),
        ({"initial_rate": float("nan")}, "initial_rate"),
        ({"decay": -1e-3}, "decay"),
        ({"decay": float("inf")}, "decay"),
        ({"decay": True}, "decay"),
        ({"updates": -1}, "updates"),
        ({"updates": 2.5}, "updates"),
        ({"updates": [0, -3]}, "updates"),
        ({"updates": True}, "updates"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs, name):
    args = {"initial_rate": 0.01, "decay": 0.1, "updates": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        schedules.inverse_time_decay(**args)


@pytest.mark.parametrize(("version", "line"), [("2.2.4", 189), ("2.3.1", 197)])
def test_keras2_sgd_decays_by_its_update_counter(version, line):
    source = keras2_source(version, "keras/optimizers.py").splitlines()
    assert "(1. / (1. + self.decay * K.cast(self.iterations" in source[line - 1]
