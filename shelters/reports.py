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

from collections.abc import Callable, Sequence
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
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Subquery

from shelters import disclosure
from shelters.disclosure import Protection, ProtectionCache, System
from shelters.errors import N_, InvalidInput, UnpublishedPeriod
from shelters.funding import Grant
from shelters.identity import Principal, Role
from shelters.models import (
    DECLINE_REASONS,
    Case,
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
from shelters.profiles import SEXES, STATUSES
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

    @property
    def calendar(self) -> str | None:
        """``m01``..``m12``, ``q1``..``q4`` or ``y`` when the period is one calendar period."""
        if self.first.year != self.last.year or self.first.day != 1:
            return None
        if (self.last + timedelta(days=1)).day != 1:
            return None
        return disclosure.period_id(self.first.month, self.last.month)

    @property
    def ended(self) -> bool:
        """Every night of the period has happened by ``as_of``."""
        return self.last < self.as_of.astimezone(UTC).date()

    @property
    def published(self) -> bool:
        """What funders may ask for: a calendar month, quarter or year whose quarter has ended.

        Figures are published a quarter at a time (``shelters.disclosure``): a month once the
        quarter it belongs to has ended.
        """
        if self.calendar is None:
            return False
        return self.last.month <= self.closed_months or self.first.year < self._today.year

    @property
    def _today(self) -> date:
        return self.as_of.astimezone(UTC).date()

    @property
    def closed_months(self) -> int:
        """Months of the period's year in quarters that have ended by ``as_of`` (0 to 12)."""
        today = self._today
        if today.year > self.first.year:
            return 12
        return 3 * ((today.month - 1) // 3) if today.year == self.first.year else 0

    @property
    def label(self) -> str:
        """``2026``, ``2026-Q1``, ``2026-03``, or ``first..last`` for any other window."""
        pid = self.calendar
        year = self.first.year
        if pid == "y":
            return str(year)
        if pid is not None and pid.startswith("q"):
            return f"{year}-Q{pid[1]}"
        if pid is not None:
            return f"{year}-{pid[1:]}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


PUBLICATION_RULE = (
    "funders may ask for one calendar month, quarter or year, published once its quarter has "
    "ended: 'from' is its first day and 'to' its last, e.g. from=2026-03-01&to=2026-03-31 "
    "(a month), from=2026-01-01&to=2026-03-31 (a quarter) or from=2026-01-01&to=2026-12-31 "
    "(a year)"
)


def period(first: date, last: date, *, as_of: datetime | None = None) -> Period:
    """A report period; ``InvalidInput`` if ``last`` is before ``first`` or it spans > 20 years."""
    if last < first:
        raise InvalidInput("'to' is before 'from'")
    if (last - first).days >= MAX_PERIOD_DAYS:
        raise InvalidInput("a report period may span at most 20 years")
    return Period(first=first, last=last, as_of=as_of or utcnow())


def period_for(
    principal: Principal, first: date, last: date, *, as_of: datetime | None = None
) -> Period:
    """The report period a principal may ask for (SPEC §8 disclosure control).

    Funders get only publication periods (``Period.published``): with arbitrary windows, two
    overlapping ones differ by a day whose small counts no suppression pattern chosen per
    table can hide. Admins may ask for any window, because they may read every placement
    anyway; a window that is not a publication period is protected as a single table and its
    ``disclosure`` says so. ``UnpublishedPeriod`` names the periods that are allowed.
    """
    when = period(first, last, as_of=as_of)
    if principal.role is Role.ADMIN or when.published:
        return when
    if when.calendar is not None:
        raise UnpublishedPeriod(
            "{period} has not been published yet: figures are published once the quarter "
            "they belong to has ended; {rule}",
            period=when.label,
            rule=PUBLICATION_RULE,
        )
    raise UnpublishedPeriod(
        "{first} to {last} is not a publication period: {rule}",
        first=first.isoformat(),
        last=last.isoformat(),
        rule=PUBLICATION_RULE,
    )


# --- what a report says about its disclosure control ------------------------------------------


@dataclass(frozen=True)
class Disclosure:
    """How a report was protected; every report carries one (SPEC §8).

    ``method``: ``linked-tables`` (cells chosen over every table of ``year`` at once, see
    ``shelters.disclosure``), ``single-table`` (complementary suppression within this table
    only: admin windows that are not publication periods) or ``none`` (no counts of people).
    """

    method: Literal["linked-tables", "single-table", "none"]
    k: int | None
    period: str
    year: int | None = None
    tables: tuple[str, ...] = ()
    words: str = ""
    """The statement as an English template (a gettext msgid), its fields from ``params``."""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def statement(self) -> str:
        """The statement in English."""
        return self.statement_in(lambda message: message)

    def statement_in(self, translate: Callable[[str], str]) -> str:
        """The statement in the words ``translate`` gives (a catalogue's ``gettext``)."""
        if not self.words:
            return ""
        params = dict(self.params)
        if params.get("kind") in REPORT_KIND_WORDS:
            params["kind"] = translate(REPORT_KIND_WORDS[params["kind"]])
        return translate(self.words).format(**params)


REPORT_KIND_WORDS = {"allocation": N_("allocation"), "unmet-demand": N_("unmet-demand")}
"""The reports a linked-tables statement names, as people read them (the codes stay)."""


def _linked(kind: str, when: Period, k: int, tables: tuple[str, ...]) -> Disclosure:
    year = when.first.year
    return Disclosure(
        method="linked-tables",
        k=k,
        period=when.label,
        year=year,
        tables=tables,
        words=N_(
            "Counts of people from 1 to {below} are suppressed; complementary cells are chosen "
            "over every {kind} table of {year} a funder can ask for ({tables}; by month, "
            "quarter and year) so that no suppressed count can be recomputed or narrowed to "
            "fewer than {k} values from any combination of them."
        ),
        params=(
            ("below", str(k - 1)),
            ("kind", kind),
            ("year", str(year)),
            ("tables", ", ".join(tables)),
            ("k", str(k)),
        ),
    )


def single_table(when: Period, k: int) -> Disclosure:
    return Disclosure(
        method="single-table",
        k=k,
        period=when.label,
        words=N_(
            "Counts of people from 1 to {below} are suppressed, with complementary cells "
            "within this table only: not a publication period, not fit to be passed on."
        ),
        params=(("below", str(k - 1)),),
    )


def _linked_exactly(when: Period, k: int, tables: tuple[str, ...]) -> Disclosure:
    """Linked over the year's published periods by exact (not range) complementary suppression."""
    year = when.first.year
    return Disclosure(
        method="linked-tables",
        k=k,
        period=when.label,
        year=year,
        tables=tables,
        words=N_(
            "Counts of people from 1 to {below} are suppressed; complementary cells are chosen "
            "over this report's tables of {year} published so far ({tables}; by month, quarter "
            "and year) so that no suppressed count can be recomputed exactly from them, though "
            "a range may narrow; shares and medians resting on fewer than {k} requests are "
            "suppressed too."
        ),
        params=(
            ("below", str(k - 1)),
            ("year", str(year)),
            ("tables", ", ".join(tables)),
            ("k", str(k)),
        ),
    )


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
    disclosure: Disclosure


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


def _activity(session: Session, when: Period, group_by: GroupBy) -> dict[str, list[int]]:
    """The count cells (``COUNT_CELLS`` order) of every group with activity in the period."""
    key, _ = _group_columns(group_by)

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
    return {
        str(group_key): [int(v or 0) for v in values]
        for group_key, *values in session.execute(activity)
    }


def allocation_report(
    session: Session,
    *,
    when: Period,
    group_by: GroupBy,
    k: int,
    cache: ProtectionCache | None = None,
) -> AllocationReport:
    """Beds offered, used and held, placements and people, per shelter, region or organisation.

    One row per group that has a shelter, ordered by key; ``totals`` holds the same cells for
    the whole network (``occupancy_rate`` = occupied ÷ available bed-nights, None when nothing
    was available). Count cells are suppressed as the module docstring says, with the totals
    row and the relations "column sums to its total" and "people by status = people by sex"
    taken into account.
    """
    if group_by not in GROUPINGS:
        raise InvalidInput("group_by must be one of {groupings}", groupings=", ".join(GROUPINGS))
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

    for group_key, values in _activity(session, when, group_by).items():
        row = rows[group_key]
        for name, value in zip(COUNT_CELLS, values, strict=True):
            setattr(row, name, value)

    def within(column: Any) -> ColumnElement[bool]:
        return and_(column >= when.start, column < when.stop)

    admitted = within(Placement.admitted_at)
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
    if when.published:
        protection = linked_allocation(session, when, k, cache=cache)
        _apply_linked(protection, when, group_by, ordered, totals, k)
        report_disclosure = _linked("allocation", when, k, ALLOCATION_TABLES)
    else:
        _protect_allocation(ordered, totals, k)
        report_disclosure = single_table(when, k)
    return AllocationReport(
        period=when,
        group_by=group_by,
        k=k,
        rows=ordered,
        totals=totals,
        disclosure=report_disclosure,
    )


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


ALLOCATION_TABLES = ("shelter", "organization", "region", "total")
ALLOCATION_SYSTEM_BLOCKS = (
    ("placements_proposed",),
    ("placements_accepted",),
    ("placements_declined",),
    ("placements_expired",),
    ("placements_admitted", *STATUS_CELLS, *SEX_CELLS),
)
# What every shelter-month obeys, and a reader knows: people by status = people by sex, and
# at least one person per admitted placement.
ALLOCATION_EQUALITIES = (tuple((n, 1) for n in STATUS_CELLS) + tuple((n, -1) for n in SEX_CELLS),)
ALLOCATION_AT_LEAST = ((*tuple((n, 1) for n in STATUS_CELLS), ("placements_admitted", -1)),)


def _month(year: int, month: int, as_of: datetime) -> Period:
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    return Period(first=date(year, month, 1), last=last, as_of=as_of)


def _start_month(created: datetime, year: int) -> int:
    created = created.astimezone(UTC)
    if created.year < year:
        return 1
    return created.month if created.year == year else 13


def allocation_system(session: Session, when: Period) -> tuple[System[int], dict[Any, int]]:
    """The year's linked allocation tables and their base cells (shelter x closed month)."""
    year, through = when.first.year, when.closed_months
    shelters = session.execute(
        select(
            Shelter.id, Shelter.region_code, Shelter.organization_id, Shelter.created_at
        ).order_by(Shelter.id)
    ).all()
    base: dict[Any, int] = {}
    start = {sid: _start_month(created, year) for sid, _, _, created in shelters}
    for month in range(1, through + 1):
        for key, values in _activity(session, _month(year, month, when.as_of), "shelter").items():
            sid = int(key)
            for name, value in zip(COUNT_CELLS, values, strict=True):
                if value:
                    base[(sid, month, name)] = value
                    start[sid] = min(start[sid], month)
    system = System(
        units=tuple(sid for sid, *_ in shelters),
        groupings={
            "shelter": {sid: str(sid) for sid, *_ in shelters},
            "region": {sid: region for sid, region, _, _ in shelters},
            "organization": {sid: str(org) for sid, _, org, _ in shelters},
            TOTAL_KEY: {sid: TOTAL_KEY for sid, *_ in shelters},
        },
        identity="shelter",
        blocks=ALLOCATION_SYSTEM_BLOCKS,
        equalities=ALLOCATION_EQUALITIES,
        at_least=ALLOCATION_AT_LEAST,
        start=start,
    )
    return system, base


def linked_allocation(
    session: Session, when: Period, k: int, *, cache: ProtectionCache | None = None
) -> Protection:
    """The protection of every allocation table of ``when``'s year, through its closed months.

    Cells are ``(grouping, key, period id, count)`` with grouping ``shelter``, ``region``,
    ``organization`` or ``total``; see ``shelters.disclosure`` for how they are chosen.
    """
    system, base = allocation_system(session, when)
    return _protected(system, base, k, when.closed_months, cache)


def _protected(
    system: System[Any], base: dict[Any, int], k: int, through: int, cache: ProtectionCache | None
) -> Protection:
    def compute() -> Protection:
        return disclosure.protect(system, base, k, through=through)

    if cache is None:
        return compute()
    return cache.get_or_compute(ProtectionCache.key(system, base, k, through), compute)


def _apply_linked(
    protection: Protection,
    when: Period,
    group_by: GroupBy,
    rows: list[AllocationRow],
    totals: AllocationRow,
    k: int,
) -> None:
    pid = when.calendar
    assert pid is not None
    for grouping, row in [*((group_by, r) for r in rows), (TOTAL_KEY, totals)]:
        for name in COUNT_CELLS:
            cell = (grouping, row.key, pid, name)
            value = protection.values.get(cell, 0)
            setattr(row, name, None if cell in protection.suppressed else value)
            if cell in protection.suppressed:
                row.suppressed.append(name)
        for median, basis in MEDIAN_CELLS.items():
            count = protection.values.get((grouping, row.key, pid, basis), 0)
            if 1 <= count < k and getattr(row, median) is not None:
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
    disclosure: Disclosure


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
    return GrantsReport(period=when, rows=rows, disclosure=_no_counts(when))


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
    disclosure: Disclosure


UNKNOWN_REGION = "unknown"


def _first_events(session: Session, year: int, start: datetime, stop: datetime) -> Subquery:
    """(request_id, reason, first_at): each request's first unmet event per reason in ``year``.

    Only events before ``stop`` count, and only pairs whose first event is at or after
    ``start`` are kept (both inside ``year``).
    """
    year_start = datetime(year, 1, 1, tzinfo=UTC)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        codes = func.json_array_elements_text(RunOutcome.reason_codes).table_valued("value")
    else:
        codes = func.json_each(RunOutcome.reason_codes).table_valued("value")
    unplaced = (
        select(
            RunOutcome.request_id.label("request_id"),
            cast(codes.c.value, String).label("reason"),
            RunOutcome.recorded_at.label("at"),
        )
        .select_from(RunOutcome)
        .join(MatchingRun, MatchingRun.id == RunOutcome.run_id)
        .join(codes, true())
        .where(
            RunOutcome.placed == false(),
            MatchingRun.dry_run == false(),
            RunOutcome.recorded_at >= year_start,
            RunOutcome.recorded_at < stop,
        )
    )
    declined = select(
        Placement.request_id,
        literal("declined:") + func.coalesce(Placement.decline_reason, "other"),
        Placement.ended_at,
    ).where(
        Placement.status == "declined",
        Placement.ended_at >= year_start,
        Placement.ended_at < stop,
    )
    events = union_all(unplaced, declined).subquery("events")
    first_at = func.min(events.c.at)
    return (
        select(
            events.c.request_id.label("request_id"),
            events.c.reason.label("reason"),
            first_at.label("first_at"),
        )
        .group_by(events.c.request_id, events.c.reason)
        .having(first_at >= start)
        .subquery("firsts")
    )


def _unmet_counts(
    session: Session, year: int, start: datetime, stop: datetime, *, by_month: bool
) -> dict[tuple[str, str, int], list[int]]:
    """(region, reason, month or 0) → [requests, people by status] over first events."""
    firsts = _first_events(session, year, start, stop)
    region = func.coalesce(PlacementRequest.region_code, UNKNOWN_REGION)
    month: ColumnElement[int] = literal(0)
    if by_month:
        month = literal(1) + sum(
            (
                case((firsts.c.first_at >= datetime(year, m, 1, tzinfo=UTC), 1), else_=0)
                for m in range(2, 13)
            ),
            start=literal(0),
        )
    stmt = (
        select(
            region,
            firsts.c.reason,
            month.label("month"),
            func.count(),
            *(func.sum(getattr(PlacementRequest, name)) for name in STATUS_CELLS),
        )
        .select_from(firsts)
        .join(PlacementRequest, PlacementRequest.id == firsts.c.request_id)
        .group_by(region, firsts.c.reason, month)
    )
    return {
        (str(reg), str(reason), int(m)): [int(n), *(int(v or 0) for v in people)]
        for reg, reason, m, n, *people in session.execute(stmt)
    }


UNMET_AT_LEAST = ((*tuple((n, 1) for n in STATUS_CELLS), ("requests", -1)),)


def _unmet_key(region: str, reason: str) -> str:
    return f"{region} {reason}"


def linked_unmet_demand(
    session: Session, when: Period, k: int, *, cache: ProtectionCache | None = None
) -> tuple[Protection, list[tuple[str, str]]]:
    """The protection of every unmet-demand table of ``when``'s year, and its rows.

    Rows are the (region, reason) pairs with unmet demand in the year's closed months; their
    cells are ``("row", "<region> <reason>", period id, count)``. Rows share no published
    relation (no totals; rows of different reasons share requests), so each row's months,
    quarters and year form their own linked table.
    """
    year, through = when.first.year, when.closed_months
    counts: dict[tuple[str, str, int], list[int]] = {}
    if through:
        stop = _month(year, through, when.as_of).stop
        counts = _unmet_counts(session, year, datetime(year, 1, 1, tzinfo=UTC), stop, by_month=True)
    units = sorted({(region, reason) for region, reason, _ in counts})
    base: dict[Any, int] = {}
    start: dict[tuple[str, str], int] = {}
    for (region, reason, month), values in counts.items():
        start[(region, reason)] = min(start.get((region, reason), 13), month)
        for name, value in zip(UNMET_CELLS, values, strict=True):
            if value:
                base[((region, reason), month, name)] = value
    system = System(
        units=tuple(units),
        groupings={"row": {u: _unmet_key(*u) for u in units}},
        identity="row",
        blocks=(UNMET_CELLS,),
        at_least=UNMET_AT_LEAST,
        start=start,
    )
    return _protected(system, base, k, through, cache), units


def unmet_demand_report(
    session: Session, *, when: Period, k: int, cache: ProtectionCache | None = None
) -> UnmetDemandReport:
    """Requests that could not be placed, by the request's region and reason code.

    The record of unmet demand is (a) every unplaced outcome of a matching run that was not a
    dry run, under each of its reason codes (solver reasons without shelter ids, e.g.
    ``missing_service:child_psychologist``, ``capacity_taken``), and (b) every placement
    declined, under ``declined:<reason>``. A request counts once per region, reason and
    calendar year: on the date it was first left unplaced for that reason that year. So the
    months of a year add up to its quarters and the year, and rows of different reasons may
    share requests (they are not meant to be added up; no totals are published).
    ``requests`` and the people cells are counts about people: for a publication period the
    cells are protected over every unmet-demand table of the year (``linked_unmet_demand``,
    where every row lists the year's (region, reason) pairs so far, zeros included); for any
    other window (admins only) each small cell is suppressed within this table.
    """
    rows: list[UnmetRow] = []
    if when.published:
        protection, units = linked_unmet_demand(session, when, k, cache=cache)
        pid = when.calendar or "y"
        for region, reason in units:
            row = UnmetRow(region, reason, 0, 0, 0, 0)
            for name in UNMET_CELLS:
                cell = ("row", _unmet_key(region, reason), pid, name)
                secret = cell in protection.suppressed
                setattr(row, name, None if secret else protection.values.get(cell, 0))
                if secret:
                    row.suppressed.append(name)
            rows.append(row)
        return UnmetDemandReport(
            period=when, k=k, rows=rows, disclosure=_linked("unmet-demand", when, k, ("row",))
        )
    totals: dict[tuple[str, str], list[int]] = {}
    for year in range(when.first.year, when.last.year + 1):
        start = max(when.start, datetime(year, 1, 1, tzinfo=UTC))
        stop = min(when.stop, datetime(year + 1, 1, 1, tzinfo=UTC))
        for (region, reason, _), values in _unmet_counts(
            session, year, start, stop, by_month=False
        ).items():
            into = totals.setdefault((region, reason), [0] * len(UNMET_CELLS))
            for i, value in enumerate(values):
                into[i] += value
    for (region, reason), (n, adult, child, minor) in sorted(totals.items()):
        rows.append(UnmetRow(region, reason, n, adult, child, minor))
    cells = {
        (i, name): int(getattr(row, name) or 0)
        for i, row in enumerate(rows)
        for name in UNMET_CELLS
    }
    hidden = suppress(cells, [], k)
    for i, row in enumerate(rows):
        for name in UNMET_CELLS:
            if (i, name) in hidden:
                setattr(row, name, None)
                row.suppressed.append(name)
    return UnmetDemandReport(period=when, k=k, rows=rows, disclosure=single_table(when, k))


# --- grants disclosure --------------------------------------------------------------------------


def _no_counts(when: Period) -> Disclosure:
    return Disclosure(
        method="none",
        k=None,
        period=when.label,
        words=N_(
            "Bed-nights and money are not counts of people: nothing in this report is suppressed."
        ),
    )


__all__ = [
    "GROUPINGS",
    "AllocationReport",
    "AllocationRow",
    "Disclosure",
    "FairnessReport",
    "FairnessRow",
    "GrantRow",
    "GrantsReport",
    "Period",
    "UnmetDemandReport",
    "UnmetRow",
    "allocation_relations",
    "allocation_report",
    "fairness_report",
    "grants_report",
    "linked_allocation",
    "linked_unmet_demand",
    "period",
    "period_for",
    "unmet_demand_report",
]


# --- time to placement ------------------------------------------------------------------------

WAIT_CELLS = ("requests", "placed", "escalated", "waiting")
WAIT_MEDIANS = {"median_hours_to_proposal": "proposed", "median_hours_to_admission": "placed"}
ALL_REGIONS = "all"


@dataclass
class WaitRow:
    """Requests made in the period in one region at one priority, and what became of them."""

    region: str
    priority: int
    requests: int | None = 0
    placed: int | None = 0
    escalated: int | None = 0
    waiting: int | None = 0
    median_hours_to_proposal: float | None = None
    median_hours_to_admission: float | None = None
    suppressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WaitReport:
    period: Period
    k: int
    rows: list[WaitRow]
    disclosure: Disclosure


def _first_proposals() -> Subquery:
    """(request_id, at): when each request was first proposed somewhere."""
    return (
        select(Placement.request_id, func.min(Placement.proposed_at).label("at"))
        .group_by(Placement.request_id)
        .subquery("first_proposal")
    )


def band_of(age: int, bands: Sequence[tuple[str, int, int]]) -> str | None:
    """The name of the ``(name, low, high)`` band holding ``age``, or None."""
    return next((name for name, low, high in bands if low <= age <= high), None)


def _median(hours: list[float]) -> float | None:
    if not hours:
        return None
    ordered = sorted(hours)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value, 1)


def time_to_placement_report(session: Session, *, when: Period, k: int) -> WaitReport:
    """Requests made in ``when`` by region of origin and priority (SPEC: escalation).

    For each: how many, how many were placed (admitted, by now), escalated, still waiting, and
    the median hours from the request to its first proposal and to admission. One row per
    priority sums every region (``region`` ``all``). Counts from 1 to k-1 are suppressed with
    complementary cells within the table (the regions of a priority sum to its ``all`` row);
    a median over fewer than k requests is suppressed too.
    """
    first_proposal = _first_proposals()
    admission = (
        select(Placement.request_id, func.min(Placement.admitted_at).label("at"))
        .where(Placement.admitted_at.is_not(None))
        .group_by(Placement.request_id)
        .subquery("admission")
    )
    found = session.execute(
        select(
            func.coalesce(PlacementRequest.region_code, UNKNOWN_REGION),
            PlacementRequest.priority,
            PlacementRequest.status,
            PlacementRequest.created_at,
            PlacementRequest.escalated_at,
            first_proposal.c.at,
            admission.c.at,
        )
        .outerjoin(first_proposal, first_proposal.c.request_id == PlacementRequest.id)
        .outerjoin(admission, admission.c.request_id == PlacementRequest.id)
        .where(PlacementRequest.created_at >= when.start, PlacementRequest.created_at < when.stop)
    ).all()
    rows: dict[tuple[str, int], WaitRow] = {}
    hours: dict[tuple[str, int], dict[str, list[float]]] = {}
    for region, priority, status, created, escalated, proposed, admitted in found:
        for key in ((str(region), int(priority)), (ALL_REGIONS, int(priority))):
            row = rows.setdefault(key, WaitRow(region=key[0], priority=key[1]))
            spans = hours.setdefault(key, {"proposed": [], "placed": []})
            row.requests = (row.requests or 0) + 1
            row.escalated = (row.escalated or 0) + (escalated is not None)
            row.waiting = (row.waiting or 0) + (status == "pending")
            if proposed is not None:
                spans["proposed"].append((proposed - created).total_seconds() / 3600)
            if admitted is not None:
                row.placed = (row.placed or 0) + 1
                spans["placed"].append((admitted - created).total_seconds() / 3600)
    for key, row in rows.items():
        row.median_hours_to_proposal = _median(hours[key]["proposed"])
        row.median_hours_to_admission = _median(hours[key]["placed"])
    ordered = sorted(rows.values(), key=lambda r: (-r.priority, r.region == ALL_REGIONS, r.region))
    _protect_waits(ordered, {key: {n: len(v) for n, v in h.items()} for key, h in hours.items()}, k)
    return WaitReport(period=when, k=k, rows=ordered, disclosure=single_table(when, k))


def _protect_waits(
    rows: list[WaitRow], bases: dict[tuple[str, int], dict[str, int]], k: int
) -> None:
    values = {
        ((r.region, r.priority), name): int(getattr(r, name) or 0)
        for r in rows
        for name in WAIT_CELLS
    }
    relations = []
    for priority in sorted({r.priority for r in rows}):
        regions = [r.region for r in rows if r.priority == priority and r.region != ALL_REGIONS]
        for name in WAIT_CELLS:
            relations.append(
                Relation(
                    (
                        *(((((region, priority), name), 1)) for region in regions),
                        (((ALL_REGIONS, priority), name), -1),
                    )
                )
            )
    hidden = suppress(
        values,
        relations,
        k,
        totals=[
            ((r.region, r.priority), n) for r in rows if r.region == ALL_REGIONS for n in WAIT_CELLS
        ],
    )
    for row in rows:
        key = (row.region, row.priority)
        for name in WAIT_CELLS:
            if (key, name) in hidden:
                setattr(row, name, None)
                row.suppressed.append(name)
        for median, basis in WAIT_MEDIANS.items():
            if 1 <= bases[key][basis] < k and getattr(row, median) is not None:
                setattr(row, median, None)
                row.suppressed.append(median)


# --- fairness ---------------------------------------------------------------------------------

FairnessBy = Literal["status", "sex", "age_band", "region"]
FAIRNESS_GROUPINGS: tuple[FairnessBy, ...] = ("status", "sex", "age_band", "region")
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-5", 0, 5),
    ("6-11", 6, 11),
    ("12-17", 12, 17),
    ("18-24", 18, 24),
    ("25-59", 25, 59),
    ("60+", 60, 10_000),
)
UNKNOWN_AGE = "unknown"
DECLINE_CELLS = tuple(f"declined_{reason}" for reason in DECLINE_REASONS)
# Counts behind the published figures. Only ``requests`` and the declines are columns; the rest
# a reader knows through the shares (share x base), so they are protected as cells too.
FAIRNESS_CELLS = (
    "requests",
    "placed",
    "not_placed",
    "placed_preferring",
    "placed_outside",
    "placed_inside",
    *DECLINE_CELLS,
)
FAIRNESS_SHARES = {
    "placed_share": ("placed", "not_placed", "requests"),
    "outside_preferred_share": ("placed_outside", "placed_inside", "placed_preferring"),
}
FAIRNESS_MEDIANS = ("median_hours_to_proposal", "median_hours_to_admission")
FAIRNESS_TOTAL = "all"
PLACED_SHARE_GAP = 0.10
PLACED_SHARE_RATIO = 0.8
OUTSIDE_SHARE_GAP = 0.10
WAIT_RATIO = 1.5
FAIRNESS_RULE = N_(
    "Flags, only for groups of at least {k} requests and only on published figures: "
    "placed_share_low when a group's share placed is more than 10 percentage points below "
    "that of all requests and under 0.8 of it (the four-fifths rule of adverse-impact "
    "analysis); proposal_wait_long or admission_wait_long when its median hours to a first "
    "proposal or to admission are more than 50 % above those of all requests; "
    "outside_preferred_high when its share placed outside the preferred regions is more than "
    "10 percentage points above that of all requests. A request counts in every group one of "
    "its members belongs to, so group rows overlap and do not add up to all requests (except "
    "by region)."
)


