"""What-if capacity scenarios: re-solve a period's stored matching runs with changed capacity.

A scenario takes the non-dry batch and single runs that finished in a period, in time order,
applies its changes to each run's stored problem document (a copy: the stored document is
never touched), solves the changed problem with the run's own seed, time limit and workers,
and answers how many people would have been placed, before and after, by priority, member
status and region of origin, with small counts suppressed (``shelters.suppression``).

Counting across runs (the approximation the README states):

- a request appears in every run until it is placed; it is counted once (distinct requests,
  described by the latest run it appears in);
- *before*: placed when some base run's stored solution assigned it; *after*: placed when some
  scenario run assigned it;
- a request the scenario placed in an earlier run is taken out of later runs' problems;
- beds a scenario run uses beyond what the base run used in the same unit (a unit the scenario
  added, or a real unit it filled more) stay taken for the rest of the period (stays last
  months); beds the scenario left empty that the base run filled are not handed back, so the
  gain is if anything under-stated.

Scenario runs never write placements, holds, run outcomes, unmet-demand rows or inbox entries:
they only read matching runs and write ``scenarios`` and ``scenario_runs``. These functions
only flush; the job or the request's unit of work commits.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import placement
from placement import Problem, Solution, solve
from placement.eligibility import member_status
from placement.expansion import BedOption, plan_beds
from placement.problem import ProblemError, problem_digest
from shelters import audit, catalogue
from shelters.errors import N_, Conflict, InvalidInput, NotFound, ServiceBusy
from shelters.identity import Principal, Role
from shelters.models import (
    SECURITY_LEVELS,
    MatchingRun,
    Region,
    Scenario,
    ScenarioRun,
    Shelter,
    Unit,
    utcnow,
)
from shelters.pagination import Page, paginate
from shelters.reports import Disclosure, Period
from shelters.runs import after_lost_claim, beat_claimed, stale_claimed
from shelters.suppression import Relation, suppress

ACTIVE = ("queued", "running")
ChangeKind = Literal["add_units", "remove_unit", "remove_shelter", "change_grant"]
CHANGE_KINDS: tuple[ChangeKind, ...] = (
    "add_units",
    "remove_unit",
    "remove_shelter",
    "change_grant",
)
MAX_BEDS_PER_CHANGE = 1000
VIRTUAL_PREFIX = "scenario-"


class ScenarioError(Conflict):
    """A scenario cannot go on (its stored runs do not allow it); the job fails it with this."""


# --- changes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change a scenario applies to every base run's problem.

    ``add_units``: ``beds`` more beds with admission rules ``admits`` (the problem document's
    rule shape; a ``unit_type`` is resolved to its rules when the scenario is created), either
    as a new virtual shelter at ``region``'s centroid with the given ``services``,
    ``languages``, ``security_level`` and ``wheelchair_accessible``, or as a new unit of the
    existing shelter ``shelter_id`` (the shelter's own conditions apply). ``remove_unit`` and
    ``remove_shelter`` take ``unit_id`` / ``shelter_id`` out of each problem. ``change_grant``:
    ``beds`` (±) funded beds at ``shelter_id``, see :func:`change_grant`.
    """

    kind: ChangeKind
    beds: int = 0
    region: str | None = None
    shelter_id: int | None = None
    unit_id: int | None = None
    unit_type: str | None = None
    admits: tuple[Mapping[str, Any], ...] = ()
    services: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    security_level: str = "standard"
    wheelchair_accessible: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "beds": self.beds,
            "region": self.region,
            "shelter_id": self.shelter_id,
            "unit_id": self.unit_id,
            "unit_type": self.unit_type,
            "admits": [dict(rule) for rule in self.admits],
            "services": list(self.services),
            "languages": list(self.languages),
            "security_level": self.security_level,
            "wheelchair_accessible": self.wheelchair_accessible,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Change:
        return cls(
            kind=doc["kind"],
            beds=int(doc.get("beds") or 0),
            region=doc.get("region"),
            shelter_id=doc.get("shelter_id"),
            unit_id=doc.get("unit_id"),
            unit_type=doc.get("unit_type"),
            admits=tuple(doc.get("admits") or ()),
            services=tuple(doc.get("services") or ()),
            languages=tuple(doc.get("languages") or ()),
            security_level=doc.get("security_level") or "standard",
            wheelchair_accessible=bool(doc.get("wheelchair_accessible")),
        )


def _check_rules(admits: Sequence[Mapping[str, Any]], index: int) -> None:
    """Refuse rules the problem document would refuse, naming the change."""
    doc = {
        "schema": "refuge.placement-problem/1",
        "regions": [{"code": "r", "lat": 0, "lon": 0}],
        "shelters": [
            {
                "id": "s",
                "region": "r",
                "units": [{"id": "u", "free_beds": 1, "admits": [dict(r) for r in admits]}],
            }
        ],
        "requests": [],
    }
    try:
        Problem.from_document(doc)
    except ProblemError as exc:
        raise InvalidInput(
            "changes[{index}].admits: {problem}", index=index, problem=exc.message
        ) from None


