"""lrtools.selection and lrtools.torch_recipe: the lowering chapter's machinery.

The chapter chooses each run's epoch by replaying ``ModelCheckpoint`` and
``EarlyStopping`` on per-epoch records of ``replicas.train``. These tests hold the
replay to the real callbacks (driven directly, and in real Keras and PyTorch training
runs): the same stop, the same restored epoch, the same checkpointed epoch and the same
test score.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrtools import data, replicas, selection, torch_recipe, torch_tools

# A small noisy split, as in the chapter: few points, 20 % of the labels redrawn.
STUDY = data.make_blobs_split(dtype="float64")
_RNG = np.random.default_rng(0)
_NOISY = np.where(
    _RNG.random(500) < 0.2, _RNG.integers(0, 3, 500), STUDY.y_train
).astype(np.int64)
SPLIT = data.BlobsSplit(
    STUDY.x_train[:100], _NOISY[:100], STUDY.x_train[-100:], _NOISY[-100:]
)
X_TEST, Y_TEST = STUDY.x_test, STUDY.y_test
EPOCHS, LR = 40, 0.3


# --------------------------------------------------------------------------------------
# Scores from confusion counts
# --------------------------------------------------------------------------------------


def naive_predictions(weights, x):
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in weights)
    hidden = np.maximum(np.einsum("ni,rij->rnj", x, w1) + b1[:, None], 0)
    return (np.einsum("rnj,rjk->rnk", hidden, w2) + b2[:, None]).argmax(axis=2)


def test_confusion_counts_match_a_direct_count():
    weights = replicas.default_weights(range(5), dtype=torch.float64)
    counts = selection.confusion_counts(weights, X_TEST, Y_TEST)
    predicted = naive_predictions(weights, X_TEST)
    for r in range(5):
        for i in range(3):
            for j in range(3):
                expected = np.sum((Y_TEST == i) & (predicted[r] == j))
                assert counts[r, i, j] == expected
    assert (counts.sum(axis=(1, 2)) == len(Y_TEST)).all()


def test_macro_f1_is_keras_f1score():
    keras = pytest.importorskip("lrtools.keras_tools").keras
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 3, 60)
        # Predictions from random softmax outputs; one class sometimes never predicted.
        probabilities = rng.dirichlet([1, 1, 0.2], size=60).astype("float32")
        metric = keras.metrics.F1Score(average="macro")
        metric.update_state(data.one_hot(y), probabilities)
        counts = selection.confusion_from_predictions(y, probabilities.argmax(axis=1))
        assert float(selection.macro_f1(counts)) == float(metric.result())


def test_macro_f1_agrees_with_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    y, predicted = rng.integers(0, 3, (2, 200))
    counts = selection.confusion_from_predictions(y, predicted)
    expected = f1_score(y, predicted, average="macro")
    assert abs(float(selection.macro_f1(counts)) - expected) < 1e-6
    assert selection.accuracy(counts) == np.mean(y == predicted)


def test_mean_cross_entropy_matches_torch():
    weights = replicas.default_weights([2, 7], dtype=torch.float64)
    ours = selection.mean_cross_entropy(weights, X_TEST, Y_TEST)
    for r, seed in enumerate([2, 7]):
        model = torch_tools.build_mlp(seed=seed, dtype=torch.float64)
        with torch.no_grad():
            logits = model(torch.as_tensor(X_TEST))
        expected = float(
            torch.nn.functional.cross_entropy(logits, torch.as_tensor(Y_TEST))
        )
        assert abs(ours[r] - expected) < 1e-12


# --------------------------------------------------------------------------------------
# The replay against the real callbacks, driven with fixed values
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_tools():
    return pytest.importorskip("lrtools.keras_tools")


def drive_early_stopping(keras_tools, losses, patience, min_delta):
    keras = keras_tools.keras
    model = keras_tools.build_mlp(seed=0)
    callback = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=patience,
        min_delta=min_delta,
        restore_best_weights=True,
    )
    callback.set_model(model)
    callback.on_train_begin()
    model.stop_training = False
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"val_loss": float(loss)})
        if model.stop_training:
            break
    return epoch + 1, callback.best_epoch + 1


def test_early_stopping_replay_equals_keras(keras_tools):
    rng = np.random.default_rng(5)
    for _ in range(60):
        # A walk on a grid of 1/64 so that ties (no improvement) really occur.
        losses = 1 + np.cumsum(rng.choice([-2, -1, 0, 0, 1, 2], 30)) / 64
        patience = int(rng.integers(0, 7))
        min_delta = float(rng.choice([0.0, 1 / 64]))
        stop, best = selection.early_stopping_epochs(
            losses, patience=patience, min_delta=min_delta
        )
        assert (int(stop[0]), int(best[0])) == drive_early_stopping(
            keras_tools, losses, patience, min_delta
        )


def test_checkpoint_replay_keeps_the_first_best_up_to_the_stop():
    f1 = np.array([[0.5, 0.7, 0.7, 0.6, 0.9], [0.4, np.nan, 0.3, 0.4, 0.2]])
    # Strictly better only: the tie at epoch 3 does not overwrite epoch 2's file.
    assert selection.checkpoint_epochs(f1, last=np.array([4, 5])).tolist() == [2, 1]
    assert selection.checkpoint_epochs(f1, last=5).tolist() == [5, 1]
    assert selection.checkpoint_epochs(-f1[:1], last=3, mode="min").tolist() == [2]


# --------------------------------------------------------------------------------------
# The replay against real training runs
# --------------------------------------------------------------------------------------


def replica_choice(semantics, seed, initial_weights, **plateau):
    """The replicas' run of one seed, with the chapter's choice of epoch."""
    recorder = selection.EpochRecorder(SPLIT.x_test, SPLIT.y_test)
    result = replicas.train(
        learning_rate=LR,
        seeds=[seed],
        epochs=EPOCHS,
        semantics=semantics,
        split=SPLIT,
        dtype=torch.float64,
        initial_weights=[w[None] for w in initial_weights],
        orders=data.epoch_permutations(len(SPLIT.x_train), EPOCHS, seed)[None],
        plateau=True,
        plateau_factor=0.5,
        plateau_patience=2,
        plateau_min_lr=1e-6,
        epoch_end=recorder,
        progress=False,
        **plateau,
    )
    val_loss = result.frame["val_loss"].to_numpy()
    f1 = selection.macro_f1(recorder.validation_counts())
    stop, best = selection.early_stopping_epochs(val_loss, patience=5)
    kept = selection.checkpoint_epochs(f1, last=stop)
    counts = selection.confusion_counts(recorder.weights_at(kept), X_TEST, Y_TEST)
    return {
        "stop": int(stop[0]),
        "best": int(best[0]),
        "kept": int(kept[0]),
        "test_f1": float(selection.macro_f1(counts)[0]),
        "rates": result.frame["learning_rate"].to_numpy(),
    }


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_replay_equals_keras_callbacks(keras_tools, seed, tmp_path):
    keras = keras_tools.keras
    model = keras_tools.build_mlp(seed=seed, dtype="float64")
    initial = model.get_weights()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LR),
        loss=keras.losses.CategoricalCrossentropy(dtype="float64"),
        metrics=["accuracy", keras.metrics.F1Score(average="macro")],
        steps_per_execution=4,
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=5, restore_best_weights=True
    )
    history = keras_tools.fit(
        model,
        SPLIT,
        epochs=EPOCHS,
        seed=seed,
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                str(tmp_path / "epoch{epoch:03d}.keras"),
                monitor="val_f1_score",
                mode="max",
                save_best_only=True,
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6
            ),
            stopping,
        ],
    )
    saved = sorted(tmp_path.glob("epoch*.keras"))
    kept_file = saved[-1]  # the last file written holds the checkpointed model
    reloaded = keras.models.load_model(kept_file)
    test_f1 = reloaded.evaluate(
        X_TEST,
        data.one_hot(Y_TEST, dtype="float64"),
        batch_size=500,
        verbose=0,
        return_dict=True,
    )["f1_score"]

    ours = replica_choice("keras", seed, initial)
    stop = int(np.isfinite(history["val_loss"]).sum())
    assert ours["stop"] == stop < EPOCHS  # it did stop early
    assert ours["best"] == stopping.best_epoch + 1
    assert ours["kept"] == int(kept_file.stem.removeprefix("epoch"))
    assert ours["test_f1"] == pytest.approx(test_f1, abs=1e-6)
    # The plateau cut on the same epochs (rates are float32 in both).
    assert ours["rates"][:stop].tolist() == history["learning_rate"][:stop]
    assert len(set(history["learning_rate"][:stop])) > 1  # and it did cut


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_replay_equals_the_pytorch_loop(seed, tmp_path):
    model = torch_tools.build_mlp(seed=seed, dtype=torch.float64)
    initial = torch_tools.get_weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=2, min_lr=1e-6
    )
    history = torch_recipe.fit_with_recipe(
        model,
        optimizer,
        scheduler,
        SPLIT,
        checkpoint_path=tmp_path / "best.pt",
        epochs=EPOCHS,
        seed=seed,
    )
    kept = torch_tools.build_mlp(seed=seed, dtype=torch.float64)
    kept.load_state_dict(torch.load(tmp_path / "best.pt"))
    test_f1 = torch_recipe.validation_f1(
        kept, torch.as_tensor(X_TEST), torch.as_tensor(Y_TEST)
    )

    ours = replica_choice("torch", seed, initial)
    stop = len(history["val_loss"])
    assert ours["stop"] == stop < EPOCHS
    assert ours["best"] == history["best_loss_epoch"]
    assert ours["kept"] == history["checkpoint_epoch"]
    assert ours["test_f1"] == test_f1
    np.testing.assert_allclose(ours["rates"][:stop], history["learning_rate"])
    # The model ends with the best-loss weights, as restore_best_weights leaves it.
    best_loss = min(history["val_loss"])
    with torch.no_grad():
        logits = model(torch.as_tensor(SPLIT.x_test))
        loss = float(
            torch.nn.functional.cross_entropy(logits, torch.as_tensor(SPLIT.y_test))
        )
    assert loss == best_loss


# --------------------------------------------------------------------------------------
# The recorder and the hook
# --------------------------------------------------------------------------------------


def test_recorder_keeps_each_epochs_weights_and_agrees_with_val_accuracy():
    recorder = selection.EpochRecorder(SPLIT.x_test, SPLIT.y_test)
    result = replicas.train(
        learning_rate=[0.1, 0.3],
        seeds=[1, 2],
        epochs=6,
        semantics="keras",
        split=SPLIT,
        dtype=torch.float64,
        epoch_end=recorder,
        progress=False,
    )
    counts = recorder.validation_counts()
    assert counts.shape == (4, 6, 3, 3)
    np.testing.assert_allclose(
        selection.accuracy(counts).reshape(-1), result.frame["val_accuracy"], atol=1e-12
    )
    last = recorder.weights_at(np.full(4, 6))
    for ours, final in zip(last, result.weights, strict=True):
        assert np.array_equal(ours, final)
    # Each replica's own epoch.
    picked = recorder.weights_at(np.array([1, 2, 3, 6]))
    assert not np.array_equal(picked[0][0], last[0][0])
    assert np.array_equal(picked[0][3], last[0][3])


# --------------------------------------------------------------------------------------
# Bad input: a ValueError naming the argument
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: selection.early_stopping_epochs([1.0, 0.9], patience=-1), "patience"),
        (
            lambda: selection.early_stopping_epochs([1.0], patience=2, min_delta=-1),
            "min_delta",
        ),
        (
            lambda: selection.early_stopping_epochs(np.ones((2, 2, 2)), patience=1),
            "val_loss",
        ),
        (lambda: selection.checkpoint_epochs([0.1, 0.2], last=3), "last"),
        (lambda: selection.checkpoint_epochs([0.1, 0.2], last=1, mode="up"), "mode"),
        (lambda: selection.macro_f1(np.ones((3, 2), dtype=int)), "confusion"),
        (lambda: selection.macro_f1(-np.ones((3, 3), dtype=int)), "confusion"),
        (lambda: selection.confusion_from_predictions([0, 3], [0, 1]), "y"),
        (lambda: selection.confusion_from_predictions([0, 1], [0, 1, 2]), "predicted"),
        (
            lambda: selection.confusion_counts(
                replicas.default_weights([0]), np.ones((4, 3)), np.zeros(4, int)
            ),
            "x",
        ),
        (lambda: selection.at_epochs(np.ones((2, 3)), np.array([1, 4])), "epochs"),
        (lambda: selection.EpochRecorder(np.ones(4), np.zeros(4, int)), "x_val"),
        (
            lambda: selection.EpochRecorder(
                np.ones((4, 2)), np.zeros(4, int), n_classes=0
            ),
            "n_classes",
        ),
        (
            lambda: replicas.train(
                learning_rate=0.1,
                seeds=[0],
                epochs=1,
                semantics="keras",
                epoch_end="every epoch",
            ),
            "epoch_end",
        ),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_weights_at_checks_its_epochs():
    recorder = selection.EpochRecorder(SPLIT.x_test, SPLIT.y_test)
    replicas.train(
        learning_rate=0.1,
        seeds=[0, 1],
        epochs=2,
        semantics="keras",
        split=SPLIT,
        epoch_end=recorder,
        progress=False,
    )
    with pytest.raises(ValueError, match="epochs"):
        recorder.weights_at(np.array([1, 3]))
    with pytest.raises(ValueError, match="epochs"):
        recorder.weights_at(np.array([1]))


def test_recipe_loop_checks_its_arguments(tmp_path):
    model = torch_tools.build_mlp(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for bad in ({"epochs": 0}, {"stop_patience": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            torch_recipe.fit_with_recipe(
                model, optimizer, None, SPLIT, checkpoint_path=tmp_path / "x.pt", **bad
            )
