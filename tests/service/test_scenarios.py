"""What-if scenarios through the API: answers, no real writes, progress, access, replay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from service.app import create_app
from service.settings import Settings
from shelters import scenarios
from shelters.funding import Grant
from shelters.identity import Role
from shelters.models import (
    InboxEntry,
    MatchingRun,
    Placement,
    PlacementBed,
    PlacementRequest,
    RunOutcome,
    Scenario,
    ScenarioRun,
    Unit,
)
from tests.conftest import World, make_settings
from tests.service.lifecycle_helpers import ADULT_WOMEN, ONE_WOMAN, request_for

GIRL = [{"ref": "A", "sex": "female", "age": 15}]
TODAY = datetime.now(UTC).date()
ADD_GIRLS = {"kind": "add_units", "region": "astana", "unit_type": "unaccompanied_girls", "beds": 5}


@pytest.fixture
def settings(database_url: str) -> Settings:
    # k = 3 so that the small test network's counts are shown; one test checks k = 11.
    return make_settings(database_url, suppression_k=3)


@pytest.fixture
def network(world: World) -> dict[str, Any]:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=3, admits=[ADULT_WOMEN])
    funder_org = world.organization("funder")
    return {
        "shelter": shelter,
        "unit": unit,
        "admin": world.headers(Role.ADMIN),
        "caseworker": world.headers(Role.CASEWORKER),
        "coordinator": world.headers(Role.COORDINATOR, shelters=[shelter]),
        "funder": world.headers(Role.FUNDER, org=funder_org),
        "colleague": world.headers(Role.FUNDER, org=funder_org),
        "other_funder": world.headers(Role.FUNDER),
    }


def batch(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/matching-runs", json={"time_limit_s": 3, "seed": 5}, headers=admin
    )
    assert response.status_code == 202, response.text
    return client.get(response.headers["location"], headers=admin).json()  # type: ignore[no-any-return]


@pytest.fixture
def history(client: TestClient, network: dict[str, Any]) -> list[dict[str, Any]]:
    """Two runs: three women placed in the first (3 beds), five girls never placed."""
    for _ in range(3):
        request_for(client, network["caseworker"], ONE_WOMAN)
    for _ in range(3):
        request_for(client, network["caseworker"], GIRL)
    first = batch(client, network["admin"])
    for _ in range(2):
        request_for(client, network["caseworker"], GIRL)
    second = batch(client, network["admin"])
    assert (first["placed_count"], second["placed_count"]) == (3, 0)
    return [first, second]


def start(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"from": TODAY.isoformat(), "to": TODAY.isoformat()} | body
    response = client.post("/api/v1/scenarios", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/scenarios/{response.json()['id']}"
    return client.get(response.headers["location"], headers=headers).json()  # type: ignore[no-any-return]


def counts(db: Session) -> dict[str, int]:
    return {
        model.__tablename__: db.scalar(select(func.count()).select_from(model)) or 0
        for model in (Placement, PlacementBed, RunOutcome, InboxEntry, MatchingRun, Grant)
    }


def test_more_beds_for_girls_place_the_girls_and_write_nothing_real(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]], db: Session
) -> None:
    before = counts(db)
    units = db.scalars(select(Unit.id, Unit.capacity)).all()
    requests = db.execute(select(PlacementRequest.id, PlacementRequest.status)).all()
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    assert scenario["status"] == "done", scenario
    assert scenario["progress"] == {"runs_done": 2, "runs_total": 2}
    result = scenario["result"]
    assert (result["runs"], result["replay_mismatches"]) == (2, 0)
    total = result["total"]
    assert (total["people_seen"], total["people_before"], total["people_after"]) == (8, 3, 8)
    assert (total["people_difference"], total["requests_difference"]) == (5, 5)
    assert (total["share_placed_before"], total["share_placed_after"]) == (0.375, 1.0)
    by_priority = {r["key"]: r for r in result["tables"]["priority"]}
    assert (by_priority["4"]["people_before"], by_priority["4"]["people_after"]) == (0, 5)
    by_status = {r["key"]: r for r in result["tables"]["status"]}
    assert by_status["unaccompanied_minor"]["people_after"] == 5
    assert result["disclosure"]["k"] == 3
    # A scenario never writes placements, holds, outcomes, inbox entries or runs.
    assert counts(db) == before
    assert db.scalars(select(Unit.id, Unit.capacity)).all() == units
    assert db.execute(select(PlacementRequest.id, PlacementRequest.status)).all() == requests
    # Three girls placed in the first run are gone from the second run's problem; two placed.
    rows = db.scalars(
        select(ScenarioRun)
        .where(ScenarioRun.scenario_id == scenario["id"])
        .order_by(ScenarioRun.position)
    ).all()
    assert [(r.placed_before, r.placed_after) for r in rows] == [(3, 6), (0, 2)]
    assert all(r.before_replays for r in rows)
    solution = client.get(
        f"/api/v1/scenarios/{scenario['id']}/runs/{history[0]['id']}/solution",
        headers=network["admin"],
    ).json()
    assert {a["shelter"] for a in solution["assignments"]} == {
        str(network["shelter"].id),
        "scenario-1",
    }


def test_a_stored_scenario_replays_byte_for_byte(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    response = client.post(f"/api/v1/scenarios/{scenario['id']}/replay", headers=network["admin"])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "scenario_id": scenario["id"],
        "runs": 2,
        "equal": True,
        "mismatched_runs": [],
    }


def test_a_replay_notices_a_changed_document(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]], db: Session
) -> None:
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    row = db.scalars(
        select(ScenarioRun).where(
            ScenarioRun.scenario_id == scenario["id"], ScenarioRun.position == 1
        )
    ).one()
    db.execute(update(ScenarioRun).where(ScenarioRun.id == row.id).values(problem_digest="0" * 64))
    answer = client.post(
        f"/api/v1/scenarios/{scenario['id']}/replay", headers=network["admin"]
    ).json()
    assert (answer["equal"], answer["mismatched_runs"]) == (False, [history[1]["id"]])


def test_removing_the_only_shelter_places_nobody(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    scenario = start(
        client,
        network["admin"],
        changes=[{"kind": "remove_shelter", "shelter_id": network["shelter"].id}],
    )
    total = scenario["result"]["total"]
    assert (total["people_before"], total["people_after"], total["people_difference"]) == (3, 0, -3)


def test_a_grant_cut_takes_beds_away(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    scenario = start(
        client,
        network["admin"],
        changes=[{"kind": "change_grant", "shelter_id": network["shelter"].id, "beds": -2}],
    )
    # One bed left in the first run; the two women left wait, and no bed frees up later.
    total = scenario["result"]["total"]
    assert total["requests_after"] is None or total["requests_after"] == 1
    assert "requests_after" in total["suppressed"] or total["requests_after"] == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"kind": "add_units", "region": "atlantis", "unit_type": "women", "beds": 1},
            "unknown region atlantis",
        ),
        (
            {"kind": "add_units", "region": "astana", "unit_type": "giants", "beds": 1},
            "unknown unit type giants",
        ),
        (
            {"kind": "add_units", "shelter_id": 999999, "unit_type": "women", "beds": 1},
            "unknown shelter 999999",
        ),
        ({"kind": "add_units", "region": "astana", "beds": 1}, "give either a unit_type or admits"),
        (
            {
                "kind": "add_units",
                "region": "astana",
                "shelter_id": 1,
                "unit_type": "women",
                "beds": 1,
            },
            "either a region or a shelter_id",
        ),
        (
            {"kind": "add_units", "region": "astana", "unit_type": "women", "beds": 0},
            "beds must be from 1",
        ),
        ({"kind": "remove_unit", "unit_id": 999999}, "unknown unit 999999"),
        ({"kind": "change_grant", "shelter_id": 999999, "beds": 2}, "unknown shelter 999999"),
        (
            {
                "kind": "add_units",
                "region": "astana",
                "unit_type": "women",
                "beds": 1,
                "services": ["magic"],
            },
            "unknown services",
        ),
    ],
)
def test_bad_changes_are_refused_with_a_problem(
    client: TestClient,
    network: dict[str, Any],
    history: list[dict[str, Any]],
    change: dict[str, Any],
    words: str,
) -> None:
    body = {"from": TODAY.isoformat(), "to": TODAY.isoformat(), "changes": [change]}
    response = client.post("/api/v1/scenarios", json=body, headers=network["admin"])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]


def test_a_period_without_runs_and_too_many_changes_are_refused(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    empty = {"from": "2020-01-01", "to": "2020-01-31", "changes": [ADD_GIRLS]}
    response = client.post("/api/v1/scenarios", json=empty, headers=network["admin"])
    assert response.status_code == 422
    assert "no matching runs" in response.json()["detail"]
    many = {"from": TODAY.isoformat(), "to": TODAY.isoformat(), "changes": [ADD_GIRLS] * 21}
    response = client.post("/api/v1/scenarios", json=many, headers=network["admin"])
    assert response.status_code == 422
    assert "at most 20 changes" in response.json()["detail"]


def test_too_many_active_scenarios_is_busy(
    client: TestClient,
    network: dict[str, Any],
    history: list[dict[str, Any]],
    world: World,
    db: Session,
) -> None:
    admin = world.user(Role.ADMIN)
    for _ in range(2):
        db.add(
            Scenario(
                kind="what_if",
                status="queued",
                started_by=admin.id,
                parameters={},
                runs_total=0,
                runs_done=0,
            )
        )
    db.flush()
    body = {"from": TODAY.isoformat(), "to": TODAY.isoformat(), "changes": [ADD_GIRLS]}
    response = client.post("/api/v1/scenarios", json=body, headers=network["admin"])
    assert response.status_code == 503
    assert "retry-after" in response.headers


def _last_quarter() -> tuple[date, date]:
    first_this = date(TODAY.year, 3 * ((TODAY.month - 1) // 3) + 1, 1)
    last = first_this - timedelta(days=1)
    return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last


@pytest.fixture
def last_quarter(history: list[dict[str, Any]], db: Session) -> tuple[date, date]:
    """The history moved into the last published quarter, where funders may ask."""
    first, last = _last_quarter()
    for offset, run in enumerate(history):
        when = datetime.combine(first, datetime.min.time(), UTC) + timedelta(days=10 + offset)
        db.execute(update(MatchingRun).where(MatchingRun.id == run["id"]).values(finished_at=when))
    return first, last


def test_funders_read_their_organisations_scenarios_and_aggregates_only(
    client: TestClient, network: dict[str, Any], last_quarter: tuple[date, date]
) -> None:
    first, last = last_quarter
    scenario = start(
        client,
        network["funder"],
        changes=[ADD_GIRLS],
        **{"from": first.isoformat(), "to": last.isoformat()},
    )
    assert scenario["status"] == "done"
    assert scenario["started_by"] is None
    path = f"/api/v1/scenarios/{scenario['id']}"
    assert client.get(path, headers=network["colleague"]).status_code == 200
    assert client.get(path, headers=network["other_funder"]).status_code == 404
    listed = client.get("/api/v1/scenarios", headers=network["other_funder"]).json()["items"]
    assert scenario["id"] not in {s["id"] for s in listed}
    mine = client.get("/api/v1/scenarios", headers=network["funder"]).json()["items"]
    assert scenario["id"] in {s["id"] for s in mine}
    run_id = (
        scenario["result"]
        and client.get("/api/v1/matching-runs", headers=network["admin"]).json()["items"][0]["id"]
    )
    for headers in (network["funder"], network["other_funder"]):
        assert client.get(f"{path}/runs/{run_id}/solution", headers=headers).status_code == 403
        assert client.post(f"{path}/replay", headers=headers).status_code == 403
    text = str(scenario)
    assert "request" not in {k for row in scenario["result"]["tables"]["priority"] for k in row}
    assert '"lat"' not in text
    assert "location" not in text
    # Funders may ask only for publication periods, like every report.
    response = client.post(
        "/api/v1/scenarios",
        json={
            "from": first.isoformat(),
            "to": (first + timedelta(days=3)).isoformat(),
            "changes": [ADD_GIRLS],
        },
        headers=network["funder"],
    )
    assert response.status_code == 422


def test_caseworkers_and_coordinators_reach_no_scenario_route(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    path = f"/api/v1/scenarios/{scenario['id']}"
    body = {"from": TODAY.isoformat(), "to": TODAY.isoformat(), "changes": [ADD_GIRLS]}
    for role in ("caseworker", "coordinator"):
        headers = network[role]
        assert client.post("/api/v1/scenarios", json=body, headers=headers).status_code == 403
        assert client.get("/api/v1/scenarios", headers=headers).status_code == 403
        assert client.get(path, headers=headers).status_code == 403
        assert (
            client.get(f"{path}/runs/{history[0]['id']}/solution", headers=headers).status_code
            == 403
        )
        assert client.post(f"{path}/replay", headers=headers).status_code == 403
    assert client.get(path).status_code == 401


def test_small_counts_are_suppressed_with_the_default_k(
    settings: Settings,
    connection: Connection,
    network: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    app = create_app(settings.model_copy(update={"suppression_k": 11}), bind=connection)
    with TestClient(app) as client:
        scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    total = scenario["result"]["total"]
    assert total["people_before"] is None
    assert total["people_after"] is None
    assert total["people_difference"] is None
    assert {"people_before", "people_after", "people_difference", "share_placed_before"} <= set(
        total["suppressed"]
    )
    for table in scenario["result"]["tables"].values():
        for row in table:
            for name, value in row.items():
                if name.startswith(("people_", "requests_")) and not name.endswith("difference"):
                    assert value is None or value == 0 or value >= 11


def test_progress_is_recorded_after_each_run(
    client: TestClient,
    network: dict[str, Any],
    history: list[dict[str, Any]],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    solve_run = scenarios.solve_run

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(
            db.scalar(select(Scenario.runs_done).order_by(Scenario.id.desc()).limit(1)) or 0
        )
        return solve_run(*args, **kwargs)

    monkeypatch.setattr(scenarios, "solve_run", watched)
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    assert seen == [0, 1]
    assert scenario["progress"] == {"runs_done": 2, "runs_total": 2}


def test_a_failure_leaves_a_failed_scenario_and_nothing_half_written(
    client: TestClient,
    network: dict[str, Any],
    history: list[dict[str, Any]],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    solve_run = scenarios.solve_run

    def breaks(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return solve_run(*args, **kwargs)

    monkeypatch.setattr(scenarios, "solve_run", breaks)
    scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    assert (scenario["status"], scenario["error"], scenario["result"]) == (
        "failed",
        "internal error",
        None,
    )
    assert scenario["finished_at"] is not None
    assert (
        db.scalar(
            select(func.count())
            .select_from(ScenarioRun)
            .where(ScenarioRun.scenario_id == scenario["id"])
        )
        == 0
    )


def test_a_queued_scenario_is_picked_up_by_the_worker(
    settings: Settings,
    connection: Connection,
    network: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    queuing = create_app(settings.model_copy(update={"run_worker": False}), bind=connection)
    with TestClient(queuing) as client:
        scenario = start(client, network["admin"], changes=[ADD_GIRLS])
    assert (scenario["status"], scenario["progress"]["runs_done"]) == ("queued", 0)
    working = create_app(settings, bind=connection)
    with TestClient(working) as client:
        working.state.run_worker.poll()
        done = client.get(f"/api/v1/scenarios/{scenario['id']}", headers=network["admin"]).json()
    assert done["status"] == "done"
    assert done["progress"] == {"runs_done": 2, "runs_total": 2}
    assert done["started_at"] is not None


def test_a_bed_budget_plans_beds_and_runs_the_plan_as_a_what_if(
    client: TestClient,
    network: dict[str, Any],
    history: list[dict[str, Any]],
    db: Session,
) -> None:
    scenario = start(
        client,
        network["admin"],
        kind="bed_budget",
        max_beds=4,
        budget=1_000,
        costs=[
            {"region": "astana", "unit_type": "men", "cost_per_bed": 10},
            {"region": "astana", "unit_type": "unaccompanied_girls", "cost_per_bed": 200},
        ],
    )
    assert scenario["status"] == "done", scenario
    plan = scenario["result"]["plan"]
    beds = {b["option"]: b["beds"] for b in plan["beds"]}
    # Nobody needs a men's bed; the budget buys at most 5 girls' beds and max_beds allows 4.
    assert beds["option-1"] == 0
    assert 1 <= beds["option-2"] <= 4
    assert plan["cost"] == beds["option-2"] * 200
    assert plan["demand_requests"] == 5
    assert scenario["result"]["total"]["people_before"] == 3
    rows = db.scalars(select(ScenarioRun).where(ScenarioRun.scenario_id == scenario["id"])).all()
    # The real solver places a girl in each bed the plan bought (one unplaced: k = 3 hides it).
    assert sum(r.placed_after - r.placed_before for r in rows) == beds["option-2"]
    assert "assignments" not in plan


def test_a_bed_budget_needs_max_beds_and_known_regions(
    client: TestClient, network: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    body = {"from": TODAY.isoformat(), "to": TODAY.isoformat(), "kind": "bed_budget"}
    response = client.post("/api/v1/scenarios", json=body, headers=network["admin"])
    assert response.status_code == 422
    costs = [{"region": "atlantis", "unit_type": "women", "cost_per_bed": 1}]
    response = client.post(
        "/api/v1/scenarios", json=body | {"max_beds": 3, "costs": costs}, headers=network["admin"]
    )
    assert response.status_code == 422
    assert "unknown region atlantis" in response.json()["detail"]
