"""How current a unit's numbers are: confirmed within ``REFUGE_STALE_AFTER_HOURS``, or stale.

A unit's ``confirmed_at`` moves when a coordinator changes its numbers or confirms them
unchanged (``registry.confirm_unit``); beds moving by placements do not count, because they say
nothing about beds out of service or taken by people the registry does not know of. A stale
unit is still offered and matched: its numbers are the best there are. The API and the HSDS
export flag it, the pages show its age, and a match that proposes beds in one says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelters.models import Shelter, Unit, utcnow


def is_stale(confirmed_at: datetime, *, now: datetime, after_hours: float) -> bool:
    """Whether numbers confirmed at ``confirmed_at`` are older than ``after_hours`` at ``now``."""
    return now - confirmed_at > timedelta(hours=after_hours)


def stale_unit_ids(
    session: Session, *, after_hours: float, now: datetime | None = None
) -> list[int]:
    """The units not confirmed within ``after_hours``, in id order."""
    before = (now or utcnow()) - timedelta(hours=after_hours)
    return list(
        session.scalars(select(Unit.id).where(Unit.confirmed_at < before).order_by(Unit.id))
    )


def stale_among(
    session: Session, unit_ids: Iterable[int], *, after_hours: float, now: datetime | None = None
) -> list[int]:
    """Which of ``unit_ids`` are stale, in id order."""
    ids = sorted(set(unit_ids))
    if not ids:
        return []
    before = (now or utcnow()) - timedelta(hours=after_hours)
    stmt = select(Unit.id).where(Unit.id.in_(ids), Unit.confirmed_at < before).order_by(Unit.id)
    return list(session.scalars(stmt))


def stale_counts_by_region(
    session: Session, *, after_hours: float, now: datetime | None = None
) -> dict[str, int]:
    """Stale units of open shelters per region code (regions without one are left out).

    Only open shelters count, as in the national picture: a closed shelter's beds are offered
    to no one, so how current they are tells nobody anything.
    """
    before = (now or utcnow()) - timedelta(hours=after_hours)
    rows = session.execute(
        select(Shelter.region_code, func.count())
        .join(Unit, Unit.shelter_id == Shelter.id)
        .where(Unit.confirmed_at < before, Shelter.status == "open")
        .group_by(Shelter.region_code)
    ).all()
    return {region: int(count) for region, count in rows}
