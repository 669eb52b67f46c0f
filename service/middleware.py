"""ASGI middleware at the edge: request ids, security headers, body limit, access log.

Pure ASGI (no ``BaseHTTPMiddleware``) so streaming and background work are not disturbed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import i18n, metrics
from service.problems import PROBLEM_JSON, RETRY_HEADER, edge_locale, internal_error_body
from shelters.errors import N_

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
CSP = b"content-security-policy"
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The web pages under /ui load their own stylesheet and images, nothing from elsewhere.
PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
    b"form-action 'self'"
)
PAGE_PREFIX = "/ui"
_OURS = {name for name, _ in SECURITY_HEADERS} | {CSP, b"x-request-id"}
_RETRY = RETRY_HEADER.encode()
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("refuge.access")
error_log = logging.getLogger("refuge.errors")


def _problem(status: int, title: str, detail: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()


WORKER_THREADS = 40
"""Threads a process runs synchronous endpoints and dependencies on (AnyIO's default)."""
MAX_IN_FLIGHT = WORKER_THREADS - 8
"""The most requests a process may work on at once, slow ones included (``Settings.max_in_flight``
≤ this)."""
CROWD = 8
"""Requests waiting at a process's gate that make it let one more in (``crowded_in_flight``)."""


@dataclass
class _Gates:
    fresh: asyncio.Semaphore
    total: asyncio.Semaphore
    waiting: int = 0
    lent: int = 0  # places above in_flight handed out while a crowd waits, not yet given back


class AdmissionMiddleware:
    """Lets at most ``in_flight`` requests at a time into the app, besides slow ones.

    Every request in a process runs Python under one interpreter lock, and nearly all of a
    request's time here is Python (SQLite runs in-process; PostgreSQL answers in well under a
    millisecond on loopback): requests let in together mostly take turns on that lock, and a
    request holding SQLite's write lock waits for the others' turns too (measured in README,
    "Load"). So few requests run at once, and the rest queue cheaply on the event loop. A
    request that is still running after ``slow_after_s`` (a report, a large match) stops
    counting against ``in_flight``, so that it does not hold up the quick ones behind it; at
    most ``MAX_IN_FLIGHT`` requests run at all, fewer than the worker threads: a request
    between its endpoint and its commit may hold no thread, and some threads must stay free
    for those commits. With ``crowded_in_flight`` above ``in_flight``, that many are let in
    while at least ``crowd`` wait, and the extra places are given back as requests end once
    fewer wait: the worker of several that the kernel handed most connections to (README,
    "Load").
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        in_flight: int,
        slow_after_s: float,
        crowded_in_flight: int | None = None,
        crowd: int = CROWD,
        most: int = MAX_IN_FLIGHT,
    ) -> None:
        self.app = app
        self.in_flight = in_flight
        self.slow_after_s = slow_after_s
        # Only where asked for (PostgreSQL, several workers).
        self.extra = max(0, (crowded_in_flight or 0) - in_flight)
        self.crowd = crowd
        self.most = max(most, in_flight + self.extra)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gates] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pair of gates per event loop: a server has one; tests may serve one app from
        # several.
        loop = asyncio.get_running_loop()
        gates = self._gates.get(loop)
        if gates is None:
            gates = self._gates[loop] = _Gates(
                asyncio.Semaphore(self.in_flight), asyncio.Semaphore(self.most)
            )
        async with gates.total:
            gates.waiting += 1
            if self.extra and not gates.lent and gates.waiting >= self.crowd:
                gates.lent = self.extra
                for _ in range(self.extra):
                    gates.fresh.release()
            try:
                await gates.fresh.acquire()
            finally:
                gates.waiting -= 1
            counted = True

            def stop_counting() -> None:
                nonlocal counted
                if counted:
                    counted = False
                    if gates.lent and gates.waiting < self.crowd:
                        gates.lent -= 1  # an extra place goes back: keep this one
                    else:
                        gates.fresh.release()

            timer = loop.call_later(self.slow_after_s, stop_counting)
            try:
                await self.app(scope, receive, send)
            finally:
                timer.cancel()
                stop_counting()


class EdgeMiddleware:
    """Adds the security headers and ``X-Request-ID``, caps bodies, logs one line a request.

    The log line is JSON with the request id, actor id and role, route template, method,
    status and duration: never a body, a query string or a token.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        state: dict[str, Any] = {"status": 500, "started": False, "refused": False}
        path = scope.get("path", "")
        is_page = path == PAGE_PREFIX or path.startswith(PAGE_PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if state["refused"] and not message.get("refuge_edge"):
                return  # we answered 413 already; the app's late reply goes nowhere
            message = {k: v for k, v in message.items() if k != "refuge_edge"}
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                raw.extend(SECURITY_HEADERS)
                raw.append((CSP, PAGE_CSP if is_page else API_CSP))
                raw.append((b"x-request-id", request_id.encode()))
                message["headers"] = raw
            await send(message)

        async def refuse_too_large() -> None:
            if not state["started"]:
                state["refused"] = True
                await self._too_large(send_with_headers, edge_locale(scope))

        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    await refuse_too_large()
                    return {"type": "http.disconnect"}
            return message

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > self.max_body_bytes:
                await refuse_too_large()
            else:
                await self.app(scope, counting_receive, send_with_headers)
        except Exception:
            if state["refused"]:
                return  # the app stumbled over the disconnect we fed it
            error_log.exception("unhandled error", extra={"request_id": request_id})
            if state["started"]:
                raise
            locale = edge_locale(scope)
            await self._send(
                send_with_headers, 500, internal_error_body(request_id, locale), locale
            )
        finally:
            self._log(scope, request_id, state["status"], started)

    async def _too_large(self, send: Send, locale: str) -> None:
        body = _problem(
            413,
            i18n.gettext(locale, "Content Too Large"),
            i18n.gettext(
                locale,
                N_("request bodies are limited to {limit} bytes"),
                limit=i18n.format_number(self.max_body_bytes, locale),
            ),
        )
        await self._send(send, 413, body, locale)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, locale: str) -> None:
        await send(
            {
                "refuge_edge": True,
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"content-language", locale.encode()),
                    (b"vary", b"Accept-Language"),
                ],
            }
        )
        await send({"refuge_edge": True, "type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        metrics.observe_request(
            scope.get("method", ""), template, status, time.perf_counter() - started
        )
        if not access_log.isEnabledFor(logging.INFO):
            return
        principal: Any = scope.get("state", {}).get("principal")
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "actor_id": getattr(principal, "user_id", None),
                "role": getattr(getattr(principal, "role", None), "value", None),
                "method": scope.get("method"),
                "route": template,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )


class RetryMiddleware:
    """Runs a request again when the database refused it for losing a race.

    A serialization failure or deadlock rolls the whole unit of work back, so running the
    request again is safe. The handler marks such answers (``x-refuge-retry``); this middleware
    buffers the request body, retries up to ``attempts`` times with a short pause, and passes
    the last answer on (a 503 with ``Retry-After``) without the mark.
    """

    def __init__(self, app: ASGIApp, *, attempts: int = 3, pause_s: float = 0.05) -> None:
        self.app = app
        self.attempts = attempts
        self.pause_s = pause_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            retry = await self._once(scope, body, send, forward_marked=last)
            if not retry:
                return
            await asyncio.sleep(self.pause_s * attempt)

    async def _once(self, scope: Scope, body: bytes, send: Send, *, forward_marked: bool) -> bool:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        marked = False

        async def capture(message: Message) -> None:
            nonlocal marked
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                marked = any(k.lower() == _RETRY for k, _ in headers)
                message["headers"] = [(k, v) for k, v in headers if k.lower() != _RETRY]
            if marked and not forward_marked:
                return
            await send(message)

        await self.app(scope, replay, capture)
        return marked and not forward_marked
