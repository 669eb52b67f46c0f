"""A transaction that loses a race is run again, a bounded number of times, never a 500."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from service.auth import PUBLIC
from service.schemas import HealthOut


class LostRace(Exception):
    sqlstate = "40P01"  # deadlock_detected, as psycopg reports it


def _raise_lost_race() -> None:
    raise OperationalError("UPDATE units ...", {}, LostRace())


def test_a_deadlocked_write_is_retried_and_then_succeeds(app: FastAPI) -> None:
    calls = {"n": 0}

    @app.post("/flaky", dependencies=[PUBLIC])
    def flaky(body: HealthOut) -> HealthOut:
        calls["n"] += 1
        if calls["n"] < 3:
            _raise_lost_race()
        return body

    with TestClient(app) as client:
        response = client.post("/flaky", json={"status": "ok"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert calls["n"] == 3
    assert "x-refuge-retry" not in response.headers


def test_a_write_that_keeps_losing_gets_503_with_retry_after(app: FastAPI) -> None:
    calls = {"n": 0}

    @app.post("/doomed", dependencies=[PUBLIC])
    def doomed() -> None:
        calls["n"] += 1
        _raise_lost_race()

    with TestClient(app) as client:
        response = client.post("/doomed")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-refuge-retry" not in response.headers
    assert calls["n"] == 3


def test_other_database_failures_are_not_retried(app: FastAPI) -> None:
    calls = {"n": 0}

    @app.post("/down", dependencies=[PUBLIC])
    def down() -> None:
        calls["n"] += 1
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    with TestClient(app) as client:
        response = client.post("/down")
    assert (response.status_code, calls["n"]) == (503, 1)
