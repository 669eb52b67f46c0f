"""What-if capacity scenarios: queue one, poll its progress, read its aggregate answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator

from service import i18n
from service.audit import set_resource_id
from service.auth import allow
from service.deps import UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import AdmissionRuleIn, Id, PageOut, Strict
from service.settings import Settings
from shelters import reports, scenarios
from shelters.identity import Principal, Role
from shelters.models import Scenario
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["scenarios"], route_class=UnitOfWorkRoute)
READERS = (Role.ADMIN, Role.FUNDER)


class UnitFields(Strict):
    """A unit's admission rules (a catalogue ``unit_type`` or explicit ``admits``) and terms."""

    unit_type: str | None = Field(
        default=None,
        description="A code of shelters/catalogue.py UNIT_TYPES, e.g. unaccompanied_girls; "
        "or give admits.",
    )
    admits: list[AdmissionRuleIn] | None = Field(default=None, min_length=1, max_length=10)
    services: list[str] = Field(default_factory=list, max_length=20)
    languages: list[str] = Field(default_factory=list, max_length=20)
    security_level: Literal["standard", "high"] = "standard"
    wheelchair_accessible: bool = False


class ChangeIn(UnitFields):
    """One change applied to every stored problem of the period."""

    kind: Literal["add_units", "remove_unit", "remove_shelter", "change_grant"]
    beds: int | None = Field(
        default=None,
        ge=-scenarios.MAX_BEDS_PER_CHANGE,
        le=scenarios.MAX_BEDS_PER_CHANGE,
        description="add_units: beds to add (1..1000); change_grant: ± funded beds.",
    )
    region: str | None = Field(
        default=None, max_length=50, description="add_units: a new virtual shelter here."
    )
    shelter_id: Id | None = Field(
        default=None,
        description="add_units: a new unit of this shelter; remove_shelter; change_grant.",
    )
    unit_id: Id | None = Field(default=None, description="remove_unit.")


class CostIn(UnitFields):
    """One bed option of a bed budget: where, which unit type, and what a bed costs."""

    region: str = Field(max_length=50)
    cost_per_bed: int = Field(ge=0, le=10**12)
    max_beds: int | None = Field(default=None, ge=1, le=10_000)


class ScenarioIn(Strict):
    kind: Literal["what_if", "bed_budget"] = "what_if"
    first: date = Field(alias="from", strict=False, description="First day, inclusive.")
    to: date = Field(strict=False, description="Last day, inclusive.")
    changes: list[ChangeIn] = Field(default_factory=list, max_length=200)
    max_beds: int | None = Field(
        default=None, ge=1, le=10_000, description="bed_budget: beds at most."
    )
    budget: int | None = Field(default=None, ge=0, le=10**15, description="bed_budget: money.")
    costs: list[CostIn] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _kind_fields(self) -> ScenarioIn:
        if self.kind == "bed_budget" and self.max_beds is None:
            raise ValueError("a bed_budget scenario needs max_beds")
        if self.kind == "bed_budget" and self.changes:
            raise ValueError("a bed_budget scenario takes costs, not changes")
        if self.kind == "what_if" and (self.costs or self.max_beds or self.budget is not None):
            raise ValueError("a what_if scenario takes changes, not costs")
        return self


class ProgressOut(BaseModel):
    runs_done: int
    runs_total: int


class ScenarioRowOut(BaseModel):
    """Placed people and requests of one group, before and after; null = suppressed."""

    key: str = Field(description="A priority, member status, region code, or total.")
    people_seen: int | None
    people_before: int | None
    people_after: int | None
    people_unplaced_before: int | None
    people_unplaced_after: int | None
    people_difference: int | None
    requests_seen: int | None
    requests_before: int | None
    requests_after: int | None
    requests_unplaced_before: int | None
    requests_unplaced_after: int | None
    requests_difference: int | None
    share_placed_before: float | None
    share_placed_after: float | None
    suppressed: list[str]


class ScenarioTablesOut(BaseModel):
    priority: list[ScenarioRowOut]
    status: list[ScenarioRowOut]
    region: list[ScenarioRowOut]


class PlanBedsOut(BaseModel):
    option: str
    region: str
    unit_type: str | None
    beds: int
    cost: int


class PlanOut(BaseModel):
    """The capacity-expansion model's plan (placement.expansion): its own estimate."""

    status: str
    cost: int
    beds: list[PlanBedsOut]
    demand_requests: int | None
    placed_by_priority: dict[str, int | None]
    placed_total: int | None


class ScenarioDisclosureOut(BaseModel):
    method: str
    k: int | None
    period: str
    statement: str


class ScenarioResultOut(BaseModel):
    runs: int = Field(description="Stored matching runs re-solved.")
    replay_mismatches: int = Field(
        description="Stored runs whose solution did not replay byte for byte (expected 0)."
    )
    counting: str = Field(description="How requests are counted across runs.")
    tables: ScenarioTablesOut
    total: ScenarioRowOut
    plan: PlanOut | None = None
    disclosure: ScenarioDisclosureOut


