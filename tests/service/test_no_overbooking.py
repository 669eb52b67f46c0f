"""The central guarantee: many matches at once never push a unit below zero.

50 requests race for 3 free beds: through one app in many threads, and through a real
`refuge serve` with 4 worker processes. Afterwards the holds and admissions of every unit are
counted with SQL from the placements themselves, not from the unit's counters.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.app import create_app
from service.auth import issue_token
from service.db import make_engine
from shelters import identity, lifecycle, registry
from shelters.cases import create_case
from shelters.identity import Role
from shelters.integrity import overbooked_units
from shelters.models import Organization, Placement, Region, Shelter
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import TEST_SECRET, make_settings
from tests.servers import serve
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN

BEDS = 3
REQUESTS = 50


@dataclass
class Scarce:
    url: str
    token: str
    request_ids: list[int]


def seed(url: str) -> Scarce:
    """One shelter with 3 free beds and 50 pending one-person requests, committed."""
    engine = make_engine(url)
    settings = make_settings(url)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(Region(code="race", name="Race", lat=45.0, lon=70.0))
        org = Organization(name="Race org", kind="ngo")
        session.add(org)
        session.flush()
        shelter = Shelter(
            organization_id=org.id, name="Race shelter", region_code="race", locality="L"
        )
        session.add(shelter)
        session.flush()
        registry.create_unit(
            session, shelter.id, actor_id=None, name="U", capacity=BEDS, admits=WOMEN_AND_CHILDREN
        )
        user = identity.create_user(
            session,
            username="race-caseworker",
            password="a long enough password",
            role=Role.CASEWORKER,
            organization_id=org.id,
        )
        principal = identity.principal_of(user)
        profile = CaseProfile(members=(MemberProfile(ref="A", sex="female", age=30),))
        request_ids = []
        for _ in range(REQUESTS):
            case = create_case(
                session, principal, profile, separate_from_case_ids=[], majority_age=18
            )
            request = lifecycle.create_request(
                session,
                principal,
                case_id=case.id,
                priority=None,
                preferred_regions=[],
                majority_age=18,
            )
            request_ids.append(request.id)
        token, _ = issue_token(settings, TEST_SECRET, user)
    engine.dispose()
    return Scarce(url=url, token=token, request_ids=request_ids)


def proposals(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(Placement)) or 0)
    finally:
        engine.dispose()


def test_50_concurrent_matches_for_3_beds_in_one_process(fresh_database: str) -> None:
    scarce = seed(fresh_database)
    app = create_app(make_settings(fresh_database))
    headers = {"Authorization": f"Bearer {scarce.token}"}
    with TestClient(app) as client, ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda rid: client.post(f"/api/v1/placement-requests/{rid}/match", headers=headers),
                scarce.request_ids,
            )
        )
    statuses = Counter(r.status_code for r in responses)
    placed = [r for r in responses if r.status_code == 200 and r.json()["placed"]]
    assert statuses == {200: REQUESTS}
    assert len(placed) == BEDS
    assert proposals(fresh_database) == BEDS
    engine = make_engine(fresh_database)
    assert overbooked_units(engine) == []
    engine.dispose()


def test_50_concurrent_matches_for_3_beds_across_4_worker_processes(
    fresh_database: str, tmp_path: Path
) -> None:
    scarce = seed(fresh_database)
    with serve(fresh_database, tmp_path / "serve.log", workers=4) as base:
        headers = {"Authorization": f"Bearer {scarce.token}"}
        with httpx.Client(base_url=base, timeout=120) as client, ThreadPoolExecutor(50) as pool:
            responses = list(
                pool.map(
                    lambda rid: client.post(
                        f"/api/v1/placement-requests/{rid}/match", headers=headers
                    ),
                    scarce.request_ids,
                )
            )
    statuses = Counter(r.status_code for r in responses)
    placed = [r for r in responses if r.status_code == 200 and r.json()["placed"]]
    assert statuses == {200: REQUESTS}, (tmp_path / "serve.log").read_text()[-3000:]
    assert len(placed) == BEDS
    assert proposals(fresh_database) == BEDS
    engine = make_engine(fresh_database)
    assert overbooked_units(engine) == []
    engine.dispose()


def test_concurrent_batch_runs_and_matches_across_4_workers_never_overbook(
    fresh_database: str, tmp_path: Path
) -> None:
    scarce = seed(fresh_database)
    engine = make_engine(fresh_database)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        admin = identity.create_user(
            session,
            username="race-admin",
            password="a long enough password",
            role=Role.ADMIN,
            organization_id=None,
        )
        admin_token, _ = issue_token(make_settings(fresh_database), TEST_SECRET, admin)
    engine.dispose()
    with serve(fresh_database, tmp_path / "serve.log", workers=4) as base:
        admin_headers = {"Authorization": f"Bearer {admin_token}"}
        caseworker = {"Authorization": f"Bearer {scarce.token}"}
        with httpx.Client(base_url=base, timeout=120) as client, ThreadPoolExecutor(12) as pool:
            runs = pool.map(
                lambda _: client.post(
                    "/api/v1/matching-runs", json={"time_limit_s": 2}, headers=admin_headers
                ),
                range(4),
            )
            singles = pool.map(
                lambda rid: client.post(
                    f"/api/v1/placement-requests/{rid}/match", headers=caseworker
                ),
                scarce.request_ids[:8],
            )
            started = list(runs)
            matched = list(singles)
            run_ids = [r.json()["id"] for r in started if r.status_code == 202]
            deadline = time.monotonic() + 90
            finished: dict[int, str] = {}
            while len(finished) < len(run_ids) and time.monotonic() < deadline:
                for run_id in run_ids:
                    status = client.get(f"/api/v1/matching-runs/{run_id}", headers=admin_headers)
                    if status.json()["status"] in ("done", "failed"):
                        finished[run_id] = status.json()["status"]
                time.sleep(0.2)
    assert {r.status_code for r in started} <= {202, 503}, [r.text for r in started]
    assert run_ids
    # A batch run may propose a request before its single match gets to it: that match is
    # refused as a conflict (the request is no longer pending), never anything else.
    assert {r.status_code for r in matched} <= {200, 409}
    refused = [r.json()["detail"] for r in matched if r.status_code == 409]
    assert all(detail.endswith("not pending") for detail in refused), refused
    assert len(finished) == len(run_ids)
    assert proposals(fresh_database) == BEDS
    engine = make_engine(fresh_database)
    assert overbooked_units(engine) == []
    engine.dispose()
