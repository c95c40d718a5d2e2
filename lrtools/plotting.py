"""Figures of the book. Every function draws on an ``ax`` (or axes) and returns it."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler

from lrtools.history import diverged_epoch

#: Okabe and Ito's palette, safe for the common colour-vision deficiencies; "blue" and
#: "orange" come first, so captions that name C0 and C1 stay true.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
#: Several of those colours have the same grey: in grey-scale print, lines drawn in
#: turn on one axes stay apart by their dashes. One style per colour.
LINESTYLES = (
    "-",
    "--",
    "-.",
    ":",
    (0, (6, 2, 1, 2, 1, 2)),
    (0, (3, 1)),
    (0, (1, 3)),
    (0, (10, 3)),
)
CLASS_COLORS = (PALETTE["blue"], PALETTE["orange"], PALETTE["green"])
CLASS_MARKERS = ("o", "s", "^")
TRAIN_COLOR, TEST_COLOR = PALETTE["blue"], PALETTE["orange"]
# Blue and orange stay apart for colour-blind readers; the line styles keep training and
# test apart in grey-scale print too (the best-classifier reference is dashed).
TRAIN_STYLE, TEST_STYLE = "-.", "-"


def book_style() -> dict:
    """The book's Matplotlib settings: each new line on an axes takes the next colour of
    :data:`PALETTE` *and* the next of :data:`LINESTYLES` (``"C0"``... ``"C7"`` name
    the palette's colours)."""
    return {
        "axes.prop_cycle": cycler(color=list(PALETTE.values()))
        + cycler(linestyle=list(LINESTYLES))
    }


def use_book_style() -> None:
    """Draw every later figure with :func:`book_style` (each chapter calls it first)."""
    plt.rcParams.update(book_style())


def plot_blobs(ax, x: np.ndarray, y: np.ndarray, *, title: str | None = None):
    """Scatter the two features of ``x``, one colour and marker per class label in
    ``y`` (the markers tell the classes apart in grey-scale)."""
    for label in np.unique(y):
        points = x[y == label]
        ax.scatter(
            points[:, 0],
            points[:, 1],
            s=10,
            alpha=0.7,
            color=CLASS_COLORS[int(label) % len(CLASS_COLORS)],
            marker=CLASS_MARKERS[int(label) % len(CLASS_MARKERS)],
            label=f"class {label}",
        )
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.legend(loc="best", markerscale=2)
    if title:
        ax.set_title(title)
    return ax


def _seed_matrix(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and an (epochs, seeds) array of ``column`` for one setting."""
    table = frame.pivot_table(
        index="epoch", columns="seed", values=column, dropna=False
    )
    return table.index.to_numpy(), table.to_numpy(dtype=float)


def plot_seed_band(
    ax,
    frame: pd.DataFrame,
    column: str,
    *,
    label: str,
    color: str,
    band: tuple[float, float] | None = None,
    linestyle: str = "-",
):
    """Mean over seeds of ``column`` by epoch, with the min-max range over seeds shaded.

    ``band`` gives quantiles to shade instead, e.g. ``(0.025, 0.975)`` for many seeds.
    Epochs after a seed diverged (NaN) leave that seed out; epochs where every
    seed diverged are left blank, not drawn as zero.
    """
    epochs, values = _seed_matrix(frame, column)
    alive = np.isfinite(values).any(axis=1)
    mean = np.full(len(epochs), np.nan)
    low, high = mean.copy(), mean.copy()
    mean[alive] = np.nanmean(values[alive], axis=1)
    if band is None:
        low[alive] = np.nanmin(values[alive], axis=1)
        high[alive] = np.nanmax(values[alive], axis=1)
    else:
        low[alive], high[alive] = np.nanquantile(values[alive], band, axis=1)
    ax.plot(epochs, mean, color=color, label=label, linewidth=1.3, linestyle=linestyle)
    if values.shape[1] > 1:
        ax.fill_between(epochs, low, high, color=color, alpha=0.25, linewidth=0)
    return ax


def diverged_seeds(frame: pd.DataFrame) -> dict[int, int]:
    """Map each diverged seed (loss not finite) to its first such epoch (from 1)."""
    firsts = {}
    for seed, run in frame.sort_values("epoch").groupby("seed"):
        first = diverged_epoch(run["loss"].tolist())
        if first is not None:
            firsts[seed] = int(run["epoch"].iloc[first])
    return firsts


def plot_learning_curves(
    ax,
    frame: pd.DataFrame,
    *,
    metric: str = "accuracy",
    title: str | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
    band: tuple[float, float] | None = None,
):
    """Train and test ``metric`` by epoch for one setting: seed mean and min-max band.

    A run whose loss became NaN or infinite is reported in the panel as
    diverged, so a diverged setting never shows as a blank or misleading panel.
    ``reference`` draws a dashed horizontal line (e.g. the best accuracy any
    classifier can expect).
    """
    plot_seed_band(
        ax,
        frame,
        metric,
        label="train",
        color=TRAIN_COLOR,
        band=band,
        linestyle=TRAIN_STYLE,
    )
    plot_seed_band(
        ax,
        frame,
        f"val_{metric}",
        label="test",
        color=TEST_COLOR,
        band=band,
        linestyle=TEST_STYLE,
    )
    if reference is not None:
        ax.axhline(
            reference,
            color="black",
            linestyle="--",
            linewidth=0.8,
            label=reference_label,
        )
    diverged = diverged_seeds(frame)
    if diverged:
        n_seeds = frame["seed"].nunique()
        ax.text(
            0.5,
            0.5,
            f"diverged: {len(diverged)} of {n_seeds} seeds\n"
            f"(first at epoch {min(diverged.values())})",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=PALETTE["vermillion"],
            fontsize=9,
            bbox={
                "facecolor": "white",
                "alpha": 0.8,
                "edgecolor": PALETTE["vermillion"],
            },
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if title:
        ax.set_title(title)
    return ax


def plot_curve_grid(
    frame: pd.DataFrame,
    *,
    panel: str,
    metric: str = "accuracy",
    ncols: int = 4,
    axes=None,
    panel_format: str = "{name} = {value:g}",
    reference: float | None = None,
    reference_label: str = "reference",
    band: tuple[float, float] | None = None,
):
    """One :func:`plot_learning_curves` panel per value of column ``panel``.

    Returns the array of axes (creating a figure when ``axes`` is None). Only
    the outer panels carry axis labels; the first panel carries the legend.
    ``reference``, ``reference_label`` and ``band`` are passed to every panel.
    """
    if panel not in frame.columns:
        raise ValueError(
            f"panel must be a column of frame ({', '.join(frame.columns)}), "
            f"got {panel!r}"
        )
    values = list(dict.fromkeys(frame[panel]))
    nrows = math.ceil(len(values) / ncols)
    if axes is None:
        _, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(3.2 * ncols, 2.5 * nrows),
            sharex=True,
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
    flat = np.asarray(axes).ravel()
    if len(flat) < len(values):
        raise ValueError(
            f"axes must hold at least {len(values)} panels, got {len(flat)}"
        )
    for ax, value in zip(flat, values, strict=False):
        plot_learning_curves(
            ax,
            frame[frame[panel] == value],
            metric=metric,
            title=panel_format.format(name=panel, value=value),
            reference=reference,
            reference_label=reference_label,
            band=band,
        )
    for ax in flat[len(values) :]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[: len(values)]):
        if i % ncols:
            ax.set_ylabel("")
        if i < len(values) - ncols:
            ax.set_xlabel("")
    flat[0].legend(loc="lower right", fontsize=8)
    return axes


def plot_setting_bands(
    ax,
    frame: pd.DataFrame,
    *,
    by: str,
    column: str = "val_accuracy",
    band: tuple[float, float] | None = (0.025, 0.975),
    label_format: str = "{name} = {value:g}",
    colors=None,
    ylabel: str | None = None,
):
    """Several settings on one ``ax``: per value of column ``by``, the seed mean of
    ``column`` by epoch with a quantile band (the middle 95 % of seeds by default).

    Settings keep the frame's order; ``colors`` gives one colour per setting (default:
    an ordered colormap, for settings that form a scale), and each takes the next of
    :data:`LINESTYLES`, so they stay apart in grey-scale. ``label_format`` may use
    ``{name}`` and ``{value}``.
    """
    for name in (by, column):
        if name not in frame.columns:
            raise ValueError(
                f"{name!r} must be a column of frame ({', '.join(frame.columns)})"
            )
    values = list(dict.fromkeys(frame[by]))
    if colors is None:
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(values)))
    if len(colors) < len(values):
        raise ValueError(
            f"colors must hold at least {len(values)} colours, got {len(colors)}"
        )
    for i, (value, color) in enumerate(zip(values, colors, strict=False)):
        plot_seed_band(
            ax,
            frame[frame[by] == value],
            column,
            label=label_format.format(name=by, value=value),
            color=color,
            band=band,
            linestyle=LINESTYLES[i % len(LINESTYLES)],
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or column)
    ax.legend(fontsize=8)
    return ax
