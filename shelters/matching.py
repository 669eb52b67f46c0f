"""Matching requests to beds: build the problem document, solve, hold what was chosen.

The solver (:mod:`placement`) sees a snapshot of free beds; holding re-checks each chosen
unit under lock. When another transaction took the beds in between, the request is solved
again against the new snapshot, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from placement import Problem, Solution, solve
from placement.problem import Region as ProblemRegion
from placement.problem import Weights
from placement.solution import Reason
from shelters import runs
from shelters.bridge import open_shelters_for_solver, request_for_solver
from shelters.cases import housed_at, kept_apart, profile_of
from shelters.errors import CapacityExceeded, Conflict, InvalidInput
from shelters.identity import Principal
from shelters.lifecycle import declined_shelters, expire_holds, get_request
from shelters.models import (
    Case,
    MatchingRun,
    Placement,
    PlacementRequest,
    Region,
    utcnow,
)


@dataclass(frozen=True)
class MatchResult:
    placement: Placement | None
    reasons: list[Reason] = field(default_factory=list)
    solution: Solution | None = None
    problem: Problem | None = None


def _separations(
    session: Session, case_ids: Sequence[int]
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """Who each case must be kept apart from, and where those cases are now.

    Returns, per case, the cases it is separated from in either direction, and the shelters
    where any of them is held or housed right now.
    """
    apart = kept_apart(session, case_ids)
    housed = housed_at(session, set().union(*apart.values()))
    blocked = {
        case: {shelter for other in others for shelter in housed.get(other, ())}
        for case, others in apart.items()
    }
    return apart, blocked


def build_problem(
    session: Session,
    requests: Sequence[PlacementRequest],
    *,
    majority_age: int,
    weights: Weights | None = None,
    shelter_id: int | None = None,
) -> Problem:
    """The problem document for these requests against every open shelter's free beds now.

    With ``shelter_id``, against that one shelter only (a caseworker asking for a shelter they
    chose); it must be open (``InvalidInput`` otherwise).

    A separated case that is already housed or held somewhere puts that shelter in the
    request's ``separated_shelters``; separated cases that are both in the problem are linked
    by ``separate_from`` so the solver keeps them apart. Shelters that declined a request and
    were not lifted are its ``declined_shelters``.
    """
    cases = {
        c.id: c
        for c in session.scalars(select(Case).where(Case.id.in_([r.case_id for r in requests])))
    }
    apart, blocked = _separations(session, sorted(cases))
    declined = declined_shelters(session, [r.id for r in requests])
    request_of_case = {r.case_id: r for r in requests}
    problem_requests = []
    for r in sorted(requests, key=lambda r: r.id):
        case = cases[r.case_id]
        profile = profile_of(case)
        separate = sorted(
            str(request_of_case[c].id) for c in apart[case.id] if c in request_of_case
        )
        solver_request = request_for_solver(
            profile,
            request_id=str(r.id),
            priority=r.priority,
            preferred_regions=r.preferred_regions,
            separate_from=separate,
            declined_shelter_ids=declined[r.id],
            separated_shelter_ids=blocked[case.id],
        )
        problem_requests.append(solver_request)
    regions = session.scalars(select(Region).order_by(Region.code))
    shelters = open_shelters_for_solver(session)
    if shelter_id is not None:
        shelters = tuple(s for s in shelters if s.id == str(shelter_id))
        if not shelters:
            raise InvalidInput("shelter {shelter_id} is not an open shelter", shelter_id=shelter_id)
    return Problem(
        majority_age=majority_age,
        regions=tuple(ProblemRegion(code=g.code, lat=g.lat, lon=g.lon) for g in regions),
        shelters=shelters,
        requests=tuple(problem_requests),
        weights=weights or Weights(),
    )


def match_request(
    session: Session,
    principal: Principal,
    request_id: int,
    *,
    snapshot: Callable[[], Session],
    majority_age: int,
    hold_ttl: timedelta,
    time_limit_s: float = 2.0,
    seed: int = 0,
    shelter_id: int | None = None,
) -> MatchResult:
    """Solve for one pending request against current free beds and hold what is found.

    ``shelter_id`` asks for that shelter only: beds are held there if it can take the whole
    group now, otherwise nothing is held and the reasons are that shelter's.

    The first solve works on a ``snapshot`` session, so no lock is held while the solver runs
    (on SQLite the write lock would stop every other writer); the hold then happens in
    ``session`` under lock. If the beds were taken meanwhile, or expired holds were released,
    the request is solved again inside ``session``, where the locks keep the view current.
    The match is stored as a run of one with its problem, solution and outcome. Returns the
    new ``proposed`` placement, or no placement and the solver's reasons.
    """
    with snapshot() as read:
        problem = _single_problem(read, principal, request_id, majority_age, shelter_id)
    solution = solve(problem, time_limit_s=time_limit_s, seed=seed)
    released = expire_holds(session)
    request = get_request(session, principal, request_id, lock=True)
    if request.status != "pending":
        raise Conflict(
            "request {request_id} is {status}, not pending",
            request_id=request_id,
            status=request.status,
        )
    params = runs.RunParameters(
        time_limit_s=time_limit_s, seed=seed, dry_run=False, request_ids=(request.id,)
    )
    run = MatchingRun(
        kind="single",
        status="running",
        started_by=principal.user_id,
        started_at=utcnow(),
        parameters=params.as_json(),
    )
    session.add(run)
    session.flush()
    for attempt in range(1, runs.MAX_ATTEMPTS + 1):
        if attempt > 1 or (released and not solution.assignments):
            problem = build_problem(
                session, [request], majority_age=majority_age, shelter_id=shelter_id
            )
            solution = solve(problem, time_limit_s=time_limit_s, seed=seed)
        try:
            with session.begin_nested():
                placements = runs.apply(session, run, solution, hold_ttl=hold_ttl)
        except CapacityExceeded:
            continue
        runs.finish(session, run, problem, solution, placements, attempts=attempt)
        placement = placements.get(request.id)
        reasons = [] if placement else list(solution.unplaced[0].reasons)
        return MatchResult(placement, reasons, solution, problem)
    # Other transactions took the chosen beds between snapshot and hold every time.
    runs.fail(session, run.id, "capacity_taken", attempts=runs.MAX_ATTEMPTS)
    # Not tied to a shelter: the beds went at whichever shelter was chosen each time.
    return MatchResult(None, [Reason("capacity_taken", ())])


def _single_problem(
    session: Session,
    principal: Principal,
    request_id: int,
    majority_age: int,
    shelter_id: int | None = None,
) -> Problem:
    request = get_request(session, principal, request_id)
    if request.status != "pending":
        raise Conflict(
            "request {request_id} is {status}, not pending",
            request_id=request_id,
            status=request.status,
        )
    return build_problem(session, [request], majority_age=majority_age, shelter_id=shelter_id)
