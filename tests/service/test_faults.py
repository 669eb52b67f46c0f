"""Faults on PostgreSQL: connections killed and the server restarted in the middle of a burst.

Affected requests get 503 problems with Retry-After, nothing is half-written, the service
recovers without a restart of its own, and no unit is overbooked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from service.db import make_engine
from shelters.integrity import half_written, overbooked_units
from tests.servers import serve
from tests.service.test_no_overbooking import BEDS, Scarce, proposals, seed

pytestmark = pytest.mark.postgres
ALLOWED = {200, 503}


def terminate_backends(url: str) -> int:
    database = make_url(url).database
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    admin.dispose()
    return int(killed)


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def burst(base: str, scarce: Scarce, fault: Callable[[], Any]) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {scarce.token}"}
    with httpx.Client(base_url=base, timeout=120) as client, ThreadPoolExecutor(24) as pool:

        def call(i: int) -> httpx.Response:
            if i % 2:
                return client.get("/api/v1/availability", headers=headers)
            rid = scarce.request_ids[i // 2]
            return client.post(f"/api/v1/placement-requests/{rid}/match", headers=headers)

        killer = threading.Timer(0.4, fault)
        killer.start()
        responses = list(pool.map(call, range(2 * 40)))
        killer.join()
    return responses


def check_after(base: str, scarce: Scarce, url: str, responses: list[httpx.Response]) -> None:
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= ALLOWED, (
        statuses,
        [r.text for r in responses if r.status_code not in ALLOWED],
    )
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"]
            assert response.headers["content-type"] == "application/problem+json"
    # Recovered without a restart of the service: ready again, and a new match works.
    headers = {"Authorization": f"Bearer {scarce.token}"}
    deadline = time.monotonic() + 60
    while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.5)
    spare = scarce.request_ids[-1]
    answer = httpx.post(f"{base}/api/v1/placement-requests/{spare}/match", headers=headers)
    assert answer.status_code == 200, answer.text
    engine = make_engine(url)
    try:
        assert overbooked_units(engine) == []
        assert half_written(engine) == []
    finally:
        engine.dispose()
    assert proposals(url) <= BEDS


def test_killed_connections_mid_burst_give_503_and_nothing_half_written(
    fresh_database: str, tmp_path: Path
) -> None:
    scarce = seed(fresh_database)
    with serve(fresh_database, tmp_path / "serve.log", workers=4) as base:
        responses = burst(base, scarce, lambda: terminate_backends(fresh_database))
        check_after(base, scarce, fresh_database, responses)


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None or os.geteuid() != 0,
    reason="restarting PostgreSQL needs pg_ctlcluster and root",
)
def test_a_database_restart_mid_burst_is_survived(fresh_database: str, tmp_path: Path) -> None:
    scarce = seed(fresh_database)
    with serve(fresh_database, tmp_path / "serve.log", workers=4) as base:
        responses = burst(base, scarce, restart_postgres)
        check_after(base, scarce, fresh_database, responses)