def check_changes(
    session: Session, changes: Sequence[Change], *, majority_age: int, max_changes: int
) -> list[Change]:
    """The changes, checked against the registry and with unit types resolved to rules.

    Raises ``InvalidInput`` naming the change: none or more than ``max_changes``, an unknown
    region, shelter, unit or unit type, a unit given both or neither as ``unit_type`` and
    ``admits``, ``add_units`` naming both or neither of ``region`` and ``shelter_id``, beds out
    of range, unknown services or languages.
    """
    if not changes:
        raise InvalidInput("a scenario needs at least one change")
    if len(changes) > max_changes:
        raise InvalidInput("a scenario may have at most {limit} changes", limit=max_changes)
    regions = set(session.scalars(select(Region.code)))
    resolved: list[Change] = []
    for index, change in enumerate(changes):
        if change.kind not in CHANGE_KINDS:
            raise InvalidInput(
                "changes[{index}]: unknown kind {kind}", index=index, kind=change.kind
            )
        if change.kind == "add_units" and (change.region is None) == (change.shelter_id is None):
            raise InvalidInput(
                "changes[{index}]: name either a region or a shelter_id", index=index
            )
        shelter = session.get(Shelter, change.shelter_id) if change.shelter_id is not None else None
        if change.shelter_id is not None and shelter is None:
            raise InvalidInput(
                "changes[{index}]: unknown shelter {shelter_id}",
                index=index,
                shelter_id=change.shelter_id,
            )
        if change.kind == "add_units":
            resolved.append(_check_add(change, index, regions, majority_age))
        elif change.kind == "remove_unit":
            if change.unit_id is None or session.get(Unit, change.unit_id) is None:
                raise InvalidInput(
                    "changes[{index}]: unknown unit {unit_id}", index=index, unit_id=change.unit_id
                )
            resolved.append(change)
        else:
            if shelter is None:
                raise InvalidInput("changes[{index}]: name a shelter_id", index=index)
            if change.kind == "change_grant" and not (
                change.beds != 0 and abs(change.beds) <= MAX_BEDS_PER_CHANGE
            ):
                raise InvalidInput(
                    "changes[{index}]: beds must be from -{limit} to {limit} and not 0",
                    index=index,
                    limit=MAX_BEDS_PER_CHANGE,
                )
            resolved.append(change)
    return resolved


def _check_add(change: Change, index: int, regions: set[str], majority_age: int) -> Change:
    if (change.region is None) == (change.shelter_id is None):
        raise InvalidInput("changes[{index}]: name either a region or a shelter_id", index=index)
    if change.region is not None and change.region not in regions:
        raise InvalidInput(
            "changes[{index}]: unknown region {region}", index=index, region=change.region
        )
    if not 1 <= change.beds <= MAX_BEDS_PER_CHANGE:
        raise InvalidInput(
            "changes[{index}]: beds must be from 1 to {limit}",
            index=index,
            limit=MAX_BEDS_PER_CHANGE,
        )
    if (change.unit_type is None) == (not change.admits):
        raise InvalidInput("changes[{index}]: give either a unit_type or admits", index=index)
    unknown = sorted(set(change.services) - set(catalogue.SERVICES))
    if unknown:
        raise InvalidInput(
            "changes[{index}]: unknown services: {services}", index=index, services=unknown
        )
    if change.security_level not in SECURITY_LEVELS:
        raise InvalidInput(
            "changes[{index}]: unknown security level {level}",
            index=index,
            level=change.security_level,
        )
    if any(len(code) != 2 or not code.isalpha() or not code.islower() for code in change.languages):
        raise InvalidInput("changes[{index}]: languages are ISO 639-1 codes", index=index)
    admits: tuple[Mapping[str, Any], ...] = change.admits
    if change.unit_type is not None:
        if change.unit_type not in catalogue.UNIT_TYPES:
            raise InvalidInput(
                "changes[{index}]: unknown unit type {unit_type}",
                index=index,
                unit_type=change.unit_type,
            )
        admits = tuple(catalogue.unit_type_rules(change.unit_type, majority_age))
    _check_rules(admits, index)
    return Change(
        kind="add_units",
        beds=change.beds,
        region=change.region,
        shelter_id=change.shelter_id,
        unit_type=change.unit_type,
        admits=admits,
        services=tuple(sorted(set(change.services))),
        languages=tuple(sorted(set(change.languages))),
        security_level=change.security_level,
        wheelchair_accessible=change.wheelchair_accessible,
    )


# --- applying changes to one problem document (pure) --------------------------------------------


@dataclass
class Carry:
    """What earlier scenario runs of the period leave behind for the later ones.

    ``placed``: requests the scenario placed (taken out of later problems); ``taken``: beds per
    unit id the scenario used beyond the base run in the same unit (still occupied later).
    """

    placed: set[str] = field(default_factory=set)
    taken: dict[str, int] = field(default_factory=dict)

    def after(self, before: Solution, after: Solution) -> None:
        """Carry one run's outcome forward (see the module's counting rules)."""
        self.placed.update(a.request for a in after.assignments)
        used_before = _beds_by_unit(before)
        for unit, beds in _beds_by_unit(after).items():
            extra = beds - used_before.get(unit, 0)
            if extra > 0:
                self.taken[unit] = self.taken.get(unit, 0) + extra


def _beds_by_unit(solution: Solution) -> dict[str, int]:
    used: dict[str, int] = {}
    for assignment in solution.assignments:
        for bed in assignment.beds:
            used[bed.unit] = used.get(bed.unit, 0) + 1
    return used


def virtual_id(index: int) -> str:
    """The id of the shelter (or unit) added by change ``index`` (0-based)."""
    return f"{VIRTUAL_PREFIX}{index + 1}"


