"""Grants: money a funding organisation gave a shelter for a number of beds over a period.

SPEC §8. Dates are inclusive: a grant from 2026-01-01 to 2026-01-31 funds 31 nights. A funder
records and reads only the grants of their own organisation; an admin records and reads any.
Use cases flush and never commit.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shelters.errors import Forbidden, InvalidInput, NotFound
from shelters.identity import Principal, Role
from shelters.models import Base, Organization, Shelter, UTCDateTime, utcnow
from shelters.pagination import Page, paginate

CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("1e12")


class Grant(Base):
    """A grant: ``funded_beds`` beds every night from ``start`` to ``end`` (both inclusive)."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    funder_organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    shelter_id: Mapped[int] = mapped_column(
        ForeignKey("shelters.id", ondelete="RESTRICT"), index=True
    )
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    currency: Mapped[str] = mapped_column(String(3))
    funded_beds: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint('"end" >= start', name="period_ordered"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("funded_beds >= 0", name="funded_beds_non_negative"),
    )


def _may_manage(principal: Principal, funder_organization_id: int) -> bool:
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.FUNDER and principal.organization_id == funder_organization_id


def create_grant(
    session: Session,
    principal: Principal,
    *,
    funder_organization_id: int,
    shelter_id: int,
    start: date,
    end: date,
    amount: Decimal,
    currency: str,
    funded_beds: int,
) -> Grant:
    """Record a grant.

    Funders may record grants only for their own organisation (``Forbidden`` otherwise);
    admins for any. ``InvalidInput`` for an unknown organisation or shelter, ``end`` before
    ``start``, a negative amount or bed count, or a currency that is not three capital
    letters (ISO 4217 alphabetic code).
    """
    if not _may_manage(principal, funder_organization_id):
        raise Forbidden("funders record grants for their own organisation only")
    if session.get(Organization, funder_organization_id) is None:
        raise InvalidInput(
            "organization {organization_id} does not exist",
            organization_id=funder_organization_id,
        )
    if session.get(Shelter, shelter_id) is None:
        raise InvalidInput("shelter {shelter_id} does not exist", shelter_id=shelter_id)
    if end < start:
        raise InvalidInput("end is before start")
    if amount < 0 or amount >= MAX_AMOUNT:
        raise InvalidInput("amount must be at least 0 and below 10^12")
    if funded_beds < 0:
        raise InvalidInput("funded_beds must be at least 0")
    if not CURRENCY.match(currency):
        raise InvalidInput("currency must be an ISO 4217 code such as KZT, EUR or USD")
    grant = Grant(
        funder_organization_id=funder_organization_id,
        shelter_id=shelter_id,
        start=start,
        end=end,
        amount=amount.quantize(Decimal("0.01")),
        currency=currency,
        funded_beds=funded_beds,
        created_by=principal.user_id,
    )
    session.add(grant)
    session.flush()
    return grant


def get_grant(session: Session, principal: Principal, grant_id: int) -> Grant:
    """A grant the caller may read; ``NotFound`` for another funder's grant or none."""
    grant = session.get(Grant, grant_id)
    if grant is None or not _may_manage(principal, grant.funder_organization_id):
        raise NotFound("grant {grant_id} not found", grant_id=grant_id)
    return grant


def list_grants(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> Page[Grant]:
    """Grants by id, one page: a funder sees only their own organisation's, an admin all."""
    stmt = select(Grant)
    if principal.role is not Role.ADMIN:
        stmt = stmt.where(Grant.funder_organization_id == principal.organization_id)
    return paginate(session, stmt, Grant.id, limit=limit, cursor=cursor)
