"""Matching runs: solve many requests at once, apply atomically, keep everything for replay.

A batch run is prepared (problem built from a snapshot, in a short read), solved with no
transaction open, then applied in one write transaction that re-checks every chosen unit under
lock. If anything changed meanwhile so that a proposal no longer fits, nothing of the run is
written and the caller solves again against a fresh snapshot, a bounded number of times. A
single-request match is a run of one. These functions only flush; the job or the request's
unit of work commits.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session

import placement
from placement import Problem, Solution
from placement.problem import Weights, problem_canonical_json
from placement.solution import Reason, reason_doc
from shelters import access, audit, redaction
from shelters.errors import Conflict, InvalidInput, NotFound, ServiceBusy
from shelters.identity import Principal, Role
from shelters.lifecycle import hold_beds
from shelters.models import (
    MatchingRun,
    Placement,
    PlacementRequest,
    RunOutcome,
    Scenario,
    utcnow,
)
from shelters.pagination import Page, paginate

# One key for "a non-dry run is committing" across every process on one PostgreSQL.
COMMIT_LOCK_KEY = 0x5245_4647
MAX_ATTEMPTS = 3
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class RunParameters:
    """What a run was asked to do; stored with it so that it can be replayed."""

    time_limit_s: float
    seed: int
    dry_run: bool
    request_ids: tuple[int, ...] | None = None
    weights: Mapping[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "time_limit_s": self.time_limit_s,
            "seed": self.seed,
            "dry_run": self.dry_run,
            "request_ids": list(self.request_ids) if self.request_ids is not None else None,
            "weights": dict(self.weights) if self.weights is not None else None,
            "method": "cp-sat",
            "workers": 1,
        }


@dataclass(frozen=True)
class Claim:
    """One process's hold on a batch run: ``number`` counts the claims of the run so far."""

    run_id: int
    worker_id: str
    number: int
    parameters: Mapping[str, Any]


def reason_codes(reasons: Iterable[Reason]) -> list[str]:
    """The distinct reason codes of a solver explanation, without member refs or ids.

    ``member_not_admitted:A`` → ``member_not_admitted`` (likewise ``guardian_unit_mismatch``);
    ``missing_service:legal_aid`` stays whole; ``capacity_taken``, ``no_shelters`` stay.
    """
    codes = set()
    for reason in reasons:
        name, _, _ = reason.code.partition(":")
        codes.add(reason.code if name == "missing_service" else name)
    return sorted(codes)


def create_run(
    session: Session,
    principal: Principal,
    params: RunParameters,
    *,
    max_active: int,
    max_time_limit_s: float,
) -> MatchingRun:
    """Queue a batch run; ``ServiceBusy`` when ``max_active`` runs are queued or running.

    The time limit may be at most ``max_time_limit_s``; listed requests must exist and be
    pending.
    """
    if params.time_limit_s > max_time_limit_s:
        raise InvalidInput("time_limit_s may be at most {limit}", limit=max_time_limit_s)
    active = session.scalar(
        select(func.count()).select_from(MatchingRun).where(MatchingRun.status.in_(ACTIVE))
    )
    if (active or 0) >= max_active:
        raise ServiceBusy("matching runs are at their limit; try again shortly", retry_after_s=5)
    if params.request_ids is not None:
        found = dict(
            session.execute(
                select(PlacementRequest.id, PlacementRequest.status).where(
                    PlacementRequest.id.in_(params.request_ids)
                )
            ).all()
        )
        missing = sorted(set(params.request_ids) - set(found))
        if missing:
            raise InvalidInput("unknown requests: {missing}", missing=missing)
        not_pending = sorted(i for i, s in found.items() if s != "pending")
        if not_pending:
            raise InvalidInput("requests not pending: {ids}", ids=not_pending)
    if params.weights is not None:
        weights_of(params)
    run = MatchingRun(
        kind="batch",
        status="queued",
        dry_run=params.dry_run,
        started_by=principal.user_id,
        parameters=params.as_json(),
        solver_version=placement.__version__,
    )
    session.add(run)
    session.flush()
    return run


def weights_of(params: RunParameters | Mapping[str, Any]) -> Weights:
    """The solver weights a run asked for (defaults where it named none)."""
    raw = params.weights if isinstance(params, RunParameters) else params.get("weights")
    try:
        return Weights(**(dict(raw) if raw else {}))
    except TypeError as exc:
        raise InvalidInput("unknown weight: {weight}", weight=exc) from None


def parameters_of(run: MatchingRun | Claim) -> RunParameters:
    """The stored parameters of a run."""
    p = run.parameters
    ids = p.get("request_ids")
    return RunParameters(
        time_limit_s=float(p["time_limit_s"]),
        seed=int(p["seed"]),
        dry_run=bool(p["dry_run"]),
        request_ids=tuple(ids) if ids is not None else None,
        weights=p.get("weights"),
    )


