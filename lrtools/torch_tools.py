"""PyTorch counterparts of :mod:`lrtools.keras_tools`: same names, Keras's semantics.

``build_mlp`` initialises like Keras (he_uniform hidden kernel, glorot_uniform
output kernel, zero biases) and ``fit`` reports metrics the way Keras does, so a
PyTorch run and a Keras run can be compared number for number. Weights move
between the frameworks in Keras's layout (a list of NumPy arrays, kernels shaped
(fan_in, fan_out)) through ``get_weights``/``set_weights``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrtools import _checks, data
from lrtools.history import pad_history

SCHEDULER_INTERVALS = ("epoch", "step")


def build_mlp(
    *,
    seed: int,
    n_inputs: int = 2,
    n_hidden: int = 50,
    n_classes: int = data.N_CLASSES,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """The study's MLP: ``n_inputs``-``n_hidden``-``n_classes``, ReLU hidden layer.

    The network outputs logits: PyTorch's ``F.cross_entropy`` applies the
    softmax, as Keras's categorical cross-entropy does with the logits behind
    its softmax layer.

    Parameters
    ----------
    seed : int
        Seeds the initial weights (its own generator; global RNG state is not
        touched).
    dtype : torch.dtype
        ``torch.float32`` to train, ``torch.float64`` for exact comparisons.
    """
    seed = _checks.non_negative_int("seed", seed)
    for name, value in (
        ("n_inputs", n_inputs),
        ("n_hidden", n_hidden),
        ("n_classes", n_classes),
    ):
        _checks.positive_int(name, value)
    # skip_init: nn.Linear's own init would draw from (and advance) the global RNG.
    model = nn.Sequential(
        nn.utils.skip_init(nn.Linear, n_inputs, n_hidden, dtype=dtype),
        nn.ReLU(),
        nn.utils.skip_init(nn.Linear, n_hidden, n_classes, dtype=dtype),
    )
    generator = torch.Generator().manual_seed(seed)
    hidden, output = model[0], model[2]
    with torch.no_grad():
        # Keras he_uniform: U(±sqrt(6 / fan_in));
        # glorot_uniform: U(±sqrt(6 / (fan_in + fan_out))).
        hidden.weight.uniform_(
            -math.sqrt(6 / n_inputs),
            math.sqrt(6 / n_inputs),
            generator=generator,
        )
        limit = math.sqrt(6 / (n_hidden + n_classes))
        output.weight.uniform_(-limit, limit, generator=generator)
        hidden.bias.zero_()
        output.bias.zero_()
    return model


def make_optimizer(
    name: str,
    params,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer by name, with the learning rate always explicit.

    The frameworks' default learning rates differ (RMSprop: Keras 1e-3, PyTorch
    1e-2; Adagrad: 1e-3 vs 1e-2; SGD: 1e-2 vs 1e-3), so there is no default
    here. Other settings are PyTorch's defaults; they differ from Keras's
    (epsilons, RMSprop's rho, Adagrad's initial accumulator).

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adagrad", "adam"}
    params : iterable of tensors, e.g. ``model.parameters()``
    learning_rate : float
        Step size per update, finite and > 0.
    momentum : float
        In [0, 1); SGD and RMSprop only.
    nesterov : bool
        Nesterov momentum; SGD only.
    """
    name, lr, momentum, nesterov = _checks.optimizer_options(
        name, learning_rate, momentum, nesterov
    )
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def get_weights(model: nn.Module) -> list[np.ndarray]:
    """The model's weights in Keras's layout: ``[kernel_1, bias_1, kernel_2, ...]``."""
    weights = []
    for layer in _linear_layers(model):
        weights += [
            layer.weight.detach().numpy().T.copy(),
            layer.bias.detach().numpy().copy(),
        ]
    return weights


