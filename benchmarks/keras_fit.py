"""Time one 200-epoch run of the study: naive Keras, lrtools' Keras, PyTorch.

Three ways to train the study's MLP (SGD, learning rate 0.01, batch 32, 500 training
samples, so 16 updates per epoch, validated on the 500 test samples after every epoch):

1. naive: the original study's code, ``model.fit`` on NumPy arrays with Keras's
   defaults;
2. lrtools: :func:`lrtools.keras_tools.fit` (tf.data pipelines built once) on a model
   compiled with ``steps_per_execution=16``, so one call into TensorFlow runs a whole
   epoch;
3. torch: :func:`lrtools.torch_tools.fit`, a plain PyTorch loop, for scale.

What is timed (``time.perf_counter``): one complete run per method, from building the
model to the end of training, so each run includes its own model's compile and graph
tracing (a chapter pays these too). Process-wide one-off costs (TensorFlow's kernels,
first-call imports) are paid by an untimed 2-epoch warm-up of every method, reported
separately. The timed runs are interleaved (A, B, C, A, B, C, ...) with a different seed
per repeat so that machine load affects every method alike; the median per run is
reported.

Both Keras runs are checked to do the same work (the same number of optimizer updates)
and to learn comparably (final test accuracy), so a speed-up cannot come from doing
less.

Run from the repository root::

    .venv/bin/python benchmarks/keras_fit.py [--epochs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _cli import positive_int

from lrtools import data, keras_tools, torch_tools

# Importing keras through lrtools silences TensorFlow's start-up logs.
from lrtools.keras_tools import keras

LEARNING_RATE = 0.01
BATCH_SIZE = 32
WARMUP_EPOCHS = 2
# Below this final test accuracy a run has not learned the blobs (chance is 1/3).
MIN_VAL_ACCURACY = 0.7


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=positive_int, default=200, help="epochs per run (200)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed runs per method (3)"
    )
    return parser.parse_args(argv)


def run_naive_keras(split: data.BlobsSplit, epochs: int, seed: int) -> dict:
    """The original study's code: ``model.fit`` on NumPy arrays, default settings."""
    # model.fit shuffles with TensorFlow's global RNG: seed it so each repeat is
    # reproducible.
    keras.utils.set_random_seed(seed)
    model = keras_tools.build_mlp(seed=seed)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        split.x_train,
        data.one_hot(split.y_train),
        validation_data=(split.x_test, data.one_hot(split.y_test)),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        verbose=0,
    )
    return {
        "val_accuracy": history.history["val_accuracy"][-1],
        "updates": updates(model),
    }


def run_lrtools_keras(split: data.BlobsSplit, epochs: int, seed: int) -> dict:
    """The same model and optimizer, trained by :func:`lrtools.keras_tools.fit`."""
    model = keras_tools.build_mlp(seed=seed)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        # One call into TensorFlow per epoch instead of one per batch: the Python
        # overhead of each call, not the arithmetic, dominates for a model this small.
        steps_per_execution=data.steps_per_epoch(len(split.x_train), BATCH_SIZE),
    )
    history = keras_tools.fit(
        model, split, epochs=epochs, batch_size=BATCH_SIZE, seed=seed
    )
    return {"val_accuracy": history["val_accuracy"][-1], "updates": updates(model)}


def run_torch(split: data.BlobsSplit, epochs: int, seed: int) -> dict:
    """The PyTorch loop on the PyTorch twin of the model."""
    model = torch_tools.build_mlp(seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    # Plain SGD keeps no step counter (Keras's optimizer.iterations): count the
    # steps with a hook.
    n_updates = [0]
    optimizer.register_step_post_hook(
        lambda *_: n_updates.__setitem__(0, n_updates[0] + 1)
    )
    history = torch_tools.fit(
        model, optimizer, split, epochs=epochs, batch_size=BATCH_SIZE, seed=seed
    )
    return {"val_accuracy": history["val_accuracy"][-1], "updates": n_updates[0]}


def updates(model: keras.Model) -> int:
    """Optimizer updates a Keras model has made (one per mini-batch)."""
    return int(model.optimizer.iterations)


METHODS = {
    "naive keras fit": run_naive_keras,
    "lrtools keras fit": run_lrtools_keras,
    "torch loop": run_torch,
}


def timed(run, split: data.BlobsSplit, epochs: int, seed: int) -> tuple[float, dict]:
    """Wall-clock seconds of one run, and what the run returned."""
    start = time.perf_counter()
    result = run(split, epochs, seed)
    return time.perf_counter() - start, result


def warm_up(split: data.BlobsSplit) -> None:
    """One short untimed run per method: pays process-wide one-off costs up front."""
    for name, run in METHODS.items():
        seconds, _ = timed(run, split, WARMUP_EPOCHS, seed=0)
        print(
            f"warm-up {name} ({WARMUP_EPOCHS} epochs, untimed in results): "
            f"{seconds:.1f} s"
        )


def benchmark(split: data.BlobsSplit, epochs: int, repeats: int) -> dict[str, list]:
    """``repeats`` interleaved timed runs per method: {name: [(seconds, result)]}."""
    runs = {name: [] for name in METHODS}
    for repeat in range(repeats):
        seed = repeat + 1  # the warm-up used seed 0
        for name, run in METHODS.items():
            runs[name].append(timed(run, split, epochs, seed))
            seconds, result = runs[name][-1]
            print(
                f"  repeat {repeat + 1}/{repeats} {name}: {seconds:.1f} s, "
                f"val_accuracy {result['val_accuracy']:.3f}, "
                f"updates {result['updates']}"
            )
    return runs


def check_same_work(runs: dict[str, list], expected_updates: int) -> None:
    """Fail loudly if a method made a different number of updates or did not learn."""
    for name, results in runs.items():
        for _, result in results:
            if result["updates"] != expected_updates:
                raise SystemExit(
                    f"{name} made {result['updates']} updates, "
                    f"expected {expected_updates}"
                )
            if result["val_accuracy"] <= MIN_VAL_ACCURACY:
                print(
                    f"WARNING: {name} reached only val_accuracy "
                    f"{result['val_accuracy']:.3f} "
                    f"(the study reaches > {MIN_VAL_ACCURACY} in 200 epochs)"
                )


def main(argv=None) -> None:
    args = parse_args(argv)
    split = data.make_blobs_split()
    steps = data.steps_per_epoch(len(split.x_train), BATCH_SIZE)
    print(
        f"{args.epochs} epochs x {steps} updates of batch {BATCH_SIZE}, "
        f"SGD lr {LEARNING_RATE}; "
        f"{args.repeats} interleaved repeats; torch threads: {torch.get_num_threads()}"
    )
    warm_up(split)
    runs = benchmark(split, args.epochs, args.repeats)
    check_same_work(runs, expected_updates=args.epochs * steps)

    median = {
        name: statistics.median(s for s, _ in results) for name, results in runs.items()
    }
    for name, results in runs.items():
        accuracies = ", ".join(f"{r['val_accuracy']:.3f}" for _, r in results)
        print(
            f"{name}: {median[name]:.1f} s/run (median of {args.repeats}); "
            f"final val_accuracy per run: {accuracies}"
        )
    naive, fast, torch_loop = (median[name] for name in METHODS)
    print(
        f"keras fit (numpy arrays): {naive:.1f} s/run, "
        f"lrtools keras fit (tf.data + steps_per_execution): {fast:.1f} s/run, "
        f"speed-up: {naive / fast:.1f}x, torch loop: {torch_loop:.1f} s/run"
    )


if __name__ == "__main__":
    main()
