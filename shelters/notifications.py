"""Word when something needs someone: inbox entries and the webhook outbox.

Every change of a placement calls :func:`placement_changed` in the change's own transaction,
which writes an inbox entry for each user who must act or know, and an outbox row
(``WebhookDelivery``) for each active webhook endpoint that asked for the event. Rolled back
with the change, they never tell of something that did not happen; committed with it, they are
delivered afterwards however the process ends (service/webhooks.py).

Who hears what:

- ``placement.proposed``, ``placement.cancelled``, ``placement.expiring``: the shelter's
  coordinators (they must answer, or their held beds were freed);
- ``placement.accepted``, ``declined``, ``admitted``, ``discharged``: the caseworkers of the
  request's organisation;
- ``placement.expired``: both;
- ``member.coming_of_age``: both, once per placement, when an admitted minor's recorded
  coming-of-age month is this month or next (reason ``comes_of_age``), or, with no month
  recorded, when they are one year under the age of majority (``may_come_of_age``: Refuge keeps
  ages, not birth dates).
- ``request.escalated``: the request's organisation's caseworkers and every admin, once, when
  a request has waited pending past ``REFUGE_ESCALATE_AFTER_HOURS`` for its priority.

A payload holds the event, when it happened and ids, statuses and reason codes: nothing about a
person. ``unit.stale``: a unit's numbers went unconfirmed for ``REFUGE_STALE_AFTER_HOURS``
(inbox only, to its coordinators, once until the next confirmation).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from shelters.errors import InvalidInput, NotFound
from shelters.identity import Principal
from shelters.models import (
    NOTICE_EVENTS,
    Case,
    InboxEntry,
    Placement,
    PlacementRequest,
    Unit,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    user_shelters,
    utcnow,
)
from shelters.pagination import Page, paginate
from shelters.profiles import month_index

TO_COORDINATORS = {"placement.proposed", "placement.cancelled", "placement.expiring"}
TO_CASEWORKERS = {
    "placement.accepted",
    "placement.declined",
    "placement.admitted",
    "placement.discharged",
}
TO_BOTH = {"placement.expired", "member.coming_of_age"}
# A proposal is about to expire when less than this is left of its hold.
EXPIRING_WITHIN = timedelta(hours=2)
PAYLOAD_KEYS = frozenset({"placement_id", "request_id", "shelter_id", "status", "reason"})


def _coordinators(session: Session, shelter_id: int) -> list[int]:
    return list(
        session.scalars(
            select(User.id)
            .join(user_shelters, user_shelters.c.user_id == User.id)
            .where(
                user_shelters.c.shelter_id == shelter_id,
                User.role == "coordinator",
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def _caseworkers(session: Session, organization_id: int) -> list[int]:
    return list(
        session.scalars(
            select(User.id)
            .where(
                User.organization_id == organization_id,
                User.role == "caseworker",
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def recipients(session: Session, event: str, placement: Placement) -> list[int]:
    """The users who hear of ``event`` about ``placement``."""
    users: list[int] = []
    if event in TO_COORDINATORS | TO_BOTH:
        users += _coordinators(session, placement.shelter_id)
    if event in TO_CASEWORKERS | TO_BOTH:
        users += _caseworkers(session, placement.organization_id)
    return sorted(set(users))


def payload(
    event: str, placement: Placement, *, at: datetime, reason: str | None
) -> dict[str, Any]:
    """The webhook body: the event, its time, and ids, status and reason code only."""
    data: dict[str, Any] = {
        "placement_id": placement.id,
        "request_id": placement.request_id,
        "shelter_id": placement.shelter_id,
        "status": placement.status,
    }
    if reason is not None:
        data["reason"] = reason
    return {"type": event, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


def placement_changed(
    session: Session, placement: Placement, event: str, *, reason: str | None = None
) -> None:
    """Tell the users and endpoints concerned of ``event``, in the caller's transaction."""
    if event not in NOTICE_EVENTS:
        raise ValueError(f"unknown event {event!r}")
    now = utcnow()
    for user_id in recipients(session, event, placement):
        session.add(
            InboxEntry(
                user_id=user_id,
                event=event,
                placement_id=placement.id,
                request_id=placement.request_id,
                shelter_id=placement.shelter_id,
                reason=reason,
                created_at=now,
            )
        )
    _outbox(session, event, payload(event, placement, at=now, reason=reason), now)


