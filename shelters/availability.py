"""Free beds now, and which shelters could take a group now (SPEC §3, §4, §10).

Eligibility is decided by :mod:`placement.eligibility`, the one implementation shared with
the solver; this module only loads the registry and asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from placement.eligibility import assign_beds, eligibility_reasons
from shelters.bridge import open_shelters_for_solver, request_for_solver
from shelters.models import Region, Shelter, Unit
from shelters.pagination import Page, decode_cursor, encode_cursor
from shelters.profiles import CaseProfile, validate_profile

CAPACITY = "capacity"


@dataclass(frozen=True, slots=True)
class UnitBeds:
    id: int
    name: str
    capacity: int
    available: int
    admits_json: str  # the admission rules, JSON text as stored


@dataclass(frozen=True, slots=True)
class ShelterBeds:
    """A shelter's public face and its units' free beds, read as plain rows.

    List columns stay JSON text as stored: the API passes them through without decoding and
    encoding them again on every read.
    """

    id: int
    name: str
    region_code: str
    locality: str
    status: str
    security_level: str
    wheelchair_accessible: bool
    services_json: str
    languages_json: str
    units: list[UnitBeds]

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

    Region, status and the page are cut in SQL; the service filter runs in Python over the
    shelters' service lists (a JSON column). The page is read as plain rows in two queries,
    not as ORM objects: this is the most frequent read of the service.
    """
    stmt = select(
        Shelter.id,
        Shelter.name,
        Shelter.region_code,
        Shelter.locality,
        Shelter.status,
        Shelter.security_level,
        Shelter.wheelchair_accessible,
        cast(Shelter.services, Text),
        cast(Shelter.languages, Text),
    )
    if region is not None:
        stmt = stmt.where(Shelter.region_code == region)
    if status is not None:
        stmt = stmt.where(Shelter.status == status)
    if cursor is not None:
        stmt = stmt.where(Shelter.id > decode_cursor(cursor))
    stmt = stmt.order_by(Shelter.id)
    if service is None:
        rows = list(session.execute(stmt.limit(limit + 1)))
    else:
        rows = [row for row in session.execute(stmt) if service in orjson.loads(row[7])]
        rows = rows[: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    units: dict[int, list[UnitBeds]] = {row.id: [] for row in rows}
    if units:
        unit_rows = session.execute(
            select(
                Unit.shelter_id,
                Unit.id,
                Unit.name,
                Unit.capacity,
                Unit.available,
                cast(Unit.admits, Text),
            )
            .where(Unit.shelter_id.in_(list(units)))
            .order_by(Unit.id)
        )
        for shelter_id, unit_id, name, capacity, available, admits in unit_rows:
            units[shelter_id].append(UnitBeds(unit_id, name, capacity, available, admits))
    items = [ShelterBeds(*row, units=units[row.id]) for row in rows]
    return Page(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None)


def check(session: Session, profile: CaseProfile, *, majority_age: int) -> CheckResult:
    """Which open shelters could take the whole group now, with a bed for every member.

    Every other open shelter is listed with its eligibility reason codes, or ``capacity``
    when it is eligible but has too few suitable free beds. Shelters that are not open are
    left out. Both lists are ordered by shelter id.
    """
    known_regions = set(session.scalars(select(Region.code)))
    validate_profile(profile, majority_age=majority_age, known_regions=known_regions)
    request = request_for_solver(profile, request_id="check", priority=3)
    eligible: list[Eligible] = []
    ineligible: list[Ineligible] = []
    for candidate in open_shelters_for_solver(session):
        shelter_id = int(candidate.id)
        reasons = eligibility_reasons(request, candidate, majority_age)
        if reasons:
            ineligible.append(Ineligible(shelter_id, reasons))
            continue
        free = {u.id: u.free_beds for u in candidate.units}
        beds = assign_beds(request, candidate, free, majority_age)
        if beds is None:
            ineligible.append(Ineligible(shelter_id, [CAPACITY]))
        else:
            eligible.append(Eligible(shelter_id, {ref: int(u) for ref, u in beds.items()}))
    return CheckResult(eligible=eligible, ineligible=ineligible)