def change_grant(units: list[dict[str, Any]], beds: int) -> None:
    """Apply ± ``beds`` funded beds to a shelter's units (the documented rule).

    More beds go one at a time to the shelter's units in document order, round robin; fewer
    beds are taken one at a time from the unit with the most free beds (the first of equals),
    never below zero. A shelter without units is left as it is.
    """
    if not units:
        return
    if beds > 0:
        for i in range(beds):
            units[i % len(units)]["free_beds"] += 1
        return
    for _ in range(-beds):
        fullest = max(units, key=lambda u: u["free_beds"])
        if fullest["free_beds"] == 0:
            return
        fullest["free_beds"] -= 1


def changed_document(
    base: Mapping[str, Any],
    changes: Sequence[Change],
    carry: Carry,
    *,
    centroids: Mapping[str, tuple[float, float]],
) -> dict[str, Any]:
    """A copy of the stored problem ``base`` with ``changes`` and ``carry`` applied.

    Changes apply in order; one naming a shelter or unit absent from this problem (closed at
    the time, say) changes nothing in it. ``centroids`` supplies a region the document lacks.
    Then the requests in ``carry.placed`` are taken out and ``carry.taken`` beds are subtracted
    from their units (never below zero).
    """
    doc = copy.deepcopy(dict(base))
    doc.pop("redacted", None)
    shelters: list[dict[str, Any]] = doc["shelters"]
    region_codes = {r["code"] for r in doc["regions"]}
    for index, change in enumerate(changes):
        vid = virtual_id(index)
        if change.kind == "add_units":
            unit = {"id": vid, "free_beds": change.beds, "admits": [dict(r) for r in change.admits]}
            if change.region is not None:
                if change.region not in region_codes:
                    lat, lon = centroids[change.region]
                    doc["regions"].append({"code": change.region, "lat": lat, "lon": lon})
                    region_codes.add(change.region)
                shelters.append(
                    {
                        "id": vid,
                        "region": change.region,
                        "location": None,
                        "security_level": change.security_level,
                        "wheelchair_accessible": change.wheelchair_accessible,
                        "services": list(change.services),
                        "languages": list(change.languages),
                        "status": "open",
                        "units": [unit],
                    }
                )
            else:
                for shelter in shelters:
                    if shelter["id"] == str(change.shelter_id):
                        shelter["units"].append(unit)
        elif change.kind == "remove_shelter":
            shelters[:] = [s for s in shelters if s["id"] != str(change.shelter_id)]
        elif change.kind == "remove_unit":
            for shelter in shelters:
                shelter["units"] = [u for u in shelter["units"] if u["id"] != str(change.unit_id)]
        else:
            for shelter in shelters:
                if shelter["id"] == str(change.shelter_id):
                    change_grant(shelter["units"], change.beds)
    doc["requests"] = [r for r in doc["requests"] if r["id"] not in carry.placed]
    for shelter in shelters:
        for unit in shelter["units"]:
            taken = carry.taken.get(unit["id"], 0)
            if taken:
                unit["free_beds"] = max(0, unit["free_beds"] - taken)
    return doc


# --- creating, listing, reading --------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Limits of one deployment (service settings)."""

    max_active: int
    max_runs: int
    max_changes: int
    majority_age: int


def _base_runs_stmt(when: Period) -> Any:
    return (
        MatchingRun.status == "done",
        MatchingRun.dry_run.is_(False),
        MatchingRun.kind.in_(("batch", "single")),
        MatchingRun.problem.is_not(None),
        MatchingRun.finished_at >= when.start,
        MatchingRun.finished_at < when.stop,
    )


def base_run_ids(session: Session, when: Period) -> list[int]:
    """The period's runs a scenario replays: done, not dry, finished in it, in time order."""
    return list(
        session.scalars(
            select(MatchingRun.id)
            .where(*_base_runs_stmt(when))
            .order_by(MatchingRun.finished_at, MatchingRun.id)
        )
    )


def create_scenario(
    session: Session,
    principal: Principal,
    *,
    when: Period,
    changes: Sequence[Change],
    limits: Limits,
    kind: Literal["what_if", "bed_budget"] = "what_if",
    extra: Mapping[str, Any] | None = None,
) -> Scenario:
    """Queue a scenario over ``when``'s stored runs; ``ServiceBusy`` when too many are active.

    ``InvalidInput`` when the changes do not check (:func:`check_changes`), the period has no
    stored runs, or more than ``limits.max_runs``. A bed_budget scenario passes its plan's
    changes and ``extra`` (budget, costs).
    """
    active = session.scalar(
        select(func.count()).select_from(Scenario).where(Scenario.status.in_(ACTIVE))
    )
    if (active or 0) >= limits.max_active:
        raise ServiceBusy("scenarios are at their limit; try again shortly", retry_after_s=10)
    checked = (
        check_changes(
            session, changes, majority_age=limits.majority_age, max_changes=limits.max_changes
        )
        if kind == "what_if"
        else list(changes)
    )
    count = len(base_run_ids(session, when))
    if count == 0:
        raise InvalidInput(
            "no matching runs finished from {first} to {last}",
            first=when.first.isoformat(),
            last=when.last.isoformat(),
        )
    if count > limits.max_runs:
        raise InvalidInput(
            "the period has {count} matching runs; a scenario may replay at most {limit}",
            count=count,
            limit=limits.max_runs,
        )
    scenario = Scenario(
        kind=kind,
        status="queued",
        parameters={
            "from": when.first.isoformat(),
            "to": when.last.isoformat(),
            "changes": [c.as_json() for c in checked],
            "seeds": "stored",
            **(extra or {}),
        },
        runs_total=count,
        runs_done=0,
        started_by=principal.user_id,
        organization_id=principal.organization_id,
        solver_version=placement.__version__,
    )
    session.add(scenario)
    session.flush()
    return scenario