def _outbox(session: Session, event: str, body: dict[str, Any], now: datetime) -> None:
    """One delivery of ``body`` to each active endpoint that asked for ``event``."""
    for endpoint in _subscribed(session, event):
        session.add(
            WebhookDelivery(
                message_id=f"msg_{uuid.uuid4().hex}",
                endpoint_id=endpoint.id,
                event=event,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


def _subscribed(session: Session, event: str) -> list[WebhookEndpoint]:
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)
    )
    return [e for e in endpoints if not e.events or event in e.events]


# --- sweeps: what time alone brings ----------------------------------------------------------


def _told(event: str) -> Any:
    return exists().where(InboxEntry.placement_id == Placement.id, InboxEntry.event == event)


def warn_expiring(session: Session, *, now: datetime | None = None) -> int:
    """Tell of each proposal whose hold ends within ``EXPIRING_WITHIN``, once; returns how many."""
    now = now or utcnow()
    soon = session.scalars(
        select(Placement)
        .where(
            Placement.status == "proposed",
            Placement.expires_at > now,
            Placement.expires_at <= now + EXPIRING_WITHIN,
            ~_told("placement.expiring"),
        )
        .order_by(Placement.id)
        # Two processes sweeping at once: one takes each placement, the other skips it.
        .with_for_update(skip_locked=True)
    ).all()
    for placement in soon:
        placement_changed(session, placement, "placement.expiring")
    return len(soon)


COMES_OF_AGE = "comes_of_age"
MAY_COME_OF_AGE = "may_come_of_age"


def coming_of_age(member: Mapping[str, Any], *, majority_age: int, today: date) -> str | None:
    """Why a placed member should be looked at before they come of age, or None.

    ``comes_of_age``: their recorded month is this month or next; ``may_come_of_age``: no
    month is recorded and they are one year under majority, so it may happen during the stay.
    """
    age = int(member.get("age", -1))
    if age >= majority_age or age < 0:
        return None
    month = member.get("comes_of_age")
    if month:
        ahead = month_index(str(month)) - (today.year * 12 + today.month - 1)
        return COMES_OF_AGE if ahead <= 1 else None
    return MAY_COME_OF_AGE if age == majority_age - 1 else None


def warn_coming_of_age(session: Session, *, majority_age: int, now: datetime | None = None) -> int:
    """Tell, once per placement, of an admitted minor about to come of age (see above)."""
    today = (now or utcnow()).date()
    admitted = session.execute(
        select(Placement, Case.members)
        .join(PlacementRequest, PlacementRequest.id == Placement.request_id)
        .join(Case, Case.id == PlacementRequest.case_id)
        .where(Placement.status == "admitted", ~_told("member.coming_of_age"))
        .options(selectinload(Placement.beds))
        .order_by(Placement.id)
        .with_for_update(skip_locked=True, of=Placement)
    ).all()
    told = 0
    for placement, members in admitted:
        placed = {b.member_ref for b in placement.beds}
        reasons = {
            coming_of_age(m, majority_age=majority_age, today=today)
            for m in members or []
            if m.get("ref") in placed
        } - {None}
        if reasons:
            # A known month is the firmer word; a "may" is said only when no month is near.
            reason = COMES_OF_AGE if COMES_OF_AGE in reasons else MAY_COME_OF_AGE
            placement_changed(session, placement, "member.coming_of_age", reason=reason)
            told += 1
    return told


ESCALATED = "waited_too_long"


def escalate_waiting(
    session: Session, *, after_hours: Mapping[int, float], now: datetime | None = None
) -> int:
    """Escalate, once, each request pending longer than ``after_hours[priority]``; how many.

    The request keeps the moment (``escalated_at``); its organisation's caseworkers and every
    admin get an inbox entry, and webhook endpoints the event. A request proposed meanwhile and
    back to pending keeps its first escalation: the wait is counted from its creation.
    """
    now = now or utcnow()
    overdue = or_(
        *(
            and_(
                PlacementRequest.priority == priority,
                PlacementRequest.created_at <= now - timedelta(hours=hours),
            )
            for priority, hours in sorted(after_hours.items())
        )
    )
    waiting = session.scalars(
        select(PlacementRequest)
        .where(
            PlacementRequest.status == "pending",
            PlacementRequest.escalated_at.is_(None),
            overdue,
        )
        .order_by(PlacementRequest.id)
        .with_for_update(skip_locked=True)
    ).all()
    admins = list(
        session.scalars(
            select(User.id).where(User.role == "admin", User.is_active.is_(True)).order_by(User.id)
        )
    )
    for request in waiting:
        request.escalated_at = now
        for user_id in sorted(set(_caseworkers(session, request.organization_id) + admins)):
            session.add(
                InboxEntry(
                    user_id=user_id,
                    event="request.escalated",
                    request_id=request.id,
                    reason=ESCALATED,
                    created_at=now,
                )
            )
        body = {
            "type": "request.escalated",
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": {"request_id": request.id, "status": request.status, "reason": ESCALATED},
        }
        _outbox(session, "request.escalated", body, now)
    session.flush()
    return len(waiting)


