"""Claims, heartbeats and stale runs, on a clock the tests set (no waiting)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from shelters import runs
from shelters.audit import SYSTEM_ROLE
from shelters.identity import Role
from shelters.models import MatchingRun
from tests.conftest import World

T0 = datetime(2026, 12, 1, 12, 0, 0).astimezone()
TIMEOUT = timedelta(seconds=60)


@pytest.fixture
def queued(world: World, db: Session) -> list[MatchingRun]:
    admin = world.user(Role.ADMIN)
    params = runs.RunParameters(time_limit_s=5, seed=3, dry_run=False).as_json()
    made = [
        MatchingRun(kind="batch", status="queued", started_by=admin.id, parameters=params)
        for _ in range(2)
    ]
    # A single match is a run of one, written whole by its request: never claimed.
    made.append(MatchingRun(kind="single", status="running", started_by=admin.id))
    db.add_all(made)
    db.flush()
    return made


def test_a_queued_run_is_claimed_by_one_worker_only(db: Session, queued: list[MatchingRun]) -> None:
    run = queued[0]
    first = runs.claim(db, run.id, worker_id="w-a", now=T0)
    second = runs.claim(db, run.id, worker_id="w-b", now=T0)
    assert first is not None
    assert (first.worker_id, first.number, first.parameters["seed"]) == ("w-a", 1, 3)
    assert second is None
    db.refresh(run)
    assert (run.status, run.worker_id, run.claims, run.heartbeat_at) == ("running", "w-a", 1, T0)


def test_claim_next_takes_the_oldest_queued_batch_run_until_none_is_left(
    db: Session, queued: list[MatchingRun]
) -> None:
    taken = [runs.claim_next(db, worker_id="w-a", now=T0) for _ in range(3)]
    assert [c.run_id if c else None for c in taken] == [queued[0].id, queued[1].id, None]
    assert runs.queued_run_ids(db, limit=5) == []


def test_a_beat_counts_only_for_the_worker_that_holds_the_run(
    db: Session, queued: list[MatchingRun]
) -> None:
    run = queued[0]
    runs.claim(db, run.id, worker_id="w-a", now=T0)
    assert runs.beat(db, [run.id], worker_id="w-b", now=T0 + TIMEOUT) == set()
    db.refresh(run)
    assert run.heartbeat_at == T0
    assert runs.beat(db, [run.id], worker_id="w-a", now=T0 + TIMEOUT) == {run.id}
    db.refresh(run)
    assert run.heartbeat_at == T0 + TIMEOUT


def test_a_run_is_stale_only_once_its_heartbeat_is_older_than_the_timeout(
    db: Session, queued: list[MatchingRun]
) -> None:
    run = queued[0]
    runs.claim(db, run.id, worker_id="w-a", now=T0)
    just_in_time = T0 + TIMEOUT - timedelta(seconds=1)
    assert runs.stale_run_ids(db, before=just_in_time - TIMEOUT) == []
    late = T0 + TIMEOUT + timedelta(seconds=1)
    assert runs.stale_run_ids(db, before=late - TIMEOUT) == [run.id]
    # Queued runs are never stale: they wait for a claim, however old.
    assert queued[1].id not in runs.stale_run_ids(db, before=late + timedelta(days=30))


def test_a_stale_run_is_requeued_then_failed_once_claimed_max_claims_times(
    db: Session, queued: list[MatchingRun]
) -> None:
    run = queued[0]
    now = T0
    for number in (1, 2):
        claimed = runs.claim(db, run.id, worker_id=f"w-{number}", now=now)
        assert claimed is not None
        assert claimed.number == number
        now += TIMEOUT + timedelta(seconds=1)
        recovered = runs.recover_stale(db, before=now - TIMEOUT, max_claims=2, now=now)
        db.refresh(run)
        if number == 1:
            assert recovered == runs.Recovered(requeued=(run.id,))
            assert (run.status, run.worker_id, run.heartbeat_at) == ("queued", None, None)
        else:
            assert recovered == runs.Recovered(failed=(run.id,))
            assert (run.status, run.finished_at) == ("failed", now)
            assert run.error == "abandoned: its process stopped, 2 times"
    deferred = db.info.get("refuge_audit_deferred") or []
    assert [(r.action, r.actor_role, r.resource_id) for r in deferred] == [
        ("requeue", SYSTEM_ROLE, run.id),
        ("give_up", SYSTEM_ROLE, run.id),
    ]


def test_only_the_claim_that_holds_the_run_may_write_it(
    db: Session, queued: list[MatchingRun]
) -> None:
    run = queued[0]
    old = runs.claim(db, run.id, worker_id="w-a", now=T0)
    assert old is not None
    assert runs.lock_claimed(db, old) is not None
    later = T0 + 2 * TIMEOUT
    runs.recover_stale(db, before=later - TIMEOUT, max_claims=3, now=later)
    # Claimed again by the same process: the old claim is still not the one that holds it.
    new = runs.claim(db, run.id, worker_id="w-a", now=later)
    assert new is not None
    assert runs.lock_claimed(db, old) is None
    assert runs.lock_claimed(db, new) is not None
    runs.fail(db, run.id, "internal error", attempts=0, claim=old)
    db.refresh(run)
    assert run.status == "running"


@pytest.mark.parametrize(("claims", "action"), [(1, "requeue"), (2, "requeue"), (3, "fail")])
def test_after_a_lost_claim_a_run_is_requeued_until_max_claims(claims: int, action: str) -> None:
    assert runs.after_lost_claim(claims, max_claims=3) == action


@pytest.mark.postgres
def test_the_commit_lock_ends_a_transaction_left_idle_by_a_dead_process(db: Session) -> None:
    runs.take_commit_lock(db, idle_timeout_s=60)
    assert db.scalar(text("SHOW idle_in_transaction_session_timeout")) == "1min"
