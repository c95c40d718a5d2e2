"""How long one 200-epoch run of the study takes inside :func:`lrtools.replicas.train`.

Three ways to train the study's MLP (SGD, batch 32, 500 training samples, validated on
the 500 test samples after every epoch), timed in one process:

1. replicas: :func:`lrtools.replicas.train`, 8 learning rates x 30 seeds = 240 replicas
   in one call (float32, per-epoch metrics included), total time divided by 240. Timed
   in both of the engine's formulations: the compiled kernel (one replica per SIMD
   lane, the default) and the batched PyTorch formulation it falls back to (the
   engine's previous design, forced with ``LRTOOLS_REPLICAS_KERNEL=0``), each with
   PyTorch's default number of threads and with one thread, best of ``--repeats``
   calls;
2. torch loop: :func:`lrtools.torch_tools.fit`, a plain PyTorch loop, a few runs;
3. keras fit: :func:`lrtools.keras_tools.fit` (tf.data + ``steps_per_execution``), one
   or two runs.

Each method first runs a short untimed warm-up (imports, building or loading the
kernel, graph tracing of the first Keras model). The second line names the CPU, its
widest vector instruction set and the kernel's lanes per vector (the kernel's speed
follows them). The LAST line reads
``replicas: X ms/run, torch loop: Y ms/run, keras fit: Z ms/run``
(the engine's default formulation at PyTorch's default number of threads).

Run from the repository root::

    .venv/bin/python benchmarks/replicas.py [--seeds 30] [--epochs 200] [--torch-runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from _cli import positive_int

from lrtools import _replicas_kernel, data, replicas, torch_tools

LEARNING_RATES = [float(x) for x in np.geomspace(0.001, 0.1, 8)]
BATCH_SIZE = 32


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=positive_int, default=30, help="seeds per rate (30)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=200, help="epochs per run (200)"
    )
    parser.add_argument(
        "--torch-runs", type=positive_int, default=3, help="torch loop runs (3)"
    )
    parser.add_argument(
        "--keras-runs", type=positive_int, default=1, help="keras fit runs (1)"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=2,
        help="engine calls per formulation and thread count, best kept (2)",
    )
    return parser.parse_args(argv)


def time_replicas(
    epochs: int, seeds: int, threads: int, kernel: bool = True
) -> tuple[float, replicas.ReplicaResult]:
    """Seconds for one engine call of len(LEARNING_RATES) * seeds replicas, with the
    compiled kernel or the batched PyTorch formulation."""
    previous = torch.get_num_threads()
    switch = os.environ.get(_replicas_kernel.SWITCH)
    torch.set_num_threads(threads)
    os.environ[_replicas_kernel.SWITCH] = "1" if kernel else "0"
    try:
        start = time.perf_counter()
        result = replicas.train(
            optimizer="sgd",
            learning_rate=LEARNING_RATES,
            seeds=range(seeds),
            epochs=epochs,
            batch_size=BATCH_SIZE,
            semantics="torch",
            progress=False,
        )
        return time.perf_counter() - start, result
    finally:
        torch.set_num_threads(previous)
        if switch is None:
            del os.environ[_replicas_kernel.SWITCH]
        else:
            os.environ[_replicas_kernel.SWITCH] = switch


def time_formulations(
    args, n_replicas: int, default_threads: int
) -> tuple[dict, replicas.ReplicaResult]:
    """Best ms/run of each formulation and thread count (printed as it goes), and
    the default formulation's result."""
    formulations = ["batched"]
    if _replicas_kernel.enabled():
        formulations.insert(0, "kernel")
    else:
        print("replicas kernel unavailable:", _replicas_kernel.status)
    per_run, results = {}, {}
    for name in formulations:
        for threads in sorted({1, default_threads}):
            runs = [
                time_replicas(args.epochs, args.seeds, threads, name == "kernel")
                for _ in range(args.repeats)
            ]
            seconds = min(seconds for seconds, _ in runs)
            results[name, threads] = runs[0][1]
            per_run[name, threads] = 1000 * seconds / n_replicas
            print(
                f"replicas ({name}), {threads} thread(s): {seconds:.2f} s for "
                f"{n_replicas} runs = {per_run[name, threads]:.1f} ms/run"
            )
    return per_run, results[formulations[0], default_threads]


