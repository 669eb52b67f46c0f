"""Placement requests and the placement lifecycle (SPEC §5), with no overbooking.

Beds are held by writing the placement and raising the units' ``held`` counters in one
transaction, after locking those units (``FOR UPDATE`` on PostgreSQL; on SQLite the
transaction holds the write lock from its start) and re-checking their free beds. Every
status change frees or moves beds in the same transaction and is recorded with its actor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shelters import access, audit, notifications
from shelters.capacity import shortfall
from shelters.cases import ACTIVE_PLACEMENT, get_case, people_counts, profile_of
from shelters.errors import CapacityExceeded, Conflict, Forbidden, InvalidInput, NotFound
from shelters.identity import Principal, Role
from shelters.models import (
    DECLINE_REASONS,
    Placement,
    PlacementBed,
    PlacementRequest,
    PlacementTransition,
    Region,
    Unit,
    utcnow,
)
from shelters.pagination import Page, paginate
from shelters.profiles import CaseProfile

HOLDING = ("proposed", "accepted")
OPEN_REQUEST = ("pending", "proposed")


def default_priority(profile: CaseProfile, majority_age: int) -> int:
    """4 when the case has an unaccompanied minor, else 3 (SPEC §5)."""
    counts = people_counts(profile, majority_age)
    return 4 if counts["people_unaccompanied_minor"] else 3


# --- requests -------------------------------------------------------------------------------


def create_request(
    session: Session,
    principal: Principal,
    *,
    case_id: int,
    priority: int | None,
    preferred_regions: list[str],
    majority_age: int,
) -> PlacementRequest:
    """Ask for beds for a case of the caller's organisation.

    One person holds one bed at a time: a case with an open request (pending or proposed) or
    an active placement (proposed, accepted or admitted) gets no other request (``Conflict``
    naming the one that holds it). The case's row is locked first (``FOR UPDATE`` on
    PostgreSQL; on SQLite the write transaction), so of two simultaneous calls for one case
    the second sees what the first wrote; a partial unique index backs the rule.
    """
    case = get_case(session, principal, case_id, lock=True)
    if case.purged_at is not None:
        raise Conflict("case {case_id} was purged under the retention rule", case_id=case_id)
    holder = holding_request_or_placement(session, case.id)
    if holder is not None:
        raise holder
    profile = profile_of(case)
    unknown = sorted(set(preferred_regions) - set(session.scalars(select(Region.code))))
    if unknown:
        raise InvalidInput("unknown regions: {codes}", codes=", ".join(unknown))
    request = PlacementRequest(
        case_id=case.id,
        organization_id=case.organization_id,
        created_by=principal.user_id,
        priority=priority if priority is not None else default_priority(profile, majority_age),
        preferred_regions=sorted(set(preferred_regions)),
        region_code=case.current_region,
        **people_counts(profile, majority_age),
    )
    session.add(request)
    session.flush()
    return request


def holding_request_or_placement(session: Session, case_id: int) -> Conflict | None:
    """Why the case may not ask for another bed now, as the error to raise; None when it may."""
    open_request = session.execute(
        select(PlacementRequest.id, PlacementRequest.status)
        .where(PlacementRequest.case_id == case_id, PlacementRequest.status.in_(OPEN_REQUEST))
        .order_by(PlacementRequest.id)
        .limit(1)
    ).first()
    if open_request is not None:
        return Conflict(
            "case {case_id} already has request {request_id} ({status}): "
            "cancel it before asking again",
            case_id=case_id,
            request_id=open_request.id,
            status=open_request.status,
        )
    active = session.execute(
        select(Placement.id, Placement.status)
        .join(PlacementRequest, Placement.request_id == PlacementRequest.id)
        .where(PlacementRequest.case_id == case_id, Placement.status.in_(ACTIVE_PLACEMENT))
        .order_by(Placement.id)
        .limit(1)
    ).first()
    if active is not None:
        return Conflict(
            "case {case_id} already has placement {placement_id} ({status}): "
            "one person holds one bed at a time, so ask again once it is discharged",
            case_id=case_id,
            placement_id=active.id,
            status=active.status,
        )
    return None


def get_request(
    session: Session, principal: Principal, request_id: int, *, lock: bool = False
) -> PlacementRequest:
    """A request of the caller's organisation (admins: any); ``NotFound`` otherwise."""
    request = session.get(
        PlacementRequest, request_id, with_for_update=lock, populate_existing=lock
    )
    if request is None or (
        principal.role is not Role.ADMIN and request.organization_id != principal.organization_id
    ):
        raise NotFound("placement request {request_id} not found", request_id=request_id)
    return request