def claim(session: Session, run_id: int, *, worker_id: str, now: datetime) -> Claim | None:
    """Take a queued batch run for ``worker_id``: running, one claim more, heartbeat ``now``.

    None when the run is not (or no longer) a queued batch run: another process claimed it,
    or it ended. A conditional UPDATE, so two processes that try at once cannot both win
    (PostgreSQL: the row lock of the UPDATE; SQLite: the write transaction).
    """
    claimed = session.execute(
        update(MatchingRun)
        .where(
            MatchingRun.id == run_id,
            MatchingRun.kind == "batch",
            MatchingRun.status == "queued",
        )
        .values(
            status="running",
            worker_id=worker_id,
            heartbeat_at=now,
            started_at=now,
            claims=MatchingRun.claims + 1,
        )
        .returning(MatchingRun.claims, MatchingRun.parameters)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        return None
    number, parameters = claimed
    return Claim(run_id=run_id, worker_id=worker_id, number=number, parameters=parameters)


def queued_run_ids(session: Session, *, limit: int) -> list[int]:
    """The oldest queued batch runs (at most ``limit``), for a process with idle solvers."""
    return list(
        session.scalars(
            select(MatchingRun.id)
            .where(MatchingRun.kind == "batch", MatchingRun.status == "queued")
            .order_by(MatchingRun.id)
            .limit(limit)
        )
    )


def claim_next(session: Session, *, worker_id: str, now: datetime) -> Claim | None:
    """Claim the oldest queued batch run; None when there is none left to claim.

    PostgreSQL skips the rows another transaction is claiming (``SKIP LOCKED``), so processes
    polling at once each take a different run instead of queueing behind one another.
    """
    candidates = session.scalars(
        select(MatchingRun.id)
        .where(MatchingRun.kind == "batch", MatchingRun.status == "queued")
        .order_by(MatchingRun.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).all()
    for run_id in candidates:
        taken = claim(session, run_id, worker_id=worker_id, now=now)
        if taken is not None:
            return taken
    return None


Claimed = type[MatchingRun] | type[Scenario]
"""The kinds of work the run worker claims: rows with ``status``, ``worker_id``,
``heartbeat_at``, ``started_at``, ``created_at`` and ``claims``."""


def beat_claimed(
    session: Session, model: Claimed, ids: Iterable[int], *, worker_id: str, now: datetime
) -> set[int]:
    """Mark the rows of ``model`` that ``worker_id`` still holds alive at ``now``; their ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    alive = session.scalars(
        update(model)
        .where(model.id.in_(wanted), model.worker_id == worker_id, model.status == "running")
        .values(heartbeat_at=now)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return set(alive)


def stale_claimed(model: Claimed, before: datetime) -> tuple[Any, ...]:
    """Conditions of running rows whose last sign of life is older than ``before``."""
    last_seen = func.coalesce(model.heartbeat_at, model.started_at, model.created_at)
    return (model.status == "running", last_seen < before)


def beat(session: Session, run_ids: Iterable[int], *, worker_id: str, now: datetime) -> set[int]:
    """Mark the runs ``worker_id`` still holds alive at ``now``; returns their ids.

    A run missing from the answer was taken from this worker (requeued or failed when its
    heartbeat went stale); its job will find so before it writes anything.
    """
    return beat_claimed(session, MatchingRun, run_ids, worker_id=worker_id, now=now)


def after_lost_claim(claims: int, *, max_claims: int) -> str:
    """What becomes of a run whose process stopped beating: ``requeue`` or ``fail``.

    A run is requeued while it has been claimed fewer than ``max_claims`` times: solving again
    is safe (a run writes all its proposals in one transaction, or nothing). A run that every
    claim of it outlived its process may be what kills them (a problem too large for memory),
    so it fails rather than take down one process after another.
    """
    return "requeue" if claims < max_claims else "fail"


def _stale(before: datetime) -> Any:
    return (MatchingRun.kind == "batch", *stale_claimed(MatchingRun, before))


def stale_run_ids(session: Session, *, before: datetime) -> list[int]:
    """Running batch runs whose last heartbeat is older than ``before`` (a read)."""
    return list(
        session.scalars(select(MatchingRun.id).where(*_stale(before)).order_by(MatchingRun.id))
    )


@dataclass(frozen=True)
class Recovered:
    """Runs taken from processes that stopped beating."""

    requeued: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


def recover_stale(
    session: Session, *, before: datetime, max_claims: int, now: datetime
) -> Recovered:
    """Requeue or fail every running batch run whose heartbeat is older than ``before``.

    Either way the run stops counting against the limit of active runs at once (a failed run
    is no longer active; a requeued one is claimed by the next process with an idle solver).
    A job of the old claim that is still alive after all finds the run no longer its own when
    it comes to write, and writes nothing. Rows another transaction holds are skipped
    (PostgreSQL): a locked run is being written by someone alive. Each run requeued or given
    up goes into the audit log as the system's when the transaction commits.
    """
    stmt = (
        select(MatchingRun)
        .where(*_stale(before))
        .order_by(MatchingRun.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    requeued: list[int] = []
    failed: list[int] = []
    for run in session.scalars(stmt):
        if after_lost_claim(run.claims, max_claims=max_claims) == "requeue":
            run.status = "queued"
            run.worker_id = None
            run.heartbeat_at = None
            audit.defer_system(session, "requeue", "matching_run", run.id)
            requeued.append(run.id)
        else:
            run.status = "failed"
            run.error = f"abandoned: its process stopped, {run.claims} times"
            run.finished_at = now
            audit.defer_system(session, "give_up", "matching_run", run.id)
            failed.append(run.id)
    session.flush()
    return Recovered(tuple(requeued), tuple(failed))


def lock_claimed(session: Session, claim: Claim) -> MatchingRun | None:
    """The run locked for writing, if ``claim`` still holds it; None when it was taken away.

    Call it inside the write transaction that applies the run (after the commit lock): the
    check and the writes then commit together, so one claim at most ever writes a run.
    """
    run = session.get_one(MatchingRun, claim.run_id, with_for_update=True, populate_existing=True)
    if run.status != "running" or (run.worker_id, run.claims) != (claim.worker_id, claim.number):
        return None
    return run


def pending_requests(session: Session, params: RunParameters) -> list[PlacementRequest]:
    """The requests a run solves: the listed ones still pending, or every pending one."""
    stmt = select(PlacementRequest).where(PlacementRequest.status == "pending")
    if params.request_ids is not None:
        stmt = stmt.where(PlacementRequest.id.in_(params.request_ids))
    return list(session.scalars(stmt.order_by(PlacementRequest.id)))


def take_commit_lock(session: Session, *, idle_timeout_s: float | None = None) -> None:
    """Only one non-dry run commits at a time, in every process (SQLite: its write lock).

    ``idle_timeout_s`` (PostgreSQL): the transaction is ended by the server when it waits
    that long for its client between two statements. A process that dies with its machine
    sends no goodbye, and its transaction would otherwise hold the lock, for every run, until
    TCP gives up on it (hours).
    """
    if session.get_bind().dialect.name == "postgresql":
        if idle_timeout_s is not None:
            session.execute(
                text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)"),
                {"ms": str(max(1, round(idle_timeout_s * 1000)))},
            )
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": COMMIT_LOCK_KEY})


def apply(
    session: Session,
    run: MatchingRun,
    solution: Solution,
    *,
    hold_ttl: timedelta,
) -> dict[int, Placement]:
    """Hold the beds of every assignment, or raise and write nothing (the caller rolls back).

    Raises ``CapacityExceeded`` when a unit no longer has the beds, ``Conflict`` when a request
    is no longer pending.
    """
    placements: dict[int, Placement] = {}
    if run.dry_run:
        return placements
    for assignment in solution.assignments:
        request_id = int(assignment.request)
        request = session.get(
            PlacementRequest, request_id, with_for_update=True, populate_existing=True
        )
        if request is None or request.status != "pending":
            raise Conflict("request {request_id} is no longer pending", request_id=request_id)
        placements[request_id] = hold_beds(
            session,
            request,
            shelter_id=int(assignment.shelter),
            beds={bed.member: int(bed.unit) for bed in assignment.beds},
            ttl=hold_ttl,
            actor_id=run.started_by,
            matching_run_id=run.id,
        )
    return placements


def finish(
    session: Session,
    run: MatchingRun,
    problem: Problem,
    solution: Solution,
    placements: Mapping[int, Placement],
    *,
    attempts: int,
) -> None:
    """Store the documents and every request's outcome, and mark the run done."""
    organizations = dict(
        session.execute(
            select(PlacementRequest.id, PlacementRequest.organization_id).where(
                PlacementRequest.id.in_([int(r.id) for r in problem.requests])
            )
        ).all()
    )
    now = utcnow()
    unplaced = {u.request: u.reasons for u in solution.unplaced}
    for request in problem.requests:
        request_id = int(request.id)
        reasons = unplaced.get(request.id, ())
        placed_here = placements.get(request_id)
        session.add(
            RunOutcome(
                run_id=run.id,
                request_id=request_id,
                organization_id=organizations[request_id],
                placed=request.id not in unplaced,
                placement_id=placed_here.id if placed_here else None,
                reasons=[reason_doc(r) for r in reasons],
                reason_codes=reason_codes(reasons),
                recorded_at=now,
            )
        )
    # The normalized document, from the canonical bytes the digest was computed on.
    run.problem = orjson.loads(problem_canonical_json(problem))
    run.solution = solution.to_document()
    run.problem_digest = solution.problem_digest
    run.solver_version = solution.solver.version
    run.wall_s = solution.wall_s
    run.attempts = attempts
    run.requests_count = len(problem.requests)
    run.placed_count = len(solution.assignments)
    run.status = "done"
    run.finished_at = now
    session.flush()


def fail(
    session: Session, run_id: int, error: str, *, attempts: int, claim: Claim | None = None
) -> None:
    """Mark a run failed with a short reason (no details of people, no stack trace).

    With ``claim``, only while that claim still holds the run.
    """
    if claim is not None:
        run = lock_claimed(session, claim)
    else:
        run = session.get(MatchingRun, run_id, with_for_update=True)
    if run is None:
        return
    run.status = "failed"
    run.error = error[:500]
    run.attempts = attempts
    run.finished_at = utcnow()
    session.flush()


# --- reading runs ---------------------------------------------------------------------------


def _touches(organization_id: int | None) -> Any:
    return exists().where(
        RunOutcome.run_id == MatchingRun.id, RunOutcome.organization_id == organization_id
    )


def list_runs(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> Page[MatchingRun]:
    """Runs the caller may see, newest first.

    Admins and funders see all (funders as summaries only); caseworkers see the runs that
    touched their organisation's requests.
    """
    stmt = select(MatchingRun)
    if principal.role is Role.CASEWORKER:
        stmt = stmt.where(_touches(principal.organization_id))
    elif principal.role not in (Role.ADMIN, Role.FUNDER):
        raise NotFound("no matching runs")
    return paginate(session, stmt, MatchingRun.id, limit=limit, cursor=cursor, descending=True)


def get_run(session: Session, principal: Principal, run_id: int) -> MatchingRun:
    """A run the caller may see; ``NotFound`` otherwise."""
    run = session.get(MatchingRun, run_id)
    if run is None:
        raise NotFound("matching run {run_id} not found", run_id=run_id)
    if principal.role is Role.CASEWORKER:
        touched = session.scalar(
            select(RunOutcome.id)
            .where(
                RunOutcome.run_id == run.id,
                RunOutcome.organization_id == principal.organization_id,
            )
            .limit(1)
        )
        if touched is None:
            raise NotFound("matching run {run_id} not found", run_id=run_id)
    return run


def _opaque(secret: str, run_id: int, request_id: str) -> str:
    digest = hmac.new(
        secret.encode(), f"run:{run_id}:request:{request_id}".encode(), hashlib.sha256
    )
    return "other-" + digest.hexdigest()[:16]


def _own_request_ids(session: Session, principal: Principal, run: MatchingRun) -> set[str] | None:
    if principal.role is Role.ADMIN:
        return None
    rows = session.scalars(
        select(RunOutcome.request_id).where(
            RunOutcome.run_id == run.id, RunOutcome.organization_id == principal.organization_id
        )
    )
    return {str(r) for r in rows}


def problem_for(
    session: Session, principal: Principal, run_id: int, *, secret: str
) -> dict[str, Any]:
    """The stored problem document as this caller may see it (:mod:`shelters.redaction`).

    Admins get the document exactly as solved. Others get locations withheld where
    :func:`shelters.access.located_shelters` says so and other organisations' requests left
    out, with a ``redacted`` marker. Funders never get it (the caller's route refuses them).
    """
    run = get_run(session, principal, run_id)
    if run.problem is None:
        raise Conflict(
            "matching run {run_id} has no problem yet ({status})", run_id=run_id, status=run.status
        )
    return redaction.problem_view(
        run.problem,
        located=access.located_shelters(session, principal),
        own=_own_request_ids(session, principal, run),
        rename=lambda request_id: _opaque(secret, run.id, request_id),
    )


def solution_for(
    session: Session, principal: Principal, run_id: int, *, secret: str
) -> dict[str, Any]:
    """The stored solution document as this caller may see it (:mod:`shelters.redaction`)."""
    run = get_run(session, principal, run_id)
    if run.solution is None or run.problem is None:
        raise Conflict(
            "matching run {run_id} has no solution yet ({status})", run_id=run_id, status=run.status
        )
    return redaction.solution_view(
        run.solution,
        run.problem,
        located=access.located_shelters(session, principal),
        own=_own_request_ids(session, principal, run),
        rename=lambda request_id: _opaque(secret, run.id, request_id),
    )
