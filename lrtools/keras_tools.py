"""Keras 3 (TensorFlow) helpers: the study's model, a fast ``fit``, an LR monitor.

Mirrors :mod:`lrtools.torch_tools`: the same names and the same history format.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np

from lrtools import _checks, data
from lrtools.history import pad_history


@contextlib.contextmanager
def _stderr_silenced():
    """Silence both C-level (fd 2) and Python-level stderr for the duration.

    TensorFlow's C++ start-up lines go straight to fd 2. In a notebook they
    reach the output of the build's kernel but not nbval's, so they must not be
    printed at all.
    """
    sys.stderr.flush()
    saved_fd = os.dup(2)
    saved_stream = sys.stderr
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            sys.stderr = io.StringIO()
            yield
    finally:
        sys.stderr = saved_stream
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with _stderr_silenced():
    import keras
    import tensorflow as tf

__all__ = [
    "LearningRateMonitor",
    "build_mlp",
    "fit",
    "keras",
    "make_optimizer",
    "tf",
]


def build_mlp(
    *,
    seed: int,
    n_inputs: int = 2,
    n_hidden: int = 50,
    n_classes: int = data.N_CLASSES,
    dtype: str = "float32",
) -> keras.Sequential:
    """The study's MLP: Dense(50, relu, he_uniform) then Dense(3, softmax), zero biases.

    The output layer keeps Keras's default glorot_uniform kernel, as in the
    original study.

    Parameters
    ----------
    seed : int
        Seeds the initial weights (no global RNG state is used).
    dtype : str
        ``"float32"`` to train, ``"float64"`` for exact comparisons with
        PyTorch. A float64 model needs a float64 loss too,
        ``keras.losses.CategoricalCrossentropy(dtype="float64")``: a Keras loss
        computes in ``keras.config.floatx()`` (float32) whatever the layers'
        dtype, and its gradient then carries float32 rounding.
    """
    seed = _checks.non_negative_int("seed", seed)
    for name, value in (
        ("n_inputs", n_inputs),
        ("n_hidden", n_hidden),
        ("n_classes", n_classes),
    ):
        _checks.positive_int(name, value)
    _checks.choice("dtype", dtype, ("float32", "float64"))
    seeds = keras.random.SeedGenerator(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(n_inputs,), dtype=dtype),
            keras.layers.Dense(
                n_hidden,
                activation="relu",
                dtype=dtype,
                kernel_initializer=keras.initializers.HeUniform(seed=seeds),
            ),
            keras.layers.Dense(
                n_classes,
                activation="softmax",
                dtype=dtype,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seeds),
            ),
        ]
    )


def make_optimizer(
    name: str,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name, with the learning rate always explicit.

    The frameworks' default learning rates differ (see
    :func:`lrtools.torch_tools.make_optimizer`), so there is no default here.
    Other settings are Keras's defaults.

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adagrad", "adam"}
    learning_rate : float
        Step size per update, finite and > 0 (Keras itself accepts a negative
        one silently).
    momentum : float
        In [0, 1); SGD and RMSprop only.
    nesterov : bool
        Nesterov momentum; SGD only.
    """
    name, lr, momentum, nesterov = _checks.optimizer_options(
        name, learning_rate, momentum, nesterov
    )
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=momentum, nesterov=nesterov
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, momentum=momentum)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


