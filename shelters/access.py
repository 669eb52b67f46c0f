"""Object-level rules: which shelters a principal may see, change, or locate.

Existence is not leaked: a shelter a coordinator does not run is "not found" to them.

**Locating a shelter** (SPEC §3) is one rule with two forms: :func:`may_see_location` for one
shelter, and :func:`located_shelters` for every shelter at once (one query at most), which is
what anything that hands out many shelters uses (lists, run documents), so that no code path
decides it differently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select
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


# Placements that open a shelter's address to the referring organisation: once the shelter
# has said yes (a mere proposal does not), until the stay ends.
LOCATING_STATUSES = ("accepted", "admitted")


@dataclass(frozen=True, slots=True)
class LocatedShelters:
    """The shelters whose confidential address and coordinates one principal may see.

    ``every`` is true for admins (every shelter, present and future); otherwise ``ids`` lists
    them. ``shelter_id in located`` asks about one shelter.
    """

    every: bool
    ids: frozenset[int]

    def __contains__(self, shelter_id: object) -> bool:
        return self.every or shelter_id in self.ids

    def hidden(self, shelter_ids: Iterable[int]) -> list[int]:
        """Those of ``shelter_ids`` this principal may not locate, in the order given."""
        return [i for i in shelter_ids if i not in self]


def _locating(organization_id: int) -> ColumnElement[bool]:
    return and_(
        Placement.organization_id == organization_id,
        Placement.status.in_(LOCATING_STATUSES),
    )


def located_shelters(session: Session, principal: Principal) -> LocatedShelters:
    """Every shelter whose address and coordinates ``principal`` may see, in one query at most.

    Admins: every shelter. Coordinators: the shelters they run (no query). Caseworkers: the
    shelters where their organisation has an accepted or admitted placement (one query).
    Funders, and anybody else: none. The same rule as :func:`may_see_location`.
    """
    if principal.role is Role.ADMIN:
        return LocatedShelters(every=True, ids=frozenset())
    if principal.role is Role.COORDINATOR:
        return LocatedShelters(every=False, ids=frozenset(principal.shelter_ids))
    if principal.role is Role.CASEWORKER and principal.organization_id is not None:
        rows = session.scalars(
            select(Placement.shelter_id).where(_locating(principal.organization_id)).distinct()
        )
        return LocatedShelters(every=False, ids=frozenset(rows))
    return LocatedShelters(every=False, ids=frozenset())


def may_see_location(session: Session, principal: Principal, shelter_id: int) -> bool:
    """Whether the shelter's confidential address and coordinates may be shown.

    Admins and the shelter's coordinators always; caseworkers only while their organisation
    has an accepted or admitted placement there; funders never. For many shelters at once,
    :func:`located_shelters` answers the same in one query.
    """
    if manages(principal, shelter_id):
        return True
    if principal.role is Role.CASEWORKER and principal.organization_id is not None:
        found = session.scalar(
            select(Placement.id)
            .where(_locating(principal.organization_id), Placement.shelter_id == shelter_id)
            .limit(1)
        )
        return found is not None
    return False
