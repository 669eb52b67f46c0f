"""Free beds now, and which shelters could take a group now (SPEC §3, §4, §10).

Eligibility is decided by :mod:`placement.eligibility`, the one implementation shared with
the solver; this module only loads the registry and asks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, cast, select
from sqlalchemy.orm import Session

from placement.cost import haversine_m
from placement.eligibility import assign_beds, eligibility_reasons
from placement.problem import Location
from shelters.access import LocatedShelters
from shelters.bridge import open_shelters_for_solver, request_for_solver
from shelters.cases import housed_at
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
    names_json: str = "{}"  # the name per language (shelters/names.py), JSON text as stored

    @property
    def available(self) -> int:
        return sum(max(u.available, 0) for u in self.units)

    @property
    def names(self) -> dict[str, str]:
        """The name per language, decoded (pages show it; the API passes the text through)."""
        decoded = orjson.loads(self.names_json or "{}")
        return decoded if isinstance(decoded, dict) else {}


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


@functools.cache
def _page_statements(
    *, after: bool, region: bool, status: bool, limited: bool
) -> tuple[Select[Any], Select[Any]]:
    """The two statements of an availability page, built once per combination of filters.

    Core statements over the tables, run on the session's connection: plain rows without the
    ORM's result processing. The units statement joins back to the shelters with the same
    filters, bounded by the page's last shelter id, instead of listing the page's ids.
    """
    s, u = Shelter.__table__.c, Unit.__table__.c
    where = []
    if after:
        where.append(s.id > bindparam("after"))
    if region:
        where.append(s.region_code == bindparam("region"))
    if status:
        where.append(s.status == bindparam("status"))
    shelters = (
        select(
            s.id,
            s.name,
            s.region_code,
            s.locality,
            s.status,
            s.security_level,
            s.wheelchair_accessible,
            cast(s.services, Text),
            cast(s.languages, Text),
            cast(s.names, Text),
        )
        .where(*where)
        .order_by(s.id)
    )
    if limited:
        shelters = shelters.limit(bindparam("limit"))
    units = (
        select(
            u.shelter_id,
            u.id,
            u.name,
            u.capacity,
            u.capacity - u.out_of_service - u.external_occupied - u.occupied - u.held,
            cast(u.admits, Text),
        )
        .join_from(Unit.__table__, Shelter.__table__, u.shelter_id == s.id)
        .where(*where, s.id <= bindparam("last"))
        .order_by(u.id)
    )
    return shelters, units


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
    shelters, units_of = _page_statements(
        after=cursor is not None,
        region=region is not None,
        status=status is not None,
        limited=service is None,
    )
    params: dict[str, Any] = {"region": region, "status": status, "limit": limit + 1}
    if cursor is not None:
        params["after"] = decode_cursor(cursor)
    connection = session.connection()
    if service is None:
        rows = connection.execute(shelters, params).all()
    else:
        rows = [
            row for row in connection.execute(shelters, params) if service in orjson.loads(row[7])
        ]
        rows = rows[: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    units: dict[int, list[UnitBeds]] = {row[0]: [] for row in rows}
    if units:
        for shelter_id, unit_id, name, capacity, available, admits in connection.execute(
            units_of, params | {"last": rows[-1][0]}
        ).all():
            # With the service filter, shelters it left out lie between the page's ids.
            page = units.get(shelter_id)
            if page is not None:
                page.append(UnitBeds(unit_id, name, capacity, available, admits))
    items = [
        ShelterBeds(
            id=row[0],
            name=row[1],
            region_code=row[2],
            locality=row[3],
            status=row[4],
            security_level=row[5],
            wheelchair_accessible=row[6],
            services_json=row[7],
            languages_json=row[8],
            names_json=row[9],
            units=units[row[0]],
        )
        for row in rows
    ]
    return Page(items=items, next_cursor=encode_cursor(rows[-1][0]) if more else None)


def check(
    session: Session,
    profile: CaseProfile,
    *,
    majority_age: int,
    separate_from_case_ids: Iterable[int] = (),
) -> CheckResult:
    """Which open shelters could take the whole group now, with a bed for every member.

    Every other open shelter is listed with its eligibility reason codes, or ``capacity``
    when it is eligible but has too few suitable free beds. A shelter where one of
    ``separate_from_case_ids`` is held or housed is ineligible (``separated_case_housed``),
    as matching would make it; ids that name no case change nothing. Shelters that are not
    open are left out. Both lists are ordered by shelter id.
    """
    known_regions = set(session.scalars(select(Region.code)))
    validate_profile(profile, majority_age=majority_age, known_regions=known_regions)
    housed = housed_at(session, separate_from_case_ids)
    request = request_for_solver(
        profile,
        request_id="check",
        priority=3,
        separated_shelter_ids=set().union(*housed.values()),
    )
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


def distances_km(
    session: Session,
    located: LocatedShelters,
    profile: CaseProfile,
    shelter_ids: Iterable[int],
) -> dict[int, int]:
    """How far each shelter is from the case, in whole kilometres, as matching measures it.

    From the case's location, else its current region's centroid (no origin: no distances),
    to the shelter's coordinates when the reader may locate it (``located``), else to its
    region's centroid: the kilometres shown never place a shelter the reader may not locate
    more precisely than its region, as a stored run's view does (shelters/redaction.py).
    """
    wanted = sorted(set(shelter_ids))
    regions = {r.code: Location(r.lat, r.lon) for r in session.scalars(select(Region))}
    origin: Location | None = None
    if profile.location is not None:
        origin = Location(profile.location.lat, profile.location.lon)
    elif profile.current_region is not None:
        origin = regions.get(profile.current_region)
    if origin is None or not wanted:
        return {}
    rows = session.execute(
        select(Shelter.id, Shelter.region_code, Shelter.lat, Shelter.lon).where(
            Shelter.id.in_(wanted)
        )
    )
    out: dict[int, int] = {}
    for shelter_id, region_code, lat, lon in rows:
        point = regions.get(region_code)
        if shelter_id in located and lat is not None and lon is not None:
            point = Location(lat, lon)
        if point is not None:
            out[shelter_id] = round(haversine_m(origin, point) / 1000)
    return out
