"""Placements and their lifecycle transitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from service.auth import allow
from service.deps import UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import (
    BedOut,
    DeclineIn,
    Id,
    NeedsOut,
    PageOut,
    PlacedMemberOut,
    PlacementOut,
    PlacementStatus,
    TransitionOut,
)
from shelters import cases, lifecycle
from shelters.identity import Principal, Role
from shelters.models import Case, Placement, PlacementRequest
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["placements"], route_class=UnitOfWorkRoute)
ACTORS = (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER)
TRANSITION_ERRORS = problem_responses(401, 403, 404, 409, 422)


def placement_out(
    db: Session, principal: Principal, placement: Placement, majority_age: int
) -> PlacementOut:
    """A placement with the members' sex, age and status and the group's needs: no more."""
    request = db.get(PlacementRequest, placement.request_id)
    assert request is not None
    case = db.get(Case, request.case_id)
    assert case is not None
    profile = cases.profile_of(case)
    status_of = cases.statuses(profile, majority_age) if profile.members else {}
    member = {m.ref: m for m in profile.members}
    transitions = lifecycle.transitions_of(db, [placement.id])[placement.id]
    return PlacementOut(
        id=placement.id,
        request_id=placement.request_id,
        shelter_id=placement.shelter_id,
        status=placement.status,
        beds=[BedOut(member_ref=b.member_ref, unit_id=b.unit_id) for b in placement.beds],
        members=[
            PlacedMemberOut(
                member_ref=b.member_ref,
                unit_id=b.unit_id,
                sex=member[b.member_ref].sex if b.member_ref in member else None,
                age=member[b.member_ref].age if b.member_ref in member else None,
                status=status_of.get(b.member_ref),
                comes_of_age=member[b.member_ref].comes_of_age if b.member_ref in member else None,
            )
            for b in placement.beds
        ],
        needs=None
        if case.purged_at is not None
        else NeedsOut(
            required_services=list(case.required_services),
            desired_services=list(case.desired_services),
            languages=list(case.languages),
            wheelchair=case.wheelchair,
            high_risk=case.high_risk,
        ),
        expires_at=placement.expires_at,
        proposed_at=placement.proposed_at,
        accepted_at=placement.accepted_at,
        admitted_at=placement.admitted_at,
        ended_at=placement.ended_at,
        decline_reason=placement.decline_reason,
        transitions=[
            TransitionOut(
                at=t.at,
                actor_user_id=t.actor_user_id,
                from_status=t.from_status,
                to_status=t.to_status,
                reason=t.reason,
            )
            for t in transitions
        ],
    )


def _majority(request: Request) -> int:
    return int(request.app.state.settings.majority_age)


@router.get("/placements", responses=problem_responses(401, 403, 422))
def list_placements(
    request: Request,
    principal: Annotated[Principal, allow(*ACTORS)],
    db: WriteDb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    shelter_id: Id | None = None,
    placement_status: Annotated[PlacementStatus | None, Query(alias="status")] = None,
    request_id: Id | None = None,
) -> PageOut[PlacementOut]:
    """Placements you may see: at your shelters (coordinators) or of your organisation."""
    page = lifecycle.list_placements(
        db,
        principal,
        limit=limit,
        cursor=cursor,
        shelter_id=shelter_id,
        status=placement_status,
        request_id=request_id,
    )
    majority = _majority(request)
    return PageOut(
        items=[placement_out(db, principal, p, majority) for p in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/placements/{placement_id}", responses=problem_responses(401, 403, 404))
def read_placement(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*ACTORS)],
    db: WriteDb,
) -> PlacementOut:
    """One placement."""
    placement = lifecycle.get_placement(db, principal, placement_id)
    return placement_out(db, principal, placement, _majority(request))


def _transition(
    db: Session,
    principal: Principal,
    placement_id: int,
    action: str,
    majority_age: int,
    reason: str | None = None,
) -> PlacementOut:
    placement = lifecycle.transition(db, principal, placement_id, action, reason=reason)
    return placement_out(db, principal, placement, majority_age)


@router.post("/placements/{placement_id}/accept", responses=TRANSITION_ERRORS)
def accept(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN, Role.COORDINATOR)],
    db: WriteDb,
) -> PlacementOut:
    """Accept a proposed placement at your shelter."""
    return _transition(db, principal, placement_id, "accept", _majority(request))


@router.post("/placements/{placement_id}/decline", responses=TRANSITION_ERRORS)
def decline(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN, Role.COORDINATOR)],
    db: WriteDb,
    body: DeclineIn | None = None,
) -> PlacementOut:
    """Decline a proposed or accepted placement with a reason; its beds are freed."""
    reason = body.reason if body is not None else None
    return _transition(db, principal, placement_id, "decline", _majority(request), reason)


@router.post("/placements/{placement_id}/admit", responses=TRANSITION_ERRORS)
def admit(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN, Role.COORDINATOR)],
    db: WriteDb,
) -> PlacementOut:
    """Admit the people of an accepted placement: held beds become occupied."""
    return _transition(db, principal, placement_id, "admit", _majority(request))


@router.post("/placements/{placement_id}/discharge", responses=TRANSITION_ERRORS)
def discharge(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN, Role.COORDINATOR)],
    db: WriteDb,
) -> PlacementOut:
    """Discharge an admitted placement; its beds are freed."""
    return _transition(db, principal, placement_id, "discharge", _majority(request))


@router.post("/placements/{placement_id}/cancel", responses=TRANSITION_ERRORS)
def cancel(
    placement_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN, Role.CASEWORKER)],
    db: WriteDb,
) -> PlacementOut:
    """Cancel a proposed or accepted placement of your organisation; its beds are freed."""
    return _transition(db, principal, placement_id, "cancel", _majority(request))
