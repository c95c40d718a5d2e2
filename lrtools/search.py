"""Searching a step-decay schedule with Optuna, scored on a validation split.

A *trial* is one step-decay setting: the initial learning rate, the epochs between
drops (``step_every``) and the drop factor (``step_factor``), with plain SGD. It is
trained with several seeds at once by :func:`lrtools.replicas.train` on a training
half carved by :func:`lrtools.data.carve_validation`, and scored by the mean over the
seeds of the final validation accuracy. The test set plays no part in a search::

    from lrtools import search

    study = search.create_study("sqlite:///decay.db", "decay", sampler="grid")
    search.run_batched(study, n_trials=24)          # in this process, 24 at a time
    # or, on any machine that reaches the storage:
    #   python -m lrtools.search_worker --storage sqlite:///decay.db --study decay

The study keeps everything a worker needs (the sampler, its seed, the search space and
the trial settings) in its user attributes, so :func:`load_study` rebuilds the same
search from the storage URL and the study's name alone.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lrtools import _checks, data

SAMPLERS = ("grid", "random", "tpe")
PARAMS = ("learning_rate", "step_every", "step_factor")
DIRECTION = "maximize"  # mean final validation accuracy


def _values(name: str, values, check) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    checked = tuple(check(name, v) for v in values)
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return tuple(sorted(checked))


def _factor(name: str, value) -> float:
    value = _checks.learning_rate(name, value)  # finite and > 0
    if value >= 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return value


@dataclass(frozen=True)
class SearchSpace:
    """The grid of step-decay settings; its ranges bound the random and TPE searches.

    Parameters
    ----------
    learning_rates : sequence of float > 0
        Initial rates (per update); random and TPE draw log-uniformly between the
        smallest and the largest.
    step_everys : sequence of int >= 1
        Epochs between two drops (the rate of epoch ``e``, 0-based, is ``lr *
        step_factor ** (e // step_every)``); random and TPE draw integers between the
        smallest and the largest.
    step_factors : sequence of float in (0, 1)
        What a drop multiplies the rate by; random and TPE draw uniformly between the
        smallest and the largest.
    """

    learning_rates: tuple = (0.03, 0.1, 0.3)
    step_everys: tuple = (5, 10, 20, 40)
    step_factors: tuple = (0.1, 0.5)

    def __post_init__(self):
        checks = {
            "learning_rates": _checks.learning_rate,
            "step_everys": _checks.positive_int,
            "step_factors": _factor,
        }
        for name, check in checks.items():
            object.__setattr__(self, name, _values(name, getattr(self, name), check))

    def grid(self) -> dict[str, list]:
        """``GridSampler``'s search space: every parameter with its values."""
        return {
            "learning_rate": list(self.learning_rates),
            "step_every": list(self.step_everys),
            "step_factor": list(self.step_factors),
        }

    @property
    def size(self) -> int:
        """Number of grid points."""
        return math.prod(len(v) for v in self.grid().values())

    def suggest(self, trial) -> dict:
        """Ask ``trial`` (an ``optuna.Trial``) for one setting.

        The same call serves every sampler: GridSampler answers with grid values (all
        inside these ranges), the others draw from the ranges.
        """
        rates, everys, factors = (
            self.learning_rates,
            self.step_everys,
            self.step_factors,
        )
        return {
            "learning_rate": trial.suggest_float(
                "learning_rate", rates[0], rates[-1], log=True
            ),
            "step_every": trial.suggest_int("step_every", everys[0], everys[-1]),
            "step_factor": trial.suggest_float("step_factor", factors[0], factors[-1]),
        }


@dataclass(frozen=True)
class TrialConfig:
    """How a trial trains and is scored.

    Parameters
    ----------
    first_seed : int >= 0
        A trial trains seeds ``first_seed, ..., first_seed + n_seeds - 1``.
    n_seeds : int >= 1
        Seeds per trial; every trial of a study uses the same ones (paired settings).
    epochs : int >= 1
        Epochs per run.
    n_validation : int in [1, 499]
        Training samples carved off as the validation set (the last ones).
    semantics : {"keras", "torch"}
        Whose update and schedule rules the replicas follow.
    batch_size : int >= 1
        Samples per update.
    """

    first_seed: int = 0
    n_seeds: int = 20
    epochs: int = 50
    n_validation: int = 100
    semantics: str = "keras"
    batch_size: int = 32

    def __post_init__(self):
        _checks.non_negative_int("first_seed", self.first_seed)
        _checks.positive_int("n_seeds", self.n_seeds)
        _checks.positive_int("epochs", self.epochs)
        n_validation = _checks.positive_int("n_validation", self.n_validation)
        if n_validation >= 500:
            raise ValueError(
                f"n_validation must be between 1 and 499, got {self.n_validation!r}"
            )
        _checks.choice("semantics", self.semantics, ("keras", "torch"))
        _checks.positive_int("batch_size", self.batch_size)

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.n_seeds)


def validation_split(n_validation: int = 100) -> data.BlobsSplit:
    """The study's training half, its last ``n_validation`` samples as the "test" half.

    What a search trains and scores on; the real test set is not in it.
    """
    return data.carve_validation(data.make_blobs_split(), n_validation)


def evaluation_split(n_validation: int = 100) -> data.BlobsSplit:
    """The same training samples as :func:`validation_split`, with the real test half.

    Training on it is training as the search did (the held-out samples only ever
    measure); its ``val_*`` metrics are then test metrics. For the final check of a
    search's winner, never inside the search.
    """
    carved, full = validation_split(n_validation), data.make_blobs_split()
    return data.BlobsSplit(carved.x_train, carved.y_train, full.x_test, full.y_test)


def train_settings(
    settings: Sequence[dict],
    seeds,
    *,
    epochs: int = 50,
    split: data.BlobsSplit | None = None,
    semantics: str = "keras",
    batch_size: int = 32,
    progress: bool = False,
):
    """Train every step-decay setting with every seed, at once.

    Parameters
    ----------
    settings : sequence of dict
        Each with ``learning_rate``, ``step_every`` and ``step_factor`` (see
        :class:`SearchSpace`).
    seeds : iterable of int >= 0
    epochs, semantics, batch_size, progress
        As :func:`lrtools.replicas.train`.
    split : BlobsSplit, optional
        Default :func:`validation_split` (``val_*`` are then validation metrics).

    Returns
    -------
    lrtools.replicas.ReplicaResult
        Settings in the order given.
    """
    from lrtools import replicas  # imports PyTorch: only when training

    if not settings:
        raise ValueError("settings must hold at least one setting, got none")
    for k, setting in enumerate(settings):
        if not isinstance(setting, dict) or set(setting) != set(PARAMS):
            raise ValueError(
                f"settings[{k}] must be a dict with exactly the keys {PARAMS}, "
                f"got {setting!r}"
            )
    split = validation_split() if split is None else split
    return replicas.train(
        optimizer="sgd",
        learning_rate=[float(s["learning_rate"]) for s in settings],
        step_every=[int(s["step_every"]) for s in settings],
        step_factor=[float(s["step_factor"]) for s in settings],
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size,
        semantics=semantics,
        split=split,
        progress=progress,
    )


def final_scores(result, metric: str = "val_accuracy") -> np.ndarray:
    """Each setting's ``metric`` after the last epoch, one row per setting and one
    column per seed (a diverged run counts as NaN)."""
    frame = result.frame
    last = frame[frame["epoch"] == frame["epoch"].max()]
    table = last.pivot(index="setting", columns="seed", values=metric)
    return table.loc[range(len(result.settings)), list(result.seeds)].to_numpy()


def final_accuracy(result, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy on ``x``, ``y`` of every replica's final weights, one row per setting
    and one column per seed (the order of :func:`final_scores`).

    Measures a search's runs on data their split did not hold (the validation set
    for runs trained on :func:`evaluation_split`), without training them again.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2 or y.shape != (len(x),):
        raise ValueError(
            f"x must have shape (n, 2) and y shape (n,), got {x.shape} and {y.shape}"
        )
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in result.weights)
    hidden = np.maximum(np.einsum("ni,rij->rnj", x, w1) + b1[:, None], 0.0)
    logits = np.einsum("rnj,rjk->rnk", hidden, w2) + b2[:, None]
    accuracy = (logits.argmax(axis=2) == y).mean(axis=1)
    return accuracy.reshape(len(result.settings), len(result.seeds))


