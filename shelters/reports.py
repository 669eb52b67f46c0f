"""Funder reports (SPEC §8): allocation, grant delivery and unmet demand.

Everything is aggregated by the database (SQL ``SUM``/``COUNT``/window functions); Python only
merges one row per group and applies disclosure control (``shelters.suppression``). No
placement, request or unit change is loaded as a row.

Definitions, so that a funder can reproduce every figure by hand:

- **Period**: ``first`` to ``last``, both dates inclusive, in UTC.
- **Night of date D**: the night that begins on the evening of D (hotel convention). A bed
  counts for the night of D if it is in the stated condition at the **snapshot instant
  D+1 00:00:00 UTC** (the midnight that ends date D). A stay admitted on 1 March at 15:00 and
  discharged on 4 March at 10:00 fills the nights of 1, 2 and 3 March: three bed-nights.
  Something that happens exactly at a snapshot instant already counts for it.
- **Bed-night**: one bed on one night. A night whose snapshot instant is after ``as_of``
  (the moment the report is made) has not happened and counts for nothing.
- **Available bed-nights**: for every unit, ``capacity - out_of_service - external_occupied``
  as the unit's change history says it stood at each snapshot instant. A unit counts from its
  creation on. (A unit without any recorded history for a field counts at its current value
  from its creation on.)
- **Occupied bed-nights**: ``people`` of each placement, on every night whose snapshot falls
  in ``[admitted_at, ended_at)`` (still admitted: no end).
- **Held bed-nights**: ``people`` of each placement, on every night whose snapshot falls in
  ``[proposed_at, admitted_at or ended_at)``: beds kept for a proposal not yet admitted.
- **Placements proposed / accepted / admitted** in the period: placements whose
  ``proposed_at`` / ``accepted_at`` / ``admitted_at`` falls on a date of the period.
  **Declined / expired**: placements with that status whose ``ended_at`` does.
- **Median hours to proposal**: median, over placements proposed in the period, of the hours
  from the request's creation to the proposal; **to admission**: over placements admitted in
  the period, from the request's creation to the admission. The median of an even number of
  values is the mean of the two middle ones. Rounded to 0.1 h.
- **People**: the members (by status and by sex, as counted on the request) of placements
  admitted in the period.

Counts about people (``placements_*``, ``people_*``, and in unmet demand ``requests`` and
``people_*``) go through small-cell and complementary suppression; a median resting on 1 to
k-1 placements is suppressed too. Bed-nights, rates and money are not counts of people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Subquery

from shelters.errors import InvalidInput
from shelters.funding import Grant
from shelters.identity import Principal, Role
from shelters.models import (
    MatchingRun,
    Organization,
    Placement,
    PlacementRequest,
    Region,
    RunOutcome,
    Shelter,
    Unit,
    UnitChange,
    utcnow,
)
from shelters.suppression import Relation, suppress

GroupBy = Literal["shelter", "region", "organization"]
GROUPINGS: tuple[GroupBy, ...] = ("shelter", "region", "organization")
MAX_PERIOD_DAYS = 366 * 20
EPOCH = date(1970, 1, 1)
TOTAL_KEY = "total"
# Placeholder for "no end" in night arithmetic: later than any night a report can ask for.
OPEN_END = 10_000_000

PLACEMENT_CELLS = (
    "placements_proposed",
    "placements_accepted",
    "placements_admitted",
    "placements_declined",
    "placements_expired",
)
STATUS_CELLS = ("people_adult", "people_accompanied_child", "people_unaccompanied_minor")
SEX_CELLS = ("people_female", "people_male", "people_other")
COUNT_CELLS = PLACEMENT_CELLS + STATUS_CELLS + SEX_CELLS
MEDIAN_CELLS = {
    "median_hours_to_proposal": "placements_proposed",
    "median_hours_to_admission": "placements_admitted",
}
UNMET_CELLS = ("requests", *STATUS_CELLS)
UNIT_FIELD_SIGNS = {"capacity": 1, "out_of_service": -1, "external_occupied": -1}


# --- dialect-neutral date arithmetic ----------------------------------------------------------


class night_of(FunctionElement[int]):
    """N(t): index (days since 1970-01-01) of the first night whose snapshot is at or after t.

    A state that holds during ``[a, b)`` is seen on the nights ``N(a) … N(b) - 1``.
    """

    type = Integer()
    name = "night_of"
    inherit_cache = True


@compiles(night_of, "sqlite")
def _night_of_sqlite(element: night_of, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC.
    arg = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(julianday(substr({arg}, 1, 10)) - 2440587.5 AS INTEGER)"
        f" - (substr({arg}, 12) = '00:00:00.000000'))"
    )


@compiles(night_of, "postgresql")
def _night_of_postgresql(element: night_of, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"(CAST(CEIL(EXTRACT(EPOCH FROM {arg}) / 86400) AS INTEGER) - 1)"


class day_of(FunctionElement[int]):
    """Index (days since 1970-01-01) of a DATE."""

    type = Integer()
    name = "day_of"
    inherit_cache = True


@compiles(day_of, "sqlite")
def _day_of_sqlite(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(day_of, "postgresql")
def _day_of_postgresql(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


class hours_between(FunctionElement[float]):
    """Hours from the first timestamp to the second."""

    name = "hours_between"
    inherit_cache = True


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({b}) - julianday({a})) * 24.0)"


@compiles(hours_between, "postgresql")
def _hours_postgresql(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({b} - {a})) / 3600.0)"


class greatest(FunctionElement[int]):
    type = Integer()
    name = "greatest"
    inherit_cache = True


class least(FunctionElement[int]):
    type = Integer()
    name = "least"
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(greatest)
def _greatest_default(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(least)
def _least_default(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return f"LEAST({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: SQLCompiler, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


def _day(value: date) -> int:
    return (value - EPOCH).days


def _overlap(
    start: ColumnElement[int], stop: ColumnElement[int], first: Any, last: Any
) -> ColumnElement[int]:
    """Nights in ``[start, stop)`` ∩ ``[first, last]``, never negative."""
    return greatest(least(stop - 1, last) - greatest(start, first) + 1, 0)


# --- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Report period, inclusive, and the moment the report is made (``as_of``, UTC)."""

    first: date
    last: date
    as_of: datetime

    @property
    def nights(self) -> tuple[int, int]:
        """First and last night index that count: in the period and already ended by ``as_of``."""
        as_of_day = _day(self.as_of.astimezone(UTC).date())
        # The night of D has happened when D+1 00:00 <= as_of, i.e. D <= as_of's date - 1.
        return _day(self.first), min(_day(self.last), as_of_day - 1)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def stop(self) -> datetime:
        """First instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def period(first: date, last: date, *, as_of: datetime | None = None) -> Period:
    """A report period; ``InvalidInput`` if ``last`` is before ``first`` or it spans > 20 years."""
    if last < first:
        raise InvalidInput("'to' is before 'from'")
    if (last - first).days >= MAX_PERIOD_DAYS:
        raise InvalidInput("a report period may span at most 20 years")
    return Period(first=first, last=last, as_of=as_of or utcnow())


# --- interval sources -------------------------------------------------------------------------


def _unit_intervals() -> Subquery:
    """(shelter_id, beds, start, stop): signed beds a unit offers during nights [start, stop).

    ``beds`` is +capacity, -out_of_service or -external_occupied; their sum over all rows seen
    on a night is the shelter's available beds that night. ``stop`` is NULL while current.
    """
    sign = case(*((UnitChange.field == name, s) for name, s in UNIT_FIELD_SIGNS.items()), else_=0)
    following = func.lead(UnitChange.changed_at).over(
        partition_by=(UnitChange.unit_id, UnitChange.field),
        order_by=(UnitChange.changed_at, UnitChange.id),
    )
    recorded = (
        select(
            Unit.shelter_id.label("shelter_id"),
            (func.coalesce(cast(cast(UnitChange.new_value, Text), Integer), 0) * sign).label(
                "beds"
            ),
            night_of(UnitChange.changed_at).label("start"),
            night_of(following).label("stop"),
        )
        .join(Unit, Unit.id == UnitChange.unit_id)
        .where(UnitChange.field.in_(tuple(UNIT_FIELD_SIGNS)))
    )
    parts: list[Any] = [recorded]
    for name, s in UNIT_FIELD_SIGNS.items():
        column = getattr(Unit, name)
        no_history = ~(
            select(UnitChange.id)
            .where(UnitChange.unit_id == Unit.id, UnitChange.field == name)
            .exists()
        )
        parts.append(
            select(
                Unit.shelter_id,
                column * s,
                night_of(Unit.created_at),
                cast(null(), Integer),
            ).where(no_history)
        )
    return union_all(*parts).subquery("unit_intervals")


def _stay_intervals() -> Subquery:
    """(shelter_id, occupied, held, start, stop) per placement: people x nights admitted/held."""
    admitted = (
        select(
            Placement.shelter_id.label("shelter_id"),
            Placement.people.label("occupied"),
            literal(0).label("held"),
            night_of(Placement.admitted_at).label("start"),
            night_of(Placement.ended_at).label("stop"),
        )
    ).where(Placement.admitted_at.is_not(None))
    holding = select(
        Placement.shelter_id,
        literal(0),
        Placement.people,
        night_of(Placement.proposed_at),
        night_of(func.coalesce(Placement.admitted_at, Placement.ended_at)),
    )
    return union_all(admitted, holding).subquery("stay_intervals")


# --- allocation -------------------------------------------------------------------------------


@dataclass
class AllocationRow:
    """One group's cells; ``None`` marks a suppressed cell, named in ``suppressed``."""

    key: str
    label: str
    bed_nights_available: int = 0
    bed_nights_occupied: int = 0
    bed_nights_held: int = 0
    occupancy_rate: float | None = None
    placements_proposed: int | None = 0
    placements_accepted: int | None = 0
    placements_admitted: int | None = 0
    placements_declined: int | None = 0
    placements_expired: int | None = 0
    median_hours_to_proposal: float | None = None
    median_hours_to_admission: float | None = None
    people_adult: int | None = 0
    people_accompanied_child: int | None = 0
    people_unaccompanied_minor: int | None = 0
    people_female: int | None = 0
    people_male: int | None = 0
    people_other: int | None = 0
    suppressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AllocationReport:
    period: Period
    group_by: GroupBy
    k: int
    rows: list[AllocationRow]
    totals: AllocationRow


