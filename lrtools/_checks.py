"""Argument checks for the public functions: one clear ValueError at the boundary."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real


def positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def learning_rate(name: str, value) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def non_negative(name: str, value) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def in_unit_interval(name: str, value, *, closed_right: bool = False) -> float:
    """Return ``value`` as a float; ValueError unless 0 <= value < 1 (or <= 1)."""
    ok_right = value <= 1 if closed_right else value < 1
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not (0 <= value and ok_right)
    ):
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return float(value)


def choice(name: str, value, allowed: Iterable[str]) -> str:
    """Return ``value`` or raise ValueError naming the allowed choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )
    return value


OPTIMIZERS = ("sgd", "rmsprop", "adagrad", "adam")


def optimizer_options(
    name: str, learning_rate_value, momentum: float, nesterov: bool
) -> tuple:
    """Validate the arguments shared by both frameworks' ``make_optimizer``."""
    name = choice("name", name, OPTIMIZERS)
    lr = learning_rate("learning_rate", learning_rate_value)
    momentum = in_unit_interval("momentum", momentum)
    if name not in ("sgd", "rmsprop") and momentum:
        raise ValueError(
            f"momentum applies to 'sgd' and 'rmsprop' only, "
            f"got momentum={momentum} for {name!r}"
        )
    if nesterov and name != "sgd":
        raise ValueError(f"nesterov applies to 'sgd' only, got {name!r}")
    return name, lr, momentum, bool(nesterov)
