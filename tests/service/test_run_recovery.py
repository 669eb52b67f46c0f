"""A batch run survives the crash of the server that queued or held it (real processes).

Each test starts `refuge serve`, leaves a run queued or running in it, kills the server with
SIGKILL, starts another, and sees the run finished with exactly one set of proposals and its
slot among the active runs free again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from service.auth import issue_token
from service.db import make_engine
from shelters import identity
from shelters.audit import SYSTEM_ROLE, AuditEvent
from shelters.identity import Role
from shelters.models import Placement
from shelters.runs import COMMIT_LOCK_KEY
from tests.conftest import TEST_SECRET, make_settings
from tests.servers import server
from tests.service.test_no_overbooking import BEDS, seed

# Beats twice a second, presumed dead after two seconds; one active run at a time, so that a
# run still counted as active is seen in the 503 of the next.
FAST = {
    "REFUGE_RUN_HEARTBEAT_S": "0.5",
    "REFUGE_RUN_HEARTBEAT_TIMEOUT_S": "2",
    "REFUGE_MAX_ACTIVE_RUNS": "1",
}
RUN = {"time_limit_s": 20, "seed": 5}


def admin_headers(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            admin = identity.create_user(
                session,
                username="crash-admin",
                password="a long enough password",
                role=Role.ADMIN,
                organization_id=None,
            )
        token, _ = issue_token(make_settings(url), TEST_SECRET, admin)
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def wait_for(
    base: str, run_id: int, headers: dict[str, str], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        run: dict[str, Any] = httpx.get(
            f"{base}/api/v1/matching-runs/{run_id}", headers=headers, timeout=10
        ).json()
        if done(run):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.2)


def start_run(base: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/matching-runs", json=RUN, headers=headers, timeout=30)


def proposals_by_run(url: str) -> dict[int | None, int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Placement.matching_run_id, func.count()).group_by(Placement.matching_run_id)
            ).all()
            return {run_id: int(n) for run_id, n in rows}
    finally:
        engine.dispose()


def system_entries(url: str, run_id: int) -> list[str]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(
                    select(AuditEvent.action)
                    .where(
                        AuditEvent.resource_type == "matching_run",
                        AuditEvent.resource_id == str(run_id),
                        AuditEvent.actor_role == SYSTEM_ROLE,
                    )
                    .order_by(AuditEvent.seq)
                )
            )
    finally:
        engine.dispose()


def test_a_run_queued_by_a_killed_server_is_finished_by_the_next(
    fresh_database: str, tmp_path: Path
) -> None:
    seed(fresh_database)
    headers = admin_headers(fresh_database)
    # The first server only queues runs, so that it dies with one queued, deterministically.
    queue_only = FAST | {"REFUGE_RUN_WORKER": "false"}
    with server(fresh_database, tmp_path / "first.log", env=queue_only) as first:
        queued = start_run(first.base, headers)
        assert queued.status_code == 202, queued.text
        run_id = queued.json()["id"]
        assert start_run(first.base, headers).status_code == 503  # its slot is taken
        first.kill()
    with server(fresh_database, tmp_path / "second.log", env=FAST) as second:
        run = wait_for(second.base, run_id, headers, lambda r: r["status"] in ("done", "failed"))
        assert (run["status"], run["claims"], run["placed_count"]) == ("done", 1, BEDS)
        assert proposals_by_run(fresh_database) == {run_id: BEDS}
        assert start_run(second.base, headers).status_code == 202  # the slot is free


def waiting_for_commit_lock(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND classid = 0 AND objid = :key AND objsubid = 1"
                    ),
                    {"key": COMMIT_LOCK_KEY},
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_run_held_by_a_server_killed_at_its_commit_is_requeued_and_proposed_once(
    fresh_database: str, tmp_path: Path
) -> None:
    seed(fresh_database)
    headers = admin_headers(fresh_database)
    blocker_engine = create_engine(fresh_database, isolation_level="AUTOCOMMIT")
    try:
        with blocker_engine.connect() as blocker:
            # Hold the commit lock: the run solves, then waits to write, running, when killed.
            blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": COMMIT_LOCK_KEY})
            with server(fresh_database, tmp_path / "first.log", env=FAST) as first:
                started = start_run(first.base, headers)
                assert started.status_code == 202, started.text
                run_id = started.json()["id"]
                deadline = time.monotonic() + 120
                while not waiting_for_commit_lock(fresh_database):
                    assert time.monotonic() < deadline, "the run never came to its commit"
                    time.sleep(0.2)
                held = wait_for(first.base, run_id, headers, lambda r: r["status"] == "running")
                assert held["claims"] == 1
                # Still beating while it waits for the lock: the process is alive.
                wait_for(
                    first.base,
                    run_id,
                    headers,
                    lambda r: r["heartbeat_at"] != held["heartbeat_at"],
                )
                first.kill()
            # The dead server's transaction can never commit: only its client could say so.
            blocker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": COMMIT_LOCK_KEY})
    finally:
        blocker_engine.dispose()
    with server(fresh_database, tmp_path / "second.log", env=FAST) as second:
        run = wait_for(second.base, run_id, headers, lambda r: r["status"] in ("done", "failed"))
        assert (run["status"], run["claims"], run["placed_count"]) == ("done", 2, BEDS)
        assert proposals_by_run(fresh_database) == {run_id: BEDS}
        assert system_entries(fresh_database, run_id) == ["requeue"]
        assert start_run(second.base, headers).status_code == 202  # the slot is free
