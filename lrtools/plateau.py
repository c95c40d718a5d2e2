"""ReduceLROnPlateau without training: the real callbacks driven by a loss sequence.

Keras's ``keras.callbacks.ReduceLROnPlateau`` and PyTorch's
``torch.optim.lr_scheduler.ReduceLROnPlateau`` decide from the monitored loss alone,
so a fixed sequence of losses shows what each one does, epoch by epoch, without a
model. :func:`keras_rates` and :func:`torch_rates` feed a sequence to the real
objects; :func:`torch_options_for_keras` gives the PyTorch settings that cut on
Keras's epochs; :func:`cut_epochs` reads the cuts off a sequence of rates.

Both frameworks are imported only when a function needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from types import SimpleNamespace

import numpy as np

from lrtools import _checks

__all__ = ["cut_epochs", "keras_rates", "torch_options_for_keras", "torch_rates"]


def _losses(losses) -> list[float]:
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(
            f"losses must be a non-empty 1-D sequence of finite numbers, got {losses!r}"
        )
    return [float(v) for v in values]


def keras_rates(losses: Sequence[float], *, learning_rate: float = 0.01, **options):
    """The rate after each epoch's end under Keras's ``ReduceLROnPlateau``.

    Drives the real callback: ``on_epoch_end(epoch, {"val_loss": loss})`` once per
    loss, with a stand-in model that holds only an SGD optimizer.

    Parameters
    ----------
    losses : sequence of float
        The monitored ``val_loss``, one per epoch (epoch 1 first).
    learning_rate : float
        The optimizer's initial rate (> 0); Keras stores it in float32.
    **options
        Passed to ``keras.callbacks.ReduceLROnPlateau`` (``factor``, ``patience``,
        ``min_delta``, ``cooldown``, ``min_lr``); ``monitor`` is ``"val_loss"``.

    Returns
    -------
    numpy.ndarray
        ``rates[e]``: the rate after the end of epoch ``e + 1``, i.e. the rate epoch
        ``e + 2`` trains with.
    """
    losses = _losses(losses)
    learning_rate = _checks.learning_rate("learning_rate", learning_rate)
    from lrtools.keras_tools import keras

    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **options)
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    callback.set_model(SimpleNamespace(optimizer=optimizer, metrics=[]))
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(np.asarray(optimizer.learning_rate)))
    return np.array(rates)


def torch_rates(losses: Sequence[float], *, learning_rate: float = 0.01, **options):
    """The rate after each epoch's end under PyTorch's ``ReduceLROnPlateau``.

    Drives the real scheduler: ``scheduler.step(loss)`` once per loss, on an SGD
    optimizer over a single parameter.

    Parameters
    ----------
    losses : sequence of float
        The monitored loss, one per epoch (epoch 1 first).
    learning_rate : float
        The optimizer's initial rate (> 0).
    **options
        Passed to ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (``factor``,
        ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``, ``min_lr``,
        ``eps``).

    Returns
    -------
    numpy.ndarray
        ``rates[e]``: the rate after the end of epoch ``e + 1``.
    """
    losses = _losses(losses)
    learning_rate = _checks.learning_rate("learning_rate", learning_rate)
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
    rates = []
    for loss in losses:
        scheduler.step(loss)
        rates.append(float(optimizer.param_groups[0]["lr"]))
    return np.array(rates)


def torch_options_for_keras(
    *,
    patience: int,
    factor: float = 0.1,
    min_delta: float = 1e-4,
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> dict:
    """PyTorch ``ReduceLROnPlateau`` options that cut on the epochs Keras's would.

    The arguments are those of ``keras.callbacks.ReduceLROnPlateau`` (with Keras's
    defaults). Keras cuts when ``patience`` bad epochs have passed, PyTorch when more
    than ``patience`` have: PyTorch's patience is one less (an epoch at least).
    Keras's cooldown of ``c`` ignores ``c - 1`` epochs after a cut, PyTorch's ``c``.
    Keras's ``min_delta`` is absolute; PyTorch's ``threshold`` is relative unless
    ``threshold_mode="abs"``. PyTorch skips a cut smaller than ``eps`` (1e-8 by
    default); Keras cuts while the rate is above ``min_lr``: ``eps=0``.

    Raises
    ------
    ValueError
        ``patience`` or ``cooldown`` not an integer >= 0, ``factor`` outside (0, 1),
        ``min_delta`` or ``min_lr`` negative or not finite.
    """
    patience = _checks.non_negative_int("patience", patience)
    cooldown = _checks.non_negative_int("cooldown", cooldown)
    if isinstance(factor, bool) or not isinstance(factor, Real) or not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
    return {
        "factor": float(factor),
        "patience": max(patience - 1, 0),
        "threshold": _checks.non_negative("min_delta", min_delta),
        "threshold_mode": "abs",
        "cooldown": max(cooldown - 1, 0),
        "min_lr": _checks.non_negative("min_lr", min_lr),
        "eps": 0.0,
    }


def cut_epochs(rates: Sequence[float], learning_rate: float) -> list[int]:
    """The epochs (from 1) at whose end the rate changed.

    Parameters
    ----------
    rates : sequence of float
        The rate after each epoch's end, as :func:`keras_rates` returns.
    learning_rate : float
        The rate before epoch 1 (> 0).
    """
    learning_rate = _checks.learning_rate("learning_rate", learning_rate)
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 1:
        raise ValueError(f"rates must be 1-D, got shape {rates.shape}")
    before = np.concatenate([[learning_rate], rates[:-1]])
    changed = ~np.isclose(rates, before, rtol=1e-6, atol=0)
    return [int(e) + 1 for e in np.flatnonzero(changed)]
