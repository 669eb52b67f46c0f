"""At most a bounded number of requests run at once; the rest wait without taking a thread."""

from __future__ import annotations

import asyncio
import gc

import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from service.app import create_app
from service.middleware import MAX_IN_FLIGHT, WORKER_THREADS, AdmissionMiddleware
from service.settings import Settings
from tests.conftest import make_settings


def test_requests_beyond_the_cap_wait_and_all_are_answered() -> None:
    running = 0
    most = 0
    answered = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running, most, answered
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        answered += 1

    gate = AdmissionMiddleware(app, in_flight=3)

    async def burst() -> None:
        async def nothing() -> dict[str, str]:
            return {"type": "http.disconnect"}

        async def ignore(message: object) -> None:
            return None

        await asyncio.gather(*(gate({"type": "http"}, nothing, ignore) for _ in range(20)))

    asyncio.run(burst())
    assert answered == 20
    assert most == 3
    # The same app served again from another event loop (as tests do) queues the same way.
    asyncio.run(burst())
    assert answered == 40
    assert most == 3


def test_the_cap_leaves_threads_for_commits() -> None:
    # A request between its endpoint and its commit holds no thread; the others may each hold
    # one while they wait for its lock, so no allowed cap may reach the thread count.
    assert 0 < MAX_IN_FLIGHT < WORKER_THREADS
    limit = Settings.model_fields["max_in_flight"].metadata
    assert any(getattr(m, "le", None) == MAX_IN_FLIGHT for m in limit)
    with pytest.raises(ValueError, match="max_in_flight"):
        Settings(database_url="sqlite://", secret_key="k" * 40, max_in_flight=MAX_IN_FLIGHT + 1)


def test_a_served_app_freezes_what_start_up_made(fresh_database: str) -> None:
    # Without it every full collection walks the start-up objects: a single match's p99 on
    # the load test fell from 209-243 ms to 90-112 ms with it (scripts/load.py, match-alone).
    gc.unfreeze()
    app = create_app(make_settings(fresh_database, expiry_sweep_s=0))
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
