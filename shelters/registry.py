"""Use cases of the registry: regions, organisations, shelters and bed units.

Use cases take a session and keyword arguments, flush, and never commit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from shelters import access
from shelters.capacity import available, shortfall
from shelters.catalogue import SERVICES
from shelters.errors import CapacityExceeded, InvalidInput, Nn_, NotFound, StaleVersion
from shelters.identity import Principal, Role
from shelters.models import Organization, Region, Shelter, Unit, UnitChange, utcnow
from shelters.names import check_names
from shelters.pagination import MAX_LIMIT, Page, paginate


def list_regions(session: Session) -> list[Region]:
    """All regions, by code."""
    return list(session.scalars(select(Region).order_by(Region.code)))


def create_region(
    session: Session,
    *,
    code: str,
    name: str,
    lat: float,
    lon: float,
    names: Mapping[str, str] | None = None,
) -> Region:
    """Add a region; its code must be new. ``names``: its name per language (checked)."""
    if session.get(Region, code) is not None:
        raise InvalidInput("region {code!r} exists already", code=code)
    region = Region(code=code, name=name, names=check_names(names or {}), lat=lat, lon=lon)
    session.add(region)
    session.flush()
    return region


def list_organizations(session: Session, *, limit: int, cursor: str | None) -> Page[Organization]:
    """Organisations by id, one page."""
    return paginate(session, select(Organization), Organization.id, limit=limit, cursor=cursor)


def get_organization(session: Session, organization_id: int) -> Organization:
    """The organisation with that id; ``NotFound`` otherwise."""
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization {organization_id} not found", organization_id=organization_id)
    return org


def create_organization(session: Session, *, name: str, kind: str) -> Organization:
    """Add an organisation; names are unique."""
    if session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise InvalidInput("an organization named {name!r} exists already", name=name)
    org = Organization(name=name, kind=kind)
    session.add(org)
    session.flush()
    return org


# --- shelters -------------------------------------------------------------------------------

SHELTER_FIELDS = (
    "name",
    "names",
    "region_code",
    "locality",
    "address",
    "lat",
    "lon",
    "security_level",
    "wheelchair_accessible",
    "services",
    "languages",
    "status",
)
UNIT_FIELDS = ("name", "capacity", "out_of_service", "external_occupied", "admits")


def _check_region(session: Session, code: str) -> None:
    if session.get(Region, code) is None:
        raise InvalidInput("unknown region {code!r}", code=code)


def _check_services(codes: Iterable[str]) -> None:
    unknown = sorted(set(codes) - set(SERVICES))
    if unknown:
        raise InvalidInput("unknown services: {services}", services=", ".join(unknown))


def list_shelters(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    region: str | None = None,
    status: str | None = None,
) -> Page[Shelter]:
    """The shelters the caller may read, one page, by id."""
    stmt = select(Shelter)
    if principal.role is Role.COORDINATOR:
        stmt = stmt.where(Shelter.id.in_(sorted(principal.shelter_ids)))
    if region is not None:
        stmt = stmt.where(Shelter.region_code == region)
    if status is not None:
        stmt = stmt.where(Shelter.status == status)
    return paginate(session, stmt, Shelter.id, limit=limit, cursor=cursor)


def get_shelter(session: Session, principal: Principal, shelter_id: int) -> Shelter:
    """A shelter the caller may read; ``NotFound`` for any other."""
    shelter = session.get(Shelter, shelter_id)
    if shelter is None or not access.may_read_shelter(principal, shelter_id):
        raise NotFound("shelter {shelter_id} not found", shelter_id=shelter_id)
    return shelter


def create_shelter(session: Session, *, organization_id: int, **fields: Any) -> Shelter:
    """Add a shelter to an organisation (admins only, checked by the caller's route)."""
    if session.get(Organization, organization_id) is None:
        raise InvalidInput(
            "organization {organization_id} does not exist", organization_id=organization_id
        )
    _check_region(session, fields["region_code"])
    _check_services(fields.get("services", ()))
    fields = {**fields, "names": check_names(fields.get("names") or {})}
    shelter = Shelter(organization_id=organization_id, **fields)
    session.add(shelter)
    session.flush()
    return shelter


def update_shelter(
    session: Session,
    principal: Principal,
    shelter_id: int,
    *,
    expected_version: int,
    changes: Mapping[str, Any],
) -> Shelter:
    """Change a shelter the caller manages, if it is still at ``expected_version``.

    The row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction holds
    the database), so the version check and the write cannot interleave with another update.
    """
    shelter = session.get(Shelter, shelter_id, with_for_update=True, populate_existing=True)
    if shelter is None or not access.manages(principal, shelter_id):
        raise NotFound("shelter {shelter_id} not found", shelter_id=shelter_id)
    if shelter.version != expected_version:
        raise StaleVersion(
            "shelter {shelter_id} is at version {version}, not {expected}",
            shelter_id=shelter_id,
            version=shelter.version,
            expected=expected_version,
        )
    unknown = set(changes) - set(SHELTER_FIELDS)
    if unknown:
        raise InvalidInput("cannot change {fields}", fields=", ".join(sorted(unknown)))
    if "region_code" in changes:
        _check_region(session, changes["region_code"])
    if "services" in changes:
        _check_services(changes["services"])
    if "names" in changes:
        changes = {**changes, "names": check_names(changes["names"])}
    lat = changes.get("lat", shelter.lat)
    lon = changes.get("lon", shelter.lon)
    if (lat is None) != (lon is None):
        raise InvalidInput("location needs both lat and lon")
    for name, value in changes.items():
        setattr(shelter, name, value)
    shelter.version += 1
    shelter.updated_at = utcnow()
    session.flush()
    return shelter


def may_see_location(session: Session, principal: Principal, shelter_id: int) -> bool:
    """Whether this caller may see the shelter's confidential address and coordinates."""
    return access.may_see_location(session, principal, shelter_id)


def located_shelters(session: Session, principal: Principal) -> access.LocatedShelters:
    """Every shelter whose address and coordinates this caller may see (one query at most)."""
    return access.located_shelters(session, principal)


# --- units ----------------------------------------------------------------------------------


def _capacity_error(unit_id: int, short: int, counts: Mapping[str, int]) -> CapacityExceeded:
    parts = ", ".join(f"{k} {v}" for k, v in counts.items())
    one, many = Nn_(
        "unit {unit_id} would be {count} bed short ({parts}): "
        "available beds may not fall below zero",
        "unit {unit_id} would be {count} beds short ({parts}): "
        "available beds may not fall below zero",
    )
    return CapacityExceeded(
        one,
        plural=many,
        unit_id=unit_id,
        count=short,
        parts=parts,
    )


_INSERT_CHANGE = insert(UnitChange)


def _record(
    session: Session, unit_id: int, actor_id: int | None, field: str, old: Any, new: Any
) -> None:
    # A plain insert, written at once: a history row is never changed afterwards.
    session.connection().execute(
        _INSERT_CHANGE,
        {
            "unit_id": unit_id,
            "actor_user_id": actor_id,
            "field": field,
            "old_value": old,
            "new_value": new,
        },
    )


def list_units(
    session: Session,
    principal: Principal,
    shelter_id: int,
    *,
    limit: int = MAX_LIMIT,
    cursor: str | None = None,
) -> Page[Unit]:
    """One page of the units of a shelter whose beds the caller may read, by id."""
    get_shelter(session, principal, shelter_id)
    if not access.may_read_units(principal, shelter_id):
        raise NotFound("shelter {shelter_id} not found", shelter_id=shelter_id)
    stmt = select(Unit).where(Unit.shelter_id == shelter_id)
    return paginate(session, stmt, Unit.id, limit=limit, cursor=cursor)


def get_unit(session: Session, principal: Principal, unit_id: int) -> Unit:
    """A unit the caller may read; ``NotFound`` for any other."""
    unit = session.get(Unit, unit_id)
    if unit is None or not access.may_read_units(principal, unit.shelter_id):
        raise NotFound("unit {unit_id} not found", unit_id=unit_id)
    if principal.role is Role.COORDINATOR and not access.manages(principal, unit.shelter_id):
        raise NotFound("unit {unit_id} not found", unit_id=unit_id)
    return unit


def create_unit(
    session: Session,
    shelter_id: int,
    *,
    actor_id: int | None,
    name: str,
    capacity: int,
    out_of_service: int = 0,
    external_occupied: int = 0,
    admits: list[dict[str, Any]],
) -> Unit:
    """Add a bed unit to a shelter; its creation is the first entry of its history.

    ``actor_id`` is the user who adds it, or None for the system (demo data, imports).
    """
    if session.get(Shelter, shelter_id) is None:
        raise NotFound("shelter {shelter_id} not found", shelter_id=shelter_id)
    counts = {
        "capacity": capacity,
        "out_of_service": out_of_service,
        "external_occupied": external_occupied,
    }
    short = shortfall(**counts, occupied=0, held=0)
    if short:
        raise _capacity_error(0, short, counts)
    if (
        session.scalar(select(Unit.id).where(Unit.shelter_id == shelter_id, Unit.name == name))
        is not None
    ):
        raise InvalidInput(
            "shelter {shelter_id} has a unit named {name!r} already",
            shelter_id=shelter_id,
            name=name,
        )
    unit = Unit(shelter_id=shelter_id, name=name, admits=admits, **counts)
    session.add(unit)
    session.flush()
    for field in UNIT_FIELDS:
        _record(session, unit.id, actor_id, field, None, getattr(unit, field))
    session.flush()
    return unit


@dataclass(frozen=True, slots=True)
class UnitState:
    """A unit's row as one write left it (what :func:`update_unit` returns)."""

    id: int
    shelter_id: int
    name: str
    capacity: int
    out_of_service: int
    external_occupied: int
    occupied: int
    held: int
    admits: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime

    @property
    def available(self) -> int:
        """Free beds, as :attr:`Unit.available`."""
        return available(
            capacity=self.capacity,
            out_of_service=self.out_of_service,
            external_occupied=self.external_occupied,
            occupied=self.occupied,
            held=self.held,
        )


_UNITS = cast(Table, Unit.__table__)
_UNIT_FOR_UPDATE = (
    select(*(_UNITS.c[name] for name in UnitState.__slots__))
    .where(_UNITS.c.id == bindparam("unit_id"))
    .with_for_update()
)


@functools.cache
def _update_unit_statement(fields: tuple[str, ...]) -> Update:
    """``UPDATE units`` of these fields, the version and the time; built once per field set."""
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in fields}
    values |= {
        "version": bindparam("new_version"),
        "updated_at": bindparam("new_updated_at"),
        "confirmed_at": bindparam("new_updated_at"),  # new numbers are confirmed numbers
    }
    return update(_UNITS).where(_UNITS.c.id == bindparam("unit_id")).values(values)


