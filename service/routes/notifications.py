"""Each user's inbox, and the webhook endpoints of integrations (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field, StringConstraints

from service.audit import set_resource_id
from service.auth import ANY_ROLE, allow
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import Id, PageOut, Strict
from shelters import notifications
from shelters.identity import Principal, Role
from shelters.models import NOTICE_EVENTS, InboxEntry, WebhookDelivery, WebhookEndpoint
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["notifications"], route_class=UnitOfWorkRoute)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Event = Literal[NOTICE_EVENTS]  # type: ignore[valid-type]


class InboxEntryOut(BaseModel):
    id: int
    event: str = Field(description="What happened, e.g. placement.proposed.")
    placement_id: int | None
    request_id: int | None
    shelter_id: int | None
    unit_id: int | None
    reason: str | None = Field(description="A decline's reason code, when there is one.")
    created_at: datetime
    read_at: datetime | None


class InboxPageOut(PageOut[InboxEntryOut]):
    unread: int = Field(description="The caller's unread entries, on every page.")


def entry_out(entry: InboxEntry) -> InboxEntryOut:
    """The API view of an inbox entry."""
    return InboxEntryOut(
        id=entry.id,
        event=entry.event,
        placement_id=entry.placement_id,
        request_id=entry.request_id,
        shelter_id=entry.shelter_id,
        unit_id=entry.unit_id,
        reason=entry.reason,
        created_at=entry.created_at,
        read_at=entry.read_at,
    )


@router.get("/inbox", responses=problem_responses(401, 422))
def read_inbox(
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: ReadDb,
    unread: bool = False,
    limit: Limit = 50,
    cursor: str | None = None,
) -> InboxPageOut:
    """Your own inbox, newest first (``unread=true``: only what you have not read)."""
    page = notifications.inbox(db, principal, unread_only=unread, limit=limit, cursor=cursor)
    return InboxPageOut(
        items=[entry_out(e) for e in page.items],
        next_cursor=page.next_cursor,
        unread=notifications.unread_count(db, principal),
    )


@router.post("/inbox/{entry_id}/read", responses=problem_responses(401, 404))
def mark_read(
    entry_id: Id, principal: Annotated[Principal, allow(*ANY_ROLE)], db: WriteDb
) -> InboxEntryOut:
    """Mark one of your entries read (another user's entry is not found)."""
    return entry_out(notifications.mark_read(db, principal, entry_id))


Url = Annotated[str, StringConstraints(min_length=8, max_length=500)]


class WebhookEndpointIn(Strict):
    url: Url = Field(description="Where to POST the events (https:// in production).")
    events: list[Event] = Field(
        default_factory=list, max_length=len(NOTICE_EVENTS), description="None: every event."
    )


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class NewWebhookEndpointOut(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_…): shown only now."
    )


class WebhookDeliveryOut(BaseModel):
    id: int
    message_id: str = Field(description="The webhook-id header; the same on every try.")
    event: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    payload: dict[str, Any]


def endpoint_out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    """The API view of an endpoint: never its secret."""
    return WebhookEndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        active=endpoint.active,
        created_at=endpoint.created_at,
    )


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    """The API view of one delivery."""
    return WebhookDeliveryOut(
        id=delivery.id,
        message_id=delivery.message_id,
        event=delivery.event,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        payload=delivery.payload,
    )


@router.get("/webhooks", responses=problem_responses(401, 403, 422))
def list_webhooks(
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[WebhookEndpointOut]:
    """The webhook endpoints, oldest first."""
    page = notifications.list_endpoints(db, limit=limit, cursor=cursor)
    return PageOut(items=[endpoint_out(e) for e in page.items], next_cursor=page.next_cursor)


@router.post(
    "/webhooks", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 403, 422)
)
def create_webhook(
    body: WebhookEndpointIn,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> NewWebhookEndpointOut:
    """Register an endpoint; its signing secret is in this answer and never again."""
    made = notifications.create_endpoint(db, principal, url=body.url, events=body.events)
    set_resource_id(request, made.endpoint.id)
    return NewWebhookEndpointOut(**endpoint_out(made.endpoint).model_dump(), secret=made.secret)


@router.delete("/webhooks/{endpoint_id}", responses=problem_responses(401, 403, 404))
def deactivate_webhook(
    endpoint_id: Id, principal: Annotated[Principal, allow(Role.ADMIN)], db: WriteDb
) -> WebhookEndpointOut:
    """Stop sending to an endpoint (its history stays)."""
    return endpoint_out(notifications.deactivate_endpoint(db, endpoint_id))


@router.get("/webhooks/{endpoint_id}/deliveries", responses=problem_responses(401, 403, 404, 422))
def list_deliveries(
    endpoint_id: Id,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[WebhookDeliveryOut]:
    """An endpoint's delivery history, newest first."""
    page = notifications.deliveries(db, endpoint_id, limit=limit, cursor=cursor)
    return PageOut(items=[delivery_out(d) for d in page.items], next_cursor=page.next_cursor)