def score_settings(settings: Sequence[dict], config: TrialConfig) -> list[float]:
    """The objective of each setting: the mean final validation accuracy over the
    config's seeds. A setting whose runs diverge scores 0 (the worst accuracy)."""
    result = train_settings(
        settings,
        config.seeds,
        epochs=config.epochs,
        split=validation_split(config.n_validation),
        semantics=config.semantics,
        batch_size=config.batch_size,
    )
    scores = np.nan_to_num(final_scores(result), nan=0.0)
    return [float(s) for s in scores.mean(axis=1)]


# --------------------------------------------------------------------------------------
# Studies: creation, loading from storage, running
# --------------------------------------------------------------------------------------


@dataclass
class Search:
    """A study with what its trials need: the space and the trial config."""

    study: object  # optuna.Study
    space: SearchSpace = field(default_factory=SearchSpace)
    config: TrialConfig = field(default_factory=TrialConfig)


def default_storage(directory) -> str:
    """The URL of the SQLite file ``decay_search.db`` in ``directory``, created in
    write-ahead-log mode.

    In WAL mode (a setting kept in the file) readers do not wait for a writer and a
    commit syncs the disk once instead of several times: workers sharing the file
    wait less, and a search spends about half as long in its storage.
    """
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"directory must be an existing directory, got {directory!r}")
    file = path.resolve() / "decay_search.db"
    with contextlib.closing(sqlite3.connect(file)) as connection:
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
    return f"sqlite:///{file}"


