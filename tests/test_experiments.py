import math

import pytest

from lrtools import experiments


def fake_train(lr, momentum, seed):
    """A deterministic stand-in for a training run: 3 epochs, values from the inputs."""
    return {"loss": [lr + seed, lr, lr / 2], "accuracy": [momentum, 0.5, 1.0]}


def test_run_grid_builds_one_row_per_setting_seed_and_epoch():
    frame = experiments.run_grid(
        fake_train, {"lr": [0.1, 0.01], "momentum": [0.0, 0.9]}, seeds=range(3)
    )
    assert len(frame) == 2 * 2 * 3 * 3
    assert list(frame.columns) == [
        "setting",
        "lr",
        "momentum",
        "seed",
        "epoch",
        "loss",
        "accuracy",
    ]
    row = frame[
        (frame.lr == 0.01)
        & (frame.momentum == 0.9)
        & (frame.seed == 2)
        & (frame.epoch == 1)
    ]
    assert row["setting"].item() == 3
    assert row["loss"].item() == pytest.approx(2.01) and row["accuracy"].item() == 0.9
    assert sorted(frame.epoch.unique()) == [1, 2, 3]


def test_final_epoch_keeps_each_runs_last_row():
    frame = experiments.run_grid(
        fake_train, {"lr": [0.1], "momentum": [0.0]}, seeds=[0, 1]
    )
    final = experiments.final_epoch(frame)
    assert len(final) == 2 and set(final.epoch) == {3}
    assert final["loss"].tolist() == [0.05, 0.05]


@pytest.mark.parametrize(
    ("grid", "seeds", "match"),
    [
        ({}, [0], "grid"),
        ({"lr": []}, [0], "grid"),
        ({"seed": [1]}, [0], "reserved"),
        ({"lr": [0.1], "momentum": [0.0]}, [], "seeds"),
        ({"lr": [0.1], "momentum": [0.0]}, [-1], "seeds"),
    ],
)
def test_run_grid_rejects_bad_input(grid, seeds, match):
    with pytest.raises(ValueError, match=match):
        experiments.run_grid(fake_train, grid, seeds)


def test_run_grid_rejects_a_metric_named_like_a_grid_entry():
    def train(loss, seed):
        return {"loss": [math.nan]}

    with pytest.raises(ValueError, match="clash"):
        experiments.run_grid(train, {"loss": [1]}, [0])