@dataclass
class FairnessRow:
    """Outcomes of the requests made in the period that belong to one group of people."""

    group: str
    requests: int | None = 0
    placed_share: float | None = None
    median_hours_to_proposal: float | None = None
    median_hours_to_admission: float | None = None
    outside_preferred_share: float | None = None
    declined_no_capacity: int | None = 0
    declined_not_eligible: int | None = 0
    declined_safety_concern: int | None = 0
    declined_staffing: int | None = 0
    declined_other: int | None = 0
    flags: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FairnessReport:
    period: Period
    by: FairnessBy
    k: int
    rows: list[FairnessRow]
    total: FairnessRow
    disclosure: Disclosure
    rule: str = FAIRNESS_RULE

    def rule_in(self, translate: Callable[[str], str]) -> str:
        """The flags' thresholds in the words ``translate`` gives."""
        return translate(self.rule).format(k=self.k)


@dataclass
class _Outcome:
    """One request made in the period, as the fairness report needs it."""

    groups: dict[FairnessBy, set[str]]
    month: int
    placed: bool
    preferring: bool
    outside: bool
    hours_to_proposal: float | None
    hours_to_admission: float | None
    declines: dict[str, int]


def _age_band(age: int) -> str:
    return band_of(age, AGE_BANDS) or UNKNOWN_AGE


