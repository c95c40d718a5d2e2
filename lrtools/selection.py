"""Which epoch's model to keep: checkpoints and early stopping read from histories.

Keras's ``ModelCheckpoint(save_best_only=True)`` and ``EarlyStopping`` decide from one
number per epoch, so their decisions can be replayed on recorded histories, for
thousands of runs at once (:mod:`lrtools.replicas`), without saving a file:

- :func:`early_stopping_epochs`: the epoch at which ``EarlyStopping`` stops, and the
  epoch whose weights ``restore_best_weights`` brings back;
- :func:`checkpoint_epochs`: the epoch whose model ``ModelCheckpoint`` last wrote;
- :func:`at_epochs`: a per-epoch record read at those epochs.

The checkpoint of this book monitors the validation macro-F1, which the replicas'
history does not hold: :class:`EpochRecorder` counts each epoch's predictions on the
validation set through ``replicas.train(epoch_end=...)`` and keeps each epoch's
weights; :func:`macro_f1` turns counts into Keras's ``F1Score(average="macro")``.

Epochs are 1-based throughout (epoch ``e`` is the model after ``e`` passes), as in
the replicas' frame; Keras's callbacks count from 0.
"""

from __future__ import annotations

import numpy as np
import torch

from lrtools import _checks

#: Keras's ``backend.epsilon()``, which ``F1Score`` adds to every denominator.
KERAS_EPSILON = 1e-7


def _logits(weights, x: np.ndarray) -> torch.Tensor:
    """Every replica's outputs before the softmax on ``x``: (R, n, C)."""
    w1, b1, w2, b2 = (torch.as_tensor(np.asarray(w)) for w in weights)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != w1.shape[1]:
        raise ValueError(f"x must have shape (n, {w1.shape[1]}), got {x.shape}")
    inputs = torch.as_tensor(x).to(w1.dtype)
    # Every replica sees the same inputs: one GEMM for all hidden layers side by side.
    runs, n_in, n_hidden = w1.shape
    kernels = w1.permute(1, 0, 2).reshape(n_in, runs * n_hidden)
    z = (inputs @ kernels).view(len(x), runs, n_hidden)
    hidden = z.add_(b1).clamp_min_(0).transpose(0, 1)
    return torch.bmm(hidden, w2) + b2[:, None]


def confusion_counts(weights, x: np.ndarray, y: np.ndarray, n_classes: int = 3):
    """Confusion counts of every replica's MLP on ``(x, y)``.

    Parameters
    ----------
    weights : list of 4 arrays
        Keras layout with a leading replica axis: (R, n_in, H), (R, H), (R, H, C),
        (R, C), as ``replicas.train`` gives them. Computed in the weights' dtype.
    x : array (n, n_in)
    y : int array (n,), labels in ``[0, n_classes)``
    n_classes : int >= 1

    Returns
    -------
    numpy.ndarray of int64, shape (R, n_classes, n_classes)
        ``[r, i, j]``: samples of class ``i`` that replica ``r`` predicts as ``j``
        (the first largest output, as ``argmax`` decides ties).
    """
    predicted = _logits(weights, x).argmax(dim=2).numpy()
    return confusion_from_predictions(y, predicted, n_classes)


def mean_cross_entropy(weights, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Every replica's mean categorical cross-entropy on ``(x, y)``: float64 (R,)."""
    logits = _logits(weights, x)
    y = torch.as_tensor(np.asarray(y))
    if y.shape != logits.shape[1:2]:
        raise ValueError(
            f"y must have shape ({logits.shape[1]},), got {tuple(y.shape)}"
        )
    losses = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), y.expand(len(logits), -1), reduction="none"
    )
    return losses.double().mean(dim=1).numpy()


