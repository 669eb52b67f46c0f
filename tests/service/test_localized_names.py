"""Names per language through the API: create, read, change, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelters.identity import Role
from tests.conftest import World
from tests.service.test_shelters import shelter_body

NAMES = {"kk": "Сынақ дағдарыс орталығы", "ru": "Тестовый кризисный центр"}


def test_a_region_is_created_and_read_with_its_names(client: TestClient, world: World) -> None:
    admin = world.headers(Role.ADMIN)
    body = {
        "code": "test-abai",
        "name": "Test Abai",
        "names": {"ru": "Тестовая Абайская", "kk": "Сынақ Абай облысы"},
        "lat": 48.9,
        "lon": 79.6,
    }
    created = client.post("/api/v1/regions", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json()["names"] == {"kk": "Сынақ Абай облысы", "ru": "Тестовая Абайская"}
    listed = client.get("/api/v1/regions", headers=world.headers(Role.FUNDER)).json()
    assert next(r for r in listed if r["code"] == "test-abai")["names"] == created.json()["names"]
    plain = client.post(
        "/api/v1/regions",
        json={"code": "test-plain", "name": "Plain", "lat": 1, "lon": 1},
        headers=admin,
    )
    assert plain.json()["names"] == {}


def test_a_shelter_keeps_its_names_and_a_patch_replaces_them(
    client: TestClient, world: World
) -> None:
    admin = world.headers(Role.ADMIN)
    created = client.post("/api/v1/shelters", json=shelter_body(world, names=NAMES), headers=admin)
    assert created.status_code == 201
    assert created.json()["names"] == NAMES
    url = f"/api/v1/shelters/{created.json()['id']}"
    read = client.get(url, headers=world.headers(Role.CASEWORKER))
    assert read.json()["names"] == NAMES
    etag = read.headers["etag"]
    changed = client.patch(
        url, json={"names": {"en": "Test Crisis Centre"}}, headers=admin | {"If-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.json()["names"] == {"en": "Test Crisis Centre"}
    assert changed.json()["name"] == "Test Crisis Centre"
    cleared = client.patch(
        url, json={"names": {}}, headers=admin | {"If-Match": changed.headers["etag"]}
    )
    assert cleared.json()["names"] == {}
    null = client.patch(
        url, json={"names": None}, headers=admin | {"If-Match": cleared.headers["etag"]}
    )
    assert null.status_code == 422
    assert "names cannot be null" in null.json()["detail"]


@pytest.mark.parametrize(
    "names",
    [
        {"de": "Krisenzentrum"},
        {"kk": ""},
        {"ru": "   "},
        {"kk": "x" * 201},
        {"kk": "line\nbreak"},
        {"kk": 5},
        ["kk", "ru"],
        "Абай",
    ],
)
def test_bad_names_are_a_422_problem_naming_the_field(
    client: TestClient, world: World, names: Any
) -> None:
    admin = world.headers(Role.ADMIN)
    refused = client.post("/api/v1/shelters", json=shelter_body(world, names=names), headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "names" in str(refused.json())
    region = client.post(
        "/api/v1/regions",
        json={"code": "test-bad", "name": "Bad", "names": names, "lat": 1, "lon": 1},
        headers=admin,
    )
    assert region.status_code == 422


def test_the_free_beds_list_carries_the_names_too(client: TestClient, world: World) -> None:
    named = world.shelter(names=NAMES)
    plain = world.shelter()
    rule = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
    for shelter in (named, plain):
        world.unit(shelter, capacity=2, admits=[rule])
    body = client.get(
        "/api/v1/availability", params={"limit": 200}, headers=world.headers(Role.CASEWORKER)
    ).json()
    names = {item["shelter_id"]: item["names"] for item in body["items"]}
    assert names[named.id] == NAMES
    assert names[plain.id] == {}
