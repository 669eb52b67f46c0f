"""Shelters and units through the API: roles, confidential location, ETags, the invariant."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelters import identity, registry
from shelters.errors import InvalidInput, NotFound, StaleVersion
from shelters.identity import Role
from shelters.models import Unit, UnitChange
from tests.conftest import World

WOMEN_AND_CHILDREN = [
    {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]},
    {
        "sexes": ["female", "male", "other"],
        "min_age": 0,
        "max_age": 12,
        "statuses": ["accompanied_child"],
    },
]
SECRET_ADDRESS = "Confidential test address"


def shelter_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organization_id": world.organization().id,
        "name": "Test Crisis Centre",
        "region": world.region().code,
        "locality": "Test town",
        "address": SECRET_ADDRESS,
        "location": {"lat": 51.1, "lon": 71.3},
        "security_level": "high",
        "services": ["medical_care", "legal_aid"],
        "languages": ["kk", "ru"],
    }
    return body | overrides


def test_admin_creates_a_shelter_and_others_may_not(client: TestClient, world: World) -> None:
    body = shelter_body(world)
    for role in (Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER):
        assert (
            client.post("/api/v1/shelters", json=body, headers=world.headers(role)).status_code
            == 403
        )
    created = client.post("/api/v1/shelters", json=body, headers=world.headers(Role.ADMIN))
    assert created.status_code == 201
    assert created.headers["etag"] == f'"shelter-{created.json()["id"]}-v1"'
    assert created.json()["address"] == SECRET_ADDRESS


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"region": "atlantis"}, "unknown region"),
        ({"services": ["juggling"]}, "unknown services"),
        ({"organization_id": 999_999}, "does not exist"),
    ],
)
def test_shelter_with_unknown_references_is_refused(
    client: TestClient, world: World, override: dict[str, Any], message: str
) -> None:
    response = client.post(
        "/api/v1/shelters", json=shelter_body(world, **override), headers=world.headers(Role.ADMIN)
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_each_role_sees_the_location_only_where_allowed(client: TestClient, world: World) -> None:
    shelter = world.shelter(address=SECRET_ADDRESS, lat=50.5, lon=70.5)
    other = world.shelter()
    views = {
        "admin": world.headers(Role.ADMIN),
        "own coordinator": world.headers(Role.COORDINATOR, shelters=[shelter]),
        "other coordinator": world.headers(Role.COORDINATOR, shelters=[other]),
        "caseworker": world.headers(Role.CASEWORKER),
        "funder": world.headers(Role.FUNDER),
    }
    seen = {
        name: client.get(f"/api/v1/shelters/{shelter.id}", headers=h) for name, h in views.items()
    }
    assert seen["other coordinator"].status_code == 404
    for name in ("admin", "own coordinator"):
        assert seen[name].json()["address"] == SECRET_ADDRESS
        assert seen[name].json()["location"] == {"lat": 50.5, "lon": 70.5}
    for name in ("caseworker", "funder"):
        body = seen[name].json()
        assert seen[name].status_code == 200
        assert "address" not in body
        assert "location" not in body
        assert SECRET_ADDRESS not in seen[name].text
        assert "50.5" not in seen[name].text
        assert body["region"] == shelter.region_code
        assert body["locality"] == shelter.locality


def test_coordinators_list_only_their_own_shelters(client: TestClient, world: World) -> None:
    mine, theirs = world.shelter(), world.shelter()
    headers = world.headers(Role.COORDINATOR, shelters=[mine])
    ids = [s["id"] for s in client.get("/api/v1/shelters", headers=headers).json()["items"]]
    assert ids == [mine.id]
    all_ids = [
        s["id"]
        for s in client.get(
            "/api/v1/shelters", params={"limit": 200}, headers=world.headers(Role.CASEWORKER)
        ).json()["items"]
    ]
    assert {mine.id, theirs.id} <= set(all_ids)


def test_shelter_patch_needs_a_current_etag(client: TestClient, world: World) -> None:
    shelter = world.shelter()
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/shelters/{shelter.id}"
    etag = client.get(url, headers=headers).headers["etag"]
    missing = client.patch(url, json={"status": "suspended"}, headers=headers)
    assert missing.status_code == 428
    changed = client.patch(url, json={"status": "suspended"}, headers=headers | {"If-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["status"] == "suspended"
    assert changed.headers["etag"] != etag
    stale = client.patch(url, json={"status": "open"}, headers=headers | {"If-Match": etag})
    assert stale.status_code == 412
    wildcard = client.patch(url, json={"status": "open"}, headers=headers | {"If-Match": "*"})
    assert wildcard.status_code == 428  # `*` would check nothing
    foreign = client.patch(
        url, json={"status": "open"}, headers=headers | {"If-Match": '"unit-1-v1"'}
    )
    assert foreign.status_code == 412


def test_shelter_patch_rules(client: TestClient, world: World) -> None:
    shelter = world.shelter(address=SECRET_ADDRESS)
    other = world.shelter()
    admin = world.headers(Role.ADMIN)
    url = f"/api/v1/shelters/{shelter.id}"
    etag = client.get(url, headers=admin).headers["etag"]
    outsider = world.headers(Role.COORDINATOR, shelters=[other])
    assert (
        client.patch(url, json={"name": "x"}, headers=outsider | {"If-Match": etag}).status_code
        == 404
    )
    caseworker = world.headers(Role.CASEWORKER)
    assert (
        client.patch(url, json={"name": "x"}, headers=caseworker | {"If-Match": etag}).status_code
        == 403
    )
    assert (
        client.patch(url, json={"name": None}, headers=admin | {"If-Match": etag}).status_code
        == 422
    )
    cleared = client.patch(
        url, json={"address": None, "location": None}, headers=admin | {"If-Match": etag}
    )
    assert cleared.status_code == 200
    assert cleared.json()["address"] is None
    assert cleared.json()["location"] is None


def _unit_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Women and children", "capacity": 6, "admits": WOMEN_AND_CHILDREN} | overrides


def test_admin_creates_units_and_history_starts_there(client: TestClient, world: World) -> None:
    shelter = world.shelter()
    admin = world.headers(Role.ADMIN)
    coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/shelters/{shelter.id}/units"
    assert client.post(url, json=_unit_body(), headers=coordinator).status_code == 403
    created = client.post(url, json=_unit_body(out_of_service=1), headers=admin)
    assert created.status_code == 201
    unit = created.json()
    assert (unit["capacity"], unit["available"], unit["held"], unit["occupied"]) == (6, 5, 0, 0)
    history = client.get(f"/api/v1/units/{unit['id']}/history", headers=coordinator).json()
    assert {c["field"] for c in history["items"]} == {
        "name",
        "capacity",
        "out_of_service",
        "external_occupied",
        "admits",
    }
    assert all(c["old"] is None for c in history["items"])
    duplicate = client.post(url, json=_unit_body(), headers=admin)
    assert duplicate.status_code == 422


def test_unit_that_starts_below_zero_is_refused(client: TestClient, world: World) -> None:
    shelter = world.shelter()
    response = client.post(
        f"/api/v1/shelters/{shelter.id}/units",
        json=_unit_body(capacity=2, out_of_service=2, external_occupied=1),
        headers=world.headers(Role.ADMIN),
    )
    assert response.status_code == 409
    assert "1 bed short" in response.json()["detail"]


@pytest.mark.parametrize(
    "rule",
    [
        {"sexes": [], "min_age": 0, "max_age": 10, "statuses": ["adult"]},
        {"sexes": ["female"], "min_age": 12, "max_age": 10, "statuses": ["adult"]},
        {"sexes": ["female"], "min_age": 0, "max_age": 130, "statuses": ["adult"]},
        {"sexes": ["robot"], "min_age": 0, "max_age": 10, "statuses": ["adult"]},
        {"sexes": ["female"], "min_age": 0, "max_age": 10, "statuses": ["guest"]},
    ],
)
def test_malformed_admission_rules_are_refused(
    client: TestClient, world: World, rule: dict[str, Any]
) -> None:
    shelter = world.shelter()
    response = client.post(
        f"/api/v1/shelters/{shelter.id}/units",
        json=_unit_body(admits=[rule]),
        headers=world.headers(Role.ADMIN),
    )
    assert response.status_code == 422


def test_coordinator_updates_beds_with_etag_and_history_records_it(
    client: TestClient, world: World
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=6)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/units/{unit.id}"
    etag = client.get(url, headers=headers).headers["etag"]
    assert etag == f'"unit-{unit.id}-v1"'
    assert client.patch(url, json={"external_occupied": 2}, headers=headers).status_code == 428
    changed = client.patch(url, json={"external_occupied": 2}, headers=headers | {"If-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["available"] == 4
    assert changed.headers["etag"] == f'"unit-{unit.id}-v2"'
    stale = client.patch(url, json={"external_occupied": 3}, headers=headers | {"If-Match": etag})
    assert stale.status_code == 412
    history = client.get(f"{url}/history", headers=headers).json()["items"]
    assert history[0]["field"] == "external_occupied"
    assert (history[0]["old"], history[0]["new"]) == (0, 2)


def test_update_that_would_overbook_is_refused_and_says_by_how_much(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=5, held=2, occupied=1)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/units/{unit.id}"
    etag = client.get(url, headers=headers).headers["etag"]
    refused = client.patch(url, json={"capacity": 1}, headers=headers | {"If-Match": etag})
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "2 beds short" in refused.json()["detail"]
    db.expire_all()
    stored = db.get(Unit, unit.id)
    assert stored is not None
    assert (stored.capacity, stored.version) == (5, 1)
    history = client.get(f"{url}/history", headers=headers).json()["items"]
    assert history == []


def test_unit_update_returns_what_it_wrote_and_refreshes_the_sessions_copy(
    world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=6, held=1)
    coordinator = identity.principal_of(world.user(Role.COORDINATOR, shelters=[shelter]))
    assert (unit.capacity, unit.version) == (6, 1)  # the session holds this copy
    written = registry.update_unit(
        db,
        coordinator,
        unit.id,
        expected_version=1,
        changes={"capacity": 8, "out_of_service": 2, "external_occupied": 0},
    )
    assert (written.capacity, written.out_of_service, written.version) == (8, 2, 2)
    assert written.available == 8 - 2 - 1
    # The copy the session held is read again, not left at version 1.
    assert (unit.capacity, unit.out_of_service, unit.version) == (8, 2, 2)
    assert unit.updated_at == written.updated_at
    history = db.scalars(
        select(UnitChange).where(UnitChange.unit_id == unit.id).order_by(UnitChange.field)
    ).all()
    # external_occupied did not change: no entry for it.
    assert [(c.field, c.old_value, c.new_value) for c in history] == [
        ("capacity", 6, 8),
        ("out_of_service", 0, 2),
    ]
    assert all(c.actor_user_id == coordinator.user_id for c in history)
    same = registry.update_unit(
        db, coordinator, unit.id, expected_version=2, changes={"capacity": 8}
    )
    assert same.version == 2  # nothing changed: no new version, no history
    assert db.scalar(select(func.count()).where(UnitChange.unit_id == unit.id)) == 2
    with pytest.raises(StaleVersion):
        registry.update_unit(db, coordinator, unit.id, expected_version=1, changes={"held": 0})
    with pytest.raises(InvalidInput):
        registry.update_unit(db, coordinator, unit.id, expected_version=2, changes={"held": 0})
    other = identity.principal_of(world.user(Role.COORDINATOR, shelters=[world.shelter()]))
    with pytest.raises(NotFound):
        registry.update_unit(db, other, unit.id, expected_version=2, changes={"capacity": 9})


def test_unit_object_rules_for_every_role(client: TestClient, world: World) -> None:
    shelter, other = world.shelter(), world.shelter()
    unit = world.unit(shelter)
    url = f"/api/v1/units/{unit.id}"
    outsider = world.headers(Role.COORDINATOR, shelters=[other])
    caseworker = world.headers(Role.CASEWORKER)
    funder = world.headers(Role.FUNDER)
    etag = client.get(url, headers=world.headers(Role.ADMIN)).headers["etag"]
    assert client.get(url, headers=outsider).status_code == 404
    assert (
        client.patch(url, json={"capacity": 9}, headers=outsider | {"If-Match": etag}).status_code
        == 404
    )
    assert client.get(f"{url}/history", headers=outsider).status_code == 404
    assert client.get(f"/api/v1/shelters/{shelter.id}/units", headers=outsider).status_code == 404
    assert client.get(url, headers=caseworker).status_code == 200
    assert (
        client.patch(url, json={"capacity": 9}, headers=caseworker | {"If-Match": etag}).status_code
        == 403
    )
    assert client.get(f"{url}/history", headers=caseworker).status_code == 403
    assert client.get(url, headers=funder).status_code == 403
    assert client.get("/api/v1/units/999999", headers=world.headers(Role.ADMIN)).status_code == 404


def test_history_is_newest_first_and_paginated(client: TestClient, world: World) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=10)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/units/{unit.id}"
    for value in range(1, 6):
        etag = client.get(url, headers=headers).headers["etag"]
        assert (
            client.patch(
                url, json={"out_of_service": value}, headers=headers | {"If-Match": etag}
            ).status_code
            == 200
        )
    first = client.get(f"{url}/history", params={"limit": 3}, headers=headers).json()
    second = client.get(
        f"{url}/history", params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    values = [c["new"] for c in first["items"] + second["items"]]
    assert values == [5, 4, 3, 2, 1]
    assert second["next_cursor"] is None


def test_unit_store_refuses_negative_availability_even_past_the_domain(
    db: Session, world: World
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=2)
    unit.held = 3
    with pytest.raises(Exception, match="available_non_negative"):
        db.flush()
    db.rollback()


def test_a_shelters_units_come_in_the_list_envelope_page_by_page(
    client: TestClient, world: World
) -> None:
    shelter = world.shelter()
    units = [world.unit(shelter, capacity=2 + i, admits=WOMEN_AND_CHILDREN) for i in range(3)]
    coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])
    url = f"/api/v1/shelters/{shelter.id}/units"
    first = client.get(url, params={"limit": 2}, headers=coordinator)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "next_cursor"}
    assert [u["id"] for u in body["items"]] == [units[0].id, units[1].id]
    rest = client.get(url, params={"cursor": body["next_cursor"]}, headers=coordinator).json()
    assert [u["id"] for u in rest["items"]] == [units[2].id]
    assert rest["next_cursor"] is None
    assert rest["items"][0]["available"] == 4
