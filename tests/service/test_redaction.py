"""Run documents and summaries are cut to their reader; shelters are located by one rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from placement import Problem, problem_digest
from service.cli import app as cli
from shelters import access
from shelters.identity import Role, load_principal
from tests.conftest import World
from tests.service.lifecycle_helpers import ADULT_WOMEN, create_case, create_request, match

ROOT = Path(__file__).resolve().parents[2]
PROBLEM_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "openapi" / "placement-problem.schema.json").read_text())
)
ADDRESS = "ADDR-MARKER-5c1e-redaction"


@pytest.fixture
def network(world: World) -> dict[str, Any]:
    near = world.shelter(address=ADDRESS, lat=47.123457, lon=71.987653)
    far = world.shelter(address=ADDRESS + "-far", lat=44.654321, lon=68.345679)
    for shelter in (near, far):
        world.unit(shelter, capacity=4, admits=[ADULT_WOMEN])
    return {
        "near": near,
        "far": far,
        "admin": world.headers(Role.ADMIN),
        "caseworker": world.headers(Role.CASEWORKER),
        "coordinator": world.headers(Role.COORDINATOR, shelters=[near]),
        "funder": world.headers(Role.FUNDER),
    }


def single_match(client: TestClient, headers: dict[str, str], **case: Any) -> tuple[int, dict]:
    """A match of one new request; returns the run it made and the match's answer."""
    request = create_request(client, headers, create_case(client, headers, **case)["id"])
    answer = match(client, headers, request["id"])
    runs = client.get("/api/v1/matching-runs", headers=headers).json()["items"]
    return runs[0]["id"], answer


def test_a_match_document_hides_every_location_from_a_caseworker_with_no_accepted_placement(
    client: TestClient, network: dict[str, Any], tmp_path: Path
) -> None:
    run_id, _ = single_match(client, network["caseworker"])
    run = client.get(f"/api/v1/matching-runs/{run_id}", headers=network["admin"]).json()
    url = f"/api/v1/matching-runs/{run_id}/problem"
    seen = client.get(url, headers=network["caseworker"])
    view = seen.json()
    shelter_ids = sorted(str(network[k].id) for k in ("near", "far"))
    assert [s["location"] for s in view["shelters"]] == [None, None]
    assert view["redacted"]["shelters"] == shelter_ids
    assert view["redacted"]["distances"] == "region_centroid"
    for marker in ("47.123457", "47.1235", "71.98765", "44.654321", ADDRESS):
        assert marker not in seen.text
    # The stored document keeps the coordinates for replay; admins read it as stored.
    stored = client.get(url, headers=network["admin"]).json()
    assert "redacted" not in stored
    assert {"lat": 47.123457, "lon": 71.987653} in [s["location"] for s in stored["shelters"]]
    assert problem_digest(stored) == run["problem_digest"]
    # The view is a valid problem that solves, as a different problem: its own digest.
    PROBLEM_SCHEMA.validate(view)
    path = tmp_path / "view.json"
    path.write_text(json.dumps(view))
    result = CliRunner().invoke(cli, ["solve", str(path), "--time-limit", "2"])
    assert result.exit_code == 0, result.output
    solved = json.loads(result.stdout)
    assert solved["problem_digest"] == problem_digest(Problem.from_document(view))
    assert solved["problem_digest"] != run["problem_digest"]


def test_a_caseworker_sees_a_location_once_the_shelter_has_accepted(
    client: TestClient, network: dict[str, Any]
) -> None:
    far = network["far"].id
    run_id, answer = single_match(client, network["caseworker"], excluded_shelter_ids=[far])
    url = f"/api/v1/matching-runs/{run_id}/problem"
    before = client.get(url, headers=network["caseworker"]).json()
    assert before["redacted"]["shelters"] == sorted([str(network["near"].id), str(far)])
    placement_id = answer["placement"]["id"]
    accepted = client.post(
        f"/api/v1/placements/{placement_id}/accept", headers=network["coordinator"]
    )
    assert accepted.status_code == 200, accepted.text
    after = client.get(url, headers=network["caseworker"]).json()
    located = {s["id"]: s["location"] for s in after["shelters"]}
    assert located[str(network["near"].id)] == {"lat": 47.123457, "lon": 71.987653}
    assert located[str(far)] is None
    assert after["redacted"]["shelters"] == [str(far)]