class LearningRateMonitor(keras.callbacks.Callback):
    """Record the optimizer's learning rate in each epoch's logs as ``learning_rate``.

    Keras 3 API: the rate is ``optimizer.learning_rate`` (``optimizer.lr`` no
    longer exists). It is read at the epoch's end; placed before other
    callbacks, it sees the rate before an epoch-end callback such as
    ReduceLROnPlateau changes it, i.e. the rate the epoch's updates used.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                np.asarray(self.model.optimizer.learning_rate)
            )


def train_dataset(
    split: data.BlobsSplit,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    dtype: str,
):
    """All epochs' mini-batches as one ``tf.data`` pipeline, in the order of
    :func:`lrtools.data.epoch_permutations`, as :func:`lrtools.torch_tools.fit` uses."""
    order = data.epoch_permutations(len(split.x_train), epochs, seed)
    x = split.x_train.astype(dtype)[order]
    y = data.one_hot(split.y_train, split.n_classes, dtype)[order]
    # One dataset element per epoch, cut into batches that never straddle two epochs.
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .flat_map(
            lambda xe, ye: tf.data.Dataset.from_tensor_slices((xe, ye)).batch(
                batch_size
            )
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def test_dataset(split: data.BlobsSplit, *, dtype: str):
    """The test half as a single cached batch, for per-epoch validation."""
    x = split.x_test.astype(dtype)
    y = data.one_hot(split.y_test, split.n_classes, dtype)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)).cache()


def fit(
    model: keras.Model,
    split: data.BlobsSplit,
    *,
    epochs: int,
    batch_size: int = 32,
    seed: int = 0,
    callbacks=(),
) -> dict[str, list[float]]:
    """``model.fit`` on ``split``, made fast, validated on the test half every epoch.

    The model must be compiled (with ``metrics=["accuracy"]``); compile it with
    ``steps_per_execution`` equal to the steps per epoch so that one call into
    TensorFlow runs a whole epoch (see ``benchmarks/keras_fit.py``). Training
    stops when the loss stops being finite (``TerminateOnNaN``) and later epochs
    are NaN, as :func:`lrtools.torch_tools.fit` does.

    Parameters
    ----------
    epochs : int
        Number of passes over the training set (>= 1).
    batch_size : int
        Samples per update; the last batch of an epoch is smaller if it doesn't
        divide n_train.
    seed : int
        Seeds the shuffle order (not the weights: see :func:`build_mlp`).
    callbacks : sequence of keras.callbacks.Callback
        Run after the learning-rate monitor.

    Returns
    -------
    dict of lists, one value per epoch
        Keras's ``History.history``: ``loss``, ``accuracy`` (means over the
        epoch's batches, each measured before its update), ``val_loss``,
        ``val_accuracy`` (at the epoch's end) and ``learning_rate`` (see
        :class:`LearningRateMonitor`).
    """
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if not getattr(model, "compiled", False):
        raise ValueError(
            "model must be compiled before fit (model.compile(optimizer, loss, ...))"
        )
    dtype = model.inputs[0].dtype if model.inputs else "float32"
    history = model.fit(
        train_dataset(
            split, epochs=epochs, batch_size=batch_size, seed=seed, dtype=dtype
        ),
        validation_data=test_dataset(split, dtype=dtype),
        epochs=epochs,
        steps_per_epoch=data.steps_per_epoch(len(split.x_train), batch_size),
        callbacks=[
            LearningRateMonitor(),
            keras.callbacks.TerminateOnNaN(),
            *callbacks,
        ],
        shuffle=False,  # the pipeline is already in epoch_permutations order
        verbose=0,
    )
    return pad_history(history.history, epochs)


class RangeTest(keras.callbacks.Callback):
    """The learning-rate range test as a Keras callback, step for step as
    ``torch_lr_finder.LRFinder.range_test`` with ``step_mode="exp"``.

    Before batch ``i`` (0-based, counted over the whole ``fit``) it sets the rate to
    ``lrtools.range_test.exponential_rates(start_lr, end_lr, num_iter)[i]``; after
    the batch it records that rate and the batch's loss, smooths the loss as LRFinder
    does, and stops training after ``num_iter`` batches or once the smoothed loss
    exceeds ``diverge_th`` times the best so far. Give ``fit`` at least ``num_iter``
    batches (e.g. ``epochs=1, steps_per_epoch=num_iter`` on a long enough dataset)
    and compile without ``steps_per_execution`` (the rate must change every batch).

    Keras's batch logs hold the *running mean* of the epoch's losses, not the batch's
    own: the callback resets the model's metrics before every batch so that
    ``logs["loss"]`` is that batch's loss. The history of ``fit`` then reports the
    last batch only.

    Attributes
    ----------
    history : dict of lists
        ``"lr"``: the rate of each batch; ``"loss"``: the smoothed losses (LRFinder's
        ``history``); ``"raw_loss"``: the batch losses before smoothing.
    """

    def __init__(
        self,
        start_lr: float,
        end_lr: float,
        num_iter: int = 100,
        *,
        smooth_f: float = 0.05,
        diverge_th: float = 5,
    ):
        from lrtools import range_test

        super().__init__()
        self.rates = range_test.exponential_rates(start_lr, end_lr, num_iter)
        self.smooth_f = _checks.in_unit_interval("smooth_f", smooth_f)
        # Checked as range_test.stop_index checks it.
        range_test.stop_index([1.0], diverge_th)
        self.diverge_th = float(diverge_th)
        self.history = {"lr": [], "loss": [], "raw_loss": []}
        self.best_loss = None

    def on_train_begin(self, logs=None):
        self.history = {"lr": [], "loss": [], "raw_loss": []}
        self.best_loss = None

    def on_train_batch_begin(self, batch, logs=None):
        i = len(self.history["lr"])
        self.model.optimizer.learning_rate = float(self.rates[i])
        self.model.reset_metrics()

    def on_train_batch_end(self, batch, logs=None):
        i = len(self.history["lr"])
        raw = float(np.asarray(logs["loss"]))
        loss = raw
        if i == 0:
            self.best_loss = loss
        else:
            if self.smooth_f > 0:
                loss = (
                    self.smooth_f * raw + (1 - self.smooth_f) * self.history["loss"][-1]
                )
            self.best_loss = min(self.best_loss, loss)
        self.history["lr"].append(float(self.rates[i]))
        self.history["loss"].append(loss)
        self.history["raw_loss"].append(raw)
        if loss > self.diverge_th * self.best_loss or i + 1 == len(self.rates):
            self.model.stop_training = True
