"""Retention: purge member data of finished cases (SPEC §9).

A case is finished when none of its requests is open (pending or proposed), none of its
placements holds or houses anyone (proposed, accepted, admitted), and it has at least one
request. It is purged once the last of its ends — a placement ending (discharged, declined,
expired, cancelled) or a request being cancelled — lies before the cut-off.

What a purge removes from the case, and why:

- ``members`` (each person's sex, age and guardian label) → ``[]``;
- ``required_services``, ``desired_services``, ``languages``, ``wheelchair``, ``high_risk``:
  needs that describe the people (a disability, a substance-use treatment, a language that
  hints at origin, a threat) → empty / false;
- ``excluded_regions``, ``excluded_shelter_ids``, ``current_region``, ``lat``/``lon``: where
  the people are, or must not be → empty / null;
- the case's separations (who must be kept apart from whom: often a relative) → deleted.

What stays, because the reports (SPEC §8) read it and it says nothing about one person: the
case row itself (id, random code, organisation, timestamps), the placement requests with their
people counts by status and sex, region and priority; the placements with their beds (a
member label such as "A" and a unit), times and decline reasons; the matching runs' outcomes.
``purged_at`` records when. The purge is idempotent: a purged case is never selected again.

Stored idempotent responses older than their 24-hour life are deleted too: they hold the body
of a created case.

Not touched, and left to a decision of their own: the problem documents of stored matching
runs, which carry the members of every request they solved (they are what makes a run
replayable, SPEC §7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select, union_all
from sqlalchemy.orm import Session

from shelters import audit
from shelters.audit import AuditRecord
from shelters.models import (
    Case,
    CaseSeparation,
    IdempotencyKey,
    Placement,
    PlacementRequest,
    utcnow,
)

OPEN_REQUESTS = ("pending", "proposed")
ACTIVE_PLACEMENTS = ("proposed", "accepted", "admitted")
IDEMPOTENCY_KEEP = timedelta(hours=24)  # as service/idempotency.py keeps them
PURGED_VALUES: dict[str, object] = {
    "members": [],
    "required_services": [],
    "desired_services": [],
    "languages": [],
    "wheelchair": False,
    "high_risk": False,
    "excluded_regions": [],
    "excluded_shelter_ids": [],
    "current_region": None,
    "lat": None,
    "lon": None,
    "exploitation_types": [],
    "referral_source": None,
}


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one purge did: the cases it purged (ids, ascending) and the cut-off it used."""

    cutoff: datetime
    case_ids: list[int]
    idempotency_keys_deleted: int


def due_case_ids(session: Session, cutoff: datetime) -> list[int]:
    """Ids of unpurged cases that are finished and whose last end lies before ``cutoff``."""
    open_cases = select(PlacementRequest.case_id).where(PlacementRequest.status.in_(OPEN_REQUESTS))
    active_cases = (
        select(PlacementRequest.case_id)
        .join(Placement, Placement.request_id == PlacementRequest.id)
        .where(Placement.status.in_(ACTIVE_PLACEMENTS))
    )
    ends = union_all(
        select(PlacementRequest.case_id.label("case_id"), Placement.ended_at.label("at")).join(
            Placement, Placement.request_id == PlacementRequest.id
        ),
        select(
            PlacementRequest.case_id.label("case_id"), PlacementRequest.cancelled_at.label("at")
        ),
    ).subquery()
    last_end = (
        select(ends.c.case_id)
        .group_by(ends.c.case_id)
        .having(and_(func.max(ends.c.at).is_not(None), func.max(ends.c.at) < cutoff))
    )
    stmt = (
        select(Case.id)
        .where(
            Case.purged_at.is_(None),
            Case.id.in_(last_end),
            Case.id.not_in(open_cases),
            Case.id.not_in(active_cases),
        )
        .order_by(Case.id)
    )
    return list(session.scalars(stmt))


def purge(
    session: Session,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    request_id: str | None = None,
    on_case: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Purge member data of every case finished more than ``older_than`` ago; flushes.

    Each purged case gets one audit entry (action ``purge``, resource ``case``, no actor: the
    system) in the same transaction. Running it again with the same arguments purges nothing
    and writes no entry. ``on_case`` is called with each purged case id (for progress output).
    """
    now = now or utcnow()
    cutoff = now - older_than
    case_ids = due_case_ids(session, cutoff)
    for case_id in case_ids:
        case = session.get(Case, case_id, with_for_update=True, populate_existing=True)
        assert case is not None
        for field, value in PURGED_VALUES.items():
            setattr(case, field, list(value) if isinstance(value, list) else value)
        case.purged_at = now
        case.version += 1
        session.execute(delete(CaseSeparation).where(CaseSeparation.case_id == case_id))
        session.flush()
        if on_case is not None:
            on_case(case_id)
    # Separations recorded by other cases that point at a purged case say nothing more once
    # its members are gone, but they still keep live cases apart: they stay.
    expired_keys = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_KEEP)
    )
    deleted = int(getattr(expired_keys, "rowcount", 0) or 0)
    for case_id in case_ids:
        audit.append(
            session,
            AuditRecord(
                action="purge", resource_type="case", resource_id=case_id, request_id=request_id
            ),
            now=now,
        )
    return PurgeResult(cutoff=cutoff, case_ids=case_ids, idempotency_keys_deleted=deleted)
