"""What the service is doing, for a monitoring system: ``GET /metrics`` in Prometheus's text format.

Two kinds of series:

- counted by the process as things happen (``prometheus-client``): requests by method, route
  template and status, and their latency; single matches by outcome and their solve time; batch
  runs by outcome and their solve time; the database pool in use. With several worker processes
  (``refuge serve --workers N``) each process writes its own files under
  ``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums them (prometheus-client's multiprocess mode);
  ``refuge serve`` makes that directory when it starts more than one process.
- read from the database when scraped, so every process answers the same: runs waiting and
  running (the queue), holds that expire within the hour, units and the audit chain's length.

No label carries a person's attribute or a case, request or placement id: routes are templates
(``/api/v1/cases/{case_id}``), outcomes are a handful of words. The endpoint is off unless
``REFUGE_METRICS_TOKEN`` is set, and then answers only ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from shelters import freshness
from shelters.audit import AuditEvent
from shelters.models import (
    DELIVERY_STATUSES,
    MatchingRun,
    Placement,
    Unit,
    WebhookDelivery,
    utcnow,
)

HOLDS_EXPIRING_WITHIN = timedelta(hours=1)
# Seconds: a single match is solved in well under a second to a few; a batch run up to minutes.
MATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
RUN_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

REQUESTS = Counter(
    "refuge_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
)
LATENCY = Histogram(
    "refuge_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ("method", "route"),
)
MATCHES = Counter(
    "refuge_matches",
    "Single-request matches, by outcome (placed: beds held; unplaced: the solver said why not).",
    ("outcome",),
)
MATCH_SOLVE = Histogram(
    "refuge_match_duration_seconds",
    "Time to solve and hold one single-request match.",
    buckets=MATCH_BUCKETS,
)
RUNS = Counter(
    "refuge_runs",
    "Batch matching runs ended in this process, by outcome "
    "(the solver's status: optimal, feasible, …; or failed).",
    ("outcome",),
)
RUN_SOLVE = Histogram(
    "refuge_run_solve_seconds",
    "Time the solver took for the attempt that ended a batch run.",
    buckets=RUN_BUCKETS,
)
POOL_IN_USE = Gauge(
    "refuge_db_pool_connections_in_use",
    "Database connections checked out of the pool, summed over live processes.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "refuge_db_pool_size",
    "Connections the pool keeps open, summed over live processes.",
    multiprocess_mode="livesum",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request (``route`` is its template, or ``<unmatched>``)."""
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def observe_match(*, placed: bool, seconds: float) -> None:
    """Count one single-request match and the time it took."""
    MATCHES.labels("placed" if placed else "unplaced").inc()
    MATCH_SOLVE.observe(seconds)


def observe_run(outcome: str, solve_seconds: float | None = None) -> None:
    """Count one batch run's end (its solver status, or ``failed``) and its solve time."""
    RUNS.labels(outcome).inc()
    if solve_seconds is not None:
        RUN_SOLVE.observe(solve_seconds)


def watch_pool(engine: Engine) -> None:
    """Keep the pool gauges of ``engine`` current: up at each checkout, down at each checkin.

    A pool that keeps no size reports 0 as its size.
    """
    size = getattr(engine.pool, "size", None)
    POOL_SIZE.set(size() if callable(size) else 0)
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: the same answer from every process."""

    def __init__(self, read: Any, stale_after_hours: float) -> None:
        self.read = read  # a callable giving a read-only session (service.db.Sessions.read)
        self.stale_after_hours = stale_after_hours

    def describe(self) -> Iterable[Any]:
        return []  # computed at scrape; nothing to read while registering

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.read() as session:
            yield from database_gauges(session, stale_after_hours=self.stale_after_hours)


def database_gauges(session: Session, *, stale_after_hours: float) -> Iterator[GaugeMetricFamily]:
    """The gauges whose truth is in the database, as of ``session``'s snapshot."""
    runs = GaugeMetricFamily(
        "refuge_runs_in_queue",
        "Batch runs waiting for a solver (queued) or being solved (running).",
        labels=("status",),
    )
    counts = dict(
        session.execute(
            select(MatchingRun.status, func.count())
            .where(MatchingRun.status.in_(("queued", "running")))
            .group_by(MatchingRun.status)
        ).all()
    )
    for status in ("queued", "running"):
        runs.add_metric((status,), counts.get(status, 0))
    yield runs

    soon = utcnow() + HOLDS_EXPIRING_WITHIN
    expiring = session.scalar(
        select(func.count())
        .select_from(Placement)
        .where(Placement.status.in_(("proposed", "accepted")), Placement.expires_at <= soon)
    )
    yield GaugeMetricFamily(
        "refuge_holds_expiring_soon",
        "Proposed or accepted placements whose held beds are released within the hour.",
        value=expiring or 0,
    )
    yield GaugeMetricFamily(
        "refuge_units",
        "Bed units in the registry.",
        value=session.scalar(select(func.count()).select_from(Unit)) or 0,
    )
    outbox = GaugeMetricFamily(
        "refuge_webhook_deliveries",
        "Webhook deliveries by status (pending: waiting for a first or another try).",
        labels=("status",),
    )
    by_status = dict(
        session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    )
    for status in DELIVERY_STATUSES:
        outbox.add_metric((status,), by_status.get(status, 0))
    yield outbox
    stale = len(freshness.stale_unit_ids(session, after_hours=stale_after_hours))
    yield GaugeMetricFamily(
        "refuge_units_stale",
        "Units whose numbers nobody confirmed within REFUGE_STALE_AFTER_HOURS.",
        value=stale,
    )
    yield GaugeMetricFamily(
        "refuge_audit_chain_length",
        "Entries in the audit hash chain.",
        value=session.scalar(select(func.max(AuditEvent.seq))) or 0,
    )


def _token_matches(sent: str | None, token: str) -> bool:
    if not sent or not sent.startswith("Bearer "):
        return False
    return hmac.compare_digest(sent.removeprefix("Bearer ").encode(), token.encode())


def authorised(authorization: str | None, token: str | None) -> bool:
    """Whether a scrape may read the metrics: a token is set and the request carries it."""
    return token is not None and _token_matches(authorization, token)


def exposition(read: Any, *, stale_after_hours: float) -> tuple[bytes, str]:
    """The text exposition: this process's (or every live process's) series and the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY  # with prometheus-client's process and platform series
    read_now = CollectorRegistry(auto_describe=False)
    read_now.register(DatabaseCollector(read, stale_after_hours))
    return generate_latest(counted) + generate_latest(read_now), CONTENT_TYPE_LATEST
