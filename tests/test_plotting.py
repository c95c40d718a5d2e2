import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lrtools import data, experiments, plotting  # noqa: E402


def train(lr, seed):
    """Fake runs: lr 1.0 diverges at epoch 3 for seed 1; the others learn smoothly."""
    acc = [0.4 + 0.1 * e + 0.01 * seed for e in range(5)]
    loss = [1.0 / (e + 1) for e in range(5)]
    if lr == 1.0 and seed == 1:
        loss[2:] = [math.nan] * 3
        acc[2:] = [math.nan] * 3
    return {"loss": loss, "accuracy": acc, "val_loss": loss, "val_accuracy": acc}


@pytest.fixture
def frame():
    return experiments.run_grid(train, {"lr": [1.0, 0.1, 0.01]}, seeds=[0, 1])


def test_plot_blobs_draws_one_collection_per_class():
    split = data.make_blobs_split()
    _, ax = plt.subplots()
    assert plotting.plot_blobs(ax, split.x_train, split.y_train, title="t") is ax
    assert len(ax.collections) == 3 and ax.get_xlabel() == "feature 1"
    plt.close("all")


def test_curve_grid_draws_every_panel_and_flags_divergence(frame):
    axes = plotting.plot_curve_grid(frame, panel="lr", ncols=2)
    flat = axes.ravel()
    assert [ax.get_title() for ax in flat[:3]] == ["lr = 1", "lr = 0.1", "lr = 0.01"]
    assert not flat[3].get_visible()
    texts = [t.get_text() for t in flat[0].texts]
    assert texts == ["diverged: 1 of 2 seeds\n(first at epoch 3)"]
    assert len(flat[1].texts) == 0
    # Mean over the seeds still alive: epoch 5 of lr=1 is seed 0 alone.
    train_line = flat[0].lines[0]
    assert train_line.get_ydata()[-1] == pytest.approx(0.8)
    assert flat[0].get_legend() is not None
    plt.close("all")


def test_curve_grid_draws_the_reference_line_in_every_panel(frame):
    axes = plotting.plot_curve_grid(
        frame, panel="lr", ncols=3, reference=0.84, reference_label="ceiling"
    )
    for ax in axes.ravel():
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [0.84, 0.84]
    assert "ceiling" in [t.get_text() for t in axes.ravel()[0].get_legend().get_texts()]
    plt.close("all")


def test_train_test_and_reference_differ_in_line_style_not_only_colour(frame):
    # Read in grey-scale, colour alone would not tell the three lines apart.
    axes = plotting.plot_curve_grid(frame, panel="lr", ncols=3, reference=0.84)
    styles = [line.get_linestyle() for line in axes.ravel()[1].lines]
    assert len(styles) == 3 and len(set(styles)) == 3, styles
    plt.close("all")


def test_quantile_band_is_narrower_than_the_range():
    frame = experiments.run_grid(train, {"lr": [0.1]}, seeds=range(41))
    _, (ax_range, ax_band) = plt.subplots(1, 2)
    plotting.plot_seed_band(ax_range, frame, "accuracy", label="r", color="k")
    plotting.plot_seed_band(
        ax_band, frame, "accuracy", label="q", color="k", band=(0.25, 0.75)
    )
    # Seed s adds 0.01 * s to the accuracy: the range spans 0.40, the quartiles 0.20.
    for ax, width in ((ax_range, 0.40), (ax_band, 0.20)):
        vertices = ax.collections[0].get_paths()[0].vertices
        at_epoch_1 = vertices[vertices[:, 0] == 1, 1]
        assert at_epoch_1.max() - at_epoch_1.min() == pytest.approx(width, abs=1e-9)
    plt.close("all")


def test_curve_grid_rejects_an_unknown_panel_column(frame):
    with pytest.raises(ValueError, match="panel"):
        plotting.plot_curve_grid(frame, panel="momentum")


def test_band_leaves_epochs_blank_when_every_seed_diverged(frame):
    all_dead = frame.copy()
    all_dead.loc[all_dead.epoch >= 4, ["accuracy", "loss"]] = np.nan
    _, ax = plt.subplots()
    plotting.plot_seed_band(
        ax, all_dead[all_dead.lr == 0.1], "accuracy", label="x", color="k"
    )
    assert np.isnan(ax.lines[0].get_ydata()[3:]).all()
    plt.close("all")


def test_setting_bands_draw_one_line_and_band_per_setting(frame):
    _, ax = plt.subplots()
    got = plotting.plot_setting_bands(ax, frame, by="lr", ylabel="test accuracy")
    assert got is ax
    assert [line.get_label() for line in ax.lines] == [
        "lr = 1",
        "lr = 0.1",
        "lr = 0.01",
    ]
    assert len(ax.collections) == 3  # one band per setting (two seeds each)
    assert ax.get_ylabel() == "test accuracy" and ax.get_xlabel() == "epoch"
    plt.close("all")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"by": "momentum"}, "'momentum' must be a column"),
        ({"by": "lr", "column": "val_f1"}, "'val_f1' must be a column"),
        ({"by": "lr", "colors": ["red"]}, "at least 3 colours"),
    ],
)
def test_setting_bands_reject_bad_arguments(frame, kwargs, match):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        plotting.plot_setting_bands(ax, frame, **kwargs)
    plt.close("all")


def test_the_book_style_gives_each_line_its_own_colour_and_dashes():
    with plt.rc_context(plotting.book_style()):
        _, ax = plt.subplots()
        lines = [ax.plot([0, 1], [i, i])[0] for i in range(len(plotting.LINESTYLES))]
        styles = {_dashes(line) for line in lines}
        colours = {line.get_color() for line in lines}
    assert len(styles) == len(colours) == len(lines)
    assert lines[0].get_color() == plotting.PALETTE["blue"]
    assert lines[1].get_color() == plotting.PALETTE["orange"]
    plt.close("all")


def _dashes(line):
    # the dash pattern itself: get_linestyle() calls every custom pattern "--"
    return line.get_linestyle(), tuple(line._dash_pattern[1] or ())


def test_plot_blobs_tells_the_classes_apart_by_marker_as_well_as_colour():
    split = data.make_blobs_split()
    _, ax = plt.subplots()
    plotting.plot_blobs(ax, split.x_train, split.y_train)
    paths = [c.get_paths()[0].vertices.round(6).tobytes() for c in ax.collections]
    assert len(set(paths)) == 3
    plt.close("all")


def test_setting_bands_differ_in_dashes(frame):
    _, ax = plt.subplots()
    plotting.plot_setting_bands(ax, frame, by="lr")
    assert len({_dashes(line) for line in ax.lines}) == 3
    plt.close("all")