def _fairness_outcomes(session: Session, when: Period) -> list[_Outcome]:
    first_proposal = _first_proposals()
    found = session.execute(
        select(
            PlacementRequest.id,
            func.coalesce(PlacementRequest.region_code, UNKNOWN_REGION),
            PlacementRequest.preferred_regions,
            PlacementRequest.created_at,
            PlacementRequest.people_adult,
            PlacementRequest.people_accompanied_child,
            PlacementRequest.people_unaccompanied_minor,
            PlacementRequest.people_female,
            PlacementRequest.people_male,
            PlacementRequest.people_other,
            Case.members,
            first_proposal.c.at,
        )
        .join(Case, Case.id == PlacementRequest.case_id)
        .outerjoin(first_proposal, first_proposal.c.request_id == PlacementRequest.id)
        .where(PlacementRequest.created_at >= when.start, PlacementRequest.created_at < when.stop)
        .order_by(PlacementRequest.id)
    ).all()
    ids = [row[0] for row in found]
    admissions: dict[int, tuple[datetime, str]] = {}
    declines: dict[int, dict[str, int]] = {}
    for start in range(0, len(ids), 500):  # keep IN lists within every engine's limit
        chunk = ids[start : start + 500]
        for request_id, admitted, region in session.execute(
            select(Placement.request_id, Placement.admitted_at, Shelter.region_code)
            .join(Shelter, Shelter.id == Placement.shelter_id)
            .where(Placement.request_id.in_(chunk), Placement.admitted_at.is_not(None))
        ):
            if admitted is None:
                continue
            if request_id not in admissions or admitted < admissions[request_id][0]:
                admissions[request_id] = (admitted, region)
        for request_id, reason, count in session.execute(
            select(Placement.request_id, Placement.decline_reason, func.count())
            .where(Placement.request_id.in_(chunk), Placement.status == "declined")
            .group_by(Placement.request_id, Placement.decline_reason)
        ):
            named = reason if reason in DECLINE_REASONS else "other"
            per = declines.setdefault(request_id, {})
            per[named] = per.get(named, 0) + int(count)
    outcomes = []
    for (
        request_id,
        region,
        preferred,
        created,
        adult,
        accompanied,
        unaccompanied,
        female,
        male,
        other,
        members,
        proposed,
    ) in found:
        counts = dict(zip(STATUSES, (adult, accompanied, unaccompanied), strict=True))
        sexes = dict(zip(SEXES, (female, male, other), strict=True))
        ages = {_age_band(int(m["age"])) for m in members or () if "age" in m}
        admission = admissions.get(request_id)
        outcomes.append(
            _Outcome(
                groups={
                    "status": {g for g, n in counts.items() if n},
                    "sex": {g for g, n in sexes.items() if n},
                    "age_band": ages or {UNKNOWN_AGE},
                    "region": {str(region)},
                },
                month=created.astimezone(UTC).month,
                placed=admission is not None,
                preferring=admission is not None and bool(preferred),
                outside=admission is not None
                and bool(preferred)
                and admission[1] not in set(preferred),
                hours_to_proposal=None
                if proposed is None
                else (proposed - created).total_seconds() / 3600,
                hours_to_admission=None
                if admission is None
                else (admission[0] - created).total_seconds() / 3600,
                declines=declines.get(request_id, {}),
            )
        )
    return outcomes


