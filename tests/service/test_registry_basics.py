"""Regions, organisations and the services catalogue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from shelters.catalogue import SERVICES
from shelters.identity import Role
from tests.conftest import World


def test_services_catalogue_is_the_fixed_list(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.get("/api/v1/services", headers=as_role(Role.CASEWORKER))
    assert [s["code"] for s in response.json()] == list(SERVICES)
    assert len(SERVICES) == 10


def test_admin_adds_a_region_others_may_not(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    body = {"code": "test-region", "name": "Test Region", "lat": 45.0, "lon": 70.0}
    assert (
        client.post("/api/v1/regions", json=body, headers=as_role(Role.COORDINATOR)).status_code
        == 403
    )
    assert client.post("/api/v1/regions", json=body, headers=as_role(Role.ADMIN)).status_code == 201
    again = client.post("/api/v1/regions", json=body, headers=as_role(Role.ADMIN))
    assert again.status_code == 422
    codes = [r["code"] for r in client.get("/api/v1/regions", headers=as_role(Role.FUNDER)).json()]
    assert "test-region" in codes


def test_organizations_page_with_an_opaque_cursor(
    client: TestClient, world: World, as_role: Callable[[Role], dict[str, str]]
) -> None:
    headers = as_role(Role.CASEWORKER)
    created = {world.organization().id for _ in range(5)}
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/organizations", params=params, headers=headers).json()
        assert len(page["items"]) <= 2
        seen.extend(o["id"] for o in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert created <= set(seen)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))


def test_bad_cursor_and_limit_are_422(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    headers = as_role(Role.ADMIN)
    assert client.get("/api/v1/organizations?cursor=!!", headers=headers).status_code == 422
    assert client.get("/api/v1/organizations?limit=201", headers=headers).status_code == 422
    assert client.get("/api/v1/organizations?limit=0", headers=headers).status_code == 422


def test_organization_create_and_read(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    created = client.post(
        "/api/v1/organizations",
        json={"name": "Demo Org For Test", "kind": "state"},
        headers=as_role(Role.ADMIN),
    )
    assert created.status_code == 201
    org_id = created.json()["id"]
    read = client.get(f"/api/v1/organizations/{org_id}", headers=as_role(Role.FUNDER))
    assert read.json() == {"id": org_id, "name": "Demo Org For Test", "kind": "state"}
    assert (
        client.get("/api/v1/organizations/999999", headers=as_role(Role.FUNDER)).status_code == 404
    )


@pytest.mark.parametrize("coordinate", [{"lat": False}, {"lon": True}, {"lat": "45"}])
def test_region_coordinates_must_be_numbers_not_booleans_or_strings(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], coordinate: dict[str, object]
) -> None:
    body = {"code": "test-bool", "name": "Test Bool", "lat": 45.0, "lon": 70.0} | coordinate
    response = client.post("/api/v1/regions", json=body, headers=as_role(Role.ADMIN))
    assert response.status_code == 422, response.text
