"""Input the service refuses, with the same problem document on SQLite and on PostgreSQL.

Numbers in request bodies are JSON numbers (a bool or a numeric string is not one, and an
integer field takes no fraction); text holds no control characters; ids are within the
database's integer range wherever they appear; status filters name a status that exists;
``Idempotency-Key`` is visible ASCII.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from types import NoneType
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from service.app import iter_api_routes
from service.auth import issue_token
from service.db import make_engine
from shelters import identity
from shelters.identity import Role
from tests.conftest import PASSWORD, TEST_SECRET, World, make_settings
from tests.servers import serve
from tests.service.lifecycle_helpers import ONE_WOMAN, create_case
from tests.service.test_problems import assert_problem

MAX_ID = 2**31 - 1
CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"]


def locations(response: Any) -> set[str]:
    body = assert_problem(response, 422)
    assert body["type"] == "urn:refuge:problem:validation"
    return {e["loc"] for e in body["errors"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("age", [True, False, "30", 30.0, 30.5, None])
def test_an_age_is_a_json_integer_and_nothing_else(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], age: object
) -> None:
    response = client.post(
        "/api/v1/cases",
        json={"members": [{"ref": "A", "sex": "female", "age": age}]},
        headers=as_role(Role.CASEWORKER),
    )
    assert locations(response) == {"body.members.0.age"}


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"weights": {"no_shared_language": False}}, "body.weights.no_shared_language"),
        ({"weights": {"distance_per_metre": True}}, "body.weights.distance_per_metre"),
        ({"weights": {"missing_desired_service": "5"}}, "body.weights.missing_desired_service"),
        ({"seed": True}, "body.seed"),
        ({"seed": 1.0}, "body.seed"),
        ({"time_limit_s": True}, "body.time_limit_s"),
        ({"time_limit_s": "2"}, "body.time_limit_s"),
        ({"request_ids": [True]}, "body.request_ids.0"),
        ({"dry_run": 1}, "body.dry_run"),
    ],
)
def test_matching_run_numbers_are_json_numbers(
    client: TestClient,
    as_role: Callable[[Role], dict[str, str]],
    body: dict[str, Any],
    location: str,
) -> None:
    response = client.post("/api/v1/matching-runs", json=body, headers=as_role(Role.ADMIN))
    assert locations(response) == {location}


def test_a_json_integer_is_still_a_good_float_and_numbers_in_the_query_parse_as_usual(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    admin = as_role(Role.ADMIN)
    response = client.post(
        "/api/v1/matching-runs", json={"time_limit_s": 1, "dry_run": True}, headers=admin
    )
    assert response.status_code == 202, response.text
    listed = client.get("/api/v1/matching-runs", params={"limit": "1"}, headers=admin)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("capacity", True), ("capacity", "4"), ("capacity", 4.0), ("out_of_service", False)],
)
def test_bed_counts_are_json_integers(
    client: TestClient, world: World, field: str, value: object
) -> None:
    shelter = world.shelter()
    body = {
        "name": "Unit",
        "capacity": 4,
        "admits": [{"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}],
    }
    response = client.post(
        f"/api/v1/shelters/{shelter.id}/units",
        json=body | {field: value},
        headers=world.headers(Role.ADMIN),
    )
    assert locations(response) == {f"body.{field}"}


def test_every_request_body_is_strict_and_closed(app: FastAPI) -> None:
    # A body model of its own that forgets the shared base would take `true` for a number.
    checked = 0
    for route in iter_api_routes(app):
        body = route.dependant.body_params
        for param in body:
            # An optional body (`Model | None`) is checked as its model.
            [model] = [a for a in get_args(param.field_info.annotation) if a is not NoneType] or [
                param.field_info.annotation
            ]
            assert isinstance(model, type), route.path
            assert issubclass(model, BaseModel), route.path
            assert model.model_config.get("strict") is True, model.__name__
            assert model.model_config.get("extra") == "forbid", model.__name__
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("char", CONTROL_CHARACTERS)
def test_control_characters_are_refused_in_names(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], char: str
) -> None:
    response = client.post(
        "/api/v1/organizations",
        json={"name": f"Test{char}org", "kind": "ngo"},
        headers=as_role(Role.ADMIN),
    )
    assert locations(response) == {"body.name"}


def test_control_characters_are_refused_in_every_text_field_of_a_shelter(
    client: TestClient, world: World
) -> None:
    body = {
        "organization_id": world.organization().id,
        "name": "Test\x00shelter",
        "region": world.region().code,
        "locality": "Test\x07town",
        "address": "Line\x00two",
    }
    response = client.post("/api/v1/shelters", json=body, headers=world.headers(Role.ADMIN))
    assert locations(response) == {"body.name", "body.locality", "body.address"}


def test_ordinary_text_is_still_accepted(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/organizations",
        json={"name": "Қамқор — «Ана үйі» № 2", "kind": "ngo"},
        headers=as_role(Role.ADMIN),
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Қамқор — «Ана үйі» № 2"


@pytest.mark.parametrize("case_id", [0, -1, MAX_ID + 1, 2**63 - 1, 2**63, 2**70])
def test_a_body_id_outside_the_integer_range_is_a_422_on_every_engine(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], case_id: int
) -> None:
    response = client.post(
        "/api/v1/placement-requests", json={"case_id": case_id}, headers=as_role(Role.CASEWORKER)
    )
    assert locations(response) == {"body.case_id"}


def test_ids_in_lists_are_bounded_too(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/cases",
        json={"members": ONE_WOMAN, "excluded_shelter_ids": [1, 2**63 - 1]},
        headers=as_role(Role.CASEWORKER),
    )
    assert locations(response) == {"body.excluded_shelter_ids.1"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases/0",
        "/api/v1/cases/-5",
        f"/api/v1/cases/{MAX_ID + 1}",
        f"/api/v1/cases/{2**63 - 1}",
        f"/api/v1/placements/{2**80}",
        f"/api/v1/organizations/{2**63}",
    ],
)
def test_a_path_id_outside_the_integer_range_is_a_422_on_every_engine(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], path: str
) -> None:
    response = client.get(path, headers=as_role(Role.ADMIN))
    assert len(locations(response)) == 1


def test_a_path_id_inside_the_range_that_names_nothing_is_a_404(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    assert_problem(client.get(f"/api/v1/cases/{MAX_ID}", headers=as_role(Role.CASEWORKER)), 404)


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/placements?shelter_id=4294967296",
        "/api/v1/placements?request_id=0",
        "/api/v1/placement-requests?case_id=9223372036854775807",
        "/api/v1/audit-events?actor_user_id=4294967296",
    ],
)
def test_an_id_filter_outside_the_integer_range_is_a_422(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], query: str
) -> None:
    assert len(locations(client.get(query, headers=as_role(Role.ADMIN)))) == 1


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/placements", "'proposed'"),
        ("/api/v1/placement-requests", "'pending'"),
        ("/api/v1/shelters", "'suspended'"),
        ("/api/v1/availability", "'open'"),
    ],
)
def test_a_status_filter_names_a_status_that_exists(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], path: str, allowed: str
) -> None:
    response = client.get(path, params={"status": "bogus"}, headers=as_role(Role.ADMIN))
    assert locations(response) == {"query.status"}
    assert allowed in response.json()["detail"]


@pytest.mark.parametrize(
    "key",
    ["a\x01b", "a\x00", "tab\there", "with space", "caf\xe9", "x" * 129, ""],
)
def test_a_malformed_idempotency_key_is_a_400_problem(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], key: str
) -> None:
    caseworker = as_role(Role.CASEWORKER)
    response = client.post(
        "/api/v1/cases",
        json={"members": ONE_WOMAN},
        headers=caseworker | {"Idempotency-Key": key.encode("latin-1")},  # type: ignore[dict-item]
    )
    body = assert_problem(response, 400)
    assert body["type"] == "urn:refuge:problem:malformed-header"
    assert "Idempotency-Key" in body["detail"]  # type: ignore[operator]
    assert client.get("/api/v1/cases", headers=caseworker).json()["items"] == []


def test_a_visible_ascii_idempotency_key_still_works(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    caseworker = as_role(Role.CASEWORKER)
    key = {"Idempotency-Key": "~!" + "k" * 126}
    first = client.post("/api/v1/cases", json={"members": ONE_WOMAN}, headers=caseworker | key)
    again = client.post("/api/v1/cases", json={"members": ONE_WOMAN}, headers=caseworker | key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert create_case(client, caseworker)["id"] != first.json()["id"]


def _raw_post(base: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A request written byte by byte: HTTP clients refuse to send control characters."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: " + host.encode()]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    lines += [b"Connection: close"]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_through_a_real_server_every_key_the_app_sees_gets_a_problem_document(
    fresh_database: str, tmp_path: Path
) -> None:
    engine = make_engine(fresh_database)
    with Session(engine) as session, session.begin():
        user = identity.create_user(
            session,
            username="strict-admin",
            password=PASSWORD,
            role=Role.ADMIN,
            organization_id=None,
        )
        token, _ = issue_token(make_settings(fresh_database), TEST_SECRET, user)
    engine.dispose()
    auth = (b"Authorization", b"Bearer " + token.encode())
    body = b'{"name": "Strict org", "kind": "ngo"}'
    with serve(fresh_database, tmp_path / "serve.log") as base:
        # Tab, space and bytes past ASCII reach the app, which refuses them itself.
        for key in (b"tab\there", b"with space", b"caf\xe9"):
            head, _, payload = _raw_post(
                base, "/api/v1/matching-runs", [auth, (b"Idempotency-Key", key)], b"{}"
            ).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), head
            assert b"content-type: application/problem+json" in head.lower()
            assert json.loads(payload)["type"] == "urn:refuge:problem:malformed-header"
        # Other control bytes never reach it: the server's HTTP parser answers 400 itself.
        for key in (b"a\x01b", b"a\x00b", b"a\x7fb"):
            answer = _raw_post(
                base, "/api/v1/matching-runs", [auth, (b"Idempotency-Key", key)], b"{}"
            )
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
        # A name with a NUL is refused alike on either engine.
        head, _, payload = _raw_post(
            base, "/api/v1/organizations", [auth], body.replace(b"Strict", b"Strict\\u0000")
        ).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 422 "), head
        assert json.loads(payload)["errors"][0]["loc"] == "body.name"