def _may_see(principal: Principal) -> Any:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.FUNDER:
        return Scenario.organization_id == principal.organization_id
    raise NotFound("no scenarios")


def list_scenarios(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> Page[Scenario]:
    """Scenarios the caller may see, newest first: admins all, funders their organisation's."""
    stmt = select(Scenario).where(_may_see(principal))
    return paginate(session, stmt, Scenario.id, limit=limit, cursor=cursor, descending=True)


def get_scenario(session: Session, principal: Principal, scenario_id: int) -> Scenario:
    """A scenario the caller may see; ``NotFound`` otherwise (existence is not leaked)."""
    scenario = session.get(Scenario, scenario_id)
    if scenario is None or not (
        principal.role is Role.ADMIN
        or (principal.role is Role.FUNDER and scenario.organization_id == principal.organization_id)
    ):
        raise NotFound("scenario {scenario_id} not found", scenario_id=scenario_id)
    return scenario


def scenario_solution(
    session: Session, principal: Principal, scenario_id: int, run_id: int
) -> dict[str, Any]:
    """The scenario's solution document for base run ``run_id`` (admins only, the routes say)."""
    get_scenario(session, principal, scenario_id)
    row = session.scalar(
        select(ScenarioRun).where(
            ScenarioRun.scenario_id == scenario_id, ScenarioRun.base_run_id == run_id
        )
    )
    if row is None:
        raise NotFound(
            "scenario {scenario_id} has no run for matching run {run_id}",
            scenario_id=scenario_id,
            run_id=run_id,
        )
    return dict(row.solution)


def changes_of(scenario: Scenario) -> list[Change]:
    """The stored (checked, resolved) changes of a scenario."""
    return [Change.from_json(c) for c in scenario.parameters.get("changes", [])]


# --- claims (the rules of shelters/runs.py's, for scenarios) ---------------------------------


@dataclass(frozen=True)
class ScenarioClaim:
    """One process's hold on a scenario; ``number`` counts its claims so far."""

    scenario_id: int
    worker_id: str
    number: int


def claim(
    session: Session, scenario_id: int | None, *, worker_id: str, now: datetime
) -> ScenarioClaim | None:
    """Take a queued scenario (None: the oldest) for ``worker_id``; None when none is left.

    A conditional UPDATE, so two processes that try at once cannot both win.
    """
    if scenario_id is None:
        candidates = session.scalars(
            select(Scenario.id)
            .where(Scenario.status == "queued")
            .order_by(Scenario.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).all()
        if not candidates:
            return None
        scenario_id = candidates[0]
    claimed = session.execute(
        update(Scenario)
        .where(Scenario.id == scenario_id, Scenario.status == "queued")
        .values(
            status="running",
            worker_id=worker_id,
            heartbeat_at=now,
            started_at=now,
            runs_done=0,
            claims=Scenario.claims + 1,
        )
        .returning(Scenario.claims)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        return None
    return ScenarioClaim(scenario_id=scenario_id, worker_id=worker_id, number=claimed[0])


def queued_ids(session: Session, *, limit: int) -> list[int]:
    """The oldest queued scenarios (at most ``limit``)."""
    return list(
        session.scalars(
            select(Scenario.id)
            .where(Scenario.status == "queued")
            .order_by(Scenario.id)
            .limit(limit)
        )
    )


def beat(session: Session, ids: Iterable[int], *, worker_id: str, now: datetime) -> set[int]:
    """Mark the scenarios ``worker_id`` still holds alive at ``now``; returns their ids."""
    return beat_claimed(session, Scenario, ids, worker_id=worker_id, now=now)


def _stale(before: datetime) -> Any:
    return stale_claimed(Scenario, before)


def stale_ids(session: Session, *, before: datetime) -> list[int]:
    """Running scenarios whose last heartbeat is older than ``before`` (a read)."""
    return list(session.scalars(select(Scenario.id).where(*_stale(before)).order_by(Scenario.id)))


def recover_stale(
    session: Session, *, before: datetime, max_claims: int, now: datetime
) -> tuple[list[int], list[int]]:
    """Requeue or fail (``after_lost_claim``) the scenarios of processes that stopped beating.

    A scenario writes its runs and result in one transaction at its end, so a requeued one
    starts over from nothing. Returns (requeued, failed).
    """
    requeued: list[int] = []
    failed: list[int] = []
    stmt = (
        select(Scenario)
        .where(*_stale(before))
        .order_by(Scenario.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    for scenario in session.scalars(stmt):
        if after_lost_claim(scenario.claims, max_claims=max_claims) == "requeue":
            scenario.status = "queued"
            scenario.worker_id = None
            scenario.heartbeat_at = None
            scenario.runs_done = 0
            audit.defer_system(session, "requeue", "scenario", scenario.id)
            requeued.append(scenario.id)
        else:
            scenario.status = "failed"
            scenario.error = f"abandoned: its process stopped, {scenario.claims} times"
            scenario.finished_at = now
            audit.defer_system(session, "give_up", "scenario", scenario.id)
            failed.append(scenario.id)
    session.flush()
    return requeued, failed


def lock_claimed(session: Session, held: ScenarioClaim) -> Scenario | None:
    """The scenario locked for writing while ``held`` still holds it; None when taken away."""
    scenario = session.get_one(
        Scenario, held.scenario_id, with_for_update=True, populate_existing=True
    )
    if scenario.status != "running" or (scenario.worker_id, scenario.claims) != (
        held.worker_id,
        held.number,
    ):
        return None
    return scenario


def progress(session: Session, held: ScenarioClaim, done: int) -> bool:
    """Record ``done`` runs solved; False when the claim no longer holds the scenario."""
    scenario = lock_claimed(session, held)
    if scenario is None:
        return False
    scenario.runs_done = min(done, scenario.runs_total)
    session.flush()
    return True


def fail(session: Session, held: ScenarioClaim, error: str) -> None:
    """Mark a claimed scenario failed with a short reason; its runs are never written."""
    scenario = lock_claimed(session, held)
    if scenario is None:
        return
    scenario.status = "failed"
    scenario.error = error[:500]
    scenario.finished_at = utcnow()
    session.flush()


# --- one scenario run (pure: documents in, documents out) ------------------------------------


@dataclass(frozen=True)
class RunResult:
    """One base run re-solved: the scenario's solution and what replaying the base gave."""

    base_run_id: int
    problem_digest: str
    before: Solution
    after: Solution
    before_replays: bool
    requests: tuple[placement.Request, ...]


def stored_parameters(solution: Solution) -> dict[str, Any]:
    """The seed, time limit and workers a stored solution was solved with."""
    return {
        "seed": solution.solver.seed,
        "time_limit_s": solution.solver.time_limit_s,
        "workers": solution.solver.workers,
    }


def replays(problem: Problem, stored: Solution) -> bool:
    """Whether re-solving ``problem`` with the stored parameters and ``work`` gives its bytes."""
    again = solve(problem, **stored_parameters(stored), replay=stored.work)
    return again.result_bytes() == stored.result_bytes()


def solve_run(
    base_run_id: int,
    base_problem: Mapping[str, Any],
    base_solution: Mapping[str, Any],
    changes: Sequence[Change],
    carry: Carry,
    *,
    centroids: Mapping[str, tuple[float, float]],
    verify_before: bool = True,
) -> RunResult:
    """Re-solve one base run under ``changes`` and ``carry``, and carry its outcome forward."""
    problem = Problem.from_document(base_problem)
    before = Solution.from_document(base_solution)
    replayed = replays(problem, before) if verify_before else True
    changed = Problem.from_document(
        changed_document(base_problem, changes, carry, centroids=centroids)
    )
    after = solve(changed, **stored_parameters(before))
    carry.after(before, after)
    return RunResult(
        base_run_id=base_run_id,
        problem_digest=problem_digest(changed),
        before=before,
        after=after,
        before_replays=replayed,
        requests=problem.requests,
    )


# --- the answer: aggregates with suppression ---------------------------------------------------

GROUPINGS = ("priority", "status", "region")
SIDES = ("seen", "before", "after", "unplaced_before", "unplaced_after")
BEFORE_SIDES = ("seen", "before", "unplaced_before")
UNITS = ("people", "requests")
CELLS = tuple(f"{unit}_{side}" for unit in UNITS for side in SIDES)
UNKNOWN_REGION = "unknown"
TOTAL = "total"
SCENARIO_LOOKAHEAD = 24
COUNTING_RULE = N_(
    "Each request is counted once however many runs it appeared in, described by the latest "
    "run it appeared in. Before: placed by a stored run. After: placed by a scenario run; a "
    "request the scenario placed is taken out of later runs, and beds the scenario used beyond "
    "a stored run stay taken for the rest of the period."
)
SCENARIO_DISCLOSURE = N_(
    "Counts of people and requests from 1 to {below} are suppressed, with complementary cells "
    "across this answer's tables; the cells that describe the stored runs are hidden the same "
    "way in every scenario of the period. A difference is a count of people too: from 1 to "
    "{below} either way it is suppressed, with a count it could be recomputed from. A share is "
    "shown only when the counts it is made from are."
)


def _groups(request: placement.Request, majority_age: int) -> dict[str, list[tuple[str, int]]]:
    """(grouping → [(key, people)]) for one request."""
    statuses: dict[str, int] = {}
    for member in request.members:
        status = member_status(member, request.members, majority_age)
        statuses[status] = statuses.get(status, 0) + 1
    people = len(request.members)
    return {
        "priority": [(str(request.priority), people)],
        "status": sorted(statuses.items()),
        "region": [(request.current_region or UNKNOWN_REGION, people)],
    }


def aggregate(
    results: Sequence[RunResult], *, majority_age: int, k: int, when: Period
) -> dict[str, Any]:
    """The scenario's answer from its runs: counts by group before and after, suppressed.

    Cells, per group and for the total: ``people_*`` and ``requests_*`` for ``seen`` (distinct
    requests in the period's runs), ``before``, ``after`` and the ``unplaced_*`` rest. In the
    status table a request counts in each status one of its members has (its people in their
    own status). Suppression (``shelters.suppression``) runs twice: first over the cells that
    describe the stored runs alone, so the same of them are hidden whatever the changes; then
    over every cell with those forced hidden, where an ``after`` count that differs by 1 to k-1
    from a published ``before`` is hidden as if small (the difference is a count of people).
    ``*_difference`` and ``share_placed_*`` are shown only when the counts they derive from
    are.
    """
    latest: dict[str, placement.Request] = {}
    placed_before: set[str] = set()
    placed_after: set[str] = set()
    for result in results:
        for request in result.requests:
            latest[request.id] = request
        placed_before.update(a.request for a in result.before.assignments)
        placed_after.update(a.request for a in result.after.assignments)
    values: dict[tuple[str, str, str], int] = {}

    def add(grouping: str, key: str, cell: str, n: int) -> None:
        values[(grouping, key, cell)] = values.get((grouping, key, cell), 0) + n

    keys: dict[str, set[str]] = {g: set() for g in GROUPINGS}
    for request_id in sorted(latest):
        request = latest[request_id]
        sides = {
            "seen": True,
            "before": request_id in placed_before,
            "after": request_id in placed_after,
            "unplaced_before": request_id not in placed_before,
            "unplaced_after": request_id not in placed_after,
        }
        groups = _groups(request, majority_age)
        groups_with_total = {**groups, TOTAL: [(TOTAL, len(request.members))]}
        for grouping, entries in groups_with_total.items():
            for key, people in entries:
                if grouping != TOTAL:
                    keys[grouping].add(key)
                for side, counted in sides.items():
                    if counted:
                        add(grouping, key, f"people_{side}", people)
                        add(grouping, key, f"requests_{side}", 1)
    rows = [(TOTAL, TOTAL)] + [
        (g, key) for g in GROUPINGS for key in sorted(keys[g], key=_group_order(g))
    ]
    full = {(g, key, cell): values.get((g, key, cell), 0) for g, key in rows for cell in CELLS}
    hidden = _suppressed(full, rows, k)
    return {
        "period": {"from": when.first.isoformat(), "to": when.last.isoformat()},
        "k": k,
        "runs": len(results),
        "replay_mismatches": sum(1 for r in results if not r.before_replays),
        "tables": {
            g: [_row(full, hidden, g, key) for gg, key in rows if gg == g] for g in GROUPINGS
        },
        "total": _row(full, hidden, TOTAL, TOTAL),
    }


def _group_order(grouping: str) -> Any:
    if grouping == "priority":
        return lambda key: -int(key)
    if grouping == "status":
        order = ("adult", "accompanied_child", "unaccompanied_minor")
        return lambda key: order.index(key) if key in order else len(order)
    return lambda key: (key == UNKNOWN_REGION, key)


def _relations(rows: Sequence[tuple[str, str]], sides: Sequence[str]) -> list[Relation]:
    relations: list[Relation] = []
    for unit in UNITS:
        cells = [f"{unit}_{s}" for s in sides]
        for grouping in GROUPINGS:
            if grouping == "status" and unit == "requests":
                continue  # a request counts in each status of its members: no sum
            members = [key for g, key in rows if g == grouping]
            for cell in cells:
                relations.append(
                    Relation(
                        (
                            *(((grouping, key, cell), 1) for key in members),
                            ((TOTAL, TOTAL, cell), -1),
                        )
                    )
                )
        for grouping, key in rows:
            for placed in ("before", "after"):
                if f"{unit}_{placed}" in cells:
                    relations.append(
                        Relation(
                            (
                                ((grouping, key, f"{unit}_seen"), 1),
                                ((grouping, key, f"{unit}_{placed}"), -1),
                                ((grouping, key, f"{unit}_unplaced_{placed}"), -1),
                            )
                        )
                    )
    return relations


def _suppressed(
    full: Mapping[tuple[str, str, str], int], rows: Sequence[tuple[str, str]], k: int
) -> set[tuple[str, str, str]]:
    """Hidden cells: the stored runs' block first, then the scenario's with that block fixed.

    In the second pass the stored runs' published cells are known constants (left out of the
    system, so never chosen as complements) and their hidden cells stay hidden: every
    scenario of a period hides exactly the same of them, and no two scenarios' answers
    together reveal one.
    """
    before_names = {f"{u}_{s}" for u in UNITS for s in BEFORE_SIDES}
    totals = [(TOTAL, TOTAL, cell) for cell in CELLS]
    before_cells = {c: v for c, v in full.items() if c[2] in before_names}
    first = suppress(before_cells, _relations(rows, BEFORE_SIDES), k, totals=totals)
    # A value of 1 makes a cell primary (below k): the first pass's cells stay hidden.
    second = {
        c: (1 if c in first else v)
        for c, v in full.items()
        if c in first or c[2] not in before_names
    }
    # A difference is a count of people too (the people a change placed or displaced): where
    # the stored runs' count is published, an after count 1 to k-1 away from it, either way,
    # is hidden like a small count (value 1 makes it primary), and complements follow.
    for grouping, key in rows:
        for unit in UNITS:
            after, before = (grouping, key, f"{unit}_after"), (grouping, key, f"{unit}_before")
            if before not in first and 1 <= abs(full[after] - full[before]) < k:
                second[after] = 1
    relations = [
        Relation(tuple((cell, n) for cell, n in r.terms if cell in second))
        for r in _relations(rows, SIDES)
    ]
    # Three small tables tied by one total: weigh complements (see suppress's lookahead).
    hidden = suppress(
        second, [r for r in relations if r.terms], k, totals=totals, lookahead=SCENARIO_LOOKAHEAD
    )
    return hidden | first


def _row(
    full: Mapping[tuple[str, str, str], int],
    hidden: set[tuple[str, str, str]],
    grouping: str,
    key: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "suppressed": []}
    for cell in CELLS:
        if (grouping, key, cell) in hidden:
            row[cell] = None
            row["suppressed"].append(cell)
        else:
            row[cell] = full[(grouping, key, cell)]
    for unit in UNITS:
        before, after, seen = row[f"{unit}_before"], row[f"{unit}_after"], row[f"{unit}_seen"]
        diff = f"{unit}_difference"
        row[diff] = after - before if before is not None and after is not None else None
        if row[diff] is None:
            row["suppressed"].append(diff)
    seen = row["people_seen"]
    for side in ("before", "after"):
        name = f"share_placed_{side}"
        count = row[f"people_{side}"]
        row[name] = round(count / seen, 3) if count is not None and seen else None
        if row[name] is None and seen != 0:
            row["suppressed"].append(name)
    return row


def disclosure(when: Period, k: int) -> Disclosure:
    """What the answer says about its suppression."""
    return Disclosure(
        method="single-table",
        k=k,
        period=when.label,
        words=SCENARIO_DISCLOSURE,
        params=(("below", str(k - 1)),),
    )


def finish(
    session: Session, held: ScenarioClaim, results: Sequence[RunResult], answer: Mapping[str, Any]
) -> bool:
    """Write every scenario run and the answer at once; False when the claim was taken away."""
    scenario = lock_claimed(session, held)
    if scenario is None:
        return False
    for position, result in enumerate(results):
        session.add(
            ScenarioRun(
                scenario_id=scenario.id,
                position=position,
                base_run_id=result.base_run_id,
                problem_digest=result.problem_digest,
                solution=result.after.to_document(),
                before_replays=result.before_replays,
                placed_before=len(result.before.assignments),
                placed_after=len(result.after.assignments),
            )
        )
    scenario.result = dict(answer)
    scenario.runs_done = scenario.runs_total = len(results)
    scenario.status = "done"
    scenario.finished_at = utcnow()
    session.flush()
    return True


# --- replay -----------------------------------------------------------------------------------


def centroids(session: Session) -> dict[str, tuple[float, float]]:
    """Every region's centroid, for changes that add a region a stored problem lacks."""
    return {
        code: (lat, lon)
        for code, lat, lon in session.execute(select(Region.code, Region.lat, Region.lon))
    }


def replay(session: Session, principal: Principal, scenario_id: int) -> dict[str, Any]:
    """Re-solve every run of a done scenario from its stored documents and compare the bytes.

    Each changed problem is rebuilt from the base run's stored problem, the changes and the
    stored scenario runs before it; its digest must equal the stored one, and solving it with
    the stored solution's ``work`` must give the stored bytes. Reads only.
    """
    scenario = get_scenario(session, principal, scenario_id)
    if scenario.status != "done":
        raise InvalidInput(
            "scenario {scenario_id} has not finished ({status})",
            scenario_id=scenario_id,
            status=scenario.status,
        )
    changes = changes_of(scenario)
    where = centroids(session)
    carry = Carry()
    rows = session.scalars(
        select(ScenarioRun)
        .where(ScenarioRun.scenario_id == scenario_id)
        .order_by(ScenarioRun.position)
    ).all()
    mismatches: list[int] = []
    for row in rows:
        base = session.get_one(MatchingRun, row.base_run_id)
        if base.problem is None or base.solution is None:
            raise ScenarioError("matching run {run_id} has no documents", run_id=base.id)
        stored = Solution.from_document(row.solution)
        before = Solution.from_document(base.solution)
        changed = Problem.from_document(
            changed_document(base.problem, changes, carry, centroids=where)
        )
        again = solve(changed, **stored_parameters(stored), replay=stored.work)
        if (
            problem_digest(changed) != row.problem_digest
            or again.result_bytes() != stored.result_bytes()
        ):
            mismatches.append(row.base_run_id)
        carry.after(before, stored)
    return {
        "scenario_id": scenario_id,
        "runs": len(rows),
        "equal": not mismatches,
        "mismatched_runs": mismatches,
    }


# --- bed budget: where should N beds go (placement.expansion) ---------------------------------

PLAN_TIME_LIMIT_S = 10.0


def check_costs(
    session: Session, costs: Sequence[Mapping[str, Any]], *, majority_age: int, max_changes: int
) -> list[dict[str, Any]]:
    """The cost table of a bed_budget scenario, checked and with unit types resolved.

    Each entry: ``region``, ``unit_type`` or ``admits``, ``cost_per_bed`` (≥ 0), and optional
    ``max_beds``, ``services``, ``languages``, ``security_level``, ``wheelchair_accessible``.
    ``InvalidInput`` as for ``add_units`` changes (unknown region or unit type, both or neither
    of ``unit_type`` and ``admits``).
    """
    if not costs:
        raise InvalidInput("a bed budget needs at least one cost")
    if len(costs) > max_changes:
        raise InvalidInput("a bed budget may have at most {limit} costs", limit=max_changes)
    regions = set(session.scalars(select(Region.code)))
    checked: list[dict[str, Any]] = []
    for index, cost in enumerate(costs):
        change = _check_add(
            Change(
                kind="add_units",
                beds=1,
                region=cost.get("region"),
                unit_type=cost.get("unit_type"),
                admits=tuple(cost.get("admits") or ()),
                services=tuple(cost.get("services") or ()),
                languages=tuple(cost.get("languages") or ()),
                security_level=cost.get("security_level") or "standard",
                wheelchair_accessible=bool(cost.get("wheelchair_accessible")),
            ),
            index,
            regions,
            majority_age,
        )
        entry = change.as_json()
        entry.pop("beds")
        entry.update({"cost_per_bed": int(cost["cost_per_bed"]), "max_beds": cost.get("max_beds")})
        checked.append(entry)
    return checked


def plan_budget(
    session: Session, run_ids: Sequence[int], params: Mapping[str, Any], *, majority_age: int
) -> tuple[list[Change], dict[str, Any]]:
    """Plan where the scenario's beds go (``placement.expansion.plan_beds``) and its changes.

    The demand is the distinct requests the period's base runs left unplaced (latest version of
    each), against the regions of the latest base problem; each cost entry is one option
    (``option-1``…). The plan's beds become ``add_units`` changes at the options' regions, so
    the what-if shows the real solver's answer next to the plan's estimate. The stored plan is
    aggregate: beds and cost per option and people per priority, no request ids.
    """
    latest: dict[str, placement.Request] = {}
    placed: set[str] = set()
    regions: dict[str, placement.Region] = {}
    for run_id in run_ids:
        run = session.get_one(MatchingRun, run_id)
        if run.problem is None or run.solution is None:
            raise ScenarioError("matching run {run_id} has no documents", run_id=run_id)
        problem = Problem.from_document(run.problem)
        regions.update({r.code: r for r in problem.regions})
        for request in problem.requests:
            latest[request.id] = request
        placed.update(a["request"] for a in run.solution["assignments"])
    demand = [latest[i] for i in sorted(latest) if i not in placed]
    where = centroids(session)
    options = []
    costs = list(params["costs"])
    for index, cost in enumerate(costs):
        code = cost["region"]
        if code not in regions:
            lat, lon = where[code]
            regions[code] = placement.Region(code=code, lat=lat, lon=lon)
        options.append(
            BedOption(
                id=f"option-{index + 1}",
                region=code,
                admits=tuple(
                    placement.AdmissionRule(
                        sexes=tuple(rule["sexes"]),
                        min_age=int(rule["min_age"]),
                        max_age=int(rule["max_age"]),
                        statuses=tuple(rule["statuses"]),
                    )
                    for rule in cost["admits"]
                ),
                cost_per_bed=int(cost["cost_per_bed"]),
                services=tuple(cost.get("services") or ()),
                languages=tuple(cost.get("languages") or ()),
                security_level=cost.get("security_level") or "standard",
                wheelchair_accessible=bool(cost.get("wheelchair_accessible")),
                max_beds=cost.get("max_beds"),
            )
        )
    plan = plan_beds(
        demand,
        list(regions.values()),
        options,
        max_beds=int(params["max_beds"]),
        budget=params.get("budget"),
        majority_age=majority_age,
        time_limit_s=PLAN_TIME_LIMIT_S,
        seed=0,
    )
    changes: list[Change] = []
    beds: list[dict[str, Any]] = []
    for index, cost in enumerate(costs):
        option = f"option-{index + 1}"
        count = int(plan.beds.get(option, 0))
        beds.append(
            {
                "option": option,
                "region": cost["region"],
                "unit_type": cost.get("unit_type"),
                "beds": count,
                "cost": count * int(cost["cost_per_bed"]),
            }
        )
        if count > 0:
            changes.append(
                Change(
                    kind="add_units",
                    beds=count,
                    region=cost["region"],
                    unit_type=cost.get("unit_type"),
                    admits=tuple(cost["admits"]),
                    services=tuple(cost.get("services") or ()),
                    languages=tuple(cost.get("languages") or ()),
                    security_level=cost.get("security_level") or "standard",
                    wheelchair_accessible=bool(cost.get("wheelchair_accessible")),
                )
            )
    return changes, {
        "status": plan.status,
        "cost": int(plan.cost),
        "beds": beds,
        "demand_requests": len(demand),
        "placed_by_priority": {str(p): int(n) for p, n in sorted(plan.placed_by_priority.items())},
    }


def suppress_plan(plan: Mapping[str, Any], k: int) -> dict[str, Any]:
    """The plan as shown: people per priority with small counts and their complements hidden."""
    counts = {p: int(n) for p, n in plan["placed_by_priority"].items()}
    total = sum(counts.values())
    values: dict[str, int] = {**counts, TOTAL: total}
    relation = Relation((*((p, 1) for p in counts), (TOTAL, -1)))
    hidden = suppress(values, [relation], k, totals=[TOTAL])
    shown = dict(plan)
    shown["placed_by_priority"] = {p: (None if p in hidden else n) for p, n in counts.items()}
    shown["placed_total"] = None if TOTAL in hidden else total
    shown["demand_requests"] = (
        None if 1 <= int(plan["demand_requests"]) < k else plan["demand_requests"]
    )
    return shown
