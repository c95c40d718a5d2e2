import math

import numpy as np
import pytest
import torch

from lrtools import data
from lrtools import torch_tools as tt


@pytest.fixture(scope="module")
def split():
    return data.make_blobs_split()


def test_build_mlp_initialises_like_keras():
    model = tt.build_mlp(seed=0)
    kernel1, bias1, kernel2, bias2 = tt.get_weights(model)
    assert kernel1.shape == (2, 50) and kernel2.shape == (50, 3)
    # he_uniform: U(±sqrt(6/fan_in)); glorot_uniform: U(±sqrt(6/(fan_in+fan_out)));
    # zero biases.
    assert np.abs(kernel1).max() <= math.sqrt(6 / 2) and np.abs(
        kernel1
    ).max() > 0.8 * math.sqrt(3)
    assert np.abs(kernel2).max() <= math.sqrt(6 / 53) and np.abs(
        kernel2
    ).max() > 0.8 * math.sqrt(6 / 53)
    assert not bias1.any() and not bias2.any()


def test_build_mlp_seed_controls_weights_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = tt.build_mlp(seed=1), tt.build_mlp(seed=1), tt.build_mlp(seed=2)
    assert torch.rand(1) == expected
    np.testing.assert_array_equal(tt.get_weights(a)[0], tt.get_weights(b)[0])
    assert not np.array_equal(tt.get_weights(a)[0], tt.get_weights(c)[0])


def test_set_weights_round_trips_and_rejects_wrong_shapes():
    source, target = tt.build_mlp(seed=1), tt.build_mlp(seed=2)
    tt.set_weights(target, tt.get_weights(source))
    for w_source, w_target in zip(
        tt.get_weights(source), tt.get_weights(target), strict=True
    ):
        np.testing.assert_array_equal(w_source, w_target)
    with pytest.raises(ValueError, match="shapes"):
        tt.set_weights(target, [w.T for w in tt.get_weights(source)])
    with pytest.raises(ValueError, match="4 arrays"):
        tt.set_weights(target, tt.get_weights(source)[:2])


def test_fit_reports_keras_style_running_means(split):
    model = tt.build_mlp(seed=0)
    initial = tt.build_mlp(seed=0)
    history = tt.fit(
        model, torch.optim.SGD(model.parameters(), lr=0.1), split, epochs=1, seed=5
    )
    # Replay the epoch by hand: each batch's loss is measured before its own update.
    optimizer = torch.optim.SGD(initial.parameters(), lr=0.1)
    x, y = torch.as_tensor(split.x_train), torch.as_tensor(split.y_train)
    total, correct = 0.0, 0
    for batch in np.array_split(
        data.epoch_permutations(500, 1, 5)[0], range(32, 500, 32)
    ):
        logits = initial(x[batch])
        loss = torch.nn.functional.cross_entropy(logits, y[batch])
        total += loss.item() * len(batch)
        correct += int((logits.argmax(1) == y[batch]).sum())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert history["loss"][0] == pytest.approx(total / 500, rel=1e-6)
    assert history["accuracy"][0] == correct / 500
    test_logits = initial(torch.as_tensor(split.x_test))
    assert history["val_accuracy"][0] == pytest.approx(
        float((test_logits.argmax(1) == torch.as_tensor(split.y_test)).double().mean())
    )
    assert list(history) == [
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    ]


def test_fit_records_a_diverging_run_as_nan_without_crashing(split):
    model = tt.build_mlp(seed=0)
    history = tt.fit(
        model, torch.optim.SGD(model.parameters(), lr=1e6), split, epochs=5
    )
    assert all(len(v) == 5 for v in history.values())
    assert math.isnan(history["loss"][-1]) and math.isnan(history["val_accuracy"][-1])


def test_fit_steps_a_per_update_scheduler_and_records_the_rate(split):
    # Keras 2's decay=0.1 is inverse-time decay per update: 0.01 / (1 + 0.1 t).
    model = tt.build_mlp(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 1 / (1 + 0.1 * t)
    )
    history = tt.fit(
        model,
        optimizer,
        split,
        epochs=200,
        seed=0,
        scheduler=scheduler,
        scheduler_interval="step",
    )
    assert history["learning_rate"][0] == pytest.approx(0.01 / (1 + 0.1 * 16))
    assert history["learning_rate"][-1] == pytest.approx(3.11526e-5, rel=1e-5)


def test_fit_steps_plateau_scheduler_on_val_loss(split):
    model = tt.build_mlp(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # An impossible threshold: no epoch ever improves, so the rate halves after
    # patience + 1 epochs.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=1, threshold=10.0
    )
    history = tt.fit(model, optimizer, split, epochs=4, scheduler=scheduler)
    assert history["learning_rate"][:3] == [0.1, 0.1, 0.05]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1, "batch_size": 0}, "batch_size"),
        ({"epochs": 1, "scheduler_interval": "batch"}, "scheduler_interval"),
        ({"epochs": 1, "seed": -3}, "seed"),
    ],
)
def test_fit_rejects_bad_input(split, kwargs, name):
    model = tt.build_mlp(seed=0)
    with pytest.raises(ValueError, match=name):
        tt.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), split, **kwargs)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adagrad", "adam"])
def test_make_optimizer_uses_the_given_rate(name):
    optimizer = tt.make_optimizer(
        name, tt.build_mlp(seed=0).parameters(), learning_rate=0.25
    )
    assert optimizer.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"name": "sgd", "learning_rate": -0.1}, "learning_rate"),
        ({"name": "sgd", "learning_rate": math.nan}, "learning_rate"),
        ({"name": "sgd", "learning_rate": 0.0}, "learning_rate"),
        ({"name": "adamw", "learning_rate": 0.1}, "name"),
        ({"name": "sgd", "learning_rate": 0.1, "momentum": 1.0}, "momentum"),
        ({"name": "adam", "learning_rate": 0.1, "momentum": 0.9}, "momentum"),
        ({"name": "adam", "learning_rate": 0.1, "nesterov": True}, "nesterov"),
    ],
)
def test_make_optimizer_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tt.make_optimizer(params=tt.build_mlp(seed=0).parameters(), **kwargs)
