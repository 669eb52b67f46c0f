"""Expensive calls are rate-limited per user with 429 and Retry-After."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from service.app import create_app
from shelters.errors import TooManyAttempts
from shelters.identity import Role
from shelters.models import utcnow
from shelters.ratelimit import hit
from tests.conftest import World, make_settings
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN, request_for


@pytest.fixture
def tight(database_url: str, connection: Connection) -> TestClient:
    settings = make_settings(database_url, match_rate_per_minute=2, run_rate_per_minute=1)
    return TestClient(create_app(settings, bind=connection), raise_server_exceptions=False)


def test_a_third_match_in_a_minute_is_429_for_that_user_only(
    tight: TestClient, world: World
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=10, admits=WOMEN_AND_CHILDREN)
    busy, other = world.headers(Role.CASEWORKER), world.headers(Role.CASEWORKER)
    requests = [request_for(tight, busy) for _ in range(3)]
    statuses = [
        tight.post(f"/api/v1/placement-requests/{r}/match", headers=busy).status_code
        for r in requests
    ]
    assert statuses == [200, 200, 429]
    refused = tight.post(f"/api/v1/placement-requests/{requests[2]}/match", headers=busy)
    assert 0 < int(refused.headers["retry-after"]) <= 61
    assert refused.headers["content-type"] == "application/problem+json"
    theirs = request_for(tight, other)
    assert (
        tight.post(f"/api/v1/placement-requests/{theirs}/match", headers=other).status_code == 200
    )


def test_matching_runs_are_limited_too(tight: TestClient, world: World) -> None:
    admin = world.headers(Role.ADMIN)
    assert (
        tight.post("/api/v1/matching-runs", json={"dry_run": True}, headers=admin).status_code
        == 202
    )
    second = tight.post("/api/v1/matching-runs", json={"dry_run": True}, headers=admin)
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) > 0


def test_the_window_starts_again_after_it_ends(db: Session) -> None:
    start = utcnow()
    hit(db, "k", limit=1, window_s=60, now=start)
    with pytest.raises(TooManyAttempts) as refused:
        hit(db, "k", limit=1, window_s=60, now=start + timedelta(seconds=30))
    assert 30 <= refused.value.retry_after_s <= 31
    hit(db, "k", limit=1, window_s=60, now=start + timedelta(seconds=61))
