"""Batch matching runs: start, poll, and read back what was solved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

from service.audit import set_resource_id
from service.auth import allow
from service.deps import UnitOfWorkRoute, WriteDb
from service.idempotency import IdempotencyDep
from service.problems import problem_responses
from service.ratelimit import RUN_LIMIT
from service.routes import API_PREFIX
from service.schemas import Id, MatchingRunIn, MatchingRunOut, PageOut
from service.settings import Settings
from shelters import redaction, runs
from shelters.identity import Principal, Role
from shelters.models import MatchingRun
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["matching runs"], route_class=UnitOfWorkRoute)
READERS = (Role.ADMIN, Role.CASEWORKER, Role.FUNDER)
DOCUMENT_READERS = (Role.ADMIN, Role.CASEWORKER)


def run_out(run: MatchingRun, principal: Principal) -> MatchingRunOut:
    """A run's summary, cut to what this caller may see (``shelters.redaction.run_summary``)."""
    return MatchingRunOut(**redaction.run_summary(run, principal))


def dispatch(request: Request, run_id: int) -> None:
    """Hand a queued run to this process's solvers (a background task, after the commit)."""
    request.app.state.run_worker.dispatch(run_id)


@router.post(
    "/matching-runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MatchingRunOut,
    dependencies=[RUN_LIMIT],
    responses=problem_responses(401, 403, 409, 422, 429, 503),
)
def start_run(
    body: MatchingRunIn,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    idem: IdempotencyDep,
    db: WriteDb,
) -> Any:
    """Queue a batch over all pending requests (or the listed ones); poll the run for its end."""
    if idem.replay is not None:
        return idem.replay
    settings: Settings = request.app.state.settings
    weights = body.weights.model_dump(exclude_none=True) if body.weights else None
    run = runs.create_run(
        db,
        principal,
        runs.RunParameters(
            time_limit_s=body.time_limit_s,
            seed=body.seed,
            dry_run=body.dry_run,
            request_ids=tuple(sorted(set(body.request_ids))) if body.request_ids else None,
            weights=weights,
        ),
        max_active=settings.max_active_runs,
        max_time_limit_s=settings.max_run_time_limit_s,
    )
    set_resource_id(request, run.id)
    # Handed over only after this request's transaction has committed the queued run.
    background.add_task(dispatch, request, run.id)
    response.headers["Location"] = f"{API_PREFIX}/matching-runs/{run.id}"
    return idem.remember(db, 202, run_out(run, principal))


@router.get("/matching-runs", responses=problem_responses(401, 403, 422))
def list_runs(
    principal: Annotated[Principal, allow(*READERS)],
    db: WriteDb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> PageOut[MatchingRunOut]:
    """Runs you may see, newest first (caseworkers: those that touched your requests)."""
    page = runs.list_runs(db, principal, limit=limit, cursor=cursor)
    return PageOut(items=[run_out(r, principal) for r in page.items], next_cursor=page.next_cursor)


@router.get("/matching-runs/{run_id}", responses=problem_responses(401, 403, 404))
def read_run(
    run_id: Id, principal: Annotated[Principal, allow(*READERS)], db: WriteDb
) -> MatchingRunOut:
    """One run's summary: status, counts and timings."""
    return run_out(runs.get_run(db, principal, run_id), principal)


@router.get("/matching-runs/{run_id}/problem", responses=problem_responses(401, 403, 404, 409))
def read_problem(
    run_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*DOCUMENT_READERS)],
    db: WriteDb,
) -> dict[str, Any]:
    """The problem document as solved (other organisations' requests as opaque ids)."""
    return runs.problem_for(db, principal, run_id, secret=request.app.state.secret_key)


@router.get("/matching-runs/{run_id}/solution", responses=problem_responses(401, 403, 404, 409))
def read_solution(
    run_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*DOCUMENT_READERS)],
    db: WriteDb,
) -> dict[str, Any]:
    """The solution document (other organisations' requests as opaque ids)."""
    return runs.solution_for(db, principal, run_id, secret=request.app.state.secret_key)