def test_the_soft_cost_is_withheld_from_a_reader_who_may_not_locate_a_shelter(
    client: TestClient, network: dict[str, Any]
) -> None:
    # With a location of its own, a case's soft cost is its distance to the shelter in metres.
    run_id, _ = single_match(client, network["caseworker"], location={"lat": 43.0, "lon": 77.0})
    url = f"/api/v1/matching-runs/{run_id}/solution"
    view = client.get(url, headers=network["caseworker"]).json()
    assert view["objective"]["soft_cost"] is None
    assert view["bound"]["soft_cost"] is None
    assert view["redacted"]["shelters"] == sorted(str(network[k].id) for k in ("near", "far"))
    assert len(view["assignments"]) == 1
    stored = client.get(url, headers=network["admin"]).json()
    assert stored["objective"]["soft_cost"] > 100_000
    assert "redacted" not in stored


def test_funders_see_run_summaries_as_counts_only(
    client: TestClient, network: dict[str, Any]
) -> None:
    single_id, _ = single_match(client, network["caseworker"])
    pending = create_request(
        client, network["caseworker"], create_case(client, network["caseworker"])["id"]
    )
    started = client.post(
        "/api/v1/matching-runs",
        json={"request_ids": [pending["id"]], "dry_run": True},
        headers=network["admin"],
    )
    assert started.status_code == 202, started.text
    listed = client.get("/api/v1/matching-runs", headers=network["funder"]).json()["items"]
    one = client.get(f"/api/v1/matching-runs/{single_id}", headers=network["funder"]).json()
    summaries = [*listed, one]
    assert len(listed) == 2
    for summary in summaries:
        assert summary["started_by"] is None
        assert "request_ids" not in summary["parameters"]
        assert summary["parameters"]["request_ids_count"] == 1
        assert summary["requests_count"] == 1
    # Admins see what was stored; caseworkers the count, and who started it.
    admin = client.get("/api/v1/matching-runs", headers=network["admin"]).json()["items"]
    assert admin[0]["parameters"]["request_ids"] == [pending["id"]]
    assert admin[0]["started_by"] is not None
    theirs = client.get(f"/api/v1/matching-runs/{single_id}", headers=network["caseworker"])
    assert theirs.json()["started_by"] is not None
    assert "request_ids" not in theirs.json()["parameters"]


def test_a_page_of_shelters_is_located_with_one_query(
    client: TestClient, network: dict[str, Any], world: World, connection: Connection
) -> None:
    for _ in range(4):
        world.shelter()
    far = network["far"].id
    _, answer = single_match(client, network["caseworker"], excluded_shelter_ids=[far])
    accepted = client.post(
        f"/api/v1/placements/{answer['placement']['id']}/accept", headers=network["coordinator"]
    )
    assert accepted.status_code == 200, accepted.text
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        page = client.get("/api/v1/shelters", headers=network["caseworker"]).json()["items"]
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(page) == 6
    assert [s["id"] for s in page if "address" in s] == [network["near"].id]
    assert len([s for s in statements if "FROM placements" in s]) == 1


