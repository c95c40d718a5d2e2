"""Keras and PyTorch, given the same initial weights and mini-batches, train alike.

Float32 training of this network is chaotic (a 1e-7 nudge grows to ~5e-3 over 200
epochs within one framework), so long runs are compared in float64 and float32
only over one epoch.
"""

import numpy as np
import pytest
import torch

from lrtools import data
from lrtools import keras_tools as kt
from lrtools import torch_tools as tt
from lrtools.keras_tools import keras

KERAS_FLOAT32 = float(
    np.float32(0.1)
)  # Keras keeps Python-float hyperparameters in float32


def twin_runs(
    *, dtype, epochs, learning_rate, momentum=0.0, nesterov=False, loss=None, seed=4
):
    """Train a Keras and a PyTorch MLP from the same weights on the same batches."""
    split = data.make_blobs_split(dtype=dtype)
    keras_model = kt.build_mlp(seed=seed, dtype=dtype)
    keras_model.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=momentum, nesterov=nesterov
        ),
        loss=loss or keras.losses.CategoricalCrossentropy(dtype=dtype),
        metrics=["accuracy"],
        steps_per_execution=16,
    )
    torch_model = tt.build_mlp(seed=seed, dtype=getattr(torch, dtype))
    tt.set_weights(torch_model, keras_model.get_weights())
    # Keras rounds the rate and momentum to float32; give PyTorch the same numbers.
    torch_optimizer = torch.optim.SGD(
        torch_model.parameters(),
        lr=float(np.float32(learning_rate)),
        momentum=float(np.float32(momentum)),
        nesterov=nesterov,
    )
    keras_history = kt.fit(keras_model, split, epochs=epochs, seed=seed)
    torch_history = tt.fit(
        torch_model, torch_optimizer, split, epochs=epochs, seed=seed
    )
    return keras_model, torch_model, keras_history, torch_history


def max_weight_gap(keras_model, torch_model):
    pairs = zip(keras_model.get_weights(), tt.get_weights(torch_model), strict=True)
    return max(np.abs(k - t).max() for k, t in pairs)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_one_epoch_in_float32_agrees_to_float32_rounding(momentum):
    km, tm, kh, th = twin_runs(
        dtype="float32", epochs=1, learning_rate=0.1, momentum=momentum
    )
    # Rounding, not a difference of method: at most one float32 ulp of the largest
    # weight per update (16 updates in the epoch). Measured: 0.8 ulp without
    # momentum, 3 ulps with 0.9.
    ulp = np.finfo(np.float32).eps * max(np.abs(w).max() for w in km.get_weights())
    assert max_weight_gap(km, tm) <= 16 * ulp
    for key in ("loss", "val_loss"):
        assert kh[key][0] == pytest.approx(th[key][0], rel=1e-6)
    for key in ("accuracy", "val_accuracy"):
        assert kh[key][0] == pytest.approx(th[key][0], abs=1e-6)


@pytest.mark.parametrize(
    ("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)]
)
def test_200_epochs_in_float64_agree(momentum, nesterov):
    km, tm, kh, th = twin_runs(
        dtype="float64",
        epochs=200,
        learning_rate=0.01,
        momentum=momentum,
        nesterov=nesterov,
    )
    assert max_weight_gap(km, tm) < 1e-9
    # Keras reports epoch metrics through float32 trackers, whatever the model's dtype.
    np.testing.assert_allclose(kh["loss"], th["loss"], rtol=1e-6)
    np.testing.assert_allclose(kh["val_loss"], th["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(kh["val_accuracy"], th["val_accuracy"], atol=1e-6)
    # The trajectories really move: a test of a frozen run would prove nothing.
    assert kh["loss"][-1] < 0.7 * kh["loss"][0]


def test_a_float64_keras_model_with_the_default_loss_computes_the_loss_in_float32():
    exact = twin_runs(dtype="float64", epochs=1, learning_rate=0.1)
    default = twin_runs(
        dtype="float64", epochs=1, learning_rate=0.1, loss="categorical_crossentropy"
    )
    assert max_weight_gap(*exact[:2]) < 1e-13
    assert max_weight_gap(*default[:2]) > 1e-10  # float32 rounding in every gradient


def test_keras_stores_a_python_float_learning_rate_in_float32():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    assert float(np.asarray(optimizer.learning_rate)) == KERAS_FLOAT32 != 0.1
