"""Object-level rules: which shelters a principal may see, change, or locate.

Existence is not leaked: a shelter a coordinator does not run is "not found" to them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shelters.identity import Principal, Role
from shelters.models import Placement


def manages(principal: Principal, shelter_id: int) -> bool:
    """Admins manage every shelter; coordinators the shelters they run; nobody else."""
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.COORDINATOR and shelter_id in principal.shelter_ids


def may_read_shelter(principal: Principal, shelter_id: int) -> bool:
    """Coordinators read only their own shelters; every other role reads the registry."""
    if principal.role is Role.COORDINATOR:
        return shelter_id in principal.shelter_ids
    return True


def may_read_units(principal: Principal, shelter_id: int) -> bool:
    """Units (beds and admission rules): admins, own coordinators, and caseworkers."""
    if principal.role is Role.CASEWORKER:
        return True
    return manages(principal, shelter_id)


def may_see_location(session: Session, principal: Principal, shelter_id: int) -> bool:
    """Whether the shelter's confidential address and coordinates may be shown.

    Admins and the shelter's coordinators always; caseworkers only while their organisation
    has an accepted or admitted placement there; funders never.
    """
    if manages(principal, shelter_id):
        return True
    if principal.role is Role.CASEWORKER and principal.organization_id is not None:
        return _has_active_placement(session, principal.organization_id, shelter_id)
    return False


def _has_active_placement(session: Session, organization_id: int, shelter_id: int) -> bool:
    found = session.scalar(
        select(Placement.id)
        .where(
            Placement.organization_id == organization_id,
            Placement.shelter_id == shelter_id,
            Placement.status.in_(("accepted", "admitted")),
        )
        .limit(1)
    )
    return found is not None
