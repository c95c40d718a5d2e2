"""The checkpoint / plateau / early-stopping recipe as a plain PyTorch training loop.

PyTorch has no callbacks: the loop itself keeps the best model by validation F1 (the
``state_dict`` saved to a file, Keras's ``ModelCheckpoint``), steps
``ReduceLROnPlateau`` on the validation loss, and stops after ``stop_patience``
epochs without a better validation loss, restoring that epoch's weights (Keras's
``EarlyStopping(restore_best_weights=True)``).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from lrtools import _checks, data, selection


def validation_f1(model, x, y, n_classes: int = 3) -> float:
    """Macro-F1 of ``model`` on ``(x, y)`` as Keras's ``F1Score(average="macro")``."""
    with torch.no_grad():
        predicted = model(x).argmax(dim=1).numpy()
    counts = selection.confusion_from_predictions(y.numpy(), predicted, n_classes)
    return float(selection.macro_f1(counts))


def fit_with_recipe(
    model,
    optimizer,
    scheduler,
    split: data.BlobsSplit,
    *,
    checkpoint_path,
    epochs: int = 100,
    batch_size: int = 32,
    seed: int = 0,
    stop_patience: int = 5,
) -> dict:
    """Train with the recipe; ``split``'s test half is the validation set.

    Parameters
    ----------
    scheduler : torch.optim.lr_scheduler.ReduceLROnPlateau or None
        Stepped with the validation loss after each epoch; None: constant rate.
    checkpoint_path : path
        Where the best ``state_dict`` by validation F1 is saved (``torch.save``).
    epochs : int >= 1
        The most epochs to train.
    stop_patience : int >= 0
        Epochs without a lower validation loss before training stops.

    Returns
    -------
    dict
        Per-epoch lists ``val_loss``, ``val_f1_score``, ``learning_rate`` (the rate
        the epoch trained with), as long as the run lasted; ``checkpoint_epoch`` and
        ``best_loss_epoch`` (1-based). ``model`` ends with the best-loss weights.
    """
    epochs = _checks.positive_int("epochs", epochs)
    stop_patience = _checks.non_negative_int("stop_patience", stop_patience)
    dtype = next(model.parameters()).dtype
    x_train = torch.as_tensor(split.x_train, dtype=dtype)
    y_train = torch.as_tensor(split.y_train)
    x_val = torch.as_tensor(split.x_test, dtype=dtype)
    y_val = torch.as_tensor(split.y_test)
    orders = torch.from_numpy(data.epoch_permutations(len(x_train), epochs, seed))
    history = {"val_loss": [], "val_f1_score": [], "learning_rate": []}
    best_f1, best_loss, wait = -math.inf, math.inf, 0
    for epoch in range(epochs):
        model.train()
        for batch in orders[epoch].split(batch_size):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(F.cross_entropy(model(x_val), y_val))
        f1 = validation_f1(model, x_val, y_val, split.n_classes)
        history["val_loss"].append(val_loss)
        history["val_f1_score"].append(f1)
        history["learning_rate"].append(optimizer.param_groups[0]["lr"])
        if f1 > best_f1:  # ModelCheckpoint(monitor="val_f1_score", mode="max")
            best_f1, history["checkpoint_epoch"] = f1, epoch + 1
            torch.save(model.state_dict(), checkpoint_path)
        if scheduler is not None:
            scheduler.step(val_loss)
        wait += 1  # EarlyStopping(monitor="val_loss", restore_best_weights=True)
        if val_loss < best_loss:
            best_loss, wait, history["best_loss_epoch"] = val_loss, 0, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        elif wait >= stop_patience and epoch > 0:
            break
    model.load_state_dict(best_state)
    return history
