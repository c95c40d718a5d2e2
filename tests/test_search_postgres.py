"""One study, several worker processes, a real PostgreSQL server.

What a class or a lab does: one server, a study created once, workers started on many
machines with the same ``postgresql+psycopg2://`` URL. The fixture starts a throwaway
server (Debian's ``postgresql`` package: ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin``) in a temporary directory, listening on
127.0.0.1 only, on a free port, and removes it afterwards. ``initdb`` refuses to run as
root, so as root the server runs as the ``postgres`` user the package creates. Without
the binaries the test is skipped, saying so; CI installs them (``.ci/run``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest
from test_search import SMALL_SPACE, TINY, reported_numbers, start_workers

from lrtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    found = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    return max(found, key=lambda d: int(d.parent.name), default=None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user(command: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
            "(Debian: apt-get install postgresql)"
        )
    user = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as postgres
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and no runuser to drop to 'postgres'")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="lrtools-pg-"))
    cluster, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if user:
        shutil.chown(root, user)
        shutil.chown(socket_dir, user)
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        subprocess.run(
            as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(cluster),
                    "-U",
                    "lrtools",
                    "--auth=trust",  # loopback only, and gone after the test
                    "--no-sync",
                ],
                user,
            ),
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -F"
        subprocess.run(
            as_server_user(
                [pg_ctl, "-D", str(cluster), "-o", options, "-w", "-t", "30"]
                + ["-l", str(root / "server.log"), "start"],
                user,
            ),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg2://lrtools@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            as_server_user([pg_ctl, "-D", str(cluster), "-m", "fast", "stop"], user),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_workers_on_a_postgres_study_record_every_trial_once(postgres_url):
    # Random search: each worker its own sampler seed (grid workers would share one).
    made = search.create_study(
        postgres_url, "class", sampler="random", space=SMALL_SPACE, config=TINY
    )
    reports = start_workers(
        postgres_url, "class", trials_each=4, n_workers=3, seeds=[11, 12, 13]
    )
    trials = search.load_study(postgres_url, "class").study.trials
    numbers = reported_numbers(reports)
    # 12 trials asked, 12 recorded, each by one worker: none lost, none twice.
    assert all(len(worker) == 4 for worker in numbers)
    assert sorted(n for worker in numbers for n in worker) == list(range(12))
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(0 <= t.value <= 1 for t in trials)
    # Different seeds, different settings: the workers did not repeat each other.
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12
    assert made.study.study_name == "class"
