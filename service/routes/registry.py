"""Regions, organisations and the services catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from service import i18n
from service.audit import set_resource_id
from service.auth import ANY_ROLE, allow
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import (
    Id,
    OrganizationIn,
    OrganizationOut,
    PageOut,
    RegionIn,
    RegionOut,
    ServiceOut,
)
from shelters import registry
from shelters.catalogue import SERVICES
from shelters.identity import Principal, Role
from shelters.models import Organization, Region
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["registry"], route_class=UnitOfWorkRoute)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _region_out(region: Region) -> RegionOut:
    return RegionOut(
        code=region.code,
        name=region.name,
        names=dict(region.names or {}),
        lat=region.lat,
        lon=region.lon,
    )


def _organization_out(org: Organization) -> OrganizationOut:
    return OrganizationOut(id=org.id, name=org.name, kind=org.kind)


@router.get("/regions", responses=problem_responses(401))
def list_regions(principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb) -> list[RegionOut]:
    """All regions with their centroids."""
    return [_region_out(r) for r in registry.list_regions(db)]


@router.post(
    "/regions", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 403, 422)
)
def create_region(
    body: RegionIn, principal: Annotated[Principal, allow(Role.ADMIN)], db: WriteDb
) -> RegionOut:
    """Add a region (admins only)."""
    return _region_out(registry.create_region(db, **body.model_dump()))


@router.get("/services", responses=problem_responses(401))
def list_services(
    request: Request, response: Response, principal: Annotated[Principal, allow(*ANY_ROLE)]
) -> list[ServiceOut]:
    """The fixed catalogue of shelter services, labelled in the caller's language."""
    locale = i18n.request_locale(request)
    i18n.say_language(response, locale)
    return [
        ServiceOut(code=code, label=i18n.gettext(locale, label)) for code, label in SERVICES.items()
    ]


@router.get("/organizations", responses=problem_responses(401, 422))
def list_organizations(
    principal: Annotated[Principal, allow(*ANY_ROLE)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[OrganizationOut]:
    """Organisations, one page at a time."""
    page = registry.list_organizations(db, limit=limit, cursor=cursor)
    return PageOut(items=[_organization_out(o) for o in page.items], next_cursor=page.next_cursor)


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
def create_organization(
    body: OrganizationIn,
    request: Request,
    principal: Annotated[Principal, allow(Role.ADMIN)],
    db: WriteDb,
) -> OrganizationOut:
    """Add an organisation (admins only)."""
    org = registry.create_organization(db, name=body.name, kind=body.kind)
    set_resource_id(request, org.id)
    return _organization_out(org)


@router.get("/organizations/{organization_id}", responses=problem_responses(401, 404))
def read_organization(
    organization_id: Id, principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb
) -> OrganizationOut:
    """One organisation."""
    return _organization_out(registry.get_organization(db, organization_id))