def _fairness_groups(by: FairnessBy, outcomes: list[_Outcome]) -> list[str]:
    if by == "status":
        return list(STATUSES)
    if by == "sex":
        return list(SEXES)
    present = {g for o in outcomes for g in o.groups[by]}
    if by == "age_band":
        return [name for name, _, _ in AGE_BANDS] + (
            [UNKNOWN_AGE] if UNKNOWN_AGE in present else []
        )
    return sorted(present, key=lambda g: (g == UNKNOWN_REGION, g))


def _fairness_cells(outcomes: list[_Outcome]) -> tuple[dict[str, int], dict[str, list[float]]]:
    cells = dict.fromkeys(FAIRNESS_CELLS, 0)
    hours: dict[str, list[float]] = {name: [] for name in FAIRNESS_MEDIANS}
    for o in outcomes:
        cells["requests"] += 1
        cells["placed" if o.placed else "not_placed"] += 1
        if o.preferring:
            cells["placed_preferring"] += 1
            cells["placed_outside" if o.outside else "placed_inside"] += 1
        for reason, count in o.declines.items():
            cells[f"declined_{reason}"] += count
        if o.hours_to_proposal is not None:
            hours["median_hours_to_proposal"].append(o.hours_to_proposal)
        if o.hours_to_admission is not None:
            hours["median_hours_to_admission"].append(o.hours_to_admission)
    return cells, hours