def set_weights(model: nn.Module, weights: list[np.ndarray]) -> None:
    """Load weights in Keras's layout (``keras_model.get_weights()``) into ``model``."""
    layers = _linear_layers(model)
    if len(weights) != 2 * len(layers):
        raise ValueError(
            f"weights must hold {2 * len(layers)} arrays (kernel and bias per layer), "
            f"got {len(weights)}"
        )
    with torch.no_grad():
        for i, layer in enumerate(layers):
            kernel, bias = (
                np.asarray(weights[2 * i]),
                np.asarray(weights[2 * i + 1]),
            )
            if kernel.shape != layer.weight.T.shape or bias.shape != layer.bias.shape:
                raise ValueError(
                    f"weights for layer {i} must have shapes "
                    f"{tuple(layer.weight.T.shape)} and "
                    f"{tuple(layer.bias.shape)}, got {kernel.shape} and {bias.shape}"
                )
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(bias.copy()))


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: data.BlobsSplit,
    *,
    epochs: int,
    batch_size: int = 32,
    seed: int = 0,
    scheduler=None,
    scheduler_interval: str = "epoch",
) -> dict[str, list[float]]:
    """Train ``model`` on ``split`` and return a Keras-style history.

    Mini-batches follow :func:`lrtools.data.epoch_permutations` with ``seed``,
    exactly as :func:`lrtools.keras_tools.fit` does, so the two frameworks see
    the same batches.

    Parameters
    ----------
    epochs : int
        Number of passes over the training set (>= 1).
    batch_size : int
        Samples per update; the last batch of an epoch is smaller if it doesn't
        divide n_train.
    seed : int
        Seeds the shuffle order (not the weights: see :func:`build_mlp`).
    scheduler : torch.optim.lr_scheduler.LRScheduler or ReduceLROnPlateau,
    optional
        Stepped after every update (``scheduler_interval="step"``) or after
        every epoch (``"epoch"``); a ReduceLROnPlateau is stepped each epoch
        with that epoch's ``val_loss``.

    Returns
    -------
    dict of lists, one value per epoch
        ``loss`` and ``accuracy``: means over the epoch's batches, each batch
        measured before its own update and weighted by its size (as Keras
        reports them); ``val_loss`` and ``val_accuracy``: the test half at the
        epoch's end; ``learning_rate``: the rate the optimizer holds at the
        epoch's end, before an epoch-end scheduler step. If the loss stops being
        finite, training stops after that epoch and later epochs are NaN.
    """
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    _checks.choice("scheduler_interval", scheduler_interval, SCHEDULER_INTERVALS)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_interval != "epoch":
        raise ValueError(
            "scheduler_interval must be 'epoch' for ReduceLROnPlateau, "
            f"got {scheduler_interval!r}"
        )
    dtype = next(model.parameters()).dtype
    x_train = torch.as_tensor(split.x_train, dtype=dtype)
    y_train = torch.as_tensor(split.y_train)
    x_test = torch.as_tensor(split.x_test, dtype=dtype)
    y_test = torch.as_tensor(split.y_test)
    n = len(x_train)
    orders = torch.from_numpy(data.epoch_permutations(n, epochs, seed))

    history = {
        k: []
        for k in (
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "learning_rate",
        )
    }
    for epoch in range(epochs):
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = 0
        for batch in orders[epoch].split(batch_size):
            logits = model(x_train[batch])
            loss = F.cross_entropy(logits, y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            loss_sum += loss.detach().double() * len(batch)
            correct += int((logits.argmax(1) == y_train[batch]).sum())
        model.eval()
        with torch.no_grad():
            test_logits = model(x_test)
            val_loss = float(F.cross_entropy(test_logits, y_test))
            val_accuracy = float((test_logits.argmax(1) == y_test).double().mean())
        history["loss"].append(float(loss_sum) / n)
        history["accuracy"].append(correct / n)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        history["learning_rate"].append(float(optimizer.param_groups[0]["lr"]))
        if not math.isfinite(history["loss"][-1]):
            break  # diverged: the rest is NaN, as keras_tools.fit records it
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step(val_loss) if plateau else scheduler.step()
    return pad_history(history, epochs)