def list_requests(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    case_id: int | None = None,
) -> Page[PlacementRequest]:
    """The caller's organisation's requests by id."""
    stmt = select(PlacementRequest)
    if principal.role is not Role.ADMIN:
        stmt = stmt.where(PlacementRequest.organization_id == principal.organization_id)
    if status is not None:
        stmt = stmt.where(PlacementRequest.status == status)
    if case_id is not None:
        stmt = stmt.where(PlacementRequest.case_id == case_id)
    return paginate(session, stmt, PlacementRequest.id, limit=limit, cursor=cursor)


def cancel_request(session: Session, principal: Principal, request_id: int) -> PlacementRequest:
    """Withdraw a pending or proposed request; a held placement is cancelled with it."""
    request = get_request(session, principal, request_id, lock=True)
    if request.status == "cancelled":
        raise Conflict("This request is already cancelled.")
    if request.status not in OPEN_REQUEST:
        raise Conflict(
            "This request is {status}: only a pending or proposed request is cancelled.",
            status=request.status,
        )
    holding = session.scalars(
        select(Placement)
        .where(Placement.request_id == request.id, Placement.status.in_(HOLDING))
        .with_for_update()
    )
    for placement in holding:
        _end(session, placement, "cancelled", actor_id=principal.user_id)
    request.status = "cancelled"
    request.cancelled_at = request.updated_at = utcnow()
    session.flush()
    return request


def declined_shelters(session: Session, request_ids: Iterable[int]) -> dict[int, list[int]]:
    """The shelters that declined each of these requests and were not lifted, sorted.

    Matching never proposes them for that request again (reason ``declined_by_shelter``).
    """
    ids = sorted(set(request_ids))
    out: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(Placement.request_id, Placement.shelter_id)
            .where(
                Placement.request_id.in_(ids),
                Placement.status == "declined",
                Placement.decline_lifted_at.is_(None),
            )
            .distinct()
            .order_by(Placement.request_id, Placement.shelter_id)
        )
        for request_id, shelter_id in rows:
            out[request_id].append(shelter_id)
    return out


def lift_decline(
    session: Session, principal: Principal, request_id: int, shelter_id: int
) -> PlacementRequest:
    """Let a shelter that declined this request be proposed for it again.

    ``NotFound`` when the request is not the caller's organisation's, or the shelter has no
    decline of it left to lift.
    """
    request = get_request(session, principal, request_id, lock=True)
    declined = session.scalars(
        select(Placement)
        .where(
            Placement.request_id == request.id,
            Placement.shelter_id == shelter_id,
            Placement.status == "declined",
            Placement.decline_lifted_at.is_(None),
        )
        .with_for_update()
    ).all()
    if not declined:
        raise NotFound(
            "shelter {shelter_id} has no decline of request {request_id} to lift",
            shelter_id=shelter_id,
            request_id=request_id,
        )
    now = utcnow()
    for placement in declined:
        placement.decline_lifted_at = now
    request.updated_at = now
    session.flush()
    return request


# --- holding beds ---------------------------------------------------------------------------


