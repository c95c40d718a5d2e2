"""Run a training function over a grid of settings and seeds; get a tidy DataFrame."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd

from lrtools import _checks
from lrtools._progress import progress_bar

ID_COLUMNS = ("setting", "seed", "epoch")


def run_grid(
    train: Callable[..., Mapping[str, Sequence[float]]],
    grid: Mapping[str, Iterable],
    seeds: Iterable[int],
    *,
    desc: str | None = None,
) -> pd.DataFrame:
    """Call ``train(**setting, seed=seed)`` for every setting of ``grid`` and seed.

    Parameters
    ----------
    train : callable
        Takes the grid's keys and ``seed`` as keyword arguments and returns a
        Keras-style history: a mapping from metric name to one value per epoch.
    grid : mapping of name to values
        The settings are the Cartesian product of the values, in order.
    seeds : iterable of int
        Each setting runs once per seed (non-negative integers).
    desc : str, optional
        Label of the progress bar (shown on a terminal or in Jupyter;
        ``TQDM_DISABLE=1`` hides it).

    Returns
    -------
    pandas.DataFrame
        One row per setting, seed and epoch: ``setting`` (0-based index into the
        grid's product), the grid's keys, ``seed``, ``epoch`` (1-based: epochs
        completed) and the history's metrics.
    """
    grid = {name: list(values) for name, values in grid.items()}
    if not grid or any(not values for values in grid.values()):
        raise ValueError(
            f"grid must map each name to a non-empty list of values, got {grid!r}"
        )
    reserved = set(grid) & set(ID_COLUMNS)
    if reserved:
        raise ValueError(
            f"grid names must not be {sorted(reserved)}: those columns are reserved"
        )
    seeds = [_checks.non_negative_int("seeds", seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")

    settings = [
        dict(zip(grid, values, strict=True))
        for values in itertools.product(*grid.values())
    ]
    runs = [(i, setting, seed) for i, setting in enumerate(settings) for seed in seeds]
    frames = []
    for i, setting, seed in progress_bar(runs, desc=desc, unit="run"):
        history = pd.DataFrame(train(**setting, seed=seed))
        clash = set(history.columns) & (set(grid) | set(ID_COLUMNS))
        if clash:
            raise ValueError(
                f"history metrics {sorted(clash)} clash with grid or id columns; "
                "rename the grid entries"
            )
        ids = pd.DataFrame(
            {
                "setting": i,
                **setting,
                "seed": seed,
                "epoch": range(1, len(history) + 1),
            }
        )
        frames.append(pd.concat([ids, history], axis=1))
    return pd.concat(frames, ignore_index=True)


def final_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last epoch."""
    return frame[
        frame["epoch"] == frame.groupby(["setting", "seed"])["epoch"].transform("max")
    ]
