"""Every error is an RFC 9457 problem document."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth import PUBLIC
from shelters.identity import Role

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_a_problem(client: TestClient) -> None:
    assert_problem(client.delete("/healthz"), 405)


def test_wrong_method_lists_every_method_of_the_path(client: TestClient) -> None:
    # GET and POST /regions are two routes; the framework named only the first one's method.
    response = client.delete("/api/v1/regions")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"
    unit = client.put("/api/v1/units/7")
    assert_problem(unit, 405)
    assert unit.headers["allow"] == "GET, HEAD, PATCH"
    assert client.options("/api/v1/regions").headers["allow"] == "GET, HEAD, POST"


def test_missing_token_is_a_problem_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["type"] == "urn:refuge:problem:unauthorized"


def test_validation_error_names_the_field_and_does_not_echo_input(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    canary = "CANARY-7f3a-should-not-echo"
    response = client.post(
        "/api/v1/regions",
        json={"code": canary, "name": "x", "lat": 500, "lon": 0},
        headers=as_role(Role.ADMIN),
    )
    body = assert_problem(response, 422)
    locations = {e["loc"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert {"body.code", "body.lat"} <= locations
    assert canary not in response.text


def test_unknown_fields_are_refused(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/organizations",
        json={"name": "Org", "kind": "ngo", "director": "somebody"},
        headers=as_role(Role.ADMIN),
    )
    body = assert_problem(response, 422)
    assert "body.director" in body["detail"]  # type: ignore[operator]


def test_wrong_role_is_forbidden(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/organizations", json={"name": "Org", "kind": "ngo"}, headers=as_role(Role.FUNDER)
    )
    assert assert_problem(response, 403)["type"] == "urn:refuge:problem:forbidden"


def test_unhandled_error_is_a_500_problem_that_leaks_nothing(app: FastAPI) -> None:
    @app.get("/boom", dependencies=[PUBLIC])
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_problem(response, 500)
    assert "passwd" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_body_is_refused_with_413(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], declared: bool
) -> None:
    big = b'{"name": "' + b"x" * 1_100_000 + b'", "kind": "ngo"}'
    headers = as_role(Role.ADMIN) | {"content-type": "application/json"}
    if declared:
        response = client.post("/api/v1/organizations", content=big, headers=headers)
    else:
        response = client.post(
            "/api/v1/organizations", content=iter([big[:600_000], big[600_000:]]), headers=headers
        )
    assert_problem(response, 413)


def test_refusals_at_the_edge_follow_accept_language(
    app: FastAPI, client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    big = b'{"name": "' + b"x" * 1_100_000 + b'", "kind": "ngo"}'
    headers = as_role(Role.ADMIN) | {"content-type": "application/json", "Accept-Language": "ru"}
    too_large = client.post("/api/v1/organizations", content=big, headers=headers)
    body = assert_problem(too_large, 413)
    assert too_large.headers["content-language"] == "ru"
    assert body["detail"].startswith("размер тела запроса ограничен")

    @app.get("/boom-kk", dependencies=[PUBLIC])
    def boom() -> None:
        raise RuntimeError("nothing to see")

    with TestClient(app, raise_server_exceptions=False) as quiet:
        failed = quiet.get("/boom-kk", headers={"Accept-Language": "kk"})
    body = assert_problem(failed, 500)
    assert failed.headers["content-language"] == "kk"
    assert body["detail"] == "Ішкі қате орын алды; ол журналға жазылды."
    assert body["type"] == "urn:refuge:problem:internal"


def test_security_headers_are_on_success_and_error_responses(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/nope"), client.get("/api/v1/me")):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert len(response.headers["x-request-id"]) >= 8


def test_cors_is_off_unless_configured(client: TestClient) -> None:
    response = client.options(
        "/api/v1/me",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_readiness_checks_the_database(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organizations/24327604804208812032",  # past SQLite's 64-bit integers
        "/api/v1/organizations/4294967296",  # past PostgreSQL's 32-bit id columns
        "/api/v1/placements/1048982703937735280820224",
    ],
)
def test_an_id_past_the_storable_range_is_refused_not_a_500(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], path: str
) -> None:
    response = client.get(path, headers=as_role(Role.ADMIN))
    # Refused before any engine sees it, so the answer is the same on every engine.
    assert_problem(response, 422)


def test_a_body_that_is_not_utf8_is_a_documented_400(
    client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/cases",
        content=b"\xff\x7f",
        headers=as_role(Role.CASEWORKER) | {"content-type": "application/json"},
    )
    assert_problem(response, 400)
    document = client.get("/api/v1/openapi.json").json()
    assert "400" in document["paths"]["/api/v1/cases"]["post"]["responses"]
