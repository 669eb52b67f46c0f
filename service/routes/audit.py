"""The audit log: verifying the chain and reading its entries (SPEC §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from service.auth import allow
from service.deps import ReadDb, UnitOfWorkRoute
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import Id, PageOut
from shelters import audit
from shelters.audit import AuditEvent
from shelters.errors import InvalidInput
from shelters.identity import Principal, Role
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["audit"], route_class=UnitOfWorkRoute)


class AuditVerifyOut(BaseModel):
    ok: bool = Field(description="True when every entry matches its hash and its predecessor.")
    checked: int = Field(description="How many entries were read.")
    first_broken_seq: int | None = Field(
        description="The first sequence number at which the chain does not hold; null when ok."
    )


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor_user_id: int | None
    actor_role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    outcome: str = Field(
        description="`ok`; `denied` for an attempt refused for lack of rights or credentials; "
        "`failed` for one a web page refused for another reason."
    )
    request_id: str | None
    prev_hash: str
    hash: str


def _event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=event.seq,
        at=event.at,
        actor_user_id=event.actor_user_id,
        actor_role=event.actor_role,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        outcome=event.outcome,
        request_id=event.request_id,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


@router.get("/audit/verify", responses=problem_responses(401, 403))
def verify_chain(
    principal: Annotated[Principal, allow(Role.ADMIN, Role.FUNDER)], db: ReadDb
) -> AuditVerifyOut:
    """Recompute the audit hash chain and say where it breaks, if it does."""
    result = audit.verify(db)
    return AuditVerifyOut(
        ok=result.ok, checked=result.checked, first_broken_seq=result.first_broken_seq
    )


@router.get("/audit-events", responses=problem_responses(401, 403, 422))
def list_audit_events(
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: ReadDb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    actor_user_id: Id | None = None,
    resource_type: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    resource_id: Annotated[int | None, Query(ge=0)] = None,
    since: Annotated[datetime | None, Query(description="Entries at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Entries before (ISO 8601).")] = None,
) -> PageOut[AuditEventOut]:
    """Audit entries, newest first, filtered by actor, resource and time (admins only)."""
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput("since and until need a time zone (e.g. 2026-01-01T00:00:00Z)")
    page = audit.list_events(
        db,
        limit=limit,
        cursor=cursor,
        actor_user_id=actor_user_id,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        since=since,
        until=until,
    )
    return PageOut(items=[_event_out(e) for e in page.items], next_cursor=page.next_cursor)
