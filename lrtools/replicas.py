"""Many independent copies of the study's MLP, trained at once in batched PyTorch.

One call trains every combination of a list of *settings* (hyperparameters, zipped) and
a list of *seeds*: ``R = n_settings * n_seeds`` replicas of the 2-50-3 MLP, each with
its own initial weights, batch order, learning rate, schedule and optimizer state, each
reported exactly like :func:`lrtools.torch_tools.fit` (or, with ``semantics="keras"``,
like Keras's ``fit``)::

    from lrtools import replicas

    result = replicas.train(
        optimizer="sgd", learning_rate=[0.1, 0.01], momentum=[0.0, 0.9],
        seeds=range(100), epochs=200, batch_size=32, semantics="keras")
    result.frame  # one row per replica and epoch

Replica (setting ``i``, seed ``s``) starts from the weights of
``lrtools.torch_tools.build_mlp(seed=s)`` and visits the training samples in the order
of ``lrtools.data.epoch_permutations(n_train, epochs, s)``, so under
``semantics="torch"`` it reproduces ``torch_tools.fit`` with the matching
``torch.optim`` optimizer and scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
import torch

from lrtools import _checks, data
from lrtools import _replicas_engine as engine
from lrtools._progress import progress_bar

OPTIMIZERS = _checks.OPTIMIZERS
SEMANTICS = ("keras", "torch")
#: The per-epoch columns of the frame, in order (the history keys of
#: ``torch_tools.fit``).
METRICS = ("learning_rate", "loss", "accuracy", "val_loss", "val_accuracy")

#: Options of each optimizer, in the order of the frame's columns.
OPTIMIZER_OPTIONS = {
    "sgd": ("momentum", "nesterov"),
    "rmsprop": ("rho", "momentum", "epsilon"),
    "adagrad": ("initial_accumulator_value", "epsilon"),
    "adam": ("beta_1", "beta_2", "epsilon"),
}

#: Each framework's defaults (Keras 3.15 / PyTorch 2.13). PyTorch names: rho is
#  RMSprop's  ``alpha``, epsilon is ``eps``, beta_1 and beta_2 are ``betas``.
DEFAULTS = {
    "keras": {
        "sgd": {"momentum": 0.0, "nesterov": False},
        "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
        "adagrad": {"initial_accumulator_value": 0.1, "epsilon": 1e-7},
        "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    },
    "torch": {
        "sgd": {"momentum": 0.0, "nesterov": False},
        "rmsprop": {"rho": 0.99, "momentum": 0.0, "epsilon": 1e-8},
        "adagrad": {"initial_accumulator_value": 0.0, "epsilon": 1e-10},
        "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
    },
}

#: ReduceLROnPlateau defaults, the same in both frameworks except the last two (PyTorch
#: only).
PLATEAU_DEFAULTS = {
    "plateau_patience": 10,
    "plateau_factor": 0.1,
    "plateau_min_delta": 1e-4,
    "plateau_cooldown": 0,
    "plateau_min_lr": 0.0,
    "plateau_threshold_mode": "rel",
    "plateau_eps": 1e-8,
}
STEP_FACTOR_DEFAULT = 0.1


@dataclass
class ReplicaResult:
    """What :func:`train` returns.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per replica and epoch, ordered by setting, seed, epoch. Columns:
        ``setting`` (0-based index into the settings), ``seed``, ``epoch`` (1-based:
        epochs completed), the setting's hyperparameters (see :func:`train`), then
        ``learning_rate``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
    settings : pandas.DataFrame
        One row per setting: its hyperparameters (the same columns as in ``frame``).
    seeds : list of int
        The seeds, in order.
    weights : list of 4 numpy.ndarray
        Final weights in Keras's layout with a leading replica axis: kernel (R, 2, 50),
        bias (R, 50), kernel (R, 50, 3), bias (R, 3). Replica ``r = setting * len(seeds)
        + k`` ran with ``seeds[k]``. A replica that diverged keeps the weights of the
    epoch it diverged in. optimizer, semantics : str
        As passed to :func:`train`.
    """

    frame: pd.DataFrame
    settings: pd.DataFrame
    seeds: list[int]
    weights: list[np.ndarray]
    optimizer: str
    semantics: str

    def replica(self, setting: int, seed: int) -> int:
        """The replica index (0-based, into ``weights``) of ``setting`` run with
        ``seed``."""
        if not 0 <= setting < len(self.settings):
            raise ValueError(
                f"setting must lie in [0, {len(self.settings)}), got {setting!r}"
            )
        if seed not in self.seeds:
            raise ValueError(f"seed {seed!r} was not run; seeds: {self.seeds}")
        return setting * len(self.seeds) + self.seeds.index(seed)

    def history(self, setting: int, seed: int) -> dict[str, list[float]]:
        """One replica's history in :func:`lrtools.torch_tools.fit`'s format (lists per
        epoch)."""
        r = self.replica(setting, seed)
        epochs = len(self.frame) // (len(self.settings) * len(self.seeds))
        rows = self.frame.iloc[r * epochs : (r + 1) * epochs]
        return {k: rows[k].tolist() for k in METRICS}

    def final_weights(self, setting: int, seed: int) -> list[np.ndarray]:
        """One replica's final weights in Keras's layout
        (``keras_model.get_weights()``)."""
        r = self.replica(setting, seed)
        return [w[r] for w in self.weights]


def default_weights(
    seeds: Iterable[int], *, dtype: torch.dtype = torch.float32
) -> list:
    """Initial weights of ``torch_tools.build_mlp(seed=s, dtype=dtype)`` for every seed.

    The same draws as :func:`lrtools.torch_tools.build_mlp` (one ``torch.Generator`` per
    seed: hidden kernel U(±sqrt(6/2)), then output kernel U(±sqrt(6/53)), zero biases),
    without building the modules.

    Returns
    -------
    list of 4 numpy.ndarray
        Keras layout with a leading seed axis: (S, 2, 50), (S, 50), (S, 50, 3), (S, 3).
    """
    seeds = _seed_list(seeds)
    n_in, n_hidden, n_classes = 2, 50, data.N_CLASSES
    hidden_limit = math.sqrt(6 / n_in)
    output_limit = math.sqrt(6 / (n_hidden + n_classes))
    w1 = torch.empty(len(seeds), n_hidden, n_in, dtype=dtype)
    w2 = torch.empty(len(seeds), n_classes, n_hidden, dtype=dtype)
    for k, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        w1[k].uniform_(-hidden_limit, hidden_limit, generator=generator)
        w2[k].uniform_(-output_limit, output_limit, generator=generator)
    zeros = np.zeros
    np_dtype = w1.numpy().dtype
    return [
        w1.transpose(1, 2).numpy().copy(),
        zeros((len(seeds), n_hidden), dtype=np_dtype),
        w2.transpose(1, 2).numpy().copy(),
        zeros((len(seeds), n_classes), dtype=np_dtype),
    ]


class _Orders:
    """Each epoch's sample order per replica, drawn lazily like
    ``data.epoch_permutations``.

    Holding every epoch at once would take R * epochs * n_train integers (1.9 GB for
    2,400 replicas); one NumPy generator per distinct seed yields the same permutations
    epoch by epoch.
    """

    def __init__(self, n: int, seeds: list[int], replica_seed_index: np.ndarray):
        self.n = n
        # The stream of data.epoch_permutations(n, epochs, seed): default_rng([seed,
        # 1]).
        self.rngs = [np.random.default_rng([seed, 1]) for seed in seeds]
        self.index = torch.from_numpy(replica_seed_index)
        self.epoch = 0

    def __call__(self, epoch: int) -> engine.EpochOrder:
        if epoch != self.epoch:
            raise RuntimeError("epoch orders must be drawn in sequence")
        self.epoch += 1
        per_seed = np.stack([rng.permutation(self.n) for rng in self.rngs])
        return engine.EpochOrder(torch.from_numpy(per_seed), self.index)


def train(
    *,
    learning_rate,
    seeds: Iterable[int],
    semantics: str,
    optimizer: str = "sgd",
    epochs: int = 200,
    batch_size: int = 32,
    momentum=None,
    nesterov=None,
    rho=None,
    epsilon=None,
    beta_1=None,
    beta_2=None,
    initial_accumulator_value=None,
    decay=None,
    step_every=None,
    step_factor=None,
    plateau=None,
    plateau_patience=None,
    plateau_factor=None,
    plateau_min_delta=None,
    plateau_cooldown=None,
    plateau_min_lr=None,
    plateau_threshold_mode=None,
    plateau_eps=None,
    rate_schedule=None,
    dtype: torch.dtype = torch.float32,
    initial_weights: Sequence[np.ndarray] | None = None,
    orders: np.ndarray | None = None,
    split: data.BlobsSplit | None = None,
    progress: bool = True,
    epoch_end=None,
) -> ReplicaResult:
    """Train ``n_settings * n_seeds`` independent replicas of the study's MLP at once.

    Every hyperparameter takes a scalar or a sequence with one entry per *setting*.
    Sequences are zipped (``learning_rate=[0.1, 0.01], momentum=[0.0, 0.9]`` are two
    settings, not four); a scalar or a one-entry sequence applies to every setting;
    sequences of different lengths (other than 1) are an error. Every setting runs once
    with every seed. An option left at ``None`` takes the default of the chosen
    ``semantics`` (see :data:`DEFAULTS`).

    Parameters
    ----------
    learning_rate : float or sequence of float
        Initial step size per update, finite and > 0. Under ``semantics="keras"`` it is
        rounded to float32, as Keras stores it in a float32 variable.
    seeds : iterable of int
        Non-negative; each seeds a replica's initial weights (as
        ``torch_tools.build_mlp``) and batch order (as ``data.epoch_permutations``).
    semantics : {"keras", "torch"}
        Whose update rules, defaults and schedule/plateau rules apply (see Notes).
    optimizer : {"sgd", "rmsprop", "adagrad", "adam"}
    epochs : int
        Passes over the 500 training samples (>= 1).
    batch_size : int
        Samples per update (>= 1); the last batch of an epoch is smaller (20 for 32).
    momentum : float in [0, 1)
        SGD and RMSprop (default 0).
    nesterov : bool
        SGD only (default False). Under ``semantics="torch"`` it requires momentum > 0,
        as ``torch.optim.SGD`` does; Keras accepts momentum 0 (then it is plain SGD).
    rho : float in [0, 1)
        RMSprop's decay of the squared-gradient average (PyTorch's ``alpha``); default
        0.9 (Keras) or 0.99 (PyTorch).
    epsilon : float >= 0
        RMSprop, Adagrad, Adam (PyTorch's ``eps``). Keras: 1e-7, added inside the square
        root (RMSprop, Adagrad) or after it (Adam). PyTorch: 1e-8 (RMSprop, Adam) or
        1e-10 (Adagrad), added after the square root.
    beta_1, beta_2 : float in [0, 1)
        Adam (defaults 0.9 and 0.999 in both frameworks).
    initial_accumulator_value : float >= 0
        Adagrad (Keras 0.1, PyTorch 0).
    decay : float >= 0
        Keras 2's legacy ``decay``: inverse-time decay per *update*, ``lr_t = lr0 / (1 +
        decay * t)`` with ``t`` the number of updates done (0-based). Keras:
        ``InverseTimeDecay(lr0, decay_steps=1, decay_rate=decay)``, computed in float32;
        PyTorch: ``LambdaLR(lambda t: 1 / (1 + decay * t))`` stepped after every update.
        0: off.
    step_every : int >= 1 or None
        Step decay per *epoch*: the rate in epoch ``e`` (0-based) is ``lr0 * step_factor
        ** (e // step_every)``. Keras: a ``LearningRateScheduler`` returning that value
        at epoch begin (stored in float32); PyTorch: ``StepLR(step_size=step_every,
        gamma=step_factor)`` stepped after each epoch. None: off.
    step_factor : float > 0
        Factor of the step decay (default 0.1); only with ``step_every``.
    plateau : bool
        ReduceLROnPlateau on ``val_loss``, per replica, at each epoch's end (default
        False).
    plateau_patience : int >= 0
        Epochs without improvement before a cut (default 10). Keras cuts after
        ``patience`` bad epochs, PyTorch after ``patience + 1``.
    plateau_factor : float in (0, 1)
        New rate = max(rate * factor, min_lr) (default 0.1).
    plateau_min_delta : float >= 0
        Keras ``min_delta`` (improvement: ``val_loss < best - min_delta``) or PyTorch
        ``threshold`` (relative by default: ``val_loss < best * (1 - threshold)``);
        default 1e-4.
    plateau_cooldown : int >= 0
        Epochs after a cut during which bad epochs are not counted (default 0); Keras in
        effect waits ``cooldown - 1`` of them, PyTorch ``cooldown``.
    plateau_min_lr : float >= 0
        Floor of the rate (default 0).
    plateau_threshold_mode : {"rel", "abs"}
        PyTorch only (default "rel"); Keras's ``min_delta`` is absolute.
    plateau_eps : float >= 0
        PyTorch only: a cut smaller than this is skipped (default 1e-8).
    rate_schedule : callable or None
        Any schedule given as a function of the update count: called once with the
        int64 array ``0, 1, ..., epochs * updates_per_epoch``, it returns the rate of
        the update after that many updates (finite, >= 0; the last entry is the rate
        recorded after the last epoch). For instance
        ``functools.partial(lrtools.schedules.cosine_decay, initial_learning_rate=0.1,
        decay_steps=3200)``, or a per-epoch schedule through ``t // updates_per_epoch``.
        It replaces ``learning_rate`` (which must still be given) in every update.
        The history's ``learning_rate`` is then the rate after the epoch's last update
        (what Keras and a per-update PyTorch scheduler record); for a per-epoch
        schedule written through ``t // updates_per_epoch`` that is next epoch's rate.
        Under ``semantics="keras"`` the rates are rounded to float32, as Keras keeps
        them; for Keras's own float32 arithmetic, evaluate a
        ``keras.optimizers.schedules`` object ``s`` itself, one count at a time
        (``lambda t: [float(s(int(u))) for u in t]``: some take scalars only), and the
        run equals Keras's ``fit`` with that schedule.
        Under ``semantics="torch"`` it equals ``LambdaLR`` (or any scheduler with the
        same rates) stepped after every update. None: off.
    dtype : torch.float32 or torch.float64
        Arithmetic of the weights and the data (float64 for exact comparisons).
    initial_weights : list of 4 arrays, optional
        Keras layout with a leading replica axis, (R, 2, 50), (R, 50), (R, 50, 3), (R,
        3), in replica order (``setting * n_seeds + k`` for ``seeds[k]``). Default:
        :func:`default_weights`.
    orders : int array (R, epochs, n_train), optional
        Each replica's sample order per epoch (0-based indices into the training half).
        Default: ``data.epoch_permutations(n_train, epochs, seed)`` of each replica's
        seed.
    split : lrtools.data.BlobsSplit, optional
        The data; default ``data.make_blobs_split()``.
    progress : bool
        Show a tqdm bar over epochs (hidden anyway when the environment sets
        ``TQDM_DISABLE=1``).
    epoch_end : callable or None
        Called after every epoch's validation as ``epoch_end(epoch, weights)``: the
        epoch (1-based) and every replica's weights at that moment, in the layout of
        :attr:`ReplicaResult.weights` (a list of 4 arrays with a leading replica axis;
        copies, safe to keep). For records the frame does not hold, such as each
        epoch's predictions on another data set (see :mod:`lrtools.selection`). A
        replica that diverged shows zero weights from the next epoch on. None: off.

    Returns
    -------
    ReplicaResult
        ``frame`` has one row per replica and epoch with columns ``setting`` (0-based),
        ``seed``, ``epoch`` (1-based), the hyperparameters, ``learning_rate``, ``loss``,
        ``accuracy``, ``val_loss``, ``val_accuracy``. Hyperparameter columns:
        ``initial_learning_rate`` (the setting's ``learning_rate`` argument, as passed),
        every option of the optimizer with its resolved value (e.g. ``momentum``,
        ``nesterov`` for SGD), and the schedule options when a schedule is used
        (``decay``; ``step_every`` and ``step_factor``; ``plateau`` and the
        ``plateau_*`` values). Metrics follow ``torch_tools.fit``: ``loss`` and
        ``accuracy`` are means over the epoch's batches, each measured before its own
        update and weighted by its size; ``val_loss`` and ``val_accuracy`` are measured
        on the test half at the epoch's end; ``learning_rate`` is the rate in effect at
        the epoch's end, before an epoch-end change (a plateau cut), i.e. for a
        per-epoch schedule the rate this epoch's updates used. A replica whose epoch
        loss is not finite keeps that epoch's values and is NaN afterwards; it stops
        training, and the other replicas are unaffected.

    Notes
    -----
    ``semantics="torch"`` follows ``torch.optim`` (SGD momentum ``b = m b + g; w -= lr
    b``, RMSprop and Adagrad with epsilon outside the square root, Adam's bias-corrected
    denominator) and ``torch.optim.lr_scheduler``. ``semantics="keras"`` follows Keras 3
    (SGD velocity ``v = m v - lr g; w += v``, which keeps its old scale when the rate
    changes; epsilon inside the square root for RMSprop and Adagrad; Adam's "epsilon
    hat"; ``ReduceLROnPlateau``'s absolute ``min_delta``), including its float32
    rounding of the learning rate, of SGD's momentum, of Adam's betas in the bias
    correction and of Adagrad's initial accumulator.
    """
    optimizer = _checks.choice("optimizer", optimizer, OPTIMIZERS)
    semantics = _checks.choice("semantics", semantics, SEMANTICS)
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    seeds = _seed_list(seeds)
    if epoch_end is not None and not callable(epoch_end):
        raise ValueError(
            "epoch_end must be a function of (epoch, weights) or None, got "
            f"{epoch_end!r}"
        )
    if split is None:
        split = data.make_blobs_split(dtype="float64")
    arguments = locals()
    given = {name: arguments[name] for name in HYPERPARAMETERS}

    settings = _settings(given, optimizer, semantics)
    layout = _Layout(len(settings), len(seeds))
    updates_per_epoch = data.steps_per_epoch(len(split.x_train), batch_size)
    config = _config(
        settings,
        layout.setting,
        optimizer,
        semantics,
        epochs,
        batch_size,
        dtype,
        updates_per_epoch,
    )
    weights = _initial_weights(initial_weights, seeds, layout, dtype)
    order_source = _order_source(orders, seeds, layout, epochs, len(split.x_train))
    label = f"{layout.replicas} replicas ({optimizer}, {semantics})"

    def epoch_bar(iterable):
        return progress_bar(iterable, desc=label, unit="epoch", enabled=progress)

    outcome = engine.run(
        config, split, weights, order_source, epoch_bar, epoch_end=epoch_end
    )
    return ReplicaResult(
        frame=_frame(settings, seeds, layout, epochs, outcome.history),
        settings=settings,
        seeds=seeds,
        weights=outcome.weights,
        optimizer=optimizer,
        semantics=semantics,
    )


#: The arguments of :func:`train` that take one value per setting.
HYPERPARAMETERS = (
    "learning_rate",
    *dict.fromkeys(o for options in OPTIMIZER_OPTIONS.values() for o in options),
    "decay",
    "step_every",
    "step_factor",
    "plateau",
    *PLATEAU_DEFAULTS,
    "rate_schedule",
)


class _Layout:
    """Replica ``r`` runs setting ``r // n_seeds`` with seed index ``r % n_seeds``."""

    def __init__(self, n_settings: int, n_seeds: int):
        self.replicas = n_settings * n_seeds
        self.setting = np.repeat(np.arange(n_settings), n_seeds)
        self.seed_index = np.tile(np.arange(n_seeds), n_settings)


def _frame(settings, seeds, layout: _Layout, epochs: int, history) -> pd.DataFrame:
    """The tidy result: one row per replica and epoch (see :func:`train`)."""
    columns = {
        "setting": np.repeat(layout.setting, epochs),
        "seed": np.repeat(np.asarray(seeds)[layout.seed_index], epochs),
        "epoch": np.tile(np.arange(1, epochs + 1), layout.replicas),
    }
    for name in settings.columns:
        columns[name] = np.repeat(settings[name].to_numpy()[layout.setting], epochs)
    for key in METRICS:
        columns[key] = history[key].reshape(-1)
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be an iterable of integers >= 0, got {seeds!r}")
    out = [_checks.non_negative_int("seeds", s) for s in seeds]
    if not out:
        raise ValueError("seeds must hold at least one seed, got none")
    return out


def _entries(name, value) -> list:
    """A hyperparameter as a list of per-setting entries."""
    if isinstance(value, (str, bytes)) or not isinstance(
        value, (Sequence, np.ndarray, range)
    ):
        return [value]
    entries = (
        list(np.asarray(value).tolist())
        if isinstance(value, np.ndarray)
        else list(value)
    )
    if not entries:
        raise ValueError(
            f"{name} must be a value or a non-empty sequence, got {value!r}"
        )
    return entries


def _real(name, value, *, low=None, high=None, low_open=False, high_open=False):
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(
            f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}"
        )
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(
            f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}"
        )
    return value