FairnessTables = dict[str, dict[str, dict[str, int]]]
"""Counts by period id (``m01``..``y``, or ``window``), group (``all`` last) and cell."""


def _fairness_hidden(
    tables: FairnessTables, group_keys: Sequence[str], k: int, *, adds_up: bool
) -> set[tuple[str, str, str]]:
    """Suppressed ``(period, group, cell)`` of tables a reader may hold together.

    Relations a reader knows: within every row, requests = placed + not placed and placed with
    a preference = outside + inside; when the groups partition the requests (``adds_up``: by
    region), each cell of the ``all`` row is the sum of the groups' cells; and a quarter is the
    sum of its months, the year of its quarters, whenever ``tables`` holds them all. Quarter,
    year and ``all`` cells are complements only after month and group cells.
    """
    keys = [*group_keys, FAIRNESS_TOTAL]
    values = {
        (pid, g, name): tables[pid][g][name]
        for pid in tables
        for g in keys
        for name in FAIRNESS_CELLS
    }
    relations = []
    for pid in tables:
        for g in keys:
            relations.append(
                Relation(
                    (
                        ((pid, g, "requests"), 1),
                        ((pid, g, "placed"), -1),
                        ((pid, g, "not_placed"), -1),
                    )
                )
            )
            relations.append(
                Relation(
                    (
                        ((pid, g, "placed_preferring"), 1),
                        ((pid, g, "placed_outside"), -1),
                        ((pid, g, "placed_inside"), -1),
                    )
                )
            )
        for name in FAIRNESS_CELLS if adds_up else ():
            relations.append(
                Relation(
                    (*(((pid, g, name), 1) for g in group_keys), ((pid, FAIRNESS_TOTAL, name), -1))
                )
            )
    parts = {"y": [f"q{q}" for q in range(1, 5)]} | {
        f"q{q}": [f"m{m:02d}" for m in range(3 * q - 2, 3 * q + 1)] for q in range(1, 5)
    }
    for whole, pieces in parts.items():
        if whole in tables and all(piece in tables for piece in pieces):
            for g in keys:
                for name in FAIRNESS_CELLS:
                    relations.append(
                        Relation(
                            (*(((piece, g, name), 1) for piece in pieces), ((whole, g, name), -1))
                        )
                    )
    totals = [cell for cell in values if cell[0] in parts or cell[1] == FAIRNESS_TOTAL]
    return suppress(values, relations, k, totals=totals)


