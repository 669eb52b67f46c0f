"""No route hands a shelter's address or coordinates to a caller who may not see them (SPEC §3).

A world with two organisations and every role, whose two shelters have confidential values
found nowhere else (marker addresses, coordinates with six decimals), runs, matches,
placements and grants; then every route of the app (API and pages, enumerated from the app
itself, so a new route is walked without editing this file) is called as every role, GET with
JSON and with CSV, and writes with a plausible body inside a savepoint that is rolled back,
and every response body and header is searched for the markers the caller may not see.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Connection, select

from service.app import iter_api_routes
from shelters.identity import Role, User
from shelters.models import InboxEntry, MatchingRun, Shelter, utcnow
from tests.conftest import CSRF, PASSWORD, World
from tests.service.lifecycle_helpers import ADULT_WOMEN, ONE_WOMAN, create_case, create_request

# Routes that cannot leak, or that the walk must not call. Keep it short, say why.
SKIP = {
    ("GET", "/healthz"),  # liveness: a constant body
    ("GET", "/readyz"),  # readiness: database up or not
    ("GET", "/ui/static/{name}"),  # the stylesheet, a file on disk
    ("POST", "/ui/logout"),  # would end the walking session itself
}
TODAY = utcnow().date()
PERIOD = {"from": (TODAY - timedelta(days=30)).isoformat(), "to": TODAY.isoformat()}
CASE_BODY = {"members": ONE_WOMAN}
CASE_FORM = {"member-0-sex": "female", "member-0-age": "29"}
# Bodies that get a write past validation, so that its real answer is searched too.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/availability/check"): CASE_BODY,
    ("POST", "/api/v1/cases"): CASE_BODY,
    ("POST", "/api/v1/matching-runs"): {"dry_run": True, "time_limit_s": 2, "seed": 1},
    ("POST", "/api/v1/scenarios"): PERIOD
    | {"changes": [{"kind": "change_grant", "shelter_id": 1, "beds": 1}]},
    ("POST", "/api/v1/placements/{placement_id}/decline"): {"reason": "staffing"},
    ("PATCH", "/api/v1/shelters/{shelter_id}"): {"locality": "Test locality"},
    ("PATCH", "/api/v1/units/{unit_id}"): {"out_of_service": 0},
    ("PATCH", "/api/v1/cases/{case_id}"): {"high_risk": False},
    ("POST", "/ui/find-bed"): CASE_FORM,
    ("POST", "/ui/cases"): CASE_FORM,
    ("POST", "/ui/placements/{placement_id}/{action}"): {"reason": "staffing"},
}


@dataclass(frozen=True)
class Secret:
    """One shelter's confidential values and every form in which they could appear."""

    address: str
    lat: float
    lon: float

    def forms(self) -> list[str]:
        found = [self.address]
        for value in (self.lat, self.lon):
            found += [str(value), repr(value), *(f"{value:.{d}f}" for d in (4, 5, 6))]
            found.append(str(round(value * 1_000_000)))  # micro-degrees
        return sorted(set(found))


SECRET_A = Secret("ADDR-MARKER-7f3a91c2-shelter-a", 47.123457, 71.987653)
SECRET_B = Secret("ADDR-MARKER-b6d20e48-shelter-b", 44.654321, 68.345679)


@dataclass
class Caller:
    role: str
    user: User
    headers: dict[str, str]
    may_see: set[str]  # "A", "B"
    page: TestClient | None = None
    csrf: str = ""


@dataclass
class LeakWorld:
    shelters: dict[str, Shelter]
    callers: dict[str, Caller]
    ids: dict[str, list[str]]  # path parameter → the real ids to fill it with