def _bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_entry(name, value):
    """Validate one setting's value of option ``name``."""
    if name == "learning_rate":
        return _checks.learning_rate(name, value)
    if name in ("momentum", "rho", "beta_1", "beta_2"):
        return _real(name, value, low=0.0, high=1.0, high_open=True)
    if name in ("epsilon", "initial_accumulator_value", "decay", "plateau_min_delta"):
        return _real(name, value, low=0.0)
    if name in ("plateau_min_lr", "plateau_eps"):
        return _real(name, value, low=0.0)
    if name == "step_factor":
        return _real(name, value, low=0.0, low_open=True)
    if name == "plateau_factor":
        return _real(name, value, low=0.0, high=1.0, low_open=True, high_open=True)
    if name in ("nesterov", "plateau"):
        return _bool(name, value)
    if name == "step_every":
        return None if value is None else _checks.positive_int(name, value)
    if name in ("plateau_patience", "plateau_cooldown"):
        return _checks.non_negative_int(name, value)
    if name == "plateau_threshold_mode":
        return _checks.choice(name, value, ("rel", "abs"))
    if name == "rate_schedule":
        if value is not None and not callable(value):
            raise ValueError(
                f"rate_schedule must be a function of the update count (or None), "
                f"got {value!r}"
            )
        return value
    raise AssertionError(name)  # pragma: no cover


