"""One worker of a step-decay search: ``python -m lrtools.search_worker``.

Start as many as you like, on one machine or on many, against one storage URL: each
loads the study made by :func:`lrtools.search.create_study`, runs its trials one at a
time and records them in the storage, where the others see them. It prints one line
per trial, ``trial <number> <value>``, for the record::

    python -m lrtools.search_worker --storage sqlite:///decay.db --study decay \\
        --trials 8
    python -m lrtools.search_worker \\
        --storage postgresql+psycopg2://student@lab-server:5432/searches \\
        --study decay --trials 8 --sampler-seed 3

Grid studies stop by themselves when the grid is done. Near the end, workers that
start at the same moment may give one grid point a second trial (Optuna's documented
behaviour in distributed runs); giving the workers ``--trials`` that add up to the
grid's size avoids it.
"""

from __future__ import annotations

import argparse
import sys


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lrtools.search_worker",
        description="Run trials of a step-decay study (lrtools.search) from storage.",
    )
    parser.add_argument(
        "--storage",
        required=True,
        help="database URL, e.g. sqlite:///decay.db or "
        "postgresql+psycopg2://user@host:5432/db",
    )
    parser.add_argument("--study", required=True, help="the study's name")
    parser.add_argument(
        "--trials", type=int, default=1, help="trials to run (>= 1, default 1)"
    )
    parser.add_argument(
        "--sampler-seed",
        type=int,
        default=None,
        help="seed of this worker's sampler (>= 0); default: the study's. Give each "
        "random or TPE worker its own; keep the study's for a grid",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="PyTorch threads (>= 1, default 1)"
    )
    arguments = parser.parse_args(argv)
    if arguments.trials < 1:
        parser.error(f"--trials must be an integer >= 1, got {arguments.trials}")
    if arguments.threads < 1:
        parser.error(f"--threads must be an integer >= 1, got {arguments.threads}")
    if arguments.sampler_seed is not None and arguments.sampler_seed < 0:
        parser.error(
            f"--sampler-seed must be an integer >= 0, got {arguments.sampler_seed}"
        )
    return arguments


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    import optuna
    import torch

    from lrtools import search

    torch.set_num_threads(arguments.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = search.load_study(
        arguments.storage, arguments.study, sampler_seed=arguments.sampler_seed
    )

    def report(study, trial):
        print(f"trial {trial.number} {trial.value!r}", flush=True)

    loaded.study.optimize(
        search.objective(loaded), n_trials=arguments.trials, callbacks=[report]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
