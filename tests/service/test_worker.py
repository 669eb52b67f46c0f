"""``refuge worker`` processes beside a server that only queues (real processes, PostgreSQL).

The run is held at its commit by taking the commit lock from the test, so "mid-run" is a state
the test can wait for rather than a moment it must hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text

from shelters.runs import COMMIT_LOCK_KEY
from tests.conftest import TEST_SECRET
from tests.servers import server
from tests.service.test_no_overbooking import BEDS, seed
from tests.service.test_run_recovery import (
    FAST,
    admin_headers,
    proposals_by_run,
    start_run,
    system_entries,
    wait_for,
    waiting_for_commit_lock,
)

pytestmark = pytest.mark.postgres
REFUGE = str(Path(sys.executable).with_name("refuge"))
QUEUE_ONLY = FAST | {"REFUGE_RUN_WORKER": "false", "REFUGE_MAX_ACTIVE_RUNS": "4"}


@contextlib.contextmanager
def worker(url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = os.environ | FAST | {"REFUGE_DATABASE_URL": url, "REFUGE_SECRET_KEY": TEST_SECRET}
    with log.open("w") as out:
        process = subprocess.Popen(
            [REFUGE, "worker", "--concurrency", "1"], env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 60
            while "worker started" not in log.read_text():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@contextlib.contextmanager
def commit_lock(url: str) -> Iterator[Connection]:
    """Hold the runs' commit lock until the block ends or ``release`` is called."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": COMMIT_LOCK_KEY})
            yield conn
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
    finally:
        engine.dispose()


def release(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": COMMIT_LOCK_KEY})


def wait_until_at_commit(url: str) -> None:
    deadline = time.monotonic() + 120
    while not waiting_for_commit_lock(url):
        assert time.monotonic() < deadline, "the run never came to its commit"
        time.sleep(0.2)


def test_two_workers_one_killed_mid_run_the_run_finishes_once(
    fresh_database: str, tmp_path: Path
) -> None:
    seed(fresh_database)
    headers = admin_headers(fresh_database)
    with (
        server(fresh_database, tmp_path / "serve.log", env=QUEUE_ONLY) as api,
        commit_lock(fresh_database) as lock,
        worker(fresh_database, tmp_path / "a.log") as a,
    ):
        started = start_run(api.base, headers)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        wait_until_at_commit(fresh_database)  # worker A solved it and waits to write
        held = wait_for(api.base, run_id, headers, lambda r: r["status"] == "running")
        assert held["claims"] == 1
        with worker(fresh_database, tmp_path / "b.log") as b:
            a.kill()  # SIGKILL mid-run: A's transaction dies with it
            a.wait(timeout=30)
            release(lock)
            run = wait_for(api.base, run_id, headers, lambda r: r["status"] in ("done", "failed"))
            assert b.poll() is None  # B is still serving the queue
    assert (run["status"], run["claims"], run["placed_count"]) == ("done", 2, BEDS)
    assert proposals_by_run(fresh_database) == {run_id: BEDS}  # one set of proposals
    assert system_entries(fresh_database, run_id) == ["requeue"]


def test_sigterm_lets_a_worker_finish_the_run_it_holds(fresh_database: str, tmp_path: Path) -> None:
    seed(fresh_database)
    headers = admin_headers(fresh_database)
    log = tmp_path / "worker.log"
    with server(fresh_database, tmp_path / "serve.log", env=QUEUE_ONLY) as api:
        with commit_lock(fresh_database) as lock, worker(fresh_database, log) as process:
            started = start_run(api.base, headers)
            assert started.status_code == 202, started.text
            run_id = started.json()["id"]
            wait_until_at_commit(fresh_database)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # let the signal land while the run still waits for the lock
            assert process.poll() is None  # it waits for the run it holds
            release(lock)
            assert process.wait(timeout=60) == 0
        run = wait_for(api.base, run_id, headers, lambda r: r["status"] in ("done", "failed"))
    assert (run["status"], run["claims"], run["placed_count"]) == ("done", 1, BEDS)
    assert proposals_by_run(fresh_database) == {run_id: BEDS}
    assert "worker stopped" in log.read_text()