def _settings(given: dict, optimizer: str, semantics: str) -> pd.DataFrame:
    """Validate, broadcast and resolve the hyperparameters: one row per setting."""
    options = OPTIMIZER_OPTIONS[optimizer]
    for name in (
        "momentum",
        "nesterov",
        "rho",
        "epsilon",
        "beta_1",
        "beta_2",
        "initial_accumulator_value",
    ):
        if given[name] is not None and name not in options:
            raise ValueError(
                f"{name} does not apply to optimizer {optimizer!r} (its options: "
                f"{', '.join(options)})"
            )
    if semantics == "keras":
        for name in ("plateau_threshold_mode", "plateau_eps"):
            if given[name] is not None:
                raise ValueError(
                    f"{name} applies to semantics 'torch' only (Keras's "
                    "ReduceLROnPlateau has an absolute min_delta and no eps)"
                )
    if given["step_factor"] is not None and given["step_every"] is None:
        raise ValueError("step_factor applies only with step_every (a step schedule)")
    plateau_options = [k for k in PLATEAU_DEFAULTS if given[k] is not None]
    if plateau_options and not given["plateau"]:
        raise ValueError(f"{', '.join(plateau_options)} apply only with plateau=True")

    columns = ["learning_rate", *options]
    if given["decay"] is not None:
        columns.append("decay")
    if given["step_every"] is not None:
        columns += ["step_every", "step_factor"]
    if given["rate_schedule"] is not None:
        columns.append("rate_schedule")
    if given["plateau"] is not None:
        columns.append("plateau")
        columns += [
            k
            for k in PLATEAU_DEFAULTS
            if semantics == "torch"
            or k not in ("plateau_threshold_mode", "plateau_eps")
        ]
    defaults = {**DEFAULTS[semantics][optimizer], **PLATEAU_DEFAULTS}
    defaults["step_factor"] = STEP_FACTOR_DEFAULT
    entries = {}
    for name in columns:
        value = given[name] if given[name] is not None else defaults[name]
        entries[name] = _entries(name, value)
    lengths = {name: len(v) for name, v in entries.items() if len(v) > 1}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} ({n})" for k, n in lengths.items())
        raise ValueError(
            "hyperparameter sequences must have one entry per setting (or a single "
            f"one); got different lengths: {listed}"
        )
    n_settings = max(lengths.values(), default=1)
    table = {}
    for name, values in entries.items():
        values = values * n_settings if len(values) == 1 else values
        table[name] = [_check_entry(name, v) for v in values]
    settings = pd.DataFrame(table).rename(
        columns={"learning_rate": "initial_learning_rate"}
    )

    for i in range(n_settings):
        row = settings.iloc[i]
        # torch.optim.SGD refuses Nesterov without momentum; Keras runs it as plain SGD.
        if semantics == "torch" and row.get("nesterov", False) and row["momentum"] == 0:
            raise ValueError(
                f"nesterov requires momentum > 0 under semantics 'torch' (setting {i})"
            )
        schedules = [
            name
            for name, on in (
                ("decay", row.get("decay", 0) > 0),
                (
                    "step_every",
                    row.get("step_every") is not None
                    and not pd.isna(row.get("step_every")),
                ),
                ("plateau", bool(row.get("plateau", False))),
                ("rate_schedule", row.get("rate_schedule") is not None),
            )
            if on
        ]
        if len(schedules) > 1:
            raise ValueError(
                f"one schedule per setting at most; setting {i} uses {schedules}"
            )
    if "step_every" in settings:
        settings["step_every"] = settings["step_every"].astype("Int64")
    return settings


