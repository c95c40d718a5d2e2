import math
import subprocess
import sys

import numpy as np
import pytest

from lrtools import data
from lrtools import keras_tools as kt
from lrtools.keras_tools import keras


@pytest.fixture(scope="module")
def split():
    return data.make_blobs_split()


def compiled(model, optimizer):
    model.compile(
        optimizer=optimizer,
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=16,
    )
    return model


def test_importing_keras_tools_prints_nothing_on_stderr():
    code = "import lrtools.keras_tools as kt; kt.build_mlp(seed=0)(kt.np.zeros((1, 2)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stderr == ""


def test_build_mlp_initialises_he_and_glorot_uniform_with_zero_biases():
    kernel1, bias1, kernel2, bias2 = kt.build_mlp(seed=0).get_weights()
    assert kernel1.shape == (2, 50) and kernel2.shape == (50, 3)
    assert math.sqrt(3) * 0.8 < np.abs(kernel1).max() <= math.sqrt(3)
    assert math.sqrt(6 / 53) * 0.8 < np.abs(kernel2).max() <= math.sqrt(6 / 53)
    assert not bias1.any() and not bias2.any()


def test_build_mlp_seed_controls_weights():
    a, b, c = (kt.build_mlp(seed=s).get_weights() for s in (1, 1, 2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])
    assert kt.build_mlp(seed=0, dtype="float64").get_weights()[0].dtype == np.float64
    with pytest.raises(ValueError, match="dtype"):
        kt.build_mlp(seed=0, dtype="float16")


def test_fit_returns_a_full_history_with_the_learning_rate(split):
    model = compiled(kt.build_mlp(seed=0), keras.optimizers.SGD(learning_rate=0.05))
    history = kt.fit(model, split, epochs=3, seed=0)
    assert list(history) == [
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    ]
    assert all(len(v) == 3 for v in history.values())
    assert history["learning_rate"] == pytest.approx([0.05] * 3)
    assert history["val_accuracy"][-1] == pytest.approx(
        np.mean(model.predict(split.x_test, verbose=0).argmax(1) == split.y_test)
    )


def test_monitor_records_the_rate_the_epoch_used_before_plateau_cuts_it(split):
    model = compiled(kt.build_mlp(seed=0), keras.optimizers.SGD(learning_rate=0.1))
    # min_delta so large that no epoch counts as an improvement:
    # Keras cuts after `patience` epochs.
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=10.0)
    history = kt.fit(model, split, epochs=4, callbacks=[plateau])
    assert history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_fit_records_a_diverging_run_as_nan_without_crashing(split):
    model = compiled(kt.build_mlp(seed=0), keras.optimizers.SGD(learning_rate=1e6))
    history = kt.fit(model, split, epochs=5)
    assert all(len(v) == 5 for v in history.values())
    assert math.isnan(history["loss"][-1]) and math.isnan(history["val_accuracy"][-1])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2, "batch_size": -1}, "batch_size"),
        ({"epochs": 1, "seed": -1}, "seed"),
    ],
)
def test_fit_rejects_bad_input(split, kwargs, name):
    model = compiled(kt.build_mlp(seed=0), keras.optimizers.SGD(learning_rate=0.1))
    with pytest.raises(ValueError, match=name):
        kt.fit(model, split, **kwargs)


def test_fit_requires_a_compiled_model(split):
    with pytest.raises(ValueError, match="compiled"):
        kt.fit(kt.build_mlp(seed=0), split, epochs=1)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", keras.optimizers.SGD),
        ("rmsprop", keras.optimizers.RMSprop),
        ("adagrad", keras.optimizers.Adagrad),
        ("adam", keras.optimizers.Adam),
    ],
)
def test_make_optimizer_uses_the_given_rate(name, cls):
    optimizer = kt.make_optimizer(name, learning_rate=0.25)
    assert isinstance(optimizer, cls)
    assert float(np.asarray(optimizer.learning_rate)) == 0.25


def test_make_optimizer_rejects_what_keras_accepts_silently():
    keras.optimizers.SGD(learning_rate=-0.1)  # Keras itself raises nothing
    with pytest.raises(ValueError, match="learning_rate"):
        kt.make_optimizer("sgd", learning_rate=-0.1)
    with pytest.raises(ValueError, match="name"):
        kt.make_optimizer("Adam", learning_rate=0.1)
