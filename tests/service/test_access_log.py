"""One JSON line a request, with the route template and no body."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from shelters.identity import Role
from tests.conftest import World


def test_access_log_names_actor_and_route_template_but_no_body(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    user = world.user(Role.ADMIN)
    canary = "CANARY-organisation-3b1f"
    with caplog.at_level("INFO", logger="refuge.access"):
        client.get("/api/v1/organizations/424242", headers=world.headers_for(user))
        client.post(
            "/api/v1/organizations",
            json={"name": canary, "kind": "ngo"},
            headers=world.headers_for(user),
        )
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "refuge.access"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/api/v1/organizations/{organization_id}", 404),
        ("/api/v1/organizations", 201),
    ]
    assert all(line["actor_id"] == user.id and line["role"] == "admin" for line in lines)
    assert set(lines[0]) == {
        "request_id",
        "actor_id",
        "role",
        "method",
        "route",
        "status",
        "duration_ms",
    }
    assert canary not in caplog.text
