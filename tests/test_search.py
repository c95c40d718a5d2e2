"""lrtools.search and search_worker: the objective, studies, storage, workers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from lrtools import data, replicas, search, search_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).parent.parent
# Small trials: the tests check bookkeeping, not schedules.
TINY = search.TrialConfig(n_seeds=2, epochs=3)
SMALL_SPACE = search.SearchSpace(
    learning_rates=(0.05, 0.2), step_everys=(1, 2), step_factors=(0.1, 0.5)
)


# --------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rates": ()}, "learning_rates must be a non-empty sequence"),
        ({"learning_rates": 0.1}, "learning_rates must be a non-empty sequence"),
        ({"learning_rates": (0.1, -0.1)}, "learning_rates must be a finite number > 0"),
        ({"learning_rates": (0.1, 0.1)}, "learning_rates must not repeat a value"),
        ({"step_everys": (0, 5)}, "step_everys must be an integer >= 1"),
        ({"step_everys": (2.5,)}, "step_everys must be an integer >= 1"),
        ({"step_factors": (0.5, 1.0)}, r"step_factors must lie in \(0, 1\)"),
        ({"step_factors": (0.0,)}, "step_factors must be a finite number > 0"),
    ],
)
def test_bad_search_spaces_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        search.SearchSpace(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"first_seed": -1}, "first_seed must be an integer >= 0"),
        ({"n_seeds": 0}, "n_seeds must be an integer >= 1"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"n_validation": 500}, "n_validation must be between 1 and 499"),
        ({"n_validation": 0}, "n_validation must be an integer >= 1"),
        ({"semantics": "jax"}, "semantics must be one of 'keras', 'torch'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ],
)
def test_bad_trial_configs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        search.TrialConfig(**kwargs)


def test_bad_study_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="study_name must be a non-empty string"):
        search.create_study(None, " ")
    with pytest.raises(ValueError, match="storage must be None or a database URL"):
        search.create_study("decay.db", "s")
    with pytest.raises(ValueError, match="sampler must be one of 'grid', 'random'"):
        search.create_study(None, "s", sampler="cmaes")
    with pytest.raises(ValueError, match="sampler_seed must be an integer >= 0"):
        search.create_study(None, "s", sampler_seed=-3)
    with pytest.raises(ValueError, match="directory must be an existing directory"):
        search.default_storage(tmp_path / "missing")
    one = search.create_study(None, "s", config=TINY, space=SMALL_SPACE)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        search.run_batched(one, 0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        search.run_batched(one, 2, batch_size=0)
    with pytest.raises(ValueError, match="settings must hold at least one setting"):
        search.train_settings([], [0])
    with pytest.raises(ValueError, match=r"settings\[0\] must be a dict with exactly"):
        search.train_settings([{"learning_rate": 0.1}], [0])


def test_the_default_storage_is_a_sqlite_file_in_wal_mode(tmp_path):
    storage = search.default_storage(tmp_path)
    file = tmp_path / "decay_search.db"
    assert storage == f"sqlite:///{file.resolve()}"
    connection = sqlite3.connect(file)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()
    # Calling it again keeps an existing study.
    search.create_study(storage, "kept", config=TINY)
    again = search.default_storage(tmp_path)
    assert optuna.get_all_study_names(again) == ["kept"]


def test_a_study_not_made_by_create_study_is_refused(tmp_path):
    storage = search.default_storage(tmp_path)
    optuna.create_study(storage=storage, study_name="plain")
    with pytest.raises(ValueError, match="not made by lrtools.search.create_study"):
        search.load_study(storage, "plain")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trials", "0"], "--trials must be an integer >= 1"),
        (["--threads", "0"], "--threads must be an integer >= 1"),
        (["--sampler-seed", "-1"], "--sampler-seed must be an integer >= 0"),
    ],
)
def test_bad_worker_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        search_worker.parse_arguments(["--storage", "sqlite://", "--study", "s", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------


def test_the_objective_is_the_mean_final_validation_accuracy():
    setting = {"learning_rate": 0.1, "step_every": 2, "step_factor": 0.5}
    config = search.TrialConfig(first_seed=4, n_seeds=3, epochs=5, n_validation=80)
    (score,) = search.score_settings([setting], config)
    direct = replicas.train(
        learning_rate=0.1,
        step_every=2,
        step_factor=0.5,
        seeds=[4, 5, 6],
        epochs=5,
        semantics="keras",
        split=data.carve_validation(data.make_blobs_split(), 80),
        progress=False,
    ).frame
    assert score == pytest.approx(direct[direct["epoch"] == 5]["val_accuracy"].mean())
    # Scores are shares of 80 validation points, averaged over 3 seeds.
    assert (score * 80 * 3) == pytest.approx(round(score * 80 * 3))


def test_the_search_never_sees_the_test_set():
    full = data.make_blobs_split()
    val, evaluation = search.validation_split(100), search.evaluation_split(100)
    assert len(val.x_train) == 400 and len(val.x_test) == 100
    # The validation points are training points, none of them a test point.
    assert np.array_equal(val.x_test, full.x_train[400:])
    assert not (val.x_test[:, None, :] == full.x_test[None, :, :]).all(axis=2).any()
    # The final check trains on the very same samples and measures on the test half.
    assert np.array_equal(evaluation.x_train, val.x_train)
    assert np.array_equal(evaluation.x_test, full.x_test)


def test_a_setting_scores_the_same_alone_and_in_a_batch():
    settings = [
        {"learning_rate": 0.2, "step_every": 1, "step_factor": 0.5},
        {"learning_rate": 0.05, "step_every": 2, "step_factor": 0.1},
        {"learning_rate": 0.3, "step_every": 3, "step_factor": 0.5},
    ]
    together = search.score_settings(settings, TINY)
    alone = [search.score_settings([s], TINY)[0] for s in settings]
    assert together == alone
    assert len(set(together)) > 1  # the settings differ, so do the scores


# --------------------------------------------------------------------------------------
# Studies
# --------------------------------------------------------------------------------------


def grid_points(trials):
    return sorted(tuple(t.params[p] for p in search.PARAMS) for t in trials)


def test_a_grid_study_visits_every_point_once_and_stops():
    grid = search.create_study(None, "g", space=SMALL_SPACE, config=TINY)
    trials = search.run_batched(grid, n_trials=50, batch_size=3)
    expected = sorted(
        (lr, every, factor)
        for lr in SMALL_SPACE.learning_rates
        for every in SMALL_SPACE.step_everys
        for factor in SMALL_SPACE.step_factors
    )
    assert len(trials) == SMALL_SPACE.size == 8
    assert grid_points(grid.study.trials) == expected
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in grid.study.trials)


@pytest.mark.parametrize("sampler", ["grid", "random"])
def test_batching_changes_nothing_for_grid_and_random(sampler):
    def run(batch_size):
        made = search.create_study(
            None,
            sampler,
            sampler=sampler,
            sampler_seed=5,
            space=SMALL_SPACE,
            config=TINY,
        )
        return search.run_batched(made, n_trials=6, batch_size=batch_size)

    one_by_one, batched = run(1), run(6)
    assert [t.params for t in one_by_one] == [t.params for t in batched]
    assert [t.value for t in one_by_one] == [t.value for t in batched]


def test_tpe_sees_a_batch_only_after_it_is_told():
    made = search.create_study(
        None, "t", sampler="tpe", space=SMALL_SPACE, config=TINY, sampler_seed=2
    )
    trials = search.run_batched(made, n_trials=15, batch_size=5)
    assert len(trials) == 15 and len({t.number for t in trials}) == 15
    # Each batch's trials were asked before any of them was told.
    starts = [t.datetime_start for t in trials]
    ends = [t.datetime_complete for t in trials]
    for b in range(3):
        batch = slice(5 * b, 5 * b + 5)
        assert max(starts[batch]) <= min(ends[batch])


def test_a_study_reloads_from_storage_with_its_sampler_space_and_config(tmp_path):
    storage = search.default_storage(tmp_path)
    config = search.TrialConfig(first_seed=7, n_seeds=2, epochs=3, n_validation=50)
    made = search.create_study(
        storage, "r", sampler="random", sampler_seed=9, space=SMALL_SPACE, config=config
    )
    search.run_batched(made, n_trials=2)
    loaded = search.load_study(storage, "r")
    assert loaded.space == SMALL_SPACE and loaded.config == config
    assert isinstance(loaded.study.sampler, optuna.samplers.RandomSampler)
    assert [t.value for t in loaded.study.trials] == [
        t.value for t in made.study.trials
    ]
    # Stop and resume: the reloaded study goes on from where the first one stopped.
    search.run_batched(loaded, n_trials=3)
    assert [t.number for t in search.load_study(storage, "r").study.trials] == list(
        range(5)
    )


# --------------------------------------------------------------------------------------
# Workers sharing one SQLite study
# --------------------------------------------------------------------------------------


def start_workers(storage, study, trials_each, n_workers, seeds=None):
    environment = {**os.environ, "TQDM_DISABLE": "1"}
    processes = []
    for k in range(n_workers):
        command = [
            sys.executable,
            "-m",
            "lrtools.search_worker",
            "--storage",
            storage,
            "--study",
            study,
            "--trials",
            str(trials_each),
        ]
        if seeds is not None:
            command += ["--sampler-seed", str(seeds[k])]
        processes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(out)
    return reports


def reported_numbers(reports):
    """Trial numbers each worker printed (``trial <number> <value>`` lines)."""
    return [
        [int(line.split()[1]) for line in out.splitlines() if line.startswith("trial ")]
        for out in reports
    ]


def test_workers_share_one_sqlite_study(tmp_path):
    storage = search.default_storage(tmp_path)
    made = search.create_study(storage, "shared", space=SMALL_SPACE, config=TINY)
    reports = start_workers(storage, "shared", trials_each=4, n_workers=2)
    trials = search.load_study(storage, "shared").study.trials
    numbers = reported_numbers(reports)
    # Every trial recorded once, by exactly one worker; none lost; all complete; the
    # grid covered once.
    assert sorted(n for worker in numbers for n in worker) == list(range(8))
    assert all(len(worker) == 4 for worker in numbers)
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len(set(grid_points(trials))) == 8
    # The workers' values are those of the same grid trained in one batch.
    in_process = search.create_study(None, "same", space=SMALL_SPACE, config=TINY)
    search.run_batched(in_process, n_trials=8)
    by_point = {tuple(t.params[p] for p in search.PARAMS): t.value for t in trials}
    for t in in_process.study.trials:
        assert by_point[tuple(t.params[p] for p in search.PARAMS)] == t.value
    assert made.study.study_name == "shared"


def test_final_accuracy_of_the_weights_is_the_engines_own():
    settings = [{"learning_rate": 0.1, "step_every": 2, "step_factor": 0.5}] * 2
    result = search.train_settings(settings, [0, 3, 8], epochs=4)
    val = search.validation_split()
    ours = search.final_accuracy(result, val.x_test, val.y_test)
    assert ours.shape == (2, 3)
    np.testing.assert_allclose(ours, search.final_scores(result), atol=1e-6)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        search.final_accuracy(result, val.x_test[:, :1], val.y_test)
