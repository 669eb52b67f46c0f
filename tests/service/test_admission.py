"""At most a bounded number of requests run at once; the rest wait without taking a thread."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from service.middleware import IN_FLIGHT, WORKER_THREADS, AdmissionMiddleware


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


def test_the_cap_leaves_threads_for_commits() -> None:
    # A request between its endpoint and its commit holds no thread; the others may each hold
    # one while they wait for its lock, so the cap must stay below the thread count.
    assert 0 < IN_FLIGHT < WORKER_THREADS
