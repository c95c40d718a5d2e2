"""The blobs problem of the original study, and the shuffling both frameworks share."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from lrtools import _checks

N_CLASSES = 3


@dataclass(frozen=True)
class BlobsSplit:
    """Train and test halves of the blobs problem.

    ``x_*`` are float arrays of shape (n, 2); ``y_*`` are integer class labels
    of shape (n,). Keras's categorical cross-entropy wants one-hot targets: see
    :func:`one_hot`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = N_CLASSES

    def astype(self, dtype) -> BlobsSplit:
        """The same split with features cast to ``dtype`` (labels stay integers)."""
        return BlobsSplit(
            self.x_train.astype(dtype),
            self.y_train,
            self.x_test.astype(dtype),
            self.y_test,
            self.n_classes,
        )


STUDY_RANDOM_STATE = 2  # the study's ``random_state``: its centres and its points


def _make_blobs(centers=N_CLASSES, random_state=STUDY_RANDOM_STATE, **options):
    from sklearn.datasets import make_blobs

    return make_blobs(
        n_samples=1000,
        centers=centers,
        n_features=2,
        cluster_std=2,
        random_state=random_state,
        **options,
    )


def make_blobs_split(
    n_train: int = 500, dtype="float32", data_seed: int | None = None
) -> BlobsSplit:
    """The original study's data, split into a training and a test half.

    ``make_blobs(1000, centers=3, n_features=2, cluster_std=2, random_state=2)``:
    the first ``n_train`` samples for training and the rest for testing.

    Parameters
    ----------
    n_train : int
        Number of samples (of 1000) in the training half; the study uses 500.
    dtype : numpy dtype
        Dtype of the features: float32 for training, float64 for exact
        comparisons.
    data_seed : int >= 0 or None
        None (default): the study's draw. An integer redraws the 1000 points
        around the study's three centres (:func:`blob_centres`) with that seed
        (sklearn's ``random_state``): another sample of the same problem, whose
        best possible accuracy :func:`nearest_centre_accuracy` still measures.
        Even ``data_seed=2`` differs from the study's draw, which spent its
        first random numbers on the centres.
    """
    n_train = _checks.positive_int("n_train", n_train)
    if n_train >= 1000:
        raise ValueError(
            f"n_train must be between 1 and 999 (1000 samples), got {n_train}"
        )
    if data_seed is None:
        x, y = _make_blobs()
    else:
        if (
            isinstance(data_seed, bool)
            or not isinstance(data_seed, Integral)
            or not 0 <= data_seed < 2**32
        ):
            raise ValueError(
                f"data_seed must be None or an integer in [0, 2**32), got {data_seed!r}"
            )
        x, y = _make_blobs(centers=blob_centres(), random_state=data_seed)
    x = x.astype(dtype)
    y = y.astype(np.int64)
    return BlobsSplit(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def carve_validation(split: BlobsSplit, n_validation: int = 100) -> BlobsSplit:
    """A split whose *test* half is a validation set carved from a training half.

    The last ``n_validation`` training samples become the returned split's test half,
    the others its training half; ``split``'s own test half is left out, so that a run
    trained on the result, and scheduled on its "test" (validation) loss, never sees
    the real test set. Evaluate its final weights on ``split.x_test`` afterwards.

    Parameters
    ----------
    split : BlobsSplit
        The split to carve from.
    n_validation : int
        Number of training samples moved to the validation half, between 1 and
        ``len(split.x_train) - 1``.
    """
    if not isinstance(split, BlobsSplit):
        raise ValueError(f"split must be a BlobsSplit, got {type(split).__name__}")
    n = len(split.x_train)
    n_validation = _checks.positive_int("n_validation", n_validation)
    if n_validation >= n:
        raise ValueError(
            f"n_validation must be between 1 and {n - 1} (the training half holds "
            f"{n} samples), got {n_validation}"
        )
    keep = n - n_validation
    return BlobsSplit(
        split.x_train[:keep],
        split.y_train[:keep],
        split.x_train[keep:],
        split.y_train[keep:],
        split.n_classes,
    )


def blob_centres() -> np.ndarray:
    """The true centres (3, 2) from which :func:`make_blobs_split` draws its points."""
    return _make_blobs(return_centers=True)[2]


def nearest_centre_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the rule "the class of the nearest true centre" on ``x``, ``y``.

    The blobs are isotropic Gaussians with equal spread and near-equal class
    sizes, so this rule is the Bayes-optimal classifier: the ceiling a trained
    network can hope to reach on average.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2 or y.shape != (len(x),):
        raise ValueError(
            f"x must have shape (n, 2) and y shape (n,), got {x.shape} and {y.shape}"
        )
    distances = np.linalg.norm(x[:, None, :] - blob_centres()[None, :, :], axis=2)
    return float(np.mean(distances.argmin(axis=1) == y))


def one_hot(
    labels: np.ndarray, n_classes: int = N_CLASSES, dtype="float32"
) -> np.ndarray:
    """One-hot encode integer ``labels`` (like ``keras.utils.to_categorical``)."""
    labels = np.asarray(labels)
    if (
        labels.ndim != 1
        or labels.size
        and (labels.min() < 0 or labels.max() >= n_classes)
    ):
        raise ValueError(
            f"labels must be a 1-D array of integers in [0, {n_classes}), "
            f"got {labels!r}"
        )
    return np.eye(n_classes, dtype=dtype)[labels]


def epoch_permutations(n: int, epochs: int, seed: int) -> np.ndarray:
    """The order in which each epoch visits the ``n`` training samples.

    Both frameworks' training loops take their mini-batches from these
    permutations, so a Keras run and a PyTorch run with the same ``seed`` see
    identical batches in identical order.

    Returns
    -------
    numpy.ndarray of int64, shape (epochs, n)
        Row ``e`` is the sample order of epoch ``e`` (0-based).
    """
    n = _checks.positive_int("n", n)
    epochs = _checks.positive_int("epochs", epochs)
    seed = _checks.non_negative_int("seed", seed)
    # A stream separate from weight initialisation, which also derives from ``seed``.
    rng = np.random.default_rng([seed, 1])
    return np.stack([rng.permutation(n) for _ in range(epochs)])


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Mini-batches per epoch (the last is short if ``batch_size`` doesn't divide n)."""
    n = _checks.positive_int("n", n)
    batch_size = _checks.positive_int("batch_size", batch_size)
    return -(-n // batch_size)