def make_sampler(sampler: str, seed: int, space: SearchSpace):
    """The Optuna sampler named ``sampler`` ("grid", "random" or "tpe"), seeded."""
    import optuna

    sampler = _checks.choice("sampler", sampler, SAMPLERS)
    seed = _checks.non_negative_int("sampler_seed", seed)
    if sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials asked while others still run (a batch, another worker)
    # count the running ones as bad, so a batch spreads out instead of piling up.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def create_study(
    storage: str | None,
    study_name: str,
    *,
    sampler: str = "grid",
    sampler_seed: int = 0,
    space: SearchSpace | None = None,
    config: TrialConfig | None = None,
) -> Search:
    """Create a study in ``storage`` that any worker can load by name.

    Parameters
    ----------
    storage : str or None
        An SQLAlchemy URL (``sqlite:///path/file.db``,
        ``postgresql+psycopg2://user@host:port/db``), or None for memory (then no
        other process can join).
    study_name : str
        Non-empty; creating a name that exists raises optuna's DuplicatedStudyError.
    sampler : {"grid", "random", "tpe"}
    sampler_seed : int >= 0
        Seeds the sampler (GridSampler: the order of the grid).
    space, config : SearchSpace, TrialConfig
        Defaults as documented there.
    """
    import optuna

    if not isinstance(study_name, str) or not study_name.strip():
        raise ValueError(f"study_name must be a non-empty string, got {study_name!r}")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise ValueError(
            f"storage must be None or a database URL such as 'sqlite:///file.db', "
            f"got {storage!r}"
        )
    space = SearchSpace() if space is None else space
    config = TrialConfig() if config is None else config
    made = make_sampler(sampler, sampler_seed, space)
    study = optuna.create_study(
        storage=storage, study_name=study_name, sampler=made, direction=DIRECTION
    )
    study.set_user_attr("sampler", sampler)
    study.set_user_attr("sampler_seed", sampler_seed)
    study.set_user_attr("space", {k: list(v) for k, v in asdict(space).items()})
    study.set_user_attr("config", asdict(config))
    return Search(study, space, config)


def load_study(storage: str, study_name: str, *, sampler_seed: int | None = None):
    """Load a study made by :func:`create_study`, with its sampler, space and config.

    ``sampler_seed``: None reuses the study's. GridSampler's order must be the same in
    every worker (Optuna maps trial number ``n`` to the ``n``-th grid point), so keep
    it; give random and TPE workers different seeds, or they draw the same settings.
    """
    import optuna

    study = optuna.load_study(storage=storage, study_name=study_name)
    attrs = study.user_attrs
    missing = {"sampler", "sampler_seed", "space", "config"} - set(attrs)
    if missing:
        raise ValueError(
            f"study {study_name!r} was not made by lrtools.search.create_study "
            f"(no {sorted(missing)} in its user attributes)"
        )
    space = SearchSpace(**{k: tuple(v) for k, v in attrs["space"].items()})
    config = TrialConfig(**attrs["config"])
    seed = attrs["sampler_seed"] if sampler_seed is None else sampler_seed
    study.sampler = make_sampler(attrs["sampler"], seed, space)
    return Search(study, space, config)


def run_batched(search: Search, n_trials: int, batch_size: int | None = None) -> list:
    """Run ``n_trials`` trials, ``batch_size`` at a time, through ask and tell.

    Each batch is asked first, trained in one :func:`score_settings` call, then told.
    For the grid and random samplers this changes nothing in the results: their
    settings never depend on earlier scores. TPE chooses a batch from the scores of
    the earlier batches only. The grid sampler stops asking once the grid is done.

    Parameters
    ----------
    search : Search
    n_trials : int >= 1
    batch_size : int >= 1 or None
        Trials per batch; None: all ``n_trials`` at once.

    Returns
    -------
    list of optuna.trial.FrozenTrial
        The trials run, in order.
    """
    n_trials = _checks.positive_int("n_trials", n_trials)
    batch_size = n_trials if batch_size is None else batch_size
    batch_size = _checks.positive_int("batch_size", batch_size)
    study, done = search.study, []
    while len(done) < n_trials:
        size = min(batch_size, n_trials - len(done))
        if _grid_is_done(study):
            break
        if study.user_attrs.get("sampler") == "grid":
            size = min(size, search.space.size - len(study.trials))
        trials = [study.ask() for _ in range(size)]
        settings = [search.space.suggest(trial) for trial in trials]
        for trial, value in zip(
            trials, score_settings(settings, search.config), strict=True
        ):
            done.append(_tell(study, trial, value))
    return done


def _grid_is_done(study) -> bool:
    return study.user_attrs.get("sampler") == "grid" and study.sampler.is_exhausted(
        study
    )


def _tell(study, trial, value: float):
    # GridSampler stops the study after the grid's last point, which outside
    # study.optimize raises RuntimeError once the trial is recorded (Optuna's
    # documented workaround: catch it).
    try:
        return study.tell(trial, value)
    except RuntimeError:
        if not _grid_is_done(study):
            raise
        return study.trials[trial.number]


def objective(search: Search):
    """The objective for ``study.optimize``: one trial, trained and scored alone."""

    def score_one(trial) -> float:
        (value,) = score_settings([search.space.suggest(trial)], search.config)
        return value

    return score_one
