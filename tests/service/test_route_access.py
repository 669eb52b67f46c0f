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


def test_routes_that_are_not_public_refuse_anonymous_callers(
    app: FastAPI, client: TestClient
) -> None:
    checked = 0
    for route in api_routes(app):
        if declared_access(route) == [frozenset()]:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            response = client.request(method, path)
            assert response.status_code == 401, f"{method} {route.path}"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 8


def test_only_health_and_login_are_public(app: FastAPI) -> None:
    public = sorted(r.path for r in api_routes(app) if declared_access(r) == [frozenset()])
    assert public == ["/api/v1/auth/token", "/healthz", "/readyz"]