def fairness_report(session: Session, *, when: Period, by: FairnessBy, k: int) -> FairnessReport:
    """Outcomes of the placement requests made in ``when``, per group of people.

    Groups (``by``): member status, sex, age band (0-5, 6-11, 12-17, 18-24, 25-59, 60+; a
    request whose case was purged has no ages left and counts as ``unknown``), or region of
    origin (the request's ``region_code``). **A request belongs to every group one of its
    members belongs to**: a mother with her son counts in ``adult`` and ``accompanied_child``,
    in ``female`` and ``male``. Group rows therefore overlap and do not add up to the total row
    (all requests), except by region, where every request has one region.

    Per group: ``requests``; ``placed_share``, requests admitted somewhere by ``as_of`` over
    requests; the medians of the hours from the request to its first proposal (over requests
    proposed) and to its first admission (over requests admitted); ``outside_preferred_share``,
    among admitted requests that named preferred regions, those first admitted to a shelter
    outside them; ``declined_<reason>``, declined placements of the group's requests by reason.
    Shares are rounded to 0.001, medians to 0.1 h.

    Disclosure: counts from 1 to k-1 are suppressed with complementary cells
    (``suppression.suppress``), reading a share as its numerator and the numerator's complement
    (placed and not placed), so a share is published only when both and its base are, and its
    base is at least k; a median over fewer than k values is suppressed. For a publication
    period the cells are chosen over every published month, quarter and the year of its year
    together (a quarter is the sum of its months), so a funder holding all of them cannot
    recompute a hidden count exactly (``_linked_exactly``; ranges may narrow, as the module
    ``suppression`` says); any other window (admins only) is protected within its table
    (``single_table``). The total row is the same in every grouping: its cells are those the
    by-region tables suppress, where it is the sum of the rows, so that no grouping publishes a
    total cell another grouping needed hidden. Not protected: tables asked for at different
    times (placed counts grow as old requests are placed, and the pattern may move with them).

    Flags (``FAIRNESS_RULE``) compare a group of at least k published requests with the total
    row, on published figures only.
    """
    if when.published:
        # Every published period of the year, protected together: a quarter is the sum of its
        # months, and a funder may ask for all of them.
        year = when.first.year
        closed = 12 if year < when.as_of.astimezone(UTC).year else when.closed_months
        whole = Period(first=date(year, 1, 1), last=date(year, 12, 31), as_of=when.as_of)
        outcomes = [o for o in _fairness_outcomes(session, whole) if o.month <= closed]
        periods = {
            pid: months for pid, months in disclosure.PERIODS.items() if max(months) <= closed
        }
        asked = when.calendar or ""
    else:
        outcomes = _fairness_outcomes(session, when)
        periods = {"window": tuple(range(1, 13))}
        asked = "window"

    def cells_of(
        grouping: FairnessBy, keys: Sequence[str]
    ) -> tuple[FairnessTables, dict[str, dict[str, list[float]]]]:
        tables: FairnessTables = {}
        hours: dict[str, dict[str, list[float]]] = {}
        for pid, months in periods.items():
            within = [o for o in outcomes if o.month in months]
            tables[pid] = {}
            for g in [*keys, FAIRNESS_TOTAL]:
                chosen = (
                    within
                    if g == FAIRNESS_TOTAL
                    else [o for o in within if g in o.groups[grouping]]
                )
                tables[pid][g], spans = _fairness_cells(chosen)
                if pid == asked:
                    hours[g] = spans
        return tables, hours

    region_keys = _fairness_groups("region", outcomes)
    region_tables, region_hours = cells_of("region", region_keys)
    hidden_total = {
        (pid, cell)
        for pid, g, cell in _fairness_hidden(region_tables, region_keys, k, adds_up=True)
        if g == FAIRNESS_TOTAL
    }
    keys = region_keys if by == "region" else _fairness_groups(by, outcomes)
    tables, hours = (region_tables, region_hours) if by == "region" else cells_of(by, keys)
    hidden = {
        (g, cell)
        for pid, g, cell in _fairness_hidden(tables, keys, k, adds_up=by == "region")
        if pid == asked and g != FAIRNESS_TOTAL
    } | {(FAIRNESS_TOTAL, cell) for pid, cell in hidden_total if pid == asked}
    if by == "region":  # only the regions the period has
        keys = [g for g in keys if tables[asked][g]["requests"]]
    table = tables[asked]
    total = _fairness_row(FAIRNESS_TOTAL, table[FAIRNESS_TOTAL], hours[FAIRNESS_TOTAL], hidden, k)
    rows = [_fairness_row(g, table[g], hours[g], hidden, k) for g in keys]
    for row in rows:
        row.flags = _fairness_flags(row, total, k)
    disclosed = (
        _linked_exactly(when, k, tuple(dict.fromkeys((by, "region", "total"))))
        if when.published
        else single_table(when, k)
    )
    return FairnessReport(period=when, by=by, k=k, rows=rows, total=total, disclosure=disclosed)


