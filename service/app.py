"""The app factory: every process and every test builds its own app from explicit settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service import jobs, metrics, openapi_links, problems, webhooks
from service.db import Sessions, make_engine
from service.middleware import (
    WORKER_THREADS,
    AdmissionMiddleware,
    EdgeMiddleware,
    RetryMiddleware,
)
from service.principals import PrincipalCache
from service.routes import (
    API_PREFIX,
    audit,
    availability,
    cases,
    export,
    grants,
    health,
    identity,
    notifications,
    placements,
    registry,
    reports,
    runs,
    scenarios,
    shelters,
)
from service.settings import Settings
from service.ui import UiSettings
from service.ui import install as install_pages
from shelters import lifecycle
from shelters import notifications as notices
from shelters.disclosure import ProtectionCache

VERSION = "0.1.0"
log = logging.getLogger("refuge.app")


def create_app(settings: Settings, *, bind: Any = None) -> FastAPI:
    """Build an app for these settings.

    ``bind`` (an engine or a connection) replaces the engine the app would create; tests pass a
    connection inside an outer transaction that they roll back.
    """
    owns_engine = bind is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        sweeper = None
        if owns_engine and settings.expiry_sweep_s > 0:
            sweeper = asyncio.create_task(_sweep_expired_holds(app, settings.expiry_sweep_s))
        principals = _principal_cache(settings, app.state.sessions.bind) if owns_engine else None
        if principals is not None:
            principals.start()
        app.state.principals = principals
        deliverer = None
        if owns_engine:
            # Beats for this process's runs; finishes runs queued or held by dead processes.
            app.state.run_worker.start()
            if settings.run_worker and settings.webhook_poll_s > 0:
                deliverer = webhooks.Deliverer(app.state.sessions, settings.webhook_poll_s)
                deliverer.start()
            # What start-up made (modules, routes, mappers, compiled schemas) lives as long as
            # the process: out of the collector's sight, a full collection no longer walks it.
            gc.freeze()
        yield
        if principals is not None:
            principals.stop()
        app.state.run_worker.stop()
        if deliverer is not None:
            deliverer.stop()
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        app.state.run_executor.shutdown(wait=False, cancel_futures=True)
        if owns_engine:
            app.state.sessions.bind.dispose()

    app = FastAPI(
        title="Refuge",
        version=VERSION,
        summary="Shelter beds, placement and accountability for victims of trafficking.",
        lifespan=lifespan,
        # No Swagger UI: it would load scripts from a CDN. The document is served as JSON.
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    # Disclosure protections of report years, by a digest of their inputs (shelters.disclosure).
    app.state.disclosure_cache = ProtectionCache()
    app.state.secret_key = settings.resolved_secret_key()
    app.state.principals = None  # started with the app when it owns a PostgreSQL engine
    engine = bind if bind is not None else make_engine(settings.database_url)
    if owns_engine:
        metrics.watch_pool(engine)
        app.state.sessions = Sessions(engine)
    else:
        app.state.sessions = Sessions(engine, join_transaction_mode="create_savepoint")
    # Bound to a test's connection, batch runs execute inline: one connection, one thread.
    app.state.run_executor = jobs.make_executor(settings, inline=not owns_engine)
    app.state.run_worker = jobs.RunWorker(app.state.sessions, settings, app.state.run_executor)

    problems.install(app)
    for module in (
        identity,
        registry,
        shelters,
        availability,
        cases,
        placements,
        runs,
        export,
        audit,
        grants,
        reports,
        scenarios,
        notifications,
        health,
    ):
        app.include_router(module.router)
    install_pages(app, UiSettings())

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Retry-After", "X-Request-ID"],
        )
    app.add_middleware(RetryMiddleware)  # inside the edge: retried requests log once
    # Inside the edge: the log counts the time a request queued.
    app.add_middleware(
        AdmissionMiddleware,
        in_flight=settings.in_flight,
        crowded_in_flight=settings.crowded_in_flight,
        slow_after_s=settings.slow_request_ms / 1000,
    )
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def _principal_cache(settings: Settings, engine: Any) -> PrincipalCache | None:
    """The process's principal cache: PostgreSQL through psycopg, and not switched off."""
    if settings.principal_cache_s == 0 or engine.dialect.driver != "psycopg":
        return None
    return PrincipalCache.for_engine(engine, max_age_s=settings.principal_cache_s)


async def _sweep_expired_holds(app: FastAPI, interval_s: float) -> None:
    """Release overdue holds every ``interval_s`` seconds, whether or not anyone reads them.

    The same sweep tells of proposals about to expire, members coming of age and stale units,
    and escalates requests that waited too long.

    Matching runs of processes that died are recovered by each process's ``RunWorker``.
    """
    sessions: Sessions = app.state.sessions

    majority_age = app.state.settings.majority_age
    stale_after_hours = app.state.settings.stale_after_hours
    escalate_after_hours = app.state.settings.escalate_after_hours

    def sweep() -> int:
        with sessions.write() as session, session.begin():
            expired = lifecycle.expire_holds(session)
            # What time alone brings, told once (shelters/notifications.py).
            notices.warn_expiring(session)
            notices.warn_coming_of_age(session, majority_age=majority_age)
            notices.warn_stale(session, after_hours=stale_after_hours)
            notices.escalate_waiting(session, after_hours=escalate_after_hours)
            return expired

    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = await run_in_threadpool(sweep)
            if expired:
                log.info("released %d expired holds", expired)
        except Exception:  # the database may be restarting; try again next round
            log.warning("expiry sweep failed", exc_info=True)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem schema every error response refers to."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
        description=(
            "Errors are RFC 9457 problem documents (application/problem+json). "
            "Authenticate with `Authorization: Bearer <JWT or API key>`."
        ),
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problems.PROBLEM_SCHEMA
    # FastAPI documents its own 422 shape; ours is a problem document like every other error.
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    response["content"] = {
                        problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                # A body that cannot be decoded (not UTF-8, a broken form) is refused before
                # validation, with 400.
                operation["responses"].setdefault("400", problems.problem_responses(400)[400])
                # A body over REFUGE_MAX_BODY_BYTES is refused at the edge.
                operation["responses"].setdefault("413", problems.problem_responses(413)[413])
    openapi_links.add_links(doc)
    app.openapi_schema = doc
    return doc


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from ``REFUGE_*`` variables."""
    return create_app(Settings())


def iter_api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of ``app`` with its full path, methods and ``dependant``.

    FastAPI ≥ 0.160 keeps included routers as lazy branches; ``iter_route_contexts`` flattens
    them (earlier versions listed ``APIRoute`` objects in ``app.routes`` directly).
    """
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)
    contexts = flatten(app.routes) if flatten else app.routes
    for context in contexts:
        original = getattr(context, "original_route", context)
        if isinstance(original, APIRoute):
            yield context
