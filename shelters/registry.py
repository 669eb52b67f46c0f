"""Use cases of the registry: regions and organisations.

Use cases take a session and keyword arguments, flush, and never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shelters.errors import InvalidInput, NotFound
from shelters.models import Organization, Region
from shelters.pagination import Page, paginate


def list_regions(session: Session) -> list[Region]:
    """All regions, by code."""
    return list(session.scalars(select(Region).order_by(Region.code)))


def create_region(session: Session, *, code: str, name: str, lat: float, lon: float) -> Region:
    """Add a region; its code must be new."""
    if session.get(Region, code) is not None:
        raise InvalidInput(f"region {code!r} exists already")
    region = Region(code=code, name=name, lat=lat, lon=lon)
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
        raise NotFound(f"organization {organization_id} not found")
    return org


def create_organization(session: Session, *, name: str, kind: str) -> Organization:
    """Add an organisation; names are unique."""
    if session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise InvalidInput(f"an organization named {name!r} exists already")
    org = Organization(name=name, kind=kind)
    session.add(org)
    session.flush()
    return org