def _fairness_row(
    group: str,
    cells: dict[str, int],
    hours: dict[str, list[float]],
    hidden: set[tuple[str, str]],
    k: int,
) -> FairnessRow:
    row = FairnessRow(group=group)
    for name in ("requests", *DECLINE_CELLS):
        hide = (group, name) in hidden
        setattr(row, name, None if hide else cells[name])
        if hide:
            row.suppressed.append(name)
    for share, (numerator, complement, base) in FAIRNESS_SHARES.items():
        parts = (numerator, complement, base)
        if cells[base] == 0:
            continue  # no share to give, nothing to hide
        if cells[base] < k or any((group, part) in hidden for part in parts):
            row.suppressed.append(share)
        else:
            setattr(row, share, round(cells[numerator] / cells[base], 3))
    for median in FAIRNESS_MEDIANS:
        if 1 <= len(hours[median]) < k:
            row.suppressed.append(median)
        else:
            setattr(row, median, _median(hours[median]))
    return row


def _fairness_flags(row: FairnessRow, total: FairnessRow, k: int) -> list[str]:
    """The thresholds of ``FAIRNESS_RULE``, on published figures of groups of k requests or more."""
    if row.requests is None or row.requests < k:
        return []
    flags = []
    group, overall = row.placed_share, total.placed_share
    if (
        group is not None
        and overall is not None
        and overall - group > PLACED_SHARE_GAP
        and group < PLACED_SHARE_RATIO * overall
    ):
        flags.append("placed_share_low")
    for median, flag in zip(
        FAIRNESS_MEDIANS, ("proposal_wait_long", "admission_wait_long"), strict=True
    ):
        mine, all_of = getattr(row, median), getattr(total, median)
        if mine is not None and all_of is not None and mine > WAIT_RATIO * all_of:
            flags.append(flag)
    group, overall = row.outside_preferred_share, total.outside_preferred_share
    if group is not None and overall is not None and group - overall > OUTSIDE_SHARE_GAP:
        flags.append("outside_preferred_high")
    return flags