def confusion_from_predictions(y, predicted, n_classes: int = 3) -> np.ndarray:
    """Confusion counts (..., C, C) of predicted labels ``predicted`` (..., n) for
    true labels ``y`` (n,): ``[..., i, j]`` counts samples of class ``i`` predicted as
    ``j``."""
    n_classes = _checks.positive_int("n_classes", n_classes)
    y, predicted = np.asarray(y), np.asarray(predicted)
    if y.ndim != 1 or predicted.shape[-1:] != y.shape:
        raise ValueError(
            f"y must have shape (n,) and predicted (..., n), got {y.shape} and "
            f"{predicted.shape}"
        )
    for name, labels in (("y", y), ("predicted", predicted)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{name} must hold labels in [0, {n_classes})")
    lead = predicted.shape[:-1]
    runs, cells = int(np.prod(lead)), n_classes * n_classes
    # One bincount over (run, true class, predicted class) cells.
    flat = np.arange(runs)[:, None] * cells + (
        y * n_classes + predicted.reshape(runs, -1)
    )
    counts = np.bincount(flat.ravel(), minlength=runs * cells)
    return counts.reshape(*lead, n_classes, n_classes)


def macro_f1(confusion) -> np.ndarray:
    """Keras's ``F1Score(average="macro")`` from confusion counts, in float32 as Keras.

    Per class, precision ``tp / (tp + fp + eps)``, recall ``tp / (tp + fn + eps)`` and
    ``2 p r / (p + r + eps)`` with ``eps = 1e-7``, then the mean over classes: exactly
    what the metric computes from one-hot targets and a softmax output whose largest
    entry is the prediction.

    Parameters
    ----------
    confusion : int array (..., C, C)
        ``[..., i, j]``: samples of class ``i`` predicted as ``j``.

    Returns
    -------
    numpy.ndarray of float32, shape (...)
    """
    counts = np.asarray(confusion)
    if (
        counts.ndim < 2
        or counts.shape[-1] != counts.shape[-2]
        or not np.issubdtype(counts.dtype, np.integer)
        or (counts < 0).any()
    ):
        raise ValueError(
            "confusion must be an array of counts (integers >= 0) of shape "
            "(..., C, C), "
            f"got {counts.dtype} {counts.shape}"
        )
    f32, eps = np.float32, np.float32(KERAS_EPSILON)
    tp = np.diagonal(counts, axis1=-2, axis2=-1).astype(f32)
    predicted = counts.sum(axis=-2).astype(f32)  # tp + fp
    actual = counts.sum(axis=-1).astype(f32)  # tp + fn
    precision = tp / (predicted + eps)
    recall = tp / (actual + eps)
    f1 = precision * recall / (precision + recall + eps) * f32(2)
    return f1.mean(axis=-1, dtype=f32)


def accuracy(confusion) -> np.ndarray:
    """Share of correct predictions from confusion counts (..., C, C), float64."""
    counts = np.asarray(confusion)
    if counts.ndim < 2 or counts.shape[-1] != counts.shape[-2]:
        raise ValueError(f"confusion must have shape (..., C, C), got {counts.shape}")
    correct = np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=-1)
    return correct / counts.sum(axis=(-2, -1))


class EpochRecorder:
    """``epoch_end`` for :func:`lrtools.replicas.train`: what choosing an epoch needs.

    After each epoch it counts every replica's predictions on the validation set
    (:func:`confusion_counts`) and keeps a copy of the weights, so that afterwards
    the model of any epoch can be taken out, as a checkpoint file would hold it::

        recorder = EpochRecorder(x_val, y_val)
        result = replicas.train(..., epoch_end=recorder)
        f1 = macro_f1(recorder.validation_counts())  # (R, epochs)
        kept = recorder.weights_at(checkpoint_epochs(f1, last=stop))

    The choice uses validation records only; the test set is then evaluated once,
    on the kept weights.

    Parameters
    ----------
    x_val : array (n, n_in)
    y_val : int array (n,)
    n_classes : int >= 1
    """

    def __init__(self, x_val, y_val, n_classes: int = 3):
        self.n_classes = _checks.positive_int("n_classes", n_classes)
        self.x_val, self.y_val = np.asarray(x_val), np.asarray(y_val)
        # Fail now, not after the first epoch of a long run.
        if self.x_val.ndim != 2 or self.y_val.shape != (len(self.x_val),):
            raise ValueError(
                f"x_val must have shape (n, n_in) and y_val shape (n,), got "
                f"{self.x_val.shape} and {self.y_val.shape}"
            )
        self._counts: list[np.ndarray] = []
        self._weights: list[list[np.ndarray]] = []

    def __call__(self, epoch: int, weights) -> None:
        if epoch != len(self._counts) + 1:
            raise RuntimeError("epochs must be recorded in order, from 1")
        self._counts.append(
            confusion_counts(weights, self.x_val, self.y_val, self.n_classes)
        )
        self._weights.append([np.array(w) for w in weights])

    def validation_counts(self) -> np.ndarray:
        """Validation confusion counts: int array (R, epochs, C, C)."""
        if not self._counts:
            raise RuntimeError("nothing recorded yet: pass the recorder as epoch_end")
        return np.stack(self._counts, axis=1)

    def weights_at(self, epochs) -> list[np.ndarray]:
        """Each replica's weights after its own epoch ``epochs[r]`` (1-based).

        Returns the Keras layout with a leading replica axis, like
        ``ReplicaResult.weights``.
        """
        epochs = np.asarray(epochs)
        recorded = len(self._weights)
        runs = len(self._weights[0][0]) if recorded else 0
        if (
            epochs.shape != (runs,)
            or not np.issubdtype(epochs.dtype, np.integer)
            or (epochs < 1).any()
            or (epochs > recorded).any()
        ):
            raise ValueError(
                f"epochs must hold one integer between 1 and {recorded} per replica "
                f"({runs}), got {epochs!r}"
            )
        rows = np.arange(runs)
        return [
            np.stack(
                [self._weights[e - 1][k][r] for r, e in zip(rows, epochs, strict=True)]
            )
            for k in range(4)
        ]