def test_one_shelter_and_every_shelter_are_located_by_the_same_rule(
    client: TestClient, world: World, db: Session
) -> None:
    shelters = [world.shelter() for _ in range(4)]
    for shelter in shelters:
        world.unit(shelter, capacity=2, admits=[ADULT_WOMEN])
    ids = [s.id for s in shelters]
    org = world.organization()
    caseworker = world.user(Role.CASEWORKER, org=org)
    coordinator = world.user(Role.COORDINATOR, shelters=shelters)
    cw, co = world.headers_for(caseworker), world.headers_for(coordinator)
    placements = []
    for target in ids:
        others = [i for i in ids if i != target]
        _, answer = single_match(client, cw, excluded_shelter_ids=others)
        assert answer["placement"]["shelter_id"] == target
        placements.append(answer["placement"]["id"])
    # proposed, accepted, admitted, declined: only the middle two open the address.
    for placement_id, actions in zip(
        placements, ([], ["accept"], ["accept", "admit"], ["decline"]), strict=True
    ):
        for action in actions:
            body = {"reason": "staffing"} if action == "decline" else None
            answer = client.post(
                f"/api/v1/placements/{placement_id}/{action}", headers=co, json=body
            )
            assert answer.status_code == 200, answer.text
    principals = {
        "admin": world.user(Role.ADMIN),
        "coordinator of the first": world.user(Role.COORDINATOR, shelters=shelters[:1]),
        "caseworker": caseworker,
        "another caseworker": world.user(Role.CASEWORKER),
        "funder": world.user(Role.FUNDER),
    }
    expected = {
        "admin": ids,
        "coordinator of the first": ids[:1],
        "caseworker": ids[1:3],
        "another caseworker": [],
        "funder": [],
    }
    for name, user in principals.items():
        principal = load_principal(db, user.id)
        located = access.located_shelters(db, principal)
        one_by_one = [i for i in ids if access.may_see_location(db, principal, i)]
        assert [i for i in ids if i in located] == one_by_one == expected[name], name


def test_reasons_name_other_organisations_requests_only_by_opaque_ids() -> None:
    from placement.generator import generate
    from placement.solution import SCHEMA, Solution
    from placement.solve import solve
    from shelters import redaction

    # Numeric ids, as stored runs have; a tight network, so reasons name placed requests.
    doc = generate(60, 3, seed=4)
    shelter_ids = {s["id"]: str(k + 1) for k, s in enumerate(doc["shelters"])}
    request_ids = {q["id"]: str(k + 1) for k, q in enumerate(doc["requests"])}
    for s in doc["shelters"]:
        s["id"] = shelter_ids[s["id"]]
    for q in doc["requests"]:
        q["id"] = request_ids[q["id"]]
        q["separate_from"] = [request_ids[o] for o in q.get("separate_from", ())]
        q["excluded_shelters"] = [shelter_ids[o] for o in q.get("excluded_shelters", ())]
    problem = Problem.from_document(doc)
    solution = solve(problem, method="greedy")
    stored = solution.to_document()
    named = {b for u in solution.unplaced for r in u.reasons for b in r.by}
    assert named, "the network should make some reasons name placed requests"
    own = {q.id for k, q in enumerate(problem.requests) if k % 2 == 0}
    view = redaction.solution_view(
        stored,
        problem.to_document(),
        located=access.LocatedShelters(every=True, ids=frozenset()),
        own=own,
        rename=lambda i: f"other-{i}",
    )
    assert view["schema"] == SCHEMA
    text = json.dumps({k: view[k] for k in ("unplaced", "request_sets")})
    for other in named - own:
        assert f'"{other}"' not in text
    mine = [u for u in view["unplaced"] if "reasons" in u]
    seen = Solution.from_document({**view, "assignments": [], "unplaced": mine}).unplaced
    want_all = [u for u in solution.unplaced if u.request in own]
    assert [u.request for u in seen] == [u.request for u in want_all]
    for got, want in zip(seen, want_all, strict=True):
        assert [r.shelters for r in got.reasons] == [r.shelters for r in want.reasons]
        assert [set(r.by) for r in got.reasons] == [
            {b if b in own else f"other-{b}" for b in r.by} for r in want.reasons
        ]
