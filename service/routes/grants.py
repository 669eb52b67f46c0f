"""Grants of funding organisations (SPEC §8)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field, StringConstraints

from service.audit import set_resource_id
from service.auth import allow
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import Id, PageOut, Strict
from shelters import funding
from shelters.funding import Grant
from shelters.identity import Principal, Role
from shelters.pagination import MAX_LIMIT

router = APIRouter(prefix=API_PREFIX, tags=["grants"], route_class=UnitOfWorkRoute)
GRANT_USERS = (Role.ADMIN, Role.FUNDER)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class GrantIn(Strict):
    funder_organization_id: Id
    shelter_id: Id
    # Strings in JSON, converted: the dates from ISO 8601, the amount also from a number.
    start: date = Field(strict=False, description="First funded date, inclusive.")
    end: date = Field(strict=False, description="Last funded date, inclusive.")
    amount: Decimal = Field(strict=False, ge=0, lt=Decimal("1e12"), max_digits=16, decimal_places=2)
    currency: Currency = Field(description="ISO 4217 code, e.g. KZT.")
    funded_beds: int = Field(ge=0, le=100_000)


class GrantOut(BaseModel):
    id: int
    funder_organization_id: int
    shelter_id: int
    start: date
    end: date
    amount: Decimal
    currency: str
    funded_beds: int
    created_at: datetime


def grant_out(grant: Grant) -> GrantOut:
    """The API view of a grant."""
    return GrantOut(
        id=grant.id,
        funder_organization_id=grant.funder_organization_id,
        shelter_id=grant.shelter_id,
        start=grant.start,
        end=grant.end,
        amount=grant.amount,
        currency=grant.currency,
        funded_beds=grant.funded_beds,
        created_at=grant.created_at,
    )


@router.get("/grants", responses=problem_responses(401, 403, 422))
def list_grants(
    principal: Annotated[Principal, allow(*GRANT_USERS)],
    db: ReadDb,
    limit: Limit = 50,
    cursor: str | None = None,
) -> PageOut[GrantOut]:
    """Grants: a funder sees their organisation's, an admin all."""
    page = funding.list_grants(db, principal, limit=limit, cursor=cursor)
    return PageOut(items=[grant_out(g) for g in page.items], next_cursor=page.next_cursor)


@router.post(
    "/grants", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 403, 422)
)
def create_grant(
    body: GrantIn,
    request: Request,
    principal: Annotated[Principal, allow(*GRANT_USERS)],
    db: WriteDb,
) -> GrantOut:
    """Record a grant (funders: for their own organisation only)."""
    grant = funding.create_grant(db, principal, **body.model_dump())
    set_resource_id(request, grant.id)
    return grant_out(grant)


@router.get("/grants/{grant_id}", responses=problem_responses(401, 403, 404))
def read_grant(
    grant_id: Id, principal: Annotated[Principal, allow(*GRANT_USERS)], db: ReadDb
) -> GrantOut:
    """One grant you may read."""
    return grant_out(funding.get_grant(db, principal, grant_id))