def _per_epoch(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(
            f"{name} must be an array (epochs,) or (runs, epochs), got shape "
            f"{array.shape}"
        )
    return array


def early_stopping_epochs(
    val_loss, *, patience: int, min_delta: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Replay Keras 3's ``EarlyStopping(restore_best_weights=True)`` on ``val_loss``.

    At each epoch's end the callback counts one more epoch since the best; a loss below
    ``best - min_delta`` becomes the best and resets the count; once the count reaches
    ``patience`` (from the second epoch on) training stops after that epoch. At the end
    of training (stopped or not) the weights of the best epoch come back. A NaN loss
    never improves.

    Parameters
    ----------
    val_loss : array (epochs,) or (runs, epochs)
        The monitored loss after each epoch.
    patience : int >= 0
    min_delta : float >= 0

    Returns
    -------
    stop, best : int arrays (runs,)
        The last epoch trained (1-based; ``epochs`` if it never stops) and the epoch
        whose weights ``restore_best_weights`` restores (the first epoch of the lowest
        loss up to ``stop``).
    """
    losses = _per_epoch("val_loss", val_loss)
    patience = _checks.non_negative_int("patience", patience)
    min_delta = _checks.non_negative("min_delta", min_delta)
    runs, epochs = losses.shape
    stop = np.full(runs, epochs)
    best_epoch = np.ones(runs, dtype=np.int64)
    for r in range(runs):
        best, wait = None, 0
        for e in range(epochs):
            wait += 1
            current = losses[r, e]
            if best is None or current + min_delta < best:
                best, best_epoch[r], wait = current, e + 1, 0
                continue
            if wait >= patience and e > 0:
                stop[r] = e + 1
                break
    return stop, best_epoch


def checkpoint_epochs(metric, *, last, mode: str = "max") -> np.ndarray:
    """The epoch of the model ``ModelCheckpoint(save_best_only=True)`` last wrote.

    The callback writes the model whenever the monitored value beats the best so far
    (strictly: ``>`` in mode ``"max"``, ``<`` in ``"min"``), so its file holds the
    first epoch of the best value among epochs ``1..last``. NaN values never win.

    Parameters
    ----------
    metric : array (epochs,) or (runs, epochs)
    last : int or int array (runs,)
        The last epoch trained by each run (e.g. ``stop`` of
        :func:`early_stopping_epochs`), between 1 and ``epochs``.
    mode : {"max", "min"}

    Returns
    -------
    int array (runs,), 1-based
    """
    values = _per_epoch("metric", metric)
    mode = _checks.choice("mode", mode, ("max", "min"))
    runs, epochs = values.shape
    last = np.broadcast_to(np.asarray(last), (runs,))
    if (
        not np.issubdtype(last.dtype, np.integer)
        or (last < 1).any()
        or (last > epochs).any()
    ):
        raise ValueError(f"last must hold integers between 1 and {epochs}, got {last}")
    signed = values if mode == "max" else -values
    masked = np.where(np.arange(1, epochs + 1) <= last[:, None], signed, -np.inf)
    masked = np.where(np.isnan(masked), -np.inf, masked)
    return masked.argmax(axis=1) + 1


def at_epochs(values, epochs) -> np.ndarray:
    """``values[r, epochs[r] - 1, ...]`` for every run ``r``: a record at chosen epochs.

    Parameters
    ----------
    values : array (runs, epochs, ...)
    epochs : int array (runs,), 1-based
    """
    values = np.asarray(values)
    epochs = np.asarray(epochs)
    if values.ndim < 2 or epochs.shape != (len(values),):
        raise ValueError(
            f"values must be (runs, epochs, ...) and epochs (runs,), got "
            f"{values.shape} and {epochs.shape}"
        )
    if (
        not np.issubdtype(epochs.dtype, np.integer)
        or (epochs < 1).any()
        or (epochs > values.shape[1]).any()
    ):
        raise ValueError(f"epochs must lie between 1 and {values.shape[1]}")
    return values[np.arange(len(values)), epochs - 1]