def _group_columns(group_by: GroupBy) -> tuple[Any, Any]:
    if group_by == "shelter":
        return cast(Shelter.id, String), Shelter.name
    if group_by == "region":
        return Shelter.region_code, Region.name
    return cast(Shelter.organization_id, String), Organization.name


def _with_group(stmt: Select[Any], group_by: GroupBy) -> Select[Any]:
    if group_by == "region":
        return stmt.join(Region, Region.code == Shelter.region_code)
    if group_by == "organization":
        return stmt.join(Organization, Organization.id == Shelter.organization_id)
    return stmt


def allocation_report(
    session: Session, *, when: Period, group_by: GroupBy, k: int
) -> AllocationReport:
    """Beds offered, used and held, placements and people, per shelter, region or organisation.

    One row per group that has a shelter, ordered by key; ``totals`` holds the same cells for
    the whole network (``occupancy_rate`` = occupied ÷ available bed-nights, None when nothing
    was available). Count cells are suppressed as the module docstring says, with the totals
    row and the relations "column sums to its total" and "people by status = people by sex"
    taken into account.
    """
    if group_by not in GROUPINGS:
        raise InvalidInput(f"group_by must be one of {', '.join(GROUPINGS)}")
    key, label = _group_columns(group_by)
    first, last = when.nights
    rows: dict[str, AllocationRow] = {}
    groups = _with_group(select(key, label).distinct(), group_by).order_by(key)
    for group_key, group_label in session.execute(groups):
        rows[group_key] = AllocationRow(key=group_key, label=group_label)
    totals = AllocationRow(key=TOTAL_KEY, label="All shelters")

    units = _unit_intervals()
    available = _with_group(
        select(
            key, func.sum(units.c.beds * _overlap(units.c.start, _open(units.c.stop), first, last))
        )
        .select_from(units)
        .join(Shelter, Shelter.id == units.c.shelter_id),
        group_by,
    ).group_by(key)
    for group_key, value in session.execute(available):
        rows[group_key].bed_nights_available = int(value or 0)

    stays = _stay_intervals()
    nights = _overlap(stays.c.start, _open(stays.c.stop), first, last)
    used = _with_group(
        select(key, func.sum(stays.c.occupied * nights), func.sum(stays.c.held * nights))
        .select_from(stays)
        .join(Shelter, Shelter.id == stays.c.shelter_id),
        group_by,
    ).group_by(key)
    for group_key, occupied, held in session.execute(used):
        rows[group_key].bed_nights_occupied = int(occupied or 0)
        rows[group_key].bed_nights_held = int(held or 0)

    def within(column: Any) -> ColumnElement[bool]:
        return and_(column >= when.start, column < when.stop)

    admitted = within(Placement.admitted_at)
    ended = within(Placement.ended_at)
    counts = [
        within(Placement.proposed_at),
        within(Placement.accepted_at),
        admitted,
        and_(Placement.status == "declined", ended),
        and_(Placement.status == "expired", ended),
    ]
    people = [getattr(PlacementRequest, name) for name in STATUS_CELLS + SEX_CELLS]
    activity = _with_group(
        select(
            key,
            *(func.sum(case((c, 1), else_=0)) for c in counts),
            *(func.sum(case((admitted, p), else_=0)) for p in people),
        )
        .select_from(Placement)
        .join(Shelter, Shelter.id == Placement.shelter_id)
        .join(PlacementRequest, PlacementRequest.id == Placement.request_id)
        .where(
            or_(
                within(Placement.proposed_at),
                within(Placement.accepted_at),
                admitted,
                ended,
            )
        ),
        group_by,
    ).group_by(key)
    for group_key, *values in session.execute(activity):
        row = rows[group_key]
        for name, value in zip(COUNT_CELLS, values, strict=True):
            setattr(row, name, int(value or 0))

    for median_cell, (start_col, count_condition) in {
        "median_hours_to_proposal": (Placement.proposed_at, within(Placement.proposed_at)),
        "median_hours_to_admission": (Placement.admitted_at, admitted),
    }.items():
        for group_key, value in _medians(session, key, group_by, start_col, count_condition):
            target = totals if group_key == TOTAL_KEY else rows[group_key]
            setattr(target, median_cell, value)

    for row in rows.values():
        totals.bed_nights_available += row.bed_nights_available
        totals.bed_nights_occupied += row.bed_nights_occupied
        totals.bed_nights_held += row.bed_nights_held
        for name in COUNT_CELLS:
            setattr(totals, name, (getattr(totals, name) or 0) + (getattr(row, name) or 0))
    ordered = sorted(rows.values(), key=lambda r: _sort_key(r.key, group_by))
    for row in [*ordered, totals]:
        if row.bed_nights_available > 0:
            row.occupancy_rate = round(row.bed_nights_occupied / row.bed_nights_available, 4)
    _protect_allocation(ordered, totals, k)
    return AllocationReport(period=when, group_by=group_by, k=k, rows=ordered, totals=totals)


