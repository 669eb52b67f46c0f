"""At most a bounded number of requests run at once; the rest wait without taking a thread."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

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

    gate = AdmissionMiddleware(app, in_flight=3, slow_after_s=10.0)

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


async def _nothing() -> dict[str, str]:
    return {"type": "http.disconnect"}


async def _ignore(message: object) -> None:
    return None


def test_a_slow_request_stops_holding_up_the_quick_ones_behind_it() -> None:
    events: list[tuple[str, str]] = []
    running: set[str] = set()
    most_quick = 0

    def app_for(name: str, seconds: float) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal most_quick
            events.append(("start", name))
            running.add(name)
            most_quick = max(most_quick, len(running - {"slow"}))
            await asyncio.sleep(seconds)
            running.discard(name)
            events.append(("end", name))

        return app

    async def scenario() -> None:
        apps = {"slow": app_for("slow", 0.5)} | {f"q{i}": app_for(f"q{i}", 0.01) for i in range(5)}

        async def route(scope: Scope, receive: Receive, send: Send) -> None:
            await apps[scope["name"]](scope, receive, send)

        gate = AdmissionMiddleware(route, in_flight=1, slow_after_s=0.05)
        slow = asyncio.create_task(gate({"type": "http", "name": "slow"}, _nothing, _ignore))
        await asyncio.sleep(0)  # the slow request is let in first
        await asyncio.gather(
            *(gate({"type": "http", "name": f"q{i}"}, _nothing, _ignore) for i in range(5))
        )
        assert not slow.done()  # every quick request finished while the slow one still ran
        await slow

    asyncio.run(scenario())
    assert events[0] == ("start", "slow")
    assert events[-1] == ("end", "slow")
    assert [name for kind, name in events if kind == "end"][:-1] == [f"q{i}" for i in range(5)]
    assert most_quick == 1  # the quick ones still ran one at a time


def test_slow_requests_never_exceed_the_hard_cap() -> None:
    def capped(app: ASGIApp) -> AdmissionMiddleware:
        return AdmissionMiddleware(app, in_flight=1, slow_after_s=0.001, most=3)

    assert most_running(capped, [12], seconds=0.05) == [3]


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


@pytest.mark.parametrize(
    ("url", "workers", "chosen", "expected", "crowded"),
    [
        ("sqlite:///x.db", 1, None, 1, None),
        ("sqlite:///x.db", 4, None, 1, None),
        ("postgresql://u@h/db", 1, None, 2, None),  # a second request uses the network waits
        # The other workers use them already, unless one holds a crowd.
        ("postgresql://u@h/db", 4, None, 1, 2),
        ("postgresql://u@h/db", 1, 6, 6, None),
        ("postgresql://u@h/db", 4, 1, 1, None),  # a chosen limit is kept, crowd or not
        ("sqlite:///x.db", 4, 3, 3, None),
    ],
)
def test_requests_in_flight_default_to_the_engine_and_worker_count(
    url: str, workers: int, chosen: int | None, expected: int, crowded: int | None
) -> None:
    settings = Settings(
        database_url=url, secret_key="k" * 40, worker_processes=workers, max_in_flight=chosen
    )
    assert settings.in_flight == expected
    assert settings.crowded_in_flight == crowded


def test_serve_tells_its_workers_how_many_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from service import cli
    from service.cli import server

    seen: dict[str, object] = {}
    monkeypatch.setattr(server, "_run_uvicorn", lambda sock, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("REFUGE_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("REFUGE_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("REFUGE_WORKER_PROCESSES", "1")  # restored (unset) after the test
    result = CliRunner().invoke(cli.app, ["serve", "--workers", "3", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert seen["workers"] == 3
    assert Settings().worker_processes == 3
    assert Settings().in_flight == 1


def most_running(
    gate_for: Callable[[ASGIApp], AdmissionMiddleware], bursts: list[int], seconds: float = 0.005
) -> list[int]:
    """Through one gate, bursts of requests one after the other: the most running in each."""
    running = 0
    most: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running
        running += 1
        most[-1] = max(most[-1], running)
        await asyncio.sleep(seconds)
        running -= 1

    gate = gate_for(app)

    async def scenario() -> None:
        for size in bursts:
            most.append(0)
            await asyncio.gather(*(gate({"type": "http"}, _nothing, _ignore) for _ in range(size)))

    asyncio.run(scenario())
    return most


def crowd_gate(app: ASGIApp) -> AdmissionMiddleware:
    return AdmissionMiddleware(app, in_flight=1, crowded_in_flight=2, crowd=4, slow_after_s=10.0)


def test_a_crowd_at_the_gate_lets_one_more_in_and_only_then() -> None:
    assert most_running(crowd_gate, [3]) == [1]  # two wait: no crowd
    assert most_running(crowd_gate, [12]) == [2]
    # Without a crowded limit the crowd changes nothing.
    plain = lambda app: AdmissionMiddleware(app, in_flight=1, crowd=4, slow_after_s=10.0)  # noqa: E731
    assert most_running(plain, [12]) == [1]


def test_once_the_crowd_is_gone_the_extra_places_are_given_back() -> None:
    assert most_running(crowd_gate, [12, 3]) == [2, 1]

    def roomier(app: ASGIApp) -> AdmissionMiddleware:
        return AdmissionMiddleware(
            app, in_flight=1, crowded_in_flight=3, crowd=4, slow_after_s=10.0
        )

    assert most_running(roomier, [12, 3]) == [3, 1]
