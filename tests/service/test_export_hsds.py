"""GET /api/v1/export/hsds: every role reads valid HSDS 3.1, anonymous callers get 401."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema.protocols import Validator
from sqlalchemy import Connection

from service.app import create_app, iter_api_routes
from service.routes import export
from service.settings import Settings
from shelters import hsds
from shelters.catalogue import SERVICES
from shelters.identity import Role
from tests.conftest import World
from tests.shelters.test_hsds import (
    ADULT_WOMEN,
    CHILDREN_WITH_GUARDIAN,
    hsds_validator,
    schema_errors,
)

PATH = "/api/v1/export/hsds"


@pytest.fixture
def app(settings: Settings, connection: Connection) -> FastAPI:
    """The test app, with the export router until the app factory includes it itself."""
    app = create_app(settings, bind=connection)
    if not any(route.path == PATH for route in iter_api_routes(app)):
        app.include_router(export.router)
    return app


@pytest.fixture(scope="module")
def service_schema() -> Validator:
    return hsds_validator("service")


def test_every_role_reads_the_same_export(client: TestClient, world: World) -> None:
    shelter = world.shelter(services=["legal_aid", "child_psychologist"], languages=["kk"])
    unit = world.unit(
        shelter, capacity=8, occupied=2, held=1, admits=[ADULT_WOMEN, CHILDREN_WITH_GUARDIAN]
    )

    bodies = []
    for role in Role:
        response = client.get(PATH, headers=world.headers(role))
        assert response.status_code == 200, role
        assert response.headers["cache-control"] == "no-store"
        bodies.append(response.json())

    assert all(body == bodies[0] for body in bodies)
    [mine] = [s for s in bodies[0]["services"] if s["id"] == hsds.stable_id("service", shelter.id)]
    assert mine["name"] == shelter.name
    assert [a["taxonomy_term"]["code"] for a in mine["attributes"]] == [
        "child_psychologist",
        "legal_aid",
    ]
    assert mine["eligibility_description"] == (
        "Admits: adult women; children 0-17 with their guardian"
    )
    [capacity] = mine["capacities"]
    assert (capacity["unit"]["name"], capacity["available"], capacity["maximum"]) == (
        "bed",
        unit.available,
        8,
    )
    assert unit.available == 5


def test_every_service_the_api_exports_is_valid_hsds(
    client: TestClient, world: World, service_schema: Validator
) -> None:
    org = world.organization("international")
    for services in (["medical_care"], list(SERVICES), []):
        shelter = world.shelter(org, services=services, wheelchair_accessible=bool(services))
        world.unit(shelter, admits=[ADULT_WOMEN])
        world.unit(shelter, capacity=2, external_occupied=2, admits=[CHILDREN_WITH_GUARDIAN])

    response = client.get(PATH, headers=world.headers(Role.FUNDER))

    services = response.json()["services"]
    assert len(services) >= 3
    for service in services:
        assert schema_errors(service_schema, service) == [], service["name"]


def test_the_export_hides_addresses_coordinates_and_closed_shelters(
    client: TestClient, world: World
) -> None:
    address = "9 Synthetic Lane, block 3"
    hidden = world.shelter(address=address, lat=47.1234567, lon=51.7654321)
    world.unit(hidden)
    closed = world.shelter(status="closed", name="Closed synthetic shelter")
    suspended = world.shelter(status="suspended", name="Suspended synthetic shelter")

    response = client.get(PATH, headers=world.headers(Role.CASEWORKER))

    assert response.status_code == 200
    for secret in (address, "47.1234567", "51.7654321", closed.name, suspended.name):
        assert secret not in response.text
    ids = {service["id"] for service in response.json()["services"]}
    assert hsds.stable_id("service", hidden.id) in ids
    assert hsds.stable_id("service", closed.id) not in ids


def test_anonymous_callers_get_401(client: TestClient) -> None:
    response = client.get(PATH)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