def _sort_key(key: str, group_by: GroupBy) -> tuple[int, str]:
    return (int(key), "") if group_by != "region" else (0, key)


def _open(stop: ColumnElement[int]) -> ColumnElement[int]:
    return func.coalesce(stop, OPEN_END)


def _medians(
    session: Session,
    key: ColumnElement[Any],
    group_by: GroupBy,
    event: Any,
    condition: ColumnElement[bool],
) -> list[tuple[str, float]]:
    """Median hours from request creation to ``event`` per group and for all groups together."""
    results: list[tuple[str, float]] = []
    for group, partition in ((key, key), (literal(TOTAL_KEY), None)):
        hours = hours_between(PlacementRequest.created_at, event)
        ranked = _with_group(
            select(
                group.label("g"),
                hours.label("h"),
                func.row_number().over(partition_by=partition, order_by=hours).label("n"),
                func.count().over(partition_by=partition).label("c"),
            )
            .select_from(Placement)
            .join(Shelter, Shelter.id == Placement.shelter_id)
            .join(PlacementRequest, PlacementRequest.id == Placement.request_id)
            .where(condition),
            group_by,
        ).subquery("ranked")
        middle = (
            select(ranked.c.g, func.avg(ranked.c.h))
            .where(
                or_(
                    ranked.c.n == (ranked.c.c + 1) // 2,
                    ranked.c.n == (ranked.c.c + 2) // 2,
                )
            )
            .group_by(ranked.c.g)
        )
        results.extend(
            (str(g), round(float(v), 1)) for g, v in session.execute(middle) if v is not None
        )
    return results