def _lock_units(session: Session, unit_ids: Iterable[int]) -> dict[int, Unit]:
    # Always in id order, so two transactions never wait on each other's locks in a cycle.
    units = session.scalars(
        select(Unit)
        .where(Unit.id.in_(sorted(set(unit_ids))))
        .order_by(Unit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {u.id: u for u in units}


def hold_beds(
    session: Session,
    request: PlacementRequest,
    *,
    shelter_id: int,
    beds: Mapping[str, int],
    ttl: timedelta,
    actor_id: int | None,
    matching_run_id: int | None = None,
    now: datetime | None = None,
) -> Placement:
    """Propose ``beds`` (member ref → unit id) in one shelter for a pending request.

    Locks the units, re-checks that each still has the free beds it must give, raises their
    ``held`` counts and writes the placement, all in the caller's transaction. Raises
    ``CapacityExceeded`` (nothing written) when another transaction took the beds first.
    """
    now = now or utcnow()
    if request.status != "pending":
        raise Conflict(
            "request {request_id} is {status}, not pending",
            request_id=request.id,
            status=request.status,
        )
    need = Counter(beds.values())
    units = _lock_units(session, need)
    for unit_id, count in sorted(need.items()):
        unit = units.get(unit_id)
        if unit is None or unit.shelter_id != shelter_id:
            raise InvalidInput(
                "unit {unit_id} is not a unit of shelter {shelter_id}",
                unit_id=unit_id,
                shelter_id=shelter_id,
            )
        if unit.available < count:
            raise CapacityExceeded(
                "unit {unit_id} has {free} free beds, {count} needed",
                unit_id=unit_id,
                free=max(unit.available, 0),
                count=count,
            )
    for unit_id, count in need.items():
        units[unit_id].held += count
    placement = Placement(
        request_id=request.id,
        shelter_id=shelter_id,
        organization_id=request.organization_id,
        status="proposed",
        people=len(beds),
        expires_at=now + ttl,
        proposed_at=now,
        matching_run_id=matching_run_id,
        beds=[PlacementBed(member_ref=ref, unit_id=unit) for ref, unit in sorted(beds.items())],
    )
    session.add(placement)
    session.flush()
    session.add(
        PlacementTransition(
            placement_id=placement.id, at=now, actor_user_id=actor_id, to_status="proposed"
        )
    )
    request.status = "proposed"
    request.updated_at = now
    notifications.placement_changed(session, placement, "placement.proposed")
    session.flush()
    return placement


def _bed_counts(session: Session, placement: Placement) -> Counter[int]:
    units = session.scalars(
        select(PlacementBed.unit_id).where(PlacementBed.placement_id == placement.id)
    )
    return Counter(units)


def _move_beds(session: Session, placement: Placement, *, held: int, occupied: int) -> None:
    """Add ``held`` and ``occupied`` (±1 per bed) to the placement's units, under lock."""
    counts = _bed_counts(session, placement)
    units = _lock_units(session, counts)
    for unit_id, n in counts.items():
        unit = units[unit_id]
        unit.held += held * n
        unit.occupied += occupied * n
        short = shortfall(
            capacity=unit.capacity,
            out_of_service=unit.out_of_service,
            external_occupied=unit.external_occupied,
            occupied=unit.occupied,
            held=unit.held,
        )
        if short or unit.held < 0 or unit.occupied < 0:
            raise CapacityExceeded(
                "unit {unit_id} would be {short} beds short", unit_id=unit_id, short=short
            )


def _record(
    session: Session,
    placement: Placement,
    to_status: str,
    *,
    actor_id: int | None,
    now: datetime,
    reason: str | None = None,
) -> None:
    session.add(
        PlacementTransition(
            placement_id=placement.id,
            at=now,
            actor_user_id=actor_id,
            from_status=placement.status,
            to_status=to_status,
            reason=reason,
        )
    )
    placement.status = to_status
    placement.version += 1
    notifications.placement_changed(session, placement, f"placement.{to_status}", reason=reason)


def _end(
    session: Session,
    placement: Placement,
    to_status: str,
    *,
    actor_id: int | None,
    reason: str | None = None,
    now: datetime | None = None,
) -> None:
    """Decline, expire or cancel a holding placement: free its beds; request back to pending."""
    now = now or utcnow()
    _move_beds(session, placement, held=-1, occupied=0)
    _record(session, placement, to_status, actor_id=actor_id, now=now, reason=reason)
    placement.ended_at = now
    if to_status == "declined":
        placement.decline_reason = reason
    request = session.get(PlacementRequest, placement.request_id, with_for_update=True)
    assert request is not None
    if request.status == "proposed":
        request.status = "pending"
        request.updated_at = now


# --- transitions ----------------------------------------------------------------------------

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    # action: (statuses it may start from, status it leads to)
    "accept": (("proposed",), "accepted"),
    "decline": (HOLDING, "declined"),
    "admit": (("accepted",), "admitted"),
    "discharge": (("admitted",), "discharged"),
    "cancel": (HOLDING, "cancelled"),
}


ENDED = ("discharged", "declined", "expired", "cancelled")


def wrong_status(current: str, starts: tuple[str, ...], to_status: str) -> Conflict:
    """Why a placement in ``current`` cannot go to ``to_status``, as the error to raise.

    "This placement is already accepted.", "This placement was declined: it can no longer be
    accepted.", "This placement is proposed: it must be accepted before it is admitted."
    """
    words = {"current": current, "status": to_status}
    if current == to_status or (current in ("accepted", "admitted") and to_status == "accepted"):
        return Conflict("This placement is already {current}.", **words)
    if current in ENDED:
        return Conflict("This placement was {current}: it can no longer be {status}.", **words)
    if starts == ("accepted",):
        return Conflict(
            "This placement is {current}: it must be accepted before it is {status}.", **words
        )
    if len(starts) == 1 and starts[0][0] in "aeiou":
        return Conflict(
            "This placement is {current}: only an {start} placement is {status}.",
            start=starts[0],
            **words,
        )
    if len(starts) == 1:
        return Conflict(
            "This placement is {current}: only a {start} placement is {status}.",
            start=starts[0],
            **words,
        )
    return Conflict(
        "This placement is {current}: only a {first} or {second} placement is {status}.",
        first=starts[0],
        second=starts[1],
        **words,
    )


@dataclass(frozen=True)
class PlacementView:
    """A placement with what the caller may know of the people it houses."""

    placement: Placement
    transitions: list[PlacementTransition]


def _visible(principal: Principal, placement: Placement) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.COORDINATOR:
        return placement.shelter_id in principal.shelter_ids
    if principal.role is Role.CASEWORKER:
        return placement.organization_id == principal.organization_id
    return False


def _may(principal: Principal, action: str, placement: Placement) -> bool:
    if action == "cancel":
        return principal.role is Role.ADMIN or (
            principal.role is Role.CASEWORKER
            and placement.organization_id == principal.organization_id
        )
    return access.manages(principal, placement.shelter_id)


def get_placement(
    session: Session, principal: Principal, placement_id: int, *, lock: bool = False
) -> Placement:
    """A placement the caller may see; ``NotFound`` otherwise. Expires it first if overdue."""
    placement = session.get(
        Placement,
        placement_id,
        with_for_update=lock,
        populate_existing=True,
        options=[selectinload(Placement.beds)],
    )
    if placement is None or not _visible(principal, placement):
        raise NotFound("placement {placement_id} not found", placement_id=placement_id)
    if placement.status == "proposed" and placement.expires_at <= utcnow():
        expire_holds(session, only=[placement.id])
        session.refresh(placement)
    return placement


def transition(
    session: Session,
    principal: Principal,
    placement_id: int,
    action: str,
    *,
    reason: str | None = None,
) -> Placement:
    """Carry out ``action`` on a placement, by the actor the lifecycle names for it.

    accept, decline, admit and discharge: the shelter's coordinators (and admins); cancel:
    the owning organisation's caseworkers (and admins). A placement the caller cannot see is
    not found (404); one they see but may not change this way is forbidden (403); a
    transition that does not start from the current status conflicts (409).
    """
    placement = get_placement(session, principal, placement_id, lock=True)
    if not _may(principal, action, placement):
        raise Forbidden(
            "the {role} role may not {action} this placement",
            role=principal.role.value,
            action=action,
        )
    starts, to_status = ACTIONS[action]
    if placement.status not in starts:
        raise wrong_status(placement.status, starts, to_status)
    now = utcnow()
    if action == "decline":
        if reason not in DECLINE_REASONS:
            raise InvalidInput(
                "a decline needs a reason: reason must be one of {reasons}",
                reasons=", ".join(DECLINE_REASONS),
            )
        _end(session, placement, "declined", actor_id=principal.user_id, reason=reason, now=now)
    elif action == "cancel":
        _end(session, placement, "cancelled", actor_id=principal.user_id, now=now)
    elif action == "accept":
        _record(session, placement, "accepted", actor_id=principal.user_id, now=now)
        placement.accepted_at = now
    elif action == "admit":
        _move_beds(session, placement, held=-1, occupied=1)
        _record(session, placement, "admitted", actor_id=principal.user_id, now=now)
        placement.admitted_at = now
        request = session.get(PlacementRequest, placement.request_id, with_for_update=True)
        assert request is not None
        request.status = "placed"
        request.updated_at = now
    elif action == "discharge":
        _move_beds(session, placement, held=0, occupied=-1)
        _record(session, placement, "discharged", actor_id=principal.user_id, now=now)
        placement.ended_at = now
    session.flush()
    return placement


def expire_holds(
    session: Session, *, now: datetime | None = None, only: list[int] | None = None
) -> int:
    """Release every proposed placement whose hold has run out; returns how many.

    Safe to run from several processes at once: each placement is locked, and one already
    expired by another process is skipped. Each expiry goes into the audit log as the
    system's when the transaction commits.
    """
    now = now or utcnow()
    stmt = (
        select(Placement)
        .where(Placement.status == "proposed", Placement.expires_at <= now)
        .order_by(Placement.id)
        .with_for_update(skip_locked=True)
    )
    if only is not None:
        stmt = stmt.where(Placement.id.in_(only))
    expired = 0
    for placement in session.scalars(stmt.execution_options(populate_existing=True)):
        _end(session, placement, "expired", actor_id=None, now=now)
        audit.defer_system(session, "expire", "placement", placement.id)
        expired += 1
    session.flush()
    return expired


def list_placements(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    shelter_id: int | None = None,
    status: str | None = None,
    request_id: int | None = None,
) -> Page[Placement]:
    """Placements the caller may see, by id; overdue holds are released first."""
    expire_holds(session)
    stmt = select(Placement).options(selectinload(Placement.beds))
    if principal.role is Role.COORDINATOR:
        stmt = stmt.where(Placement.shelter_id.in_(sorted(principal.shelter_ids)))
    elif principal.role is Role.CASEWORKER:
        stmt = stmt.where(Placement.organization_id == principal.organization_id)
    elif principal.role is not Role.ADMIN:
        raise Forbidden("placements are case-level data")
    if shelter_id is not None:
        stmt = stmt.where(Placement.shelter_id == shelter_id)
    if status is not None:
        stmt = stmt.where(Placement.status == status)
    if request_id is not None:
        stmt = stmt.where(Placement.request_id == request_id)
    return paginate(session, stmt, Placement.id, limit=limit, cursor=cursor)


def transitions_of(
    session: Session, placement_ids: list[int]
) -> dict[int, list[PlacementTransition]]:
    """The recorded transitions of these placements, oldest first."""
    out: dict[int, list[PlacementTransition]] = {i: [] for i in placement_ids}
    if placement_ids:
        stmt = (
            select(PlacementTransition)
            .where(PlacementTransition.placement_id.in_(placement_ids))
            .order_by(PlacementTransition.id)
        )
        for t in session.scalars(stmt):
            out[t.placement_id].append(t)
    return out