def _managed_at_version(
    conn: Connection, principal: Principal, unit_id: int, expected_version: int
) -> UnitState:
    """The unit's row, locked, if the caller manages it and it is at ``expected_version``."""
    row = conn.execute(_UNIT_FOR_UPDATE, {"unit_id": unit_id}).one_or_none()
    if row is None or not access.manages(principal, row.shelter_id):
        raise NotFound("unit {unit_id} not found", unit_id=unit_id)
    unit = UnitState(*row)
    if unit.version != expected_version:
        raise StaleVersion(
            "unit {unit_id} is at version {version}, not {expected}",
            unit_id=unit_id,
            version=unit.version,
            expected=expected_version,
        )
    return unit


def _forget_copy(session: Session, unit_id: int) -> None:
    """Expire a copy of the unit the session may hold, written past it by Core statements."""
    copy = session.identity_map.get(session.identity_key(Unit, unit_id))
    if copy is not None:
        session.expire(copy)


def update_unit(
    session: Session,
    principal: Principal,
    unit_id: int,
    *,
    expected_version: int,
    changes: Mapping[str, Any],
) -> UnitState:
    """Change a unit the caller manages, if it is still at ``expected_version``.

    Refuses (``CapacityExceeded``, nothing written) any change after which available beds
    would fall below zero, saying by how many. Each changed field is recorded in the unit's
    history in the same transaction.

    Capacity updates are the registry's most frequent write, and on SQLite every write waits
    for the one before it to commit: the row is read, checked and written with built-once Core
    statements (no ORM flush), so that the write transaction stays short. A copy of the unit
    the session may hold is expired, so that it is read again.
    """
    conn = session.connection()
    unit = _managed_at_version(conn, principal, unit_id, expected_version)
    unknown = set(changes) - set(UNIT_FIELDS)
    if unknown:
        raise InvalidInput("cannot change {fields}", fields=", ".join(sorted(unknown)))
    after = {
        "capacity": changes.get("capacity", unit.capacity),
        "out_of_service": changes.get("out_of_service", unit.out_of_service),
        "external_occupied": changes.get("external_occupied", unit.external_occupied),
    }
    short = shortfall(**after, occupied=unit.occupied, held=unit.held)
    if short:
        raise _capacity_error(
            unit_id, short, after | {"occupied": unit.occupied, "held": unit.held}
        )
    if "name" in changes and changes["name"] != unit.name:
        clash = conn.scalar(
            select(Unit.id).where(Unit.shelter_id == unit.shelter_id, Unit.name == changes["name"])
        )
        if clash is not None:
            raise InvalidInput(
                "the shelter has a unit named {name!r} already", name=changes["name"]
            )
    changed = {field: value for field, value in changes.items() if getattr(unit, field) != value}
    if not changed:
        return unit
    fields = tuple(sorted(changed))
    now = utcnow()
    params = {f"new_{field}": changed[field] for field in fields}
    conn.execute(
        _update_unit_statement(fields),
        params | {"unit_id": unit_id, "new_version": unit.version + 1, "new_updated_at": now},
    )
    conn.execute(
        _INSERT_CHANGE,
        [
            {
                "unit_id": unit_id,
                "changed_at": now,
                "actor_user_id": principal.user_id,
                "field": field,
                "old_value": getattr(unit, field),
                "new_value": changed[field],
            }
            for field in fields
        ],
    )
    _forget_copy(session, unit_id)
    return replace(unit, **changed, version=unit.version + 1, updated_at=now, confirmed_at=now)