def _config(
    settings,
    replica_setting,
    optimizer,
    semantics,
    epochs,
    batch_size,
    dtype,
    updates_per_epoch,
):
    def per_replica(name, default, kind=np.float64):
        if name in settings:
            values = settings[name].to_numpy()
            if kind is np.int64:
                values = np.array([0 if pd.isna(v) else int(v) for v in values])
            return np.asarray(values, dtype=kind)[replica_setting]
        return np.full(len(replica_setting), default, dtype=kind)

    plateau_relative = per_replica("plateau_threshold_mode", "rel", object) == "rel"
    if semantics == "keras":
        plateau_relative[:] = False
    rate_table, scheduled = _rate_table(
        settings, replica_setting, semantics, epochs * updates_per_epoch
    )
    return engine.Config(
        optimizer=optimizer,
        semantics=semantics,
        epochs=epochs,
        batch_size=batch_size,
        dtype=dtype,
        learning_rate=per_replica("initial_learning_rate", np.nan),
        momentum=per_replica("momentum", 0.0),
        nesterov=per_replica("nesterov", False, bool),
        rho=per_replica("rho", 0.0),
        epsilon=per_replica("epsilon", 0.0),
        beta_1=per_replica("beta_1", 0.0),
        beta_2=per_replica("beta_2", 0.0),
        initial_accumulator_value=per_replica("initial_accumulator_value", 0.0),
        decay=per_replica("decay", 0.0),
        step_every=per_replica("step_every", 0, np.int64),
        step_factor=per_replica("step_factor", 1.0),
        plateau=per_replica("plateau", False, bool),
        plateau_patience=per_replica("plateau_patience", 0, np.int64),
        plateau_factor=per_replica("plateau_factor", 1.0),
        plateau_min_delta=per_replica("plateau_min_delta", 0.0),
        plateau_cooldown=per_replica("plateau_cooldown", 0, np.int64),
        plateau_min_lr=per_replica("plateau_min_lr", 0.0),
        plateau_relative=plateau_relative,
        plateau_eps=per_replica("plateau_eps", 0.0),
        rate_table=rate_table,
        scheduled=scheduled,
    )


