"""Free beds now, and which shelters could take a group now (SPEC §3, §4, §10).

Eligibility is decided by :mod:`placement.eligibility`, the one implementation shared with
the solver; this module only loads the registry and asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from placement.eligibility import assign_beds, eligibility_reasons
from shelters.bridge import request_for_solver, shelter_for_solver
from shelters.models import Region, Shelter, Unit
from shelters.pagination import Page, decode_cursor, encode_cursor
from shelters.profiles import CaseProfile, validate_profile

CAPACITY = "capacity"


@dataclass(frozen=True)
class ShelterBeds:
    shelter: Shelter
    units: list[Unit]

    @property
    def available(self) -> int:
        return sum(max(u.available, 0) for u in self.units)


@dataclass(frozen=True)
class Eligible:
    shelter_id: int
    beds: dict[str, int]  # member ref → unit id


@dataclass(frozen=True)
class Ineligible:
    shelter_id: int
    reasons: list[str]


@dataclass(frozen=True)
class CheckResult:
    eligible: list[Eligible]
    ineligible: list[Ineligible]


def _units_by_shelter(session: Session, shelter_ids: Sequence[int]) -> dict[int, list[Unit]]:
    units: dict[int, list[Unit]] = {i: [] for i in shelter_ids}
    if shelter_ids:
        stmt = select(Unit).where(Unit.shelter_id.in_(shelter_ids)).order_by(Unit.id)
        for unit in session.scalars(stmt):
            units[unit.shelter_id].append(unit)
    return units


def list_availability(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    region: str | None = None,
    service: str | None = None,
    status: str | None = None,
) -> Page[ShelterBeds]:
    """Free beds per shelter and unit, by shelter id, filtered.

    Region, status and the page are cut in SQL. The service filter runs in Python over the
    shelters' service lists (a JSON column), reading only ids and services, so that only the
    page's shelters are loaded whole.
    """
    stmt = select(Shelter.id, Shelter.services)
    if region is not None:
        stmt = stmt.where(Shelter.region_code == region)
    if status is not None:
        stmt = stmt.where(Shelter.status == status)
    if cursor is not None:
        stmt = stmt.where(Shelter.id > decode_cursor(cursor))
    stmt = stmt.order_by(Shelter.id)
    if service is None:
        ids = [row.id for row in session.execute(stmt.limit(limit + 1))]
    else:
        ids = [row.id for row in session.execute(stmt) if service in row.services][: limit + 1]
    more = len(ids) > limit
    ids = ids[:limit]
    shelters = list(
        session.scalars(select(Shelter).where(Shelter.id.in_(ids)).order_by(Shelter.id))
    )
    units = _units_by_shelter(session, ids)
    items = [ShelterBeds(shelter=s, units=units[s.id]) for s in shelters]
    return Page(items=items, next_cursor=encode_cursor(ids[-1]) if more else None)


def check(session: Session, profile: CaseProfile, *, majority_age: int) -> CheckResult:
    """Which open shelters could take the whole group now, with a bed for every member.

    Every other open shelter is listed with its eligibility reason codes, or ``capacity``
    when it is eligible but has too few suitable free beds. Shelters that are not open are
    left out. Both lists are ordered by shelter id.
    """
    known_regions = set(session.scalars(select(Region.code)))
    validate_profile(profile, majority_age=majority_age, known_regions=known_regions)
    request = request_for_solver(profile, request_id="check", priority=3)
    shelters = list(
        session.scalars(select(Shelter).where(Shelter.status == "open").order_by(Shelter.id))
    )
    units = _units_by_shelter(session, [s.id for s in shelters])
    eligible: list[Eligible] = []
    ineligible: list[Ineligible] = []
    for shelter in shelters:
        candidate = shelter_for_solver(shelter, units[shelter.id])
        reasons = eligibility_reasons(request, candidate, majority_age)
        if reasons:
            ineligible.append(Ineligible(shelter.id, reasons))
            continue
        free = {u.id: u.free_beds for u in candidate.units}
        beds = assign_beds(request, candidate, free, majority_age)
        if beds is None:
            ineligible.append(Ineligible(shelter.id, [CAPACITY]))
        else:
            eligible.append(Eligible(shelter.id, {ref: int(u) for ref, u in beds.items()}))
    return CheckResult(eligible=eligible, ineligible=ineligible)