def escalated_waiting(session: Session, *, organization_id: int | None = None) -> int:
    """How many escalated requests are still pending (no bed yet, not withdrawn).

    With ``organization_id``, only that organisation's.
    """
    stmt = select(func.count()).where(
        PlacementRequest.status == "pending", PlacementRequest.escalated_at.is_not(None)
    )
    if organization_id is not None:
        stmt = stmt.where(PlacementRequest.organization_id == organization_id)
    return int(session.scalar(stmt) or 0)


def warn_stale(session: Session, *, after_hours: float, now: datetime | None = None) -> int:
    """Tell a unit's coordinators once its numbers go stale (again after each confirmation)."""
    now = now or utcnow()
    before = now - timedelta(hours=after_hours)
    told_since = exists().where(
        InboxEntry.unit_id == Unit.id,
        InboxEntry.event == "unit.stale",
        InboxEntry.created_at >= Unit.confirmed_at,
    )
    units = session.scalars(
        select(Unit)
        .where(Unit.confirmed_at < before, ~told_since)
        .order_by(Unit.id)
        .with_for_update(skip_locked=True)
    ).all()
    for unit in units:
        for user_id in _coordinators(session, unit.shelter_id):
            session.add(
                InboxEntry(
                    user_id=user_id,
                    event="unit.stale",
                    shelter_id=unit.shelter_id,
                    unit_id=unit.id,
                    created_at=now,
                )
            )
    return len(units)


# --- the inbox ------------------------------------------------------------------------------


def inbox(
    session: Session,
    principal: Principal,
    *,
    unread_only: bool,
    limit: int,
    cursor: str | None,
) -> Page[InboxEntry]:
    """The caller's own entries, newest first."""
    stmt = select(InboxEntry).where(InboxEntry.user_id == principal.user_id)
    if unread_only:
        stmt = stmt.where(InboxEntry.read_at.is_(None))
    return paginate(session, stmt, InboxEntry.id, limit=limit, cursor=cursor, descending=True)


def unread_count(session: Session, principal: Principal) -> int:
    """How many of the caller's entries are unread."""
    return (
        session.scalar(
            select(func.count())
            .select_from(InboxEntry)
            .where(InboxEntry.user_id == principal.user_id, InboxEntry.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, principal: Principal, entry_id: int) -> InboxEntry:
    """Mark one of the caller's entries read; another user's entry is not found."""
    entry = session.get(InboxEntry, entry_id)
    if entry is None or entry.user_id != principal.user_id:
        raise NotFound("inbox entry {entry_id} not found", entry_id=entry_id)
    if entry.read_at is None:
        entry.read_at = utcnow()
    session.flush()
    return entry


# --- webhook endpoints (admins) ----------------------------------------------------------------


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint just made, with its secret: shown this once."""

    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    session: Session, principal: Principal, *, url: str, events: Sequence[str]
) -> NewEndpoint:
    """Register an endpoint for ``events`` (none: every event)."""
    if not (url.startswith("https://") or url.startswith("http://")):
        raise InvalidInput("a webhook URL must start with https:// or http://")
    unknown = sorted(set(events) - set(NOTICE_EVENTS))
    if unknown:
        raise InvalidInput(
            "unknown events {unknown}; known: {known}",
            unknown=", ".join(unknown),
            known=", ".join(NOTICE_EVENTS),
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        secret=secret,
        events=sorted(set(events)),
        active=True,
        created_by=principal.user_id,
    )
    session.add(endpoint)
    session.flush()
    return NewEndpoint(endpoint, secret)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint, or not found."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("webhook endpoint {endpoint_id} not found", endpoint_id=endpoint_id)
    return endpoint


def list_endpoints(session: Session, *, limit: int, cursor: str | None) -> Page[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    return paginate(
        session, select(WebhookEndpoint), WebhookEndpoint.id, limit=limit, cursor=cursor
    )


def deactivate_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Stop sending to an endpoint; what is pending for it is not sent either."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = False
    session.flush()
    return endpoint


def deliveries(
    session: Session, endpoint_id: int, *, limit: int, cursor: str | None
) -> Page[WebhookDelivery]:
    """An endpoint's delivery history, newest first."""
    get_endpoint(session, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    return paginate(session, stmt, WebhookDelivery.id, limit=limit, cursor=cursor, descending=True)