def allocation_relations(row_keys: Sequence[str]) -> list[Relation]:
    """What a reader of the allocation report knows about its count cells.

    Each column of counts sums to its total, and in every row (totals included) people by
    status add up to people by sex. Cells are ``(row key, cell name)``.
    """
    relations = [
        Relation((*tuple(((key, name), 1) for key in row_keys), ((TOTAL_KEY, name), -1)))
        for name in COUNT_CELLS
    ]
    for key in [*row_keys, TOTAL_KEY]:
        relations.append(
            Relation(
                tuple(((key, name), 1) for name in STATUS_CELLS)
                + tuple(((key, name), -1) for name in SEX_CELLS)
            )
        )
    return relations


def _protect_allocation(rows: list[AllocationRow], totals: AllocationRow, k: int) -> None:
    values: dict[tuple[str, str], int] = {}
    for row in [*rows, totals]:
        for name in COUNT_CELLS:
            values[(row.key, name)] = int(getattr(row, name) or 0)
    hidden = suppress(
        values,
        allocation_relations([r.key for r in rows]),
        k,
        totals=[(TOTAL_KEY, name) for name in COUNT_CELLS],
    )
    for row in [*rows, totals]:
        for name in COUNT_CELLS:
            if (row.key, name) in hidden:
                setattr(row, name, None)
                row.suppressed.append(name)
        for median, basis in MEDIAN_CELLS.items():
            if 1 <= values[(row.key, basis)] < k and getattr(row, median) is not None:
                setattr(row, median, None)
                row.suppressed.append(median)


