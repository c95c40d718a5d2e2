"""The range test: lrtools.range_test and keras_tools.RangeTest against torch-lr-finder.

LRFinder (torch-lr-finder 0.2.2) is the reference. Given the same initial weights,
the same batches in the same order and the same rate per iteration, the Keras callback
records the same rates and (within float32 rounding) the same losses, and the replica
engine, which reports one loss per epoch, reproduces LRFinder's losses averaged over
each epoch.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch_lr_finder import LRFinder, TrainDataLoaderIter

from lrtools import data, keras_tools, range_test, replicas, torch_tools
from lrtools.keras_tools import keras

START, END, BATCH = 1e-4, 10.0, 32
SPLIT = data.make_blobs_split()
SPLIT64 = data.make_blobs_split(dtype="float64")  # the replica engine's default data
STEPS = data.steps_per_epoch(len(SPLIT.x_train), BATCH)


def torch_batches(seed, epochs, dtype=torch.float32):
    """The batches of ``data.epoch_permutations`` in order, as (inputs, labels)."""
    split = SPLIT64 if dtype == torch.float64 else SPLIT
    x = torch.as_tensor(split.x_train, dtype=dtype)
    y = torch.as_tensor(SPLIT.y_train)
    order = torch.from_numpy(data.epoch_permutations(len(x), epochs, seed))
    return [(x[b], y[b]) for row in order for b in row.split(BATCH)]


def lr_finder(weights, seed, num_iter, *, dtype=torch.float32, **options):
    model = torch_tools.build_mlp(seed=seed, dtype=dtype)
    torch_tools.set_weights(model, weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=START)
    finder = LRFinder(model, optimizer, torch.nn.CrossEntropyLoss())
    epochs = -(-num_iter // STEPS)
    with range_test.quiet_lr_finder():
        finder.range_test(
            TrainDataLoaderIter(torch_batches(seed, epochs, dtype)),
            start_lr=START,
            end_lr=END,
            num_iter=num_iter,
            step_mode="exp",
            **options,
        )
    return finder


def keras_range_test(seed, num_iter, **options):
    model = keras_tools.build_mlp(seed=seed)
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(), loss="categorical_crossentropy")
    callback = keras_tools.RangeTest(START, END, num_iter, **options)
    epochs = -(-num_iter // STEPS)
    model.fit(
        keras_tools.train_dataset(
            SPLIT, epochs=epochs, batch_size=BATCH, seed=seed, dtype="float32"
        ),
        epochs=1,
        steps_per_epoch=num_iter,
        callbacks=[callback],
        shuffle=False,  # the dataset is in epoch_permutations order
        verbose=0,
    )
    return callback.history, weights


# -- the pure helpers against LRFinder ------------------------------------------------


def test_rates_are_lr_finders_bit_for_bit():
    weights = torch_tools.get_weights(torch_tools.build_mlp(seed=3))
    finder = lr_finder(weights, 3, 40, diverge_th=1e9)
    assert finder.history["lr"] == range_test.exponential_rates(START, END, 40).tolist()
    schedule = range_test.exponential_schedule(START, END, 40)
    assert schedule(np.arange(40)).tolist() == finder.history["lr"]
    assert schedule(np.array([39]))[0] == END


def test_smoothing_and_stop_reproduce_lr_finder():
    weights = torch_tools.get_weights(torch_tools.build_mlp(seed=1))
    raw = lr_finder(weights, 1, 160, smooth_f=0.0, diverge_th=1e9).history["loss"]
    assert len(raw) == 160
    for smooth_f, diverge_th in [(0.05, 5), (0.2, 2), (0.0, 3)]:
        finder = lr_finder(weights, 1, 160, smooth_f=smooth_f, diverge_th=diverge_th)
        smoothed = range_test.smooth_losses(raw, smooth_f)
        stop = range_test.stop_index(smoothed, diverge_th)
        kept = 160 if stop is None else stop + 1
        assert finder.history["loss"] == smoothed[:kept].tolist()
    assert kept < 160  # raw losses cross 3 times their best before the end


def test_steepest_descent_is_lr_finders_suggestion():
    finder = lr_finder(torch_tools.get_weights(torch_tools.build_mlp(seed=2)), 2, 160)
    rates, losses = finder.history["lr"], finder.history["loss"]
    for skip_start, skip_end in [(10, 5), (0, 0), (30, 20)]:
        with range_test.quiet_lr_finder():
            _, suggested = finder.plot(skip_start=skip_start, skip_end=skip_end)
        assert suggested == range_test.steepest_descent(
            rates, losses, skip_start=skip_start, skip_end=skip_end
        )


def test_tenth_of_minimum_on_a_known_curve():
    rates = np.geomspace(1e-4, 1, 9)
    losses = [3, 2.9, 2.8, 1.0, 0.6, 0.2, 0.1, 0.4, 9]  # steepest at 3
    assert range_test.tenth_of_minimum(rates, losses, skip_start=0, skip_end=0) == (
        pytest.approx(rates[6] / 10)
    )
    # The minimum inside the skipped end does not count.
    assert range_test.tenth_of_minimum(
        rates, [3, 2, 1, 1, 1, 1, 1, 1, 0], skip_start=0, skip_end=1
    ) == pytest.approx(rates[2] / 10)
    assert range_test.steepest_descent(rates, losses, skip_start=0, skip_end=0) == (
        pytest.approx(rates[3])
    )


# -- the Keras callback against LRFinder ----------------------------------------------


def test_same_seed_gives_different_weights_so_the_chapter_copies_them():
    keras_weights = keras_tools.build_mlp(seed=0).get_weights()
    model = torch_tools.build_mlp(seed=0)
    assert not np.allclose(torch_tools.get_weights(model)[0], keras_weights[0])
    torch_tools.set_weights(model, keras_weights)
    for copied, original in zip(
        torch_tools.get_weights(model), keras_weights, strict=True
    ):
        np.testing.assert_array_equal(copied, original)


def test_quiet_lr_finder_restores_the_progress_bar():
    from torch_lr_finder import lr_finder as module

    saved = module.tqdm
    with range_test.quiet_lr_finder():
        assert module.tqdm is not saved
        print("hidden")
    assert module.tqdm is saved


def test_keras_callback_matches_lr_finder_on_matched_weights_and_batches():
    num_iter = 160
    history, weights = keras_range_test(5, num_iter, diverge_th=1e9)
    finder = lr_finder(weights, 5, num_iter, diverge_th=1e9)
    assert len(history["lr"]) == len(finder.history["lr"]) == num_iter
    assert history["lr"] == finder.history["lr"]  # the same rate, bit for bit
    # float32: the runs agree closely while the rate is moderate (the first 80
    # iterations reach 0.03); beyond, rounding differences grow chaotically (3e-4 by
    # iteration 96, at 0.1; percents by iteration 140).
    np.testing.assert_allclose(
        history["loss"][:80], finder.history["loss"][:80], rtol=1e-4
    )
    raw = lr_finder(weights, 5, num_iter, smooth_f=0.0, diverge_th=1e9)
    np.testing.assert_allclose(
        history["raw_loss"][:80], raw.history["loss"][:80], rtol=1e-4
    )
    # The raw losses are those of single batches, not Keras's running means.
    running = np.cumsum(history["raw_loss"][:10]) / np.arange(1, 11)
    assert not np.allclose(history["raw_loss"][:10], running, rtol=1e-3)


def test_keras_callback_stops_where_lr_finder_stops():
    history, weights = keras_range_test(0, 160, smooth_f=0.1, diverge_th=1.2)
    finder = lr_finder(weights, 0, 160, smooth_f=0.1, diverge_th=1.2)
    assert len(history["lr"]) == len(finder.history["lr"]) < 100
    np.testing.assert_allclose(history["loss"], finder.history["loss"], rtol=1e-4)


# -- the replica engine against LRFinder ----------------------------------------------


def test_replica_engine_reproduces_lr_finder_per_epoch_in_float64():
    epochs, seeds = 10, [0, 7]
    num_iter = epochs * STEPS
    weights64 = replicas.default_weights(seeds, dtype=torch.float64)
    result = replicas.train(
        learning_rate=START,
        seeds=seeds,
        semantics="torch",
        epochs=epochs,
        batch_size=BATCH,
        rate_schedule=range_test.exponential_schedule(START, END, num_iter),
        dtype=torch.float64,
        progress=False,
    )
    sizes = np.diff(np.r_[np.arange(0, len(SPLIT.x_train), BATCH), len(SPLIT.x_train)])
    for k, seed in enumerate(seeds):
        weights = [w[k] for w in weights64]
        finder = lr_finder(
            weights, seed, num_iter, dtype=torch.float64, smooth_f=0.0, diverge_th=1e9
        )
        raw = np.reshape(finder.history["loss"], (epochs, STEPS))
        per_epoch = (raw * sizes).sum(axis=1) / sizes.sum()
        engine = result.history(0, seed)["loss"]
        # Exact up to the order of float64 summation while the rate is below 1 (the
        # first 8 epochs, including the loss's explosion); from 1 to 10 the rounding
        # differences grow even in float64.
        np.testing.assert_allclose(engine[:8], per_epoch[:8], rtol=1e-9)
        np.testing.assert_allclose(engine[8:], per_epoch[8:], rtol=1e-3)
        assert max(engine[:8]) > 2 * min(engine[:8])


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: range_test.exponential_rates(0, 1, 10), "start_lr"),
        (
            lambda: range_test.exponential_rates(1e-3, 1e-4, 10),
            "end_lr must be greater",
        ),
        (lambda: range_test.exponential_rates(1e-3, float("inf"), 10), "end_lr"),
        (lambda: range_test.exponential_rates(1e-3, 1, 1), "num_iter must be"),
        (lambda: range_test.exponential_rates(1e-3, 1, 2.5), "num_iter"),
        (lambda: range_test.exponential_schedule(1e-3, 1, 5)(np.array([-1])), "t must"),
        (
            lambda: range_test.exponential_schedule(1e-3, 1, 5)(np.array([0.5])),
            "t must",
        ),
        (lambda: range_test.smooth_losses([1, 2], 1.0), "smooth_f must lie in"),
        (lambda: range_test.smooth_losses([1, 2], -0.1), "smooth_f"),
        (lambda: range_test.smooth_losses([], 0.1), "losses must be a non-empty"),
        (lambda: range_test.stop_index([1, 2], 1.0), "diverge_th must be"),
        (lambda: range_test.stop_index([1, 2], float("nan")), "diverge_th"),
        (lambda: range_test.steepest_descent([1, 2, 3], [1, 2]), "same length"),
        (lambda: range_test.steepest_descent([1, 2, 3], [3, 2, 1]), "at least"),
        (
            lambda: range_test.tenth_of_minimum([1, 2], [2, 1], skip_start=-1),
            "skip_start",
        ),
        (
            lambda: range_test.tenth_of_minimum([1, 2], [2, 1], skip_end=0.5),
            "skip_end",
        ),
        (lambda: keras_tools.RangeTest(1e-3, 1e-4, 10), "end_lr"),
        (lambda: keras_tools.RangeTest(1e-4, 1, 10, smooth_f=1.5), "smooth_f"),
        (lambda: keras_tools.RangeTest(1e-4, 1, 10, diverge_th=0.5), "diverge_th"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_stop_index_none_when_the_loss_never_diverges():
    assert range_test.stop_index([3, 2, 1, 1.5, 2.9], 3) is None
    assert range_test.stop_index([3, 2, 1, 1.5, 3.1], 3) == 4
