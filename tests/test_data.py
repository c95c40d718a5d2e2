import numpy as np
import pytest
from sklearn.datasets import make_blobs

from lrtools import data


def test_split_is_the_original_studys_first_500_and_last_500():
    x, y = make_blobs(
        n_samples=1000, centers=3, n_features=2, cluster_std=2, random_state=2
    )
    split = data.make_blobs_split(dtype="float64")
    np.testing.assert_array_equal(split.x_train, x[:500])
    np.testing.assert_array_equal(split.x_test, x[500:])
    np.testing.assert_array_equal(split.y_train, y[:500])
    np.testing.assert_array_equal(split.y_test, y[500:])
    assert split.x_train.dtype == np.float64 and split.y_train.dtype == np.int64


def test_split_default_dtype_and_class_balance():
    split = data.make_blobs_split()
    assert split.x_train.shape == (500, 2) and split.x_train.dtype == np.float32
    assert set(np.unique(split.y_train)) == {0, 1, 2}
    assert split.astype("float64").x_test.dtype == np.float64


@pytest.mark.parametrize("n_train", [0, -5, 1000, 2.5])
def test_split_rejects_bad_n_train(n_train):
    with pytest.raises(ValueError, match="n_train"):
        data.make_blobs_split(n_train=n_train)


def test_one_hot_matches_eye_rows():
    np.testing.assert_array_equal(
        data.one_hot(np.array([2, 0])), [[0, 0, 1], [1, 0, 0]]
    )
    with pytest.raises(ValueError, match="labels"):
        data.one_hot(np.array([0, 3]))


def test_epoch_permutations_are_permutations_seeded_and_distinct():
    orders = data.epoch_permutations(500, 4, seed=7)
    assert orders.shape == (4, 500)
    for row in orders:
        np.testing.assert_array_equal(np.sort(row), np.arange(500))
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders, data.epoch_permutations(500, 4, seed=7))
    assert not np.array_equal(orders, data.epoch_permutations(500, 4, seed=8))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0, "epochs": 1, "seed": 0}, "n"),
        ({"n": 5, "epochs": 0, "seed": 0}, "epochs"),
        ({"n": 5, "epochs": 1, "seed": -1}, "seed"),
    ],
)
def test_epoch_permutations_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.epoch_permutations(**kwargs)


def test_steps_per_epoch_counts_the_short_last_batch():
    assert data.steps_per_epoch(500, 32) == 16
    assert data.steps_per_epoch(512, 32) == 16
    with pytest.raises(ValueError, match="batch_size"):
        data.steps_per_epoch(500, 0)


def test_nearest_centre_rule_is_the_closest_centre_by_brute_force():
    split = data.make_blobs_split(dtype="float64")
    centres = data.blob_centres()
    assert centres.shape == (3, 2)
    x, y = split.x_test, split.y_test
    by_hand = [np.argmin([np.hypot(*(point - c)) for c in centres]) for point in x]
    assert data.nearest_centre_accuracy(x, y) == np.mean(np.array(by_hand) == y)
    # Overlapping clusters: well above chance, well below perfect.
    assert 0.75 < data.nearest_centre_accuracy(x, y) < 0.9
    with pytest.raises(ValueError, match="shape"):
        data.nearest_centre_accuracy(x[:, :1], y)


def test_data_seed_redraws_the_points_around_the_studys_centres():
    study = data.make_blobs_split(dtype="float64")
    assert np.array_equal(
        data.make_blobs_split(dtype="float64", data_seed=None).x_train, study.x_train
    )
    redrawn = data.make_blobs_split(dtype="float64", data_seed=7)
    assert not np.allclose(redrawn.x_train, study.x_train)
    np.testing.assert_array_equal(
        redrawn.x_test, data.make_blobs_split(dtype="float64", data_seed=7).x_test
    )
    # Same centres: each class's mean lies near its true centre, and the
    # nearest-centre rule is still near-optimal on the redraw.
    x = np.r_[redrawn.x_train, redrawn.x_test]
    y = np.r_[redrawn.y_train, redrawn.y_test]
    for label, centre in enumerate(data.blob_centres()):
        assert np.linalg.norm(x[y == label].mean(axis=0) - centre) < 0.4
    assert 0.75 < data.nearest_centre_accuracy(redrawn.x_test, redrawn.y_test) < 0.9
    assert np.bincount(y).tolist() == [334, 333, 333]


@pytest.mark.parametrize("data_seed", [-1, 2.0, True, 2**32])
def test_split_rejects_bad_data_seed(data_seed):
    with pytest.raises(ValueError, match=r"data_seed must be None or an integer in"):
        data.make_blobs_split(data_seed=data_seed)


def test_carve_validation_moves_the_last_training_samples_to_the_test_half():
    split = data.make_blobs_split(dtype="float64")
    carved = data.carve_validation(split, 100)
    np.testing.assert_array_equal(carved.x_train, split.x_train[:400])
    np.testing.assert_array_equal(carved.y_train, split.y_train[:400])
    np.testing.assert_array_equal(carved.x_test, split.x_train[400:])
    np.testing.assert_array_equal(carved.y_test, split.y_train[400:])
    # The real test half appears nowhere in the carved split.
    both = np.r_[carved.x_train, carved.x_test]
    assert not (both[:, None, :] == split.x_test[None, :, :]).all(axis=2).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_validation": 0}, "n_validation"),
        ({"n_validation": 500}, "n_validation must be between 1 and 499"),
        ({"split": (1, 2)}, "split must be a BlobsSplit"),
    ],
)
def test_carve_validation_rejects_bad_input(kwargs, match):
    kwargs = {"split": data.make_blobs_split(), **kwargs}
    with pytest.raises(ValueError, match=match):
        data.carve_validation(**kwargs)
