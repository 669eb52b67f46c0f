"""Many coordinators change one unit at once: no lost update, never below zero, no 5xx."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.app import create_app
from service.auth import issue_token
from service.db import make_engine
from shelters import identity
from shelters.identity import Role
from shelters.models import Organization, Region, Shelter, Unit
from tests.conftest import TEST_SECRET, make_settings

CAPACITY = 6
WORKERS = 8
ATTEMPTS_EACH = 12


@pytest.fixture
def committed_unit(fresh_database: str) -> Iterator[tuple[str, int, dict[str, str]]]:
    engine = make_engine(fresh_database)
    settings = make_settings(fresh_database)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(Region(code="r", name="R", lat=1, lon=1))
        org = Organization(name="Hammer org", kind="ngo")
        session.add(org)
        session.flush()
        shelter = Shelter(organization_id=org.id, name="S", region_code="r", locality="L")
        session.add(shelter)
        session.flush()
        unit = Unit(shelter_id=shelter.id, name="U", capacity=CAPACITY, admits=[])
        session.add(unit)
        user = identity.create_user(
            session,
            username="hammer",
            password="a long enough password",
            role=Role.COORDINATOR,
            organization_id=org.id,
            shelter_ids=[shelter.id],
        )
        session.flush()
        token, _ = issue_token(settings, TEST_SECRET, user)
        unit_id = unit.id
    engine.dispose()
    return fresh_database, unit_id, {"Authorization": f"Bearer {token}"}


def test_concurrent_increments_lose_nothing_and_never_overbook(
    committed_unit: tuple[str, int, dict[str, str]],
) -> None:
    url, unit_id, headers = committed_unit
    app = create_app(make_settings(url))
    path = f"/api/v1/units/{unit_id}"

    def worker(seed: int) -> list[int]:
        rng = random.Random(seed)
        statuses = []
        for _ in range(ATTEMPTS_EACH):
            current = client.get(path, headers=headers)
            delta = rng.choice([1, 1, 2])
            body = {"external_occupied": current.json()["external_occupied"] + delta}
            response = client.patch(
                path, json=body, headers=headers | {"If-Match": current.headers["etag"]}
            )
            statuses.append(response.status_code)
        return statuses

    with TestClient(app) as client, ThreadPoolExecutor(WORKERS) as pool:
        outcomes = Counter(s for result in pool.map(worker, range(WORKERS)) for s in result)
        final = client.get(path, headers=headers).json()
        history = client.get(f"{path}/history", params={"limit": 200}, headers=headers).json()

    assert set(outcomes) <= {200, 409, 412}, outcomes
    assert outcomes[200] >= 1
    assert 0 <= final["available"] <= CAPACITY
    assert final["external_occupied"] <= CAPACITY
    # Every accepted change is in the history, in order, and chains old → new without a gap:
    # a lost update would show up as an entry whose old value is not the previous new value.
    changes = sorted(
        (c for c in history["items"] if c["field"] == "external_occupied" and c["old"] is not None),
        key=lambda c: c["id"],
    )
    assert len(changes) == outcomes[200]
    assert all(a["new"] == b["old"] for a, b in itertools.pairwise(changes))
    assert changes[-1]["new"] == final["external_occupied"]
    assert final["version"] == 1 + outcomes[200]
