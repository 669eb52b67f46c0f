"""Cases and placement requests: organisation scoping, validation, codes, idempotency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.app import create_app
from service.auth import issue_token
from service.db import make_engine
from shelters import cases, identity
from shelters.codes import normalize
from shelters.identity import Role
from shelters.models import Case, IdempotencyKey, Organization, PlacementRequest
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import TEST_SECRET, World, make_settings
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, ONE_WOMAN, create_case, create_request


@pytest.fixture
def caseworker(world: World) -> dict[str, str]:
    world.region()
    return world.headers(Role.CASEWORKER)


def test_a_case_gets_a_random_checkable_code_and_the_callers_organisation(
    client: TestClient, world: World
) -> None:
    org = world.organization()
    user = world.user(Role.CASEWORKER, org=org)
    case = create_case(client, world.headers_for(user), MOTHER_AND_CHILD)
    assert normalize(case["code"]) == case["code"]
    assert case["organization_id"] == org.id
    assert [m["status"] for m in case["members"]] == ["adult", "accompanied_child"]
    other = create_case(client, world.headers_for(user))
    assert other["code"] != case["code"]


def test_the_organisation_cannot_be_chosen_in_the_body(
    client: TestClient, caseworker: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/cases", json={"members": ONE_WOMAN, "organization_id": 1}, headers=caseworker
    )
    assert response.status_code == 422


@pytest.mark.parametrize("field", ["name", "birth_date", "passport", "phone", "email", "address"])
def test_personal_fields_are_refused_anywhere(
    client: TestClient, caseworker: dict[str, str], field: str
) -> None:
    on_member = [{"ref": "A", "sex": "female", "age": 29, field: "x"}]
    assert (
        client.post("/api/v1/cases", json={"members": on_member}, headers=caseworker).status_code
        == 422
    )
    on_case = {"members": ONE_WOMAN, field: "x"}
    assert client.post("/api/v1/cases", json=on_case, headers=caseworker).status_code == 422


def test_other_organisations_cases_do_not_exist_and_funders_are_forbidden(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    case = create_case(client, caseworker)
    url = f"/api/v1/cases/{case['id']}"
    assert client.get(url, headers=world.headers(Role.CASEWORKER)).status_code == 404
    assert client.get(url, headers=world.headers(Role.FUNDER)).status_code == 403
    assert client.get(url, headers=world.headers(Role.COORDINATOR)).status_code == 403
    assert client.get(url, headers=caseworker).status_code == 200
    listed = client.get("/api/v1/cases", headers=world.headers(Role.CASEWORKER)).json()
    assert case["id"] not in [c["id"] for c in listed["items"]]


def test_separation_from_unknown_or_foreign_cases_is_accepted_alike(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    foreign = create_case(client, world.headers(Role.CASEWORKER))
    named_foreign = create_case(client, caseworker, separate_from_case_ids=[foreign["id"]])
    named_nothing = create_case(client, caseworker, separate_from_case_ids=[987_654])
    assert named_foreign["separate_from_case_ids"] == [foreign["id"]]
    assert named_nothing["separate_from_case_ids"] == [987_654]


def test_find_a_case_by_code_and_catch_a_typo(
    client: TestClient, caseworker: dict[str, str]
) -> None:
    case = create_case(client, caseworker)
    found = client.get("/api/v1/cases", params={"code": case["code"].lower()}, headers=caseworker)
    assert [c["id"] for c in found.json()["items"]] == [case["id"]]
    raw = case["code"].replace("-", "")
    typo = raw[:3] + ("X" if raw[3] != "X" else "Y") + raw[4:]
    mistyped = client.get("/api/v1/cases", params={"code": typo}, headers=caseworker)
    assert mistyped.status_code == 422
    assert "mistyped" in mistyped.json()["detail"]


def test_case_patch_needs_if_match_and_updates_pending_requests(
    client: TestClient, caseworker: dict[str, str], db: Session
) -> None:
    case = create_case(client, caseworker)
    request = create_request(client, caseworker, case["id"])
    url = f"/api/v1/cases/{case['id']}"
    etag = client.get(url, headers=caseworker).headers["etag"]
    assert (
        client.patch(url, json={"members": MOTHER_AND_CHILD}, headers=caseworker).status_code == 428
    )
    changed = client.patch(
        url, json={"members": MOTHER_AND_CHILD}, headers=caseworker | {"If-Match": etag}
    )
    assert changed.status_code == 200
    assert len(changed.json()["members"]) == 2
    stored = db.get(PlacementRequest, request["id"])
    assert stored is not None
    db.refresh(stored)
    assert (stored.people_adult, stored.people_accompanied_child) == (1, 1)
    stale = client.patch(url, json={"wheelchair": True}, headers=caseworker | {"If-Match": etag})
    assert stale.status_code == 412


def test_default_priority_follows_unaccompanied_minors(
    client: TestClient, caseworker: dict[str, str]
) -> None:
    adult = create_case(client, caseworker)
    minor = create_case(client, caseworker, [{"ref": "A", "sex": "female", "age": 14}])
    assert create_request(client, caseworker, adult["id"])["priority"] == 3
    assert create_request(client, caseworker, minor["id"])["priority"] == 4
    explicit = create_case(client, caseworker)
    assert create_request(client, caseworker, explicit["id"], priority=5)["priority"] == 5


def test_requests_are_scoped_to_the_organisation(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    case = create_case(client, caseworker)
    other = world.headers(Role.CASEWORKER)
    assert (
        client.post(
            "/api/v1/placement-requests", json={"case_id": case["id"]}, headers=other
        ).status_code
        == 404
    )
    request = create_request(client, caseworker, case["id"])
    assert (
        client.get(f"/api/v1/placement-requests/{request['id']}", headers=other).status_code == 404
    )
    assert (
        client.post(f"/api/v1/placement-requests/{request['id']}/cancel", headers=other).status_code
        == 404
    )
    assert (
        client.post(f"/api/v1/placement-requests/{request['id']}/match", headers=other).status_code
        == 404
    )
    funder = world.headers(Role.FUNDER)
    assert client.get("/api/v1/placement-requests", headers=funder).status_code == 403


def test_one_open_request_per_case(client: TestClient, caseworker: dict[str, str]) -> None:
    case = create_case(client, caseworker)
    first = create_request(client, caseworker, case["id"])
    again = client.post(
        "/api/v1/placement-requests", json={"case_id": case["id"]}, headers=caseworker
    )
    assert again.status_code == 409
    cancelled = client.post(f"/api/v1/placement-requests/{first['id']}/cancel", headers=caseworker)
    assert cancelled.json()["status"] == "cancelled"
    assert create_request(client, caseworker, case["id"])["status"] == "pending"


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_idempotent_retry_returns_the_original_and_writes_nothing_new(
    client: TestClient, caseworker: dict[str, str], db: Session
) -> None:
    headers = caseworker | {"Idempotency-Key": "case-create-0001"}
    body = {"members": ONE_WOMAN}
    first = client.post("/api/v1/cases", json=body, headers=headers)
    before = _count(db, Case)
    retry = client.post("/api/v1/cases", json=body, headers=headers)
    assert (retry.status_code, retry.json()) == (first.status_code, first.json())
    assert _count(db, Case) == before
    other_body = client.post("/api/v1/cases", json={"members": MOTHER_AND_CHILD}, headers=headers)
    assert other_body.status_code == 422
    assert "different request body" in other_body.json()["detail"]


def test_same_key_from_another_user_is_another_key(
    client: TestClient, world: World, caseworker: dict[str, str], db: Session
) -> None:
    body = {"members": ONE_WOMAN}
    key = {"Idempotency-Key": "shared-key"}
    client.post("/api/v1/cases", json=body, headers=caseworker | key)
    before = _count(db, Case)
    other = client.post("/api/v1/cases", json=body, headers=world.headers(Role.CASEWORKER) | key)
    assert other.status_code == 201
    assert _count(db, Case) == before + 1


def test_a_retry_while_the_first_is_running_is_409(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    world.region()
    body = {"members": ONE_WOMAN}
    first = client.post(
        "/api/v1/cases", json=body, headers=world.headers_for(user) | {"Idempotency-Key": "k-1"}
    )
    row = db.get(IdempotencyKey, (user.id, "k-1"))
    assert row is not None
    assert first.status_code == 201
    row.state = "running"
    db.flush()
    retry = client.post(
        "/api/v1/cases", json=body, headers=world.headers_for(user) | {"Idempotency-Key": "k-1"}
    )
    assert retry.status_code == 409


def test_a_failed_request_releases_its_key(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    headers = caseworker | {"Idempotency-Key": "retry-after-fix"}
    bad = {"members": ONE_WOMAN, "excluded_regions": ["atlantis"]}
    assert client.post("/api/v1/cases", json=bad, headers=headers).status_code == 422
    good = client.post("/api/v1/cases", json=bad | {"excluded_regions": []}, headers=headers)
    assert good.status_code == 201


def test_idempotent_request_creation(
    client: TestClient, caseworker: dict[str, str], db: Session
) -> None:
    case = create_case(client, caseworker)
    headers = caseworker | {"Idempotency-Key": "request-1"}
    first = client.post("/api/v1/placement-requests", json={"case_id": case["id"]}, headers=headers)
    second = client.post(
        "/api/v1/placement-requests", json={"case_id": case["id"]}, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    rows = db.scalar(
        select(func.count())
        .select_from(PlacementRequest)
        .where(PlacementRequest.case_id == case["id"])
    )
    assert rows == 1


@pytest.mark.parametrize(
    ("members", "named"),
    [
        (
            [
                {"ref": "A", "sex": "female", "age": 30, "guardian_ref": "B"},
                {"ref": "B", "sex": "female", "age": 35, "guardian_ref": "A"},
            ],
            "member A",
        ),
        (
            [
                {"ref": "A", "sex": "female", "age": 40, "guardian_ref": "B"},
                {"ref": "B", "sex": "female", "age": 20},
                {"ref": "C", "sex": "male", "age": 4, "guardian_ref": "A"},
            ],
            "member C",
        ),
    ],
)
def test_a_guardian_is_an_adult_without_a_guardian(
    client: TestClient, caseworker: dict[str, str], members: list[dict[str, Any]], named: str
) -> None:
    response = client.post("/api/v1/cases", json={"members": members}, headers=caseworker)
    assert response.status_code == 422
    assert named in response.json()["detail"]
    assert "has a guardian" in response.json()["detail"]


def test_simultaneous_requests_for_one_case_make_one(fresh_database: str) -> None:
    engine = make_engine(fresh_database)
    settings = make_settings(fresh_database)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        org = Organization(name="Race org", kind="ngo")
        session.add(org)
        session.flush()
        user = identity.create_user(
            session,
            username="race-requests",
            password="a long enough password",
            role=Role.CASEWORKER,
            organization_id=org.id,
        )
        case = cases.create_case(
            session,
            identity.principal_of(user),
            CaseProfile(members=(MemberProfile(ref="A", sex="female", age=30),)),
            separate_from_case_ids=[],
            majority_age=18,
        )
        token, _ = issue_token(settings, TEST_SECRET, user)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(
                lambda _: client.post(
                    "/api/v1/placement-requests", json={"case_id": case.id}, headers=headers
                ),
                range(6),
            )
        )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409]
    with Session(engine) as session:
        made = session.scalars(
            select(PlacementRequest.id).where(PlacementRequest.case_id == case.id)
        ).all()
    engine.dispose()
    assert len(made) == 1
    winner = next(r for r in responses if r.status_code == 201).json()["id"]
    assert all(f"request {winner}" in r.json()["detail"] for r in responses if r.status_code == 409)