def _rate_table(settings, replica_setting, semantics, updates):
    """Each replica's rate per update from its setting's ``rate_schedule`` (see
    :func:`train`), checked: (R, updates + 1) float64, and which replicas use one."""
    functions = settings["rate_schedule"] if "rate_schedule" in settings else None
    table = np.full((len(settings), updates + 1), np.nan)
    steps = np.arange(updates + 1, dtype=np.int64)
    for i, function in enumerate([] if functions is None else functions):
        if function is None:
            continue
        try:
            rates = np.asarray(function(steps), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"rate_schedule of setting {i} must accept an int64 array of update "
                f"counts and return one rate per count; it raised {error!r}"
            ) from error
        if rates.shape != steps.shape:
            raise ValueError(
                f"rate_schedule of setting {i} must return one rate per update count "
                f"(shape {steps.shape}), got shape {rates.shape}"
            )
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~(np.isfinite(rates) & (rates >= 0)))
        if bad.size:
            raise ValueError(
                f"rate_schedule of setting {i} must return finite rates >= 0, got "
                f"{rates[bad[0]]!r} after {bad[0]} updates"
            )
        table[i] = engine.f32(rates) if semantics == "keras" else rates
    scheduled = ~np.isnan(table[:, 0])
    return table[replica_setting], scheduled[replica_setting]


