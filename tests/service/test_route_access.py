"""Deny by default: every route declares who may call it, and the declaration is enforced."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import iter_api_routes
from service.auth import access_of
from shelters.identity import Role


def declared_access(route: Any) -> list[frozenset[Role]]:
    found: list[frozenset[Role]] = []
    stack: list[Any] = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None and (marked := access_of(dependant.call)) is not None:
            found.append(marked)
        stack.extend(dependant.dependencies)
    return found


def api_routes(app: FastAPI) -> list[Any]:
    return list(iter_api_routes(app))


def test_every_route_declares_who_may_call_it(app: FastAPI) -> None:
    undeclared = [
        f"{sorted(r.methods)} {r.path}" for r in api_routes(app) if len(declared_access(r)) != 1
    ]
    assert undeclared == []


def test_an_undeclared_route_is_caught(app: FastAPI) -> None:
    @app.get("/ui/undeclared")
    def undeclared() -> None:
        """A page that forgot to say who may open it."""

    assert [r.path for r in api_routes(app) if len(declared_access(r)) != 1] == ["/ui/undeclared"]


def test_routes_that_are_not_public_refuse_anonymous_callers(
    app: FastAPI, client: TestClient
) -> None:
    checked = pages = 0
    for route in api_routes(app):
        if declared_access(route) == [frozenset()]:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        path = path.replace("/placements/1/action", "/placements/1/accept")
        for method in route.methods:
            response = client.request(method, path, follow_redirects=False)
            if route.path.startswith("/ui"):
                # Pages send anonymous browsers to the login form instead of a 401.
                assert response.status_code == 303, f"{method} {route.path}"
                assert response.headers["location"].startswith("/ui/login")
                pages += 1
            else:
                assert response.status_code == 401, f"{method} {route.path}"
                assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 8
    assert pages >= 10


def test_only_the_root_health_login_and_the_stylesheet_are_public(app: FastAPI) -> None:
    public = sorted(
        f"{method} {r.path}"
        for r in api_routes(app)
        if declared_access(r) == [frozenset()]
        for method in r.methods
    )
    assert public == [
        "GET /",  # a redirect to the pages, or an index of the entry points
        "GET /healthz",
        "GET /metrics",  # no user's role: the scraper's token (tests/service/test_metrics.py)
        "GET /readyz",
        "GET /ui/login",
        "GET /ui/static/{name}",
        "POST /api/v1/auth/token",
        "POST /ui/login",
    ]