def _ok(response: Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def build(client: TestClient, world: World) -> LeakWorld:
    """Two organisations, every role, two shelters, runs, a match each, placements, a grant."""
    world.region("leakland", lat=40.5, lon=60.5)
    host = world.organization()
    a, b = (
        world.shelter(host, region_code="leakland", address=x.address, lat=x.lat, lon=x.lon)
        for x in (SECRET_A, SECRET_B)
    )
    unit_a = world.unit(a, capacity=6, admits=[ADULT_WOMEN])
    unit_b = world.unit(b, capacity=6, admits=[ADULT_WOMEN])
    org1, org2 = world.organization(), world.organization()
    funder_org = world.organization("funder")
    users = {
        "admin": (world.user(Role.ADMIN), {"A", "B"}),
        "coordinator_a": (world.user(Role.COORDINATOR, org=host, shelters=[a]), {"A"}),
        "caseworker_accepted": (world.user(Role.CASEWORKER, org=org1), {"A"}),
        "caseworker_none": (world.user(Role.CASEWORKER, org=org2), set()),
        "funder": (world.user(Role.FUNDER, org=funder_org), set()),
    }
    callers = {
        name: Caller(name, user, world.headers_for(user), may_see)
        for name, (user, may_see) in users.items()
    }
    h = {name: c.headers for name, c in callers.items()}
    # Organisation 1: matched at A (B excluded), accepted by A's coordinator.
    case1 = create_case(client, h["caseworker_accepted"], excluded_shelter_ids=[b.id])
    request1 = create_request(client, h["caseworker_accepted"], case1["id"])
    placed1 = _ok(
        client.post(
            f"/api/v1/placement-requests/{request1['id']}/match", headers=h["caseworker_accepted"]
        )
    )
    assert placed1["placed"] is True, placed1
    placement1 = placed1["placement"]["id"]
    _ok(client.post(f"/api/v1/placements/{placement1}/accept", headers=h["coordinator_a"]))
    # Organisation 2: matched (proposed only, never accepted), and one request left pending.
    case2 = create_case(client, h["caseworker_none"])
    request2 = create_request(client, h["caseworker_none"], case2["id"])
    placed2 = _ok(
        client.post(
            f"/api/v1/placement-requests/{request2['id']}/match", headers=h["caseworker_none"]
        )
    )
    assert placed2["placed"] is True, placed2
    pending2 = create_request(
        client, h["caseworker_none"], create_case(client, h["caseworker_none"])["id"]
    )
    pending1 = create_request(
        client, h["caseworker_accepted"], create_case(client, h["caseworker_accepted"])["id"]
    )
    # A dry batch over both organisations' pending requests.
    batch = client.post(
        "/api/v1/matching-runs",
        json={"dry_run": True, "seed": 3, "time_limit_s": 2},
        headers=h["admin"],
    )
    assert batch.status_code == 202, batch.text
    grant = _ok(
        client.post(
            "/api/v1/grants",
            headers=h["admin"],
            json={
                "funder_organization_id": funder_org.id,
                "shelter_id": a.id,
                "start": PERIOD["from"],
                "end": PERIOD["to"],
                "amount": "1000.00",
                "currency": "KZT",
                "funded_beds": 2,
            },
        ),
        201,
    )
    key = _ok(
        client.post(
            f"/api/v1/users/{callers['caseworker_none'].user.id}/api-keys", headers=h["admin"]
        ),
        201,
    )
    hook = _ok(
        client.post(
            "/api/v1/webhooks", headers=h["admin"], json={"url": "http://127.0.0.1:9/hooks"}
        ),
        201,
    )
    # A what-if over the period's stored runs (the two single matches): its per-run documents
    # name shelters by id, never where they are.
    scenario = _ok(
        client.post(
            "/api/v1/scenarios",
            headers=h["admin"],
            json=PERIOD | {"changes": [{"kind": "change_grant", "shelter_id": a.id, "beds": 2}]},
        ),
        202,
    )
    entries = [str(i) for i in world.db.scalars(select(InboxEntry.id).order_by(InboxEntry.id))]
    assert entries  # the proposals above told their shelters' coordinators
    runs = [str(i) for i in world.db.scalars(select(MatchingRun.id).order_by(MatchingRun.id))]
    assert len(runs) == 3
    ids = {
        "shelter_id": [str(a.id), str(b.id)],
        "unit_id": [str(unit_a.id), str(unit_b.id)],
        "case_id": [str(case1["id"]), str(case2["id"])],
        "request_id": [str(r["id"]) for r in (request1, request2, pending1, pending2)],
        "placement_id": [str(placement1), str(placed2["placement"]["id"])],
        "run_id": runs,
        "scenario_id": [str(scenario["id"])],
        "grant_id": [str(grant["id"])],
        "organization_id": [str(host.id), str(org1.id)],
        "user_id": [str(callers["caseworker_none"].user.id)],
        "key_id": [str(key["id"])],
        "entry_id": entries,
        "endpoint_id": [str(hook["id"])],
        "action": ["accept", "decline", "admit", "discharge"],
    }
    return LeakWorld({"A": a, "B": b}, callers, ids)


@contextmanager
def logged_in(app: FastAPI, caller: Caller) -> Iterator[None]:
    """The caller's web session (an https client keeping cookies) while the block runs."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as page:
        token = CSRF.search(page.get("/ui/login").text)
        assert token is not None
        response = page.post(
            "/ui/login",
            data={
                "username": caller.user.username,
                "password": PASSWORD,
                "csrf_token": token.group(1),
            },
        )
        assert response.status_code == 303, response.text
        landing = page.get("/ui/reports" if caller.role == "funder" else "/ui/find-bed")
        found = CSRF.search(landing.text)
        assert found is not None
        caller.page, caller.csrf = page, found.group(1)
        yield


def paths(template: str, ids: dict[str, list[str]]) -> list[str]:
    names = re.findall(r"\{([^}]+)\}", template)
    missing = [n for n in names if n not in ids]
    assert missing == [], f"{template}: the walk has no ids for {missing}; add them to build()"
    out = []
    for combo in itertools.product(*(ids[n] for n in names)):
        path = template
        for name, value in zip(names, combo, strict=True):
            path = path.replace("{" + name + "}", value)
        out.append(path)
    return out


def call(
    client: TestClient, caller: Caller, method: str, template: str, path: str
) -> list[Response]:
    """The responses of one route for one caller: JSON and CSV for reads, one try for writes."""
    params = PERIOD if "/reports" in path else None
    body = BODIES.get((method, template))
    if path.startswith("/ui"):
        assert caller.page is not None
        if method == "GET":
            return [caller.page.get(path, params=params)]
        form = {"csrf_token": caller.csrf, **(body or {})}
        return [caller.page.request(method, path, data=form)]
    if method == "GET":
        return [
            client.get(path, params=params, headers=caller.headers),
            client.get(path, params=params, headers=caller.headers | {"Accept": "text/csv"}),
        ]
    headers = dict(caller.headers)
    if method == "PATCH":
        etag = client.get(path, headers=caller.headers).headers.get("etag")
        if etag:
            headers["If-Match"] = etag
    return [client.request(method, path, json=body if body is not None else {}, headers=headers)]


def leaks(response: Response, hidden: list[str]) -> list[str]:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return [marker for marker in hidden if marker in text]


def walk(
    app: FastAPI,
    client: TestClient,
    connection: Connection,
    caller: Caller,
    ids: dict[str, list[str]],
) -> Iterator[tuple[str, str, str, Response]]:
    """Every route (method, template, path, response) as this caller; writes rolled back."""
    for route in iter_api_routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            if (method, route.path) in SKIP:
                continue
            for path in paths(route.path, ids):
                savepoint = None if method == "GET" else connection.begin_nested()
                try:
                    responses = call(client, caller, method, route.path, path)
                finally:
                    if savepoint is not None and savepoint.is_active:
                        savepoint.rollback()
                for response in responses:
                    yield method, route.path, path, response


def test_no_route_shows_a_shelter_location_to_a_caller_who_may_not_see_it(
    app: FastAPI, client: TestClient, world: World, connection: Connection
) -> None:
    leak_world = build(client, world)
    secrets_of = {"A": SECRET_A.forms(), "B": SECRET_B.forms()}
    walked: set[tuple[str, str]] = set()
    answered: dict[str, int] = {}
    found: list[str] = []
    for caller in leak_world.callers.values():
        hidden = [
            m for name, forms in secrets_of.items() if name not in caller.may_see for m in forms
        ]
        with logged_in(app, caller):
            for method, template, path, response in walk(
                app, client, connection, caller, leak_world.ids
            ):
                assert response.status_code < 500, f"{method} {path}: {response.text}"
                walked.add((method, template))
                if response.status_code < 300:
                    answered[caller.role] = answered.get(caller.role, 0) + 1
                found += [
                    f"{caller.role} {method} {path} ({response.status_code}): {marker}"
                    for marker in leaks(response, hidden)
                ]
    assert found == []
    # Every route was reached, the documents included, and each role got real answers.
    assert {
        ("GET", "/api/v1/matching-runs/{run_id}/problem"),
        ("GET", "/api/v1/matching-runs/{run_id}/solution"),
        ("POST", "/api/v1/placement-requests/{request_id}/match"),
        ("POST", "/api/v1/availability/check"),
        ("GET", "/ui/caseworker"),
    } <= walked
    assert len(walked) >= 60
    assert min(answered.values()) >= 10, answered
    assert set(answered) == set(leak_world.callers)


def test_the_walk_can_fail_allowed_callers_see_the_markers(
    client: TestClient, world: World
) -> None:
    leak_world = build(client, world)
    a, b = leak_world.shelters["A"], leak_world.shelters["B"]
    for caller in leak_world.callers.values():
        for name, shelter, secret in (("A", a, SECRET_A), ("B", b, SECRET_B)):
            response = client.get(f"/api/v1/shelters/{shelter.id}", headers=caller.headers)
            if caller.role == "coordinator_a" and name == "B":
                assert response.status_code == 404
                continue
            shown = leaks(response, secret.forms())
            assert bool(shown) == (name in caller.may_see), (caller.role, name, shown)
    # The stored documents do hold the coordinates: the walk searched where they could be.
    admin = leak_world.callers["admin"].headers
    for run_id in leak_world.ids["run_id"]:
        problem = client.get(f"/api/v1/matching-runs/{run_id}/problem", headers=admin)
        assert leaks(problem, SECRET_A.forms())
        assert leaks(problem, SECRET_B.forms())
    mine = leak_world.callers["caseworker_accepted"].headers
    first = leak_world.ids["run_id"][0]
    problem = client.get(f"/api/v1/matching-runs/{first}/problem", headers=mine)
    assert leaks(problem, SECRET_A.forms())
    assert not leaks(problem, SECRET_B.forms())
