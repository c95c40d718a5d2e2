"""Keras 3's Adagrad and Adam in ``torch.optim``: the settings under which they agree.

Keras 3 and PyTorch keep the same moments for RMSprop, Adagrad and Adam, but add epsilon
in different places and round some constants to float32 (Keras 3.15, PyTorch 2.13):

- **Adagrad.** Keras: ``a += g**2; p -= lr*g / sqrt(a + eps)``, ``a`` starting at
  ``initial_accumulator_value`` stored in float32. PyTorch: ``p -= lr*g / (sqrt(a) +
  eps)``. With PyTorch's ``eps=0`` and its accumulator starting at Keras's float32
  start *plus* Keras's epsilon, the two square roots are the same number:
  :func:`keras_adagrad_options`.
- **Adam.** Keras adds epsilon to ``sqrt(v)`` after folding both bias corrections
  into the step size ("epsilon hat"), computed with the betas rounded to float32;
  PyTorch adds it to the bias-corrected ``sqrt(v / (1 - b2**t))``. Keras's step
  equals PyTorch's when PyTorch's ``eps`` is ``eps / sqrt(1 - b2**t)`` and its rate
  absorbs the float32 bias corrections, both changing with the update count ``t``:
  :class:`KerasAdamSteps`.
- **RMSprop.** Keras divides by ``sqrt(v + eps)``, PyTorch by ``sqrt(v) + eps``. No
  constant ``eps`` makes these equal for every ``v``: they agree only where epsilon is
  negligible in both places (a tiny epsilon, such as 1e-30, in both frameworks).

``tests/test_adaptive.py`` checks each statement on float64 twins (same weights, same
batches) of ``keras_tools.fit`` and ``torch_tools.fit``.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

from lrtools import _checks


def _float32(x: float) -> float:
    """``x`` as Keras stores a Python-float hyperparameter: rounded to float32."""
    return float(np.float32(x))


def keras_adagrad_options(
    learning_rate: float,
    *,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
) -> dict:
    """``torch.optim.Adagrad`` keyword arguments that take Keras 3's Adagrad steps.

    Parameters
    ----------
    learning_rate : float
        Keras's rate per update, finite and > 0 (rounded to float32, as Keras does).
    initial_accumulator_value : float
        Keras's start of the squared-gradient sum, finite and >= 0 (default 0.1,
        Keras's; rounded to float32, as Keras stores it).
    epsilon : float
        Keras's epsilon, finite and >= 0 (default 1e-7), which Keras adds *inside* the
        square root: it moves into the accumulator's start, and PyTorch's own ``eps``
        (added outside) is 0.

    Returns
    -------
    dict
        ``lr``, ``initial_accumulator_value`` and ``eps`` for ``torch.optim.Adagrad``.
    """
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, Real)
        or not math.isfinite(learning_rate)
        or learning_rate <= 0
    ):
        raise ValueError(
            f"learning_rate must be a finite number > 0, got {learning_rate!r}"
        )
    start = _checks.non_negative("initial_accumulator_value", initial_accumulator_value)
    epsilon = _checks.non_negative("epsilon", epsilon)
    if start + epsilon == 0:
        raise ValueError(
            "initial_accumulator_value + epsilon must be > 0 (else a weight whose "
            "gradient is always 0 divides 0 by 0)"
        )
    return {
        "lr": _float32(learning_rate),
        "initial_accumulator_value": _float32(start) + epsilon,
        "eps": 0.0,
    }


class KerasAdamSteps:
    """Make ``torch.optim.Adam`` take Keras 3's Adam steps.

    Call :meth:`step` after every ``optimizer.step()`` (``torch_tools.fit`` does, given
    ``scheduler_interval="step"``). Before update ``t`` (1-based) it sets each parameter
    group's

    - ``eps`` to ``epsilon / sqrt(1 - b2**t)``: PyTorch adds ``eps`` to ``sqrt(v)``
      divided by ``sqrt(1 - b2**t)``, so this is Keras's epsilon added to ``sqrt(v)``;
    - ``lr`` to the float32 rate times Keras's bias corrections (computed with the
      betas rounded to float32, as Keras does) over PyTorch's (with the betas as
      given), so that the step size is Keras's ``lr * sqrt(1 - b2**t) / (1 - b1**t)``.

    The group's ``lr`` is therefore not the nominal rate during training (a history
    that records it shows the adjusted value); the nominal rate is kept in
    ``base_lrs``.

    Parameters
    ----------
    optimizer : torch.optim.Adam
        Without ``amsgrad``; its ``lr`` and ``betas`` are Keras's ``learning_rate``,
        ``beta_1`` and ``beta_2``, its ``eps`` is ignored.
    epsilon : float
        Keras's epsilon, finite and >= 0 (default 1e-7, Keras's).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, epsilon: float = 1e-7):
        if type(optimizer) is not torch.optim.Adam:
            raise ValueError(
                f"optimizer must be a torch.optim.Adam, got {type(optimizer).__name__}"
            )
        if any(group["amsgrad"] for group in optimizer.param_groups):
            raise ValueError("optimizer must have amsgrad=False, got amsgrad=True")
        self.optimizer = optimizer
        self.epsilon = _checks.non_negative("epsilon", epsilon)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.updates = 0  # updates done so far
        self._prepare(1)

    def _prepare(self, t: int) -> None:
        """Set ``eps`` and ``lr`` for update ``t``."""
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            b1, b2 = group["betas"]
            keras_b1, keras_b2 = _float32(b1), _float32(b2)
            keras_size = math.sqrt(1 - keras_b2**t) / (1 - keras_b1**t)
            torch_size = math.sqrt(1 - b2**t) / (1 - b1**t)
            group["eps"] = self.epsilon / math.sqrt(1 - b2**t)
            group["lr"] = _float32(lr) * keras_size / torch_size

    def step(self) -> None:
        """Count the update just made and prepare the next one."""
        self.updates += 1
        self._prepare(self.updates + 1)
