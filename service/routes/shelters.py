"""Shelters, their bed units, and each unit's history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from service.audit import set_resource_id
from service.auth import ANY_ROLE, allow
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.etags import expected_version, set_etag
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import (
    AdmissionRuleOut,
    Id,
    LocationOut,
    PageOut,
    ShelterConfidentialOut,
    ShelterIn,
    ShelterOut,
    ShelterPatch,
    ShelterStatus,
    Slug,
    UnitChangeOut,
    UnitIn,
    UnitOut,
    UnitPatch,
)
from shelters import freshness, registry
from shelters.errors import InvalidInput
from shelters.identity import Principal, Role
from shelters.models import Shelter, Unit, UnitChange, utcnow
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["shelters"], route_class=UnitOfWorkRoute)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
REGISTRY_READERS = ANY_ROLE
UNIT_READERS = (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER)
MANAGERS = (Role.ADMIN, Role.COORDINATOR)
CLEARABLE = {"address", "location"}


def shelter_out(shelter: Shelter, *, located: bool) -> ShelterOut | ShelterConfidentialOut:
    """The shelter as a caller sees it: its address and location only when ``located``.

    ``located`` comes from the one rule of :mod:`shelters.access` (``may_see_location`` for
    one shelter, ``located_shelters`` for a page of them).
    """
    public = ShelterOut(
        id=shelter.id,
        organization_id=shelter.organization_id,
        name=shelter.name,
        names=dict(shelter.names or {}),
        region=shelter.region_code,
        locality=shelter.locality,
        security_level=shelter.security_level,
        wheelchair_accessible=shelter.wheelchair_accessible,
        services=list(shelter.services),
        languages=list(shelter.languages),
        status=shelter.status,
        version=shelter.version,
    )
    if not located:
        return public
    location = None
    if shelter.lat is not None and shelter.lon is not None:
        location = LocationOut(lat=shelter.lat, lon=shelter.lon)
    return ShelterConfidentialOut(**public.model_dump(), address=shelter.address, location=location)


def stale_hours(request: Request) -> float:
    """``REFUGE_STALE_AFTER_HOURS`` of the app serving ``request``."""
    hours: float = request.app.state.settings.stale_after_hours
    return hours


def unit_out(unit: Unit | registry.UnitState, *, stale_after_hours: float) -> UnitOut:
    """A unit with its computed occupied, held and available beds, and whether it is stale."""
    stale = freshness.is_stale(unit.confirmed_at, now=utcnow(), after_hours=stale_after_hours)
    return UnitOut(
        id=unit.id,
        shelter_id=unit.shelter_id,
        name=unit.name,
        capacity=unit.capacity,
        out_of_service=unit.out_of_service,
        external_occupied=unit.external_occupied,
        occupied=unit.occupied,
        held=unit.held,
        available=unit.available,
        admits=[AdmissionRuleOut(**rule) for rule in unit.admits],
        version=unit.version,
        updated_at=unit.updated_at,
        confirmed_at=unit.confirmed_at,
        stale=stale,
    )


def _change_out(change: UnitChange) -> UnitChangeOut:
    return UnitChangeOut(
        id=change.id,
        changed_at=change.changed_at,
        actor_user_id=change.actor_user_id,
        field=change.field,
        old=change.old_value,
        new=change.new_value,
    )


def _shelter_changes(body: ShelterPatch) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in given.items() if v is None and k not in CLEARABLE)
    if nulls:
        raise InvalidInput("{fields} cannot be null", fields=", ".join(nulls))
    if "region" in given:
        given["region_code"] = given.pop("region")
    if "location" in given:
        location = given.pop("location")
        given["lat"] = location["lat"] if location else None
        given["lon"] = location["lon"] if location else None
    return given


def _unit_changes(body: UnitPatch) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in given.items() if v is None)
    if nulls:
        raise InvalidInput("{fields} cannot be null", fields=", ".join(nulls))
    return given


@router.get("/shelters", responses=problem_responses(401, 422))
def list_shelters(
    principal: Annotated[Principal, allow(*REGISTRY_READERS)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
    region: Slug | None = None,
    shelter_status: Annotated[ShelterStatus | None, Query(alias="status")] = None,
) -> PageOut[ShelterOut | ShelterConfidentialOut]:
    """Shelters you may read (coordinators: their own), one page at a time."""
    page = registry.list_shelters(
        db, principal, limit=limit, cursor=cursor, region=region, status=shelter_status
    )
    located = registry.located_shelters(db, principal)
    return PageOut(
        items=[shelter_out(s, located=s.id in located) for s in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/shelters", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 403, 422)
)
def create_shelter(
    body: ShelterIn,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> ShelterConfidentialOut:
    """Add a shelter (admins only)."""
    fields = body.model_dump(exclude={"organization_id", "region", "location"})
    shelter = registry.create_shelter(
        db,
        organization_id=body.organization_id,
        region_code=body.region,
        lat=body.location.lat if body.location else None,
        lon=body.location.lon if body.location else None,
        **fields,
    )
    set_resource_id(request, shelter.id)
    set_etag(response, "shelter", shelter.id, shelter.version)
    out = shelter_out(shelter, located=registry.may_see_location(db, principal, shelter.id))
    assert isinstance(out, ShelterConfidentialOut)
    return out


@router.get("/shelters/{shelter_id}", responses=problem_responses(401, 404))
def read_shelter(
    shelter_id: Id,
    response: Response,
    principal: Annotated[Principal, allow(*REGISTRY_READERS)],
    db: ReadDb,
) -> ShelterOut | ShelterConfidentialOut:
    """One shelter; its address and location only for those allowed to see them."""
    shelter = registry.get_shelter(db, principal, shelter_id)
    set_etag(response, "shelter", shelter.id, shelter.version)
    return shelter_out(shelter, located=registry.may_see_location(db, principal, shelter.id))


@router.patch("/shelters/{shelter_id}", responses=problem_responses(401, 403, 404, 412, 422, 428))
def update_shelter(
    shelter_id: Id,
    body: ShelterPatch,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(*MANAGERS)],
    db: WriteDb,
) -> ShelterOut | ShelterConfidentialOut:
    """Change a shelter you manage; send `If-Match` with its current ETag."""
    version = expected_version(request, "shelter", shelter_id)
    shelter = registry.update_shelter(
        db, principal, shelter_id, expected_version=version, changes=_shelter_changes(body)
    )
    set_etag(response, "shelter", shelter.id, shelter.version)
    return shelter_out(shelter, located=registry.may_see_location(db, principal, shelter.id))


@router.get("/shelters/{shelter_id}/units", responses=problem_responses(401, 403, 404, 422))
def list_units(
    shelter_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*UNIT_READERS)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[UnitOut]:
    """The bed units of a shelter with occupied, held and available beds."""
    page = registry.list_units(db, principal, shelter_id, limit=limit, cursor=cursor)
    return PageOut(
        items=[unit_out(u, stale_after_hours=stale_hours(request)) for u in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/shelters/{shelter_id}/units",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def create_unit(
    shelter_id: Id,
    body: UnitIn,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> UnitOut:
    """Add a bed unit to a shelter (admins only)."""
    unit = registry.create_unit(
        db,
        shelter_id,
        actor_id=principal.user_id,
        name=body.name,
        capacity=body.capacity,
        out_of_service=body.out_of_service,
        external_occupied=body.external_occupied,
        admits=[rule.model_dump() for rule in body.admits],
    )
    set_resource_id(request, unit.id)
    set_etag(response, "unit", unit.id, unit.version)
    return unit_out(unit, stale_after_hours=stale_hours(request))


@router.get("/units/{unit_id}", responses=problem_responses(401, 403, 404))
def read_unit(
    unit_id: Id,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(*UNIT_READERS)],
    db: ReadDb,
) -> UnitOut:
    """One bed unit."""
    unit = registry.get_unit(db, principal, unit_id)
    set_etag(response, "unit", unit.id, unit.version)
    return unit_out(unit, stale_after_hours=stale_hours(request))


@router.patch("/units/{unit_id}", responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
def update_unit(
    unit_id: Id,
    body: UnitPatch,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(*MANAGERS)],
    db: WriteDb,
) -> UnitOut:
    """Change a unit you manage; send `If-Match`. Refused (409) if beds would fall below zero."""
    version = expected_version(request, "unit", unit_id)
    unit = registry.update_unit(
        db, principal, unit_id, expected_version=version, changes=_unit_changes(body)
    )
    set_etag(response, "unit", unit.id, unit.version)
    return unit_out(unit, stale_after_hours=stale_hours(request))


@router.post("/units/{unit_id}/confirm", responses=problem_responses(401, 403, 404, 412, 428))
def confirm_unit(
    unit_id: Id,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(*MANAGERS)],
    db: WriteDb,
) -> UnitOut:
    """Say a unit's numbers are still true ("numbers unchanged"); send `If-Match`."""
    version = expected_version(request, "unit", unit_id)
    unit = registry.confirm_unit(db, principal, unit_id, expected_version=version)
    set_etag(response, "unit", unit.id, unit.version)
    return unit_out(unit, stale_after_hours=stale_hours(request))


@router.get("/units/{unit_id}/history", responses=problem_responses(401, 403, 404, 422))
def unit_history(
    unit_id: Id,
    principal: Annotated[Principal, allow(*MANAGERS)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[UnitChangeOut]:
    """Every recorded change of a unit, newest first."""
    page = registry.unit_history(db, principal, unit_id, limit=limit, cursor=cursor)
    return PageOut(items=[_change_out(c) for c in page.items], next_cursor=page.next_cursor)