def time_torch(
    split: data.BlobsSplit, epochs: int, seed: int, learning_rate: float
) -> float:
    start = time.perf_counter()
    model = torch_tools.build_mlp(seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    torch_tools.fit(
        model, optimizer, split, epochs=epochs, batch_size=BATCH_SIZE, seed=seed
    )
    return time.perf_counter() - start


def time_keras(
    split: data.BlobsSplit, epochs: int, seed: int, learning_rate: float
) -> float:
    from lrtools import keras_tools
    from lrtools.keras_tools import keras

    start = time.perf_counter()
    model = keras_tools.build_mlp(seed=seed)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=data.steps_per_epoch(len(split.x_train), BATCH_SIZE),
    )
    keras_tools.fit(model, split, epochs=epochs, batch_size=BATCH_SIZE, seed=seed)
    return time.perf_counter() - start


def main(argv=None) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    args = parse_args(argv)
    split = data.make_blobs_split()
    n_replicas = len(LEARNING_RATES) * args.seeds
    default_threads = torch.get_num_threads()
    print(
        f"{args.epochs} epochs, SGD, batch {BATCH_SIZE}; replicas: "
        f"{len(LEARNING_RATES)} rates x {args.seeds} seeds = {n_replicas}; "
        f"torch threads by default: {default_threads}"
    )
    # The kernel's speed follows the CPU's vector width: say which CPU this was.
    kernel = _replicas_kernel.load()
    lanes = f"{kernel.lanes[torch.float32]} float32 lanes" if kernel else "unavailable"
    print(f"CPU: {_replicas_kernel.describe_cpu()}; replicas kernel: {lanes}")

    # Warm-up: imports, building or loading the kernel, first PyTorch kernels, the
    # first Keras graph (untimed).
    for kernel in (True, False):
        time_replicas(2, 2, default_threads, kernel)
    time_torch(split, 2, 0, 0.01)
    time_keras(split, 2, 0, 0.01)

    per_run, result = time_formulations(args, n_replicas, default_threads)
    default = next(iter(per_run))[0]  # the kernel when available
    if ("kernel", default_threads) in per_run:
        ratio = per_run["batched", default_threads] / per_run["kernel", default_threads]
        print(f"speed-up of the kernel over the batched formulation: {ratio:.1f}x")
    final = result.frame[result.frame["epoch"] == args.epochs]
    accuracy = final.groupby("initial_learning_rate")["val_accuracy"].mean()
    print("mean final val_accuracy per learning rate:", accuracy.round(3).to_dict())

    rates = [LEARNING_RATES[seed % len(LEARNING_RATES)] for seed in range(100)]
    torch_seconds = [
        time_torch(split, args.epochs, seed, rates[seed])
        for seed in range(args.torch_runs)
    ]
    print("torch loop runs (s):", ", ".join(f"{s:.2f}" for s in torch_seconds))
    keras_seconds = [
        time_keras(split, args.epochs, seed, rates[seed])
        for seed in range(args.keras_runs)
    ]
    print("keras fit runs (s):", ", ".join(f"{s:.2f}" for s in keras_seconds))

    replicas_ms = per_run[default, default_threads]
    torch_ms = 1000 * statistics.median(torch_seconds)
    keras_ms = 1000 * statistics.median(keras_seconds)
    print(f"speed-up of replicas: {torch_ms / replicas_ms:.0f}x over the torch loop")
    print(
        f"replicas: {replicas_ms:.1f} ms/run, torch loop: {torch_ms:.0f} ms/run, "
        f"keras fit: {keras_ms:.0f} ms/run"
    )


if __name__ == "__main__":
    main()