def confirm_unit(
    session: Session, principal: Principal, unit_id: int, *, expected_version: int
) -> UnitState:
    """Say that a unit's numbers are still true ("numbers unchanged"), at ``expected_version``.

    The coordinators of its shelter and admins may; the unit's version goes up (its
    representation changed); the audit log records who confirmed.
    """
    conn = session.connection()
    unit = _managed_at_version(conn, principal, unit_id, expected_version)
    now = utcnow()
    conn.execute(
        update(_UNITS)
        .where(_UNITS.c.id == unit_id)
        .values(version=unit.version + 1, confirmed_at=now)
    )
    _forget_copy(session, unit_id)
    return replace(unit, version=unit.version + 1, confirmed_at=now)


def unit_history(
    session: Session, principal: Principal, unit_id: int, *, limit: int, cursor: str | None
) -> Page[UnitChange]:
    """A unit's recorded changes, newest first (admins and the unit's coordinators)."""
    unit = session.get(Unit, unit_id)
    if unit is None or not access.manages(principal, unit.shelter_id):
        raise NotFound("unit {unit_id} not found", unit_id=unit_id)
    stmt = select(UnitChange).where(UnitChange.unit_id == unit_id)
    return paginate(session, stmt, UnitChange.id, limit=limit, cursor=cursor, descending=True)
