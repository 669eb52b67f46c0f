"""Delivering the webhook outbox, signed per the Standard Webhooks specification.

Each row of ``webhook_deliveries`` was written in the transaction of its event
(shelters/notifications.py). A delivery pass takes the rows that are due, oldest first:

1. in a short transaction it *leases* each row (``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so two processes never take the same row; SQLite's write lock does the same),
   counting the attempt and moving ``next_attempt_at`` past the lease;
2. outside any transaction it posts the body, signed with the endpoint's secret by the
   ``standardwebhooks`` library (headers ``webhook-id``, ``webhook-timestamp``,
   ``webhook-signature``);
3. in another short transaction it records the answer: ``delivered`` on a 2xx, else the next
   try after the backoff of :data:`BACKOFF_S`, and ``failed`` once they are spent.

A process that dies between 1 and 3 leaves the row leased: after the lease another pass sends
it again. Delivery is at least once; a receiver tells repeats by their ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from service.db import Sessions
from shelters.models import WebhookDelivery, WebhookEndpoint, utcnow

log = logging.getLogger("refuge.webhooks")

# Seconds to wait after the n-th failed attempt; after the last the delivery has failed.
BACKOFF_S = (5, 30, 120, 600, 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
LEASE = timedelta(seconds=60)
TIMEOUT_S = 10.0
BATCH = 50


@dataclass(frozen=True)
class Leased:
    """A delivery taken for one attempt: what to send where, signed with which secret."""

    delivery_id: int
    message_id: str
    url: str
    secret: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Pass:
    """What one pass did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


def _due(now: datetime) -> Any:
    return (WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)


def _any_due(sessions: Sessions, now: datetime) -> bool:
    """A read first: the write transaction (SQLite: the one write lock) only when there is work."""
    with sessions.read() as session, session.begin():
        return session.scalar(select(WebhookDelivery.id).where(*_due(now)).limit(1)) is not None


def _lease(sessions: Sessions, now: datetime, limit: int) -> list[Leased]:
    with sessions.write() as session, session.begin():
        rows = session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(*_due(now), WebhookEndpoint.active.is_(True))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        ).all()
        leased = []
        for delivery, endpoint in rows:
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE
            leased.append(
                Leased(
                    delivery.id,
                    delivery.message_id,
                    endpoint.url,
                    endpoint.secret,
                    json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True),
                    delivery.attempts,
                )
            )
        return leased


def _post(client: httpx.Client, leased: Leased, now: datetime) -> tuple[int | None, str | None]:
    headers = signed_headers(leased.secret, leased.message_id, now, leased.body)
    try:
        response = client.post(leased.url, content=leased.body, headers=headers)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _record(
    sessions: Sessions, leased: Leased, now: datetime, code: int | None, error: str | None
) -> str:
    with sessions.write() as session, session.begin():
        delivery = session.get_one(WebhookDelivery, leased.delivery_id, with_for_update=True)
        delivery.last_status_code = code
        delivery.last_error = error
        if error is None:
            delivery.status = "delivered"
            delivery.delivered_at = now
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=BACKOFF_S[delivery.attempts - 1])
        return delivery.status


def deliver_due(
    sessions: Sessions,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], datetime] = utcnow,
    limit: int = BATCH,
) -> Pass:
    """One pass over the due deliveries (``clock`` gives the time: tests inject one)."""
    if not _any_due(sessions, clock()):
        return Pass()
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
    delivered = retrying = failed = 0
    try:
        for leased in _lease(sessions, clock(), limit):
            # Signed with the real time: receivers refuse a timestamp minutes away from theirs.
            code, error = _post(http, leased, utcnow())
            status = _record(sessions, leased, clock(), code, error)
            if status == "delivered":
                delivered += 1
            elif status == "failed":
                failed += 1
                log.warning("webhook delivery given up", extra={"delivery": leased.delivery_id})
            else:
                retrying += 1
    finally:
        if own:
            http.close()
    return Pass(delivered, retrying, failed)


class Deliverer:
    """A thread that runs a delivery pass every ``interval_s`` until stopped."""

    def __init__(self, sessions: Sessions, interval_s: float) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin the passes in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the passes; a post under way finishes (or times out) first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_S + 5)

    def _loop(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    deliver_due(self.sessions, client=client)
                except Exception:  # the database may be restarting; try again next round
                    log.warning("webhook delivery pass failed", exc_info=True)
                self._stop.wait(self.interval_s)