# --- grants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRow:
    grant_id: int
    funder_organization_id: int
    shelter_id: int
    shelter_name: str
    currency: str
    amount_in_period: Decimal
    funded_bed_nights: int
    available_bed_nights: int
    occupied_bed_nights: int
    cost_per_occupied_bed_night: Decimal | None
    under_delivery: bool
    suppressed: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantsReport:
    period: Period
    rows: list[GrantRow]


UNDER_DELIVERY_SHARE = Decimal("0.8")


def grants_report(session: Session, principal: Principal, *, when: Period) -> GrantsReport:
    """Funded against delivered bed-nights, one row per grant that overlaps the period.

    A funder sees only their organisation's grants, an admin all. For a grant:
    ``funded_bed_nights`` = funded_beds x days of the grant inside the period (SPEC §8);
    ``available_bed_nights`` and ``occupied_bed_nights`` are the grant's shelter's, counted on
    the nights of those same days (and only nights that have happened by ``as_of``);
    ``amount_in_period`` is the amount pro rata to those days over the grant's days;
    ``cost_per_occupied_bed_night`` = amount_in_period ÷ occupied bed-nights (None for none);
    ``under_delivery`` when available bed-nights < 80 % of funded bed-nights.
    """
    first, last = _day(when.first), _day(when.last)
    night_last = when.nights[1]
    grant_first = greatest(day_of(Grant.start), first)
    grant_days_last = least(day_of(Grant.end), last)
    grant_nights_last = least(day_of(Grant.end), night_last)
    scope = [Grant.start <= when.last, Grant.end >= when.first]
    if principal.role is not Role.ADMIN:
        scope.append(Grant.funder_organization_id == principal.organization_id)

    units = _unit_intervals()
    available: dict[int, Any] = dict(
        session.execute(
            select(
                Grant.id,
                func.sum(
                    units.c.beds
                    * _overlap(units.c.start, _open(units.c.stop), grant_first, grant_nights_last)
                ),
            )
            .select_from(Grant)
            .join(units, units.c.shelter_id == Grant.shelter_id)
            .where(*scope)
            .group_by(Grant.id)
        ).all()
    )
    stays = _stay_intervals()
    occupied: dict[int, Any] = dict(
        session.execute(
            select(
                Grant.id,
                func.sum(
                    stays.c.occupied
                    * _overlap(stays.c.start, _open(stays.c.stop), grant_first, grant_nights_last)
                ),
            )
            .select_from(Grant)
            .join(stays, stays.c.shelter_id == Grant.shelter_id)
            .where(*scope)
            .group_by(Grant.id)
        ).all()
    )
    listing = session.execute(
        select(
            Grant.id,
            Grant.funder_organization_id,
            Grant.shelter_id,
            Shelter.name,
            Grant.currency,
            Grant.amount,
            Grant.funded_beds,
            Grant.start,
            Grant.end,
            grant_days_last - grant_first + 1,
        )
        .join(Shelter, Shelter.id == Grant.shelter_id)
        .where(*scope)
        .order_by(Grant.id)
    )
    rows: list[GrantRow] = []
    for gid, funder, shelter_id, name, currency, amount, beds, start, end, days in listing:
        grant_days = (end - start).days + 1
        share = Decimal(amount) * Decimal(days) / Decimal(grant_days)
        funded = beds * days
        avail = int(available.get(gid) or 0)
        occ = int(occupied.get(gid) or 0)
        cost = _money(share / occ) if occ else None
        rows.append(
            GrantRow(
                grant_id=gid,
                funder_organization_id=funder,
                shelter_id=shelter_id,
                shelter_name=name,
                currency=currency,
                amount_in_period=_money(share),
                funded_bed_nights=funded,
                available_bed_nights=avail,
                occupied_bed_nights=occ,
                cost_per_occupied_bed_night=cost,
                under_delivery=Decimal(avail) < UNDER_DELIVERY_SHARE * funded,
            )
        )
    return GrantsReport(period=when, rows=rows)


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- unmet demand -----------------------------------------------------------------------------