class ScenarioOut(BaseModel):
    id: int
    kind: Literal["what_if", "bed_budget"]
    status: Literal["queued", "running", "done", "failed"]
    progress: ProgressOut
    parameters: dict[str, Any]
    started_by: int | None = Field(description="Null for funders, who see their own scenarios.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    solver_version: str | None
    error: str | None
    result: ScenarioResultOut | None


class ReplayOut(BaseModel):
    scenario_id: int
    runs: int
    equal: bool = Field(description="Every scenario run re-solved to the stored bytes.")
    mismatched_runs: list[int] = Field(description="Base run ids whose replay differed.")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def scenario_out(request: Request, scenario: Scenario, principal: Principal) -> ScenarioOut:
    """A scenario as the caller reads it: the answer with its words in the caller's language."""
    words = i18n.translations(i18n.request_locale(request)).gettext
    result: dict[str, Any] | None = None
    if scenario.result is not None:
        stored = scenario.result
        k = int(stored["k"])
        when = reports.period(
            date.fromisoformat(stored["period"]["from"]), date.fromisoformat(stored["period"]["to"])
        )
        d = scenarios.disclosure(when, k)
        result = {
            **stored,
            "counting": words(scenarios.COUNTING_RULE),
            "plan": scenarios.suppress_plan(stored["plan"], k) if stored.get("plan") else None,
            "disclosure": {
                "method": d.method,
                "k": d.k,
                "period": d.period,
                "statement": d.statement_in(words),
            },
        }
    return ScenarioOut.model_validate(
        {
            "id": scenario.id,
            "kind": scenario.kind,
            "status": scenario.status,
            "progress": {"runs_done": scenario.runs_done, "runs_total": scenario.runs_total},
            "parameters": scenario.parameters,
            "started_by": scenario.started_by if principal.role is Role.ADMIN else None,
            "created_at": scenario.created_at,
            "started_at": scenario.started_at,
            "finished_at": scenario.finished_at,
            "solver_version": scenario.solver_version,
            "error": scenario.error,
            "result": result,
        }
    )


def dispatch(request: Request, scenario_id: int) -> None:
    """Hand a queued scenario to this process's solvers (a background task, after the commit)."""
    request.app.state.run_worker.dispatch_scenario(scenario_id)


def _change(change: ChangeIn) -> scenarios.Change:
    return scenarios.Change(
        kind=change.kind,
        beds=change.beds or 0,
        region=change.region,
        shelter_id=change.shelter_id,
        unit_id=change.unit_id,
        unit_type=change.unit_type,
        admits=tuple(r.model_dump() for r in change.admits or ()),
        services=tuple(change.services),
        languages=tuple(change.languages),
        security_level=change.security_level,
        wheelchair_accessible=change.wheelchair_accessible,
    )


def create(request: Request, principal: Principal, db: WriteDb, body: ScenarioIn) -> Scenario:
    """Check and queue a scenario (shared by the API and the page)."""
    settings = _settings(request)
    limits = scenarios.Limits(
        max_active=settings.max_active_scenarios,
        max_runs=settings.scenario_max_runs,
        max_changes=settings.scenario_max_changes,
        majority_age=settings.majority_age,
    )
    when = reports.period_for(principal, body.first, body.to)
    if body.kind == "bed_budget":
        costs = scenarios.check_costs(
            db,
            [c.model_dump() for c in body.costs],
            majority_age=settings.majority_age,
            max_changes=settings.scenario_max_changes,
        )
        return scenarios.create_scenario(
            db,
            principal,
            when=when,
            changes=[],
            limits=limits,
            kind="bed_budget",
            extra={"max_beds": body.max_beds, "budget": body.budget, "costs": costs},
        )
    return scenarios.create_scenario(
        db, principal, when=when, changes=[_change(c) for c in body.changes], limits=limits
    )


@router.post(
    "/scenarios",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ScenarioOut,
    responses=problem_responses(401, 403, 422, 503),
)
def start_scenario(
    body: ScenarioIn,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    principal: Annotated[Principal, allow(*READERS)],
    db: WriteDb,
) -> Any:
    """Queue a what-if (or bed budget) over a period's stored runs; poll it for the answer."""
    scenario = create(request, principal, db, body)
    set_resource_id(request, scenario.id)
    background.add_task(dispatch, request, scenario.id)
    response.headers["Location"] = f"{API_PREFIX}/scenarios/{scenario.id}"
    return scenario_out(request, scenario, principal)


@router.get("/scenarios", responses=problem_responses(401, 403, 422))
def list_scenarios(
    request: Request,
    principal: Annotated[Principal, allow(*READERS)],
    db: WriteDb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> PageOut[ScenarioOut]:
    """Scenarios you may see, newest first (funders: your organisation's)."""
    page = scenarios.list_scenarios(db, principal, limit=limit, cursor=cursor)
    return PageOut(
        items=[scenario_out(request, s, principal) for s in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/scenarios/{scenario_id}", responses=problem_responses(401, 403, 404))
def read_scenario(
    scenario_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*READERS)],
    db: WriteDb,
) -> ScenarioOut:
    """One scenario: status, progress and, once done, its aggregate answer."""
    return scenario_out(request, scenarios.get_scenario(db, principal, scenario_id), principal)


@router.get(
    "/scenarios/{scenario_id}/runs/{run_id}/solution",
    responses=problem_responses(401, 403, 404),
)
def read_scenario_solution(
    scenario_id: Id,
    run_id: Id,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> dict[str, Any]:
    """The scenario's solution document for one base run (admins)."""
    return scenarios.scenario_solution(db, principal, scenario_id, run_id)


@router.post("/scenarios/{scenario_id}/replay", responses=problem_responses(401, 403, 404, 422))
def replay_scenario(
    scenario_id: Id,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> ReplayOut:
    """Re-solve every run of the scenario and say whether each gives the stored bytes (admins)."""
    return ReplayOut.model_validate(scenarios.replay(db, principal, scenario_id))