def _initial_weights(initial_weights, seeds, layout: _Layout, dtype):
    R = layout.replicas
    if initial_weights is None:
        per_seed = default_weights(seeds, dtype=dtype)
        return [w[layout.seed_index] for w in per_seed]
    weights = [np.asarray(w) for w in initial_weights]
    if len(weights) != 4:
        raise ValueError(f"initial_weights must hold 4 arrays, got {len(weights)}")
    hidden = weights[0].shape[-1] if weights[0].ndim == 3 else None
    expected = [
        (R, 2, hidden),
        (R, hidden),
        (R, hidden, data.N_CLASSES),
        (R, data.N_CLASSES),
    ]
    for k, (w, shape) in enumerate(zip(weights, expected, strict=True)):
        if w.shape != shape or not np.issubdtype(w.dtype, np.floating):
            raise ValueError(
                f"initial_weights[{k}] must be a float array of shape {shape} (Keras "
                f"layout, one leading entry per replica), got {w.dtype} {w.shape}"
            )
    return weights


def _order_source(orders, seeds, layout: _Layout, epochs, n_train):
    R = layout.replicas
    if orders is None:
        return _Orders(n_train, seeds, layout.seed_index)
    orders = np.asarray(orders)
    if orders.shape != (R, epochs, n_train) or not np.issubdtype(
        orders.dtype, np.integer
    ):
        raise ValueError(
            f"orders must be an integer array of shape (replicas, epochs, n_train) = "
            f"{(R, epochs, n_train)}, got {orders.dtype} {orders.shape}"
        )
    if orders.min() < 0 or orders.max() >= n_train:
        raise ValueError(f"orders must index the training samples, 0 to {n_train - 1}")
    orders = torch.from_numpy(orders.astype(np.int64))
    every_replica = torch.arange(R)
    return lambda epoch: engine.EpochOrder(orders[:, epoch].contiguous(), every_replica)


__all__ = [
    "DEFAULTS",
    "OPTIMIZERS",
    "OPTIMIZER_OPTIONS",
    "ReplicaResult",
    "SEMANTICS",
    "default_weights",
    "train",
]