@dataclass
class UnmetRow:
    """Requests left unplaced for one reason in one region, and their people by status."""

    region: str
    reason_code: str
    requests: int | None
    people_adult: int | None
    people_accompanied_child: int | None
    people_unaccompanied_minor: int | None
    suppressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UnmetDemandReport:
    period: Period
    k: int
    rows: list[UnmetRow]


UNKNOWN_REGION = "unknown"


def unmet_demand_report(session: Session, *, when: Period, k: int) -> UnmetDemandReport:
    """Requests that could not be placed, by the request's region and reason code.

    The record of unmet demand is (a) every unplaced outcome of a matching run that was not a
    dry run, recorded in the period, under each of its reason codes (solver reasons without
    shelter ids, e.g. ``missing_service:child_psychologist``, ``capacity_taken``), and
    (b) every placement declined in the period, under ``declined:<reason>``. A request counts
    once per region and reason however often it was left unplaced for that reason, so rows
    of different reasons may share requests and are not meant to be added up. ``requests``
    and the people cells are counts about people and are suppressed from 1 to k-1; no totals
    are published, so no complementary suppression is needed.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        codes = func.json_array_elements_text(RunOutcome.reason_codes).table_valued("value")
    else:
        codes = func.json_each(RunOutcome.reason_codes).table_valued("value")
    unplaced = (
        select(
            RunOutcome.request_id.label("request_id"), cast(codes.c.value, String).label("reason")
        )
        .select_from(RunOutcome)
        .join(MatchingRun, MatchingRun.id == RunOutcome.run_id)
        .join(codes, true())
        .where(
            RunOutcome.placed == false(),
            MatchingRun.dry_run == false(),
            RunOutcome.recorded_at >= when.start,
            RunOutcome.recorded_at < when.stop,
        )
    )
    declined = select(
        Placement.request_id,
        literal("declined:") + func.coalesce(Placement.decline_reason, "other"),
    ).where(
        Placement.status == "declined",
        Placement.ended_at >= when.start,
        Placement.ended_at < when.stop,
    )
    events = union(unplaced, declined).subquery("events")
    region = func.coalesce(PlacementRequest.region_code, UNKNOWN_REGION)
    stmt = (
        select(
            region,
            events.c.reason,
            func.count(),
            *(func.sum(getattr(PlacementRequest, name)) for name in STATUS_CELLS),
        )
        .select_from(events)
        .join(PlacementRequest, PlacementRequest.id == events.c.request_id)
        .group_by(region, events.c.reason)
        .order_by(region, events.c.reason)
    )
    rows = [
        UnmetRow(
            region=str(reg),
            reason_code=str(reason),
            requests=int(n),
            people_adult=int(a or 0),
            people_accompanied_child=int(c or 0),
            people_unaccompanied_minor=int(u or 0),
        )
        for reg, reason, n, a, c, u in session.execute(stmt)
    ]
    values = {
        (i, name): int(getattr(row, name) or 0)
        for i, row in enumerate(rows)
        for name in UNMET_CELLS
    }
    hidden = suppress(values, [], k)
    for i, row in enumerate(rows):
        for name in UNMET_CELLS:
            if (i, name) in hidden:
                setattr(row, name, None)
                row.suppressed.append(name)
    return UnmetDemandReport(period=when, k=k, rows=rows)


__all__ = [
    "GROUPINGS",
    "AllocationReport",
    "AllocationRow",
    "GrantRow",
    "GrantsReport",
    "Period",
    "UnmetDemandReport",
    "UnmetRow",
    "allocation_relations",
    "allocation_report",
    "grants_report",
    "period",
    "unmet_demand_report",
]
