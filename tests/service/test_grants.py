"""Grants: funders record and read only their own organisation's; admins any."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from shelters.identity import Role
from tests.conftest import World


def grant_body(org_id: int, shelter_id: int, **over: Any) -> dict[str, Any]:
    body = {
        "funder_organization_id": org_id,
        "shelter_id": shelter_id,
        "start": "2026-01-01",
        "end": "2026-12-31",
        "amount": "120000.00",
        "currency": "KZT",
        "funded_beds": 10,
    }
    return body | over


def test_funder_records_a_grant_for_their_own_organisation(
    client: TestClient, world: World
) -> None:
    org, shelter = world.organization("funder"), world.shelter()
    headers = world.headers(Role.FUNDER, org=org)
    response = client.post("/api/v1/grants", json=grant_body(org.id, shelter.id), headers=headers)
    assert response.status_code == 201
    grant = response.json()
    assert grant["amount"] == "120000.00"
    assert grant["funded_beds"] == 10
    again = client.get(f"/api/v1/grants/{grant['id']}", headers=headers)
    assert again.json() == grant


def test_funder_may_not_record_a_grant_for_another_organisation(
    client: TestClient, world: World
) -> None:
    other, shelter = world.organization("funder"), world.shelter()
    response = client.post(
        "/api/v1/grants", json=grant_body(other.id, shelter.id), headers=world.headers(Role.FUNDER)
    )
    assert response.status_code == 403


def test_admin_records_grants_for_anyone(client: TestClient, world: World) -> None:
    org, shelter = world.organization("funder"), world.shelter()
    response = client.post(
        "/api/v1/grants", json=grant_body(org.id, shelter.id), headers=world.headers(Role.ADMIN)
    )
    assert response.status_code == 201


def test_funders_see_only_their_own_grants(client: TestClient, world: World) -> None:
    mine, theirs, shelter = (
        world.organization("funder"),
        world.organization("funder"),
        (world.shelter()),
    )
    admin = world.headers(Role.ADMIN)
    ids = [
        client.post("/api/v1/grants", json=grant_body(o.id, shelter.id), headers=admin).json()["id"]
        for o in (mine, theirs)
    ]
    headers = world.headers(Role.FUNDER, org=mine)
    listed = client.get("/api/v1/grants", headers=headers).json()["items"]
    assert [g["id"] for g in listed] == [ids[0]]
    assert client.get(f"/api/v1/grants/{ids[1]}", headers=headers).status_code == 404
    everything = client.get("/api/v1/grants", headers=admin).json()["items"]
    assert {g["id"] for g in everything} >= set(ids)


def test_invalid_grants_are_refused(client: TestClient, world: World) -> None:
    org, shelter = world.organization("funder"), world.shelter()
    headers = world.headers(Role.ADMIN)
    for bad in (
        {"end": "2025-12-31"},
        {"currency": "kzt"},
        {"amount": "-1"},
        {"funded_beds": -1},
        {"shelter_id": 999_999},
    ):
        body = grant_body(org.id, shelter.id) | bad
        response = client.post("/api/v1/grants", json=body, headers=headers)
        assert response.status_code == 422, bad


def test_other_roles_cannot_touch_grants(client: TestClient, world: World) -> None:
    for role in (Role.COORDINATOR, Role.CASEWORKER):
        headers = world.headers(role)
        assert client.get("/api/v1/grants", headers=headers).status_code == 403
        assert client.get("/api/v1/grants/1", headers=headers).status_code == 403
