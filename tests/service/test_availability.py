"""Free beds and the availability check: every reason code, reached through the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.schemas import PageOut, ShelterBedsOut
from shelters.identity import Role
from shelters.models import Shelter
from tests.conftest import World
from tests.service.lifecycle_helpers import match, request_for

ADULT_WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
CHILDREN_WITH_GUARDIAN = {
    "sexes": ["female", "male", "other"],
    "min_age": 0,
    "max_age": 12,
    "statuses": ["accompanied_child"],
}
GIRLS_ALONE = {
    "sexes": ["female"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}
MOTHER_AND_CHILD = [
    {"ref": "A", "sex": "female", "age": 30},
    {"ref": "B", "sex": "male", "age": 5, "guardian_ref": "A"},
]


@pytest.fixture
def caseworker(world: World) -> dict[str, str]:
    return world.headers(Role.CASEWORKER)


def women_and_children_shelter(world: World, beds: int = 4, **fields: Any) -> Shelter:
    shelter = world.shelter(**fields)
    world.unit(shelter, capacity=beds, admits=[ADULT_WOMEN, CHILDREN_WITH_GUARDIAN])
    return shelter


def check(client: TestClient, headers: dict[str, str], **case: Any) -> dict[str, Any]:
    body = {"members": MOTHER_AND_CHILD} | case
    response = client.post("/api/v1/availability/check", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def reasons_for(result: dict[str, Any], shelter: Shelter) -> list[str] | None:
    for entry in result["ineligible"]:
        if entry["shelter_id"] == shelter.id:
            return entry["reasons"]  # type: ignore[no-any-return]
    return None


def test_an_eligible_shelter_gets_a_bed_for_every_member(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    shelter = women_and_children_shelter(world)
    result = check(client, caseworker)
    entry = next(e for e in result["eligible"] if e["shelter_id"] == shelter.id)
    unit_ids = {b["unit_id"] for b in entry["beds"]}
    assert sorted(b["member_ref"] for b in entry["beds"]) == ["A", "B"]
    assert len(unit_ids) == 1


@pytest.mark.parametrize(
    ("shelter_fields", "case", "reason"),
    [
        ({}, {"excluded_shelter_ids": "SELF"}, "shelter_excluded"),
        (
            {"region_code": "excluded-region"},
            {"excluded_regions": ["excluded-region"]},
            "region_excluded",
        ),
        (
            {"services": []},
            {"required_services": ["child_psychologist"]},
            "missing_service:child_psychologist",
        ),
        ({"wheelchair_accessible": False}, {"wheelchair": True}, "not_wheelchair_accessible"),
        ({"security_level": "standard"}, {"high_risk": True}, "security_level_too_low"),
    ],
)
def test_each_shelter_level_reason_code(
    client: TestClient,
    world: World,
    caseworker: dict[str, str],
    shelter_fields: dict[str, Any],
    case: dict[str, Any],
    reason: str,
) -> None:
    world.region("excluded-region", 45.0, 70.0)
    shelter = women_and_children_shelter(world, **shelter_fields)
    if case.get("excluded_shelter_ids") == "SELF":
        case = {"excluded_shelter_ids": [shelter.id]}
    assert reasons_for(check(client, caseworker, **case), shelter) == [reason]


def test_an_unaccompanied_girl_is_not_admitted_where_children_come_only_with_mothers(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    mothers_only = women_and_children_shelter(world)
    girls_unit = world.shelter()
    world.unit(girls_unit, capacity=2, admits=[GIRLS_ALONE])
    result = check(client, caseworker, members=[{"ref": "A", "sex": "female", "age": 15}])
    assert reasons_for(result, mothers_only) == ["member_not_admitted:A"]
    assert any(e["shelter_id"] == girls_unit.id for e in result["eligible"])


def test_a_child_admitted_only_apart_from_the_guardian_is_a_guardian_unit_mismatch(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=4, admits=[ADULT_WOMEN])
    world.unit(shelter, capacity=4, admits=[CHILDREN_WITH_GUARDIAN])
    assert reasons_for(check(client, caseworker), shelter) == ["guardian_unit_mismatch:B"]


def test_eligible_but_full_is_capacity_and_closed_shelters_are_left_out(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    full = women_and_children_shelter(world, beds=1)
    closed = women_and_children_shelter(world, status="closed")
    result = check(client, caseworker)
    assert reasons_for(result, full) == ["capacity"]
    listed = {e["shelter_id"] for e in result["eligible"]} | {
        e["shelter_id"] for e in result["ineligible"]
    }
    assert closed.id not in listed


@pytest.mark.parametrize(
    ("members", "extra", "message"),
    [
        ([{"ref": "A", "sex": "female", "age": 30}] * 2, {}, "unique"),
        (
            [
                {"ref": "A", "sex": "female", "age": 15},
                {"ref": "B", "sex": "male", "age": 3, "guardian_ref": "A"},
            ],
            {},
            "guardian must be an adult",
        ),
        ([{"ref": "A", "sex": "female", "age": 3, "guardian_ref": "Z"}], {}, "another member"),
        (MOTHER_AND_CHILD, {"required_services": ["juggling"]}, "unknown services"),
        (MOTHER_AND_CHILD, {"excluded_regions": ["atlantis"]}, "unknown regions"),
    ],
)
def test_a_case_that_breaks_a_rule_is_refused(
    client: TestClient,
    caseworker: dict[str, str],
    members: list[dict[str, Any]],
    extra: dict[str, Any],
    message: str,
) -> None:
    response = client.post(
        "/api/v1/availability/check", json={"members": members} | extra, headers=caseworker
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_person_fields_are_refused(client: TestClient, caseworker: dict[str, str]) -> None:
    members = [{"ref": "A", "sex": "female", "age": 30, "name": "should not be accepted"}]
    response = client.post(
        "/api/v1/availability/check", json={"members": members}, headers=caseworker
    )
    assert response.status_code == 422
    assert "should not be accepted" not in response.text


def test_availability_lists_free_beds_and_filters(client: TestClient, world: World) -> None:
    world.region("filter-region", 44.0, 66.0)
    medical = women_and_children_shelter(
        world, beds=5, services=["medical_care"], region_code="filter-region"
    )
    suspended = women_and_children_shelter(world, region_code="filter-region", status="suspended")
    headers = world.headers(Role.COORDINATOR, shelters=[medical])

    def ids(**params: Any) -> list[int]:
        page = client.get(
            "/api/v1/availability", params={"region": "filter-region", **params}, headers=headers
        )
        assert page.status_code == 200
        return [s["shelter_id"] for s in page.json()["items"]]

    assert ids() == [medical.id, suspended.id]
    assert ids(service="medical_care") == [medical.id]
    assert ids(status="suspended") == [suspended.id]
    item = client.get(
        "/api/v1/availability", params={"region": "filter-region"}, headers=headers
    ).json()["items"][0]
    assert item["available"] == 5
    assert item["units"][0]["available"] == 5
    assert "address" not in item


def test_filtered_pages_carry_only_their_own_shelters_units(
    client: TestClient, world: World
) -> None:
    # Units are read for the page's id range: shelters a filter left out lie inside that range
    # (a service or a status between two listed ids) and their units must not leak in.
    world.region("range-region", 46.0, 71.0)
    first = women_and_children_shelter(
        world, beds=2, region_code="range-region", services=["legal_aid"]
    )
    between = women_and_children_shelter(world, beds=7, region_code="range-region")
    world.unit(between, capacity=9, admits=[GIRLS_ALONE])
    suspended = women_and_children_shelter(
        world, beds=8, region_code="range-region", services=["legal_aid"], status="suspended"
    )
    last = women_and_children_shelter(
        world, beds=3, region_code="range-region", services=["legal_aid"]
    )
    elsewhere = women_and_children_shelter(world, beds=5, services=["legal_aid"])
    headers = world.headers(Role.CASEWORKER)

    def pages(**params: Any) -> list[list[tuple[int, list[int]]]]:
        found, cursor = [], None
        while True:
            query = {"region": "range-region", **params} | ({"cursor": cursor} if cursor else {})
            body = client.get("/api/v1/availability", params=query, headers=headers).json()
            found.append(
                [(s["shelter_id"], [u["available"] for u in s["units"]]) for s in body["items"]]
            )
            cursor = body["next_cursor"]
            if cursor is None:
                return found

    assert pages(service="legal_aid", status="open", limit=2) == [[(first.id, [2]), (last.id, [3])]]
    assert pages(service="legal_aid", limit=1) == [
        [(first.id, [2])],
        [(suspended.id, [8])],
        [(last.id, [3])],
    ]
    assert pages(status="open", limit=5) == [
        [(first.id, [2]), (between.id, [7, 9]), (last.id, [3])]
    ]
    everywhere = client.get(
        "/api/v1/availability", params={"service": "legal_aid"}, headers=headers
    ).json()["items"]
    assert elsewhere.id in {s["shelter_id"] for s in everywhere}
    assert between.id not in {s["shelter_id"] for s in everywhere}


def test_the_availability_body_is_exactly_its_declared_model(
    client: TestClient, world: World
) -> None:
    # The list is rendered from plain rows, not through the response model: the body must
    # still be what the model would produce, field for field, on every page.
    world.region("model-region", 45.0, 70.0)
    shelters = [
        women_and_children_shelter(world, beds=3, region_code="model-region", services=s)
        for s in (["medical_care", "legal_aid"], [], ["interpretation"])
    ]
    world.unit(shelters[0], capacity=6, out_of_service=1, held=2, admits=[GIRLS_ALONE])
    headers = world.headers(Role.CASEWORKER)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"region": "model-region", "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/api/v1/availability", params=params, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert PageOut[ShelterBedsOut].model_validate(body).model_dump(mode="json") == body
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [s["shelter_id"] for s in seen] == [s.id for s in shelters]
    first = seen[0]
    assert first["services"] == ["medical_care", "legal_aid"]
    assert [u["available"] for u in first["units"]] == [3, 3]
    assert first["available"] == 6
    assert first["units"][1]["admits"] == [GIRLS_ALONE]


def test_funders_may_not_look_at_availability(client: TestClient, world: World) -> None:
    funder = world.headers(Role.FUNDER)
    assert client.get("/api/v1/availability", headers=funder).status_code == 403
    response = client.post(
        "/api/v1/availability/check", json={"members": MOTHER_AND_CHILD}, headers=funder
    )
    assert response.status_code == 403


def test_the_check_takes_a_case_body_and_keeps_separated_cases_apart(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    where_the_other_is = women_and_children_shelter(world)
    elsewhere = women_and_children_shelter(world)
    other_org = world.headers(Role.CASEWORKER)
    other_request = request_for(client, other_org)
    other_case = client.get(f"/api/v1/placement-requests/{other_request}", headers=other_org)
    placed = match(client, other_org, other_request)
    assert placed["placement"]["shelter_id"] in (where_the_other_is.id, elsewhere.id)
    housed_at = placed["placement"]["shelter_id"]
    free = elsewhere.id if housed_at == where_the_other_is.id else where_the_other_is.id
    result = check(client, caseworker, separate_from_case_ids=[other_case.json()["case_id"]])
    assert [e["shelter_id"] for e in result["eligible"]] == [free]
    assert result["ineligible"] == [{"shelter_id": housed_at, "reasons": ["separated_case_housed"]}]


def test_the_check_takes_every_field_of_a_case_body(
    client: TestClient, world: World, caseworker: dict[str, str]
) -> None:
    region = world.region(code="check-region")
    shelter = women_and_children_shelter(world)
    body = {
        "members": MOTHER_AND_CHILD,
        "required_services": [],
        "desired_services": ["legal_aid"],
        "languages": ["ru"],
        "wheelchair": False,
        "high_risk": False,
        "excluded_regions": [],
        "excluded_shelter_ids": [],
        "separate_from_case_ids": [987654],
        "current_region": region.code,
        "location": {"lat": 51.1, "lon": 71.4},
    }
    created = client.post("/api/v1/cases", json=body, headers=caseworker)
    assert created.status_code == 201, created.text
    checked = client.post("/api/v1/availability/check", json=body, headers=caseworker)
    assert checked.status_code == 200, checked.text
    assert [e["shelter_id"] for e in checked.json()["eligible"]] == [shelter.id]
