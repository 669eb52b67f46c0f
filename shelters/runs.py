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
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

import placement
from placement import Problem, Solution
from placement.problem import Weights, problem_canonical_json
from shelters import access, audit, redaction
from shelters.errors import Conflict, InvalidInput, NotFound, ServiceBusy
from shelters.identity import Principal, Role
from shelters.lifecycle import hold_beds
from shelters.models import MatchingRun, Placement, PlacementRequest, RunOutcome, utcnow
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


def reason_codes(reasons: Iterable[str]) -> list[str]:
    """The distinct reason codes of a solver explanation, without shelter or request ids.

    ``shelter:12:member_not_admitted:A`` → ``member_not_admitted``;
    ``shelter:12:missing_service:legal_aid`` → ``missing_service:legal_aid``;
    ``shelter:12:capacity_taken:77`` → ``capacity_taken``; ``no_shelters`` stays.
    """
    codes = set()
    for reason in reasons:
        parts = reason.split(":")
        if parts[0] == "shelter" and len(parts) >= 3:
            parts = parts[2:]
        code = parts[0]
        if code == "missing_service" and len(parts) > 1:
            code = f"missing_service:{parts[1]}"
        codes.add(code)
    return sorted(codes)


def create_run(
    session: Session, principal: Principal, params: RunParameters, *, max_active: int
) -> MatchingRun:
    """Queue a batch run; ``ServiceBusy`` when ``max_active`` runs are queued or running.

    Listed requests must exist and be pending.
    """
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
            raise InvalidInput(f"unknown requests: {missing}")
        not_pending = sorted(i for i, s in found.items() if s != "pending")
        if not_pending:
            raise InvalidInput(f"requests not pending: {not_pending}")
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
        raise InvalidInput(f"unknown weight: {exc}") from None


def parameters_of(run: MatchingRun) -> RunParameters:
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


def start(session: Session, run_id: int) -> MatchingRun | None:
    """Mark a queued run running; None when it is no longer queued (given up as abandoned)."""
    run = session.get(MatchingRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"matching run {run_id} not found")
    if run.status != "queued":
        return None
    run.status = "running"
    run.started_at = utcnow()
    session.flush()
    return run


def fail_abandoned(session: Session, *, before: datetime, reason: str) -> int:
    """Fail every queued or running run that began before ``before``; returns how many.

    A run's process may die (a restart, a crash) and leave it queued or running for ever,
    where it would also count against the limit of active runs. The caller picks ``before``
    far beyond the longest a run can take; a job that still finishes later finds its run
    failed and writes nothing. Each run given up goes into the audit log as the system's when
    the transaction commits.
    """
    stmt = (
        select(MatchingRun)
        .where(
            MatchingRun.status.in_(ACTIVE),
            func.coalesce(MatchingRun.started_at, MatchingRun.created_at) < before,
        )
        .order_by(MatchingRun.id)
        .with_for_update(skip_locked=True)
    )
    failed = 0
    for run in session.scalars(stmt):
        run.status = "failed"
        run.error = reason[:500]
        run.finished_at = utcnow()
        audit.defer_system(session, "give_up", "matching_run", run.id)
        failed += 1
    session.flush()
    return failed


def pending_requests(session: Session, params: RunParameters) -> list[PlacementRequest]:
    """The requests a run solves: the listed ones still pending, or every pending one."""
    stmt = select(PlacementRequest).where(PlacementRequest.status == "pending")
    if params.request_ids is not None:
        stmt = stmt.where(PlacementRequest.id.in_(params.request_ids))
    return list(session.scalars(stmt.order_by(PlacementRequest.id)))


def take_commit_lock(session: Session) -> None:
    """Only one non-dry run commits at a time, in every process (SQLite: its write lock)."""
    if session.get_bind().dialect.name == "postgresql":
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
            raise Conflict(f"request {request_id} is no longer pending")
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
    unplaced = {u.request: list(u.reasons) for u in solution.unplaced}
    for request in problem.requests:
        request_id = int(request.id)
        reasons = unplaced.get(request.id, [])
        placed_here = placements.get(request_id)
        session.add(
            RunOutcome(
                run_id=run.id,
                request_id=request_id,
                organization_id=organizations[request_id],
                placed=request.id not in unplaced,
                placement_id=placed_here.id if placed_here else None,
                reasons=reasons,
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


def fail(session: Session, run_id: int, error: str, *, attempts: int) -> None:
    """Mark a run failed with a short reason (no details of people, no stack trace)."""
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
        raise NotFound(f"matching run {run_id} not found")
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
            raise NotFound(f"matching run {run_id} not found")
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
        raise Conflict(f"matching run {run_id} has no problem yet ({run.status})")
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
        raise Conflict(f"matching run {run_id} has no solution yet ({run.status})")
    return redaction.solution_view(
        run.solution,
        run.problem,
        located=access.located_shelters(session, principal),
        own=_own_request_ids(session, principal, run),
        rename=lambda request_id: _opaque(secret, run.id, request_id),
    )
