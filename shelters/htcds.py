"""People assisted in a year, counted in the terms of HTCDS and the CTDC's published tables.

A ministry, an NGO and IOM asking "how many people did the shelters assist in 2026, by age,
sex, region, type of exploitation and who referred them" should get the same numbers from the
same method. This module is that method; docs/htcds.md maps every field to its definition.

- **Assisted**: a person is assisted in a year when a placement of their case was admitted
  during that year (UTC). Each person counts once a year, however many admissions they had.
- **Tables**: one per field (age band, sex, member status, region of origin, type of
  exploitation, referral source), each giving people per value, and the year's total. A case's
  exploitation types and referral source are the case's, counted for each of its members; a
  person with several types is counted under each, so that table does not add up to the total.
- **Protection**: counts of people from 1 to k-1 are suppressed (k = 11, as CTDC k-anonymises
  its Global Dataset), and complementary cells are chosen across all the tables of the export
  at once (every single-valued table adds up to the one total), so no suppressed count can be
  recomputed from the others.
- **Purged cases** (retention) keep their people counts by status and sex on the request; their
  age bands, exploitation types and referral source are gone and count as ``unknown``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from placement.eligibility import member_status
from placement.problem import Member
from shelters.catalogue import EXPLOITATION_TYPES, REFERRAL_SOURCES
from shelters.errors import N_
from shelters.models import Case, Placement, PlacementRequest, Region, utcnow
from shelters.profiles import SEXES, STATUSES
from shelters.reports import STATUS_CELLS, Disclosure, Period, band_of
from shelters.suppression import Relation, suppress

UNKNOWN = "unknown"
NOT_RECORDED = "not_recorded"
# The age bands of the CTDC Global Dataset's ``ageBroad`` variable.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-8", 0, 8),
    ("9-17", 9, 17),
    ("18-20", 18, 20),
    ("21-23", 21, 23),
    ("24-26", 24, 26),
    ("27-29", 27, 29),
    ("30-38", 30, 38),
    ("39-47", 39, 47),
    ("48+", 48, 200),
)
FIELDS = (
    "age_band",
    "sex",
    "member_status",
    "region",
    "exploitation_type",
    "referral_source",
)
# Tables in which every person has exactly one value: they add up to the total.
SINGLE_VALUED = ("age_band", "sex", "member_status", "region", "referral_source")
SEX_OF = {"people_female": "female", "people_male": "male", "people_other": "other"}
TOTAL = ("total", "all")


def age_band(age: int | None) -> str:
    """The CTDC ``ageBroad`` band of an age in whole years."""
    if age is None:
        return UNKNOWN
    return band_of(age, AGE_BANDS) or UNKNOWN


@dataclass
class HtcdsTable:
    field: str
    rows: list[tuple[str, int | None]]


@dataclass
class HtcdsExport:
    year: int
    k: int
    total: int | None
    tables: list[HtcdsTable]
    suppressed: list[str] = field(default_factory=list)
    disclosure: Disclosure | None = None


def _values(fieldname: str, regions: list[str]) -> list[str]:
    """Every value a table lists, even with no one in it, in a fixed order."""
    if fieldname == "age_band":
        return [name for name, _, _ in AGE_BANDS] + [UNKNOWN]
    if fieldname == "sex":
        return list(SEXES)
    if fieldname == "member_status":
        return list(STATUSES)
    if fieldname == "region":
        return [*regions, UNKNOWN]
    if fieldname == "exploitation_type":
        return [*EXPLOITATION_TYPES, NOT_RECORDED]
    return [*REFERRAL_SOURCES, NOT_RECORDED]


def _assisted(session: Session, year: int) -> list[tuple[Case, PlacementRequest]]:
    """Each case with an admission in ``year``, once, with the request admitted first."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    found = session.execute(
        select(Case, PlacementRequest)
        .join(PlacementRequest, PlacementRequest.case_id == Case.id)
        .join(Placement, Placement.request_id == PlacementRequest.id)
        .where(Placement.admitted_at >= start, Placement.admitted_at < stop)
        .order_by(Case.id, Placement.admitted_at)
    ).all()
    seen: dict[int, tuple[Case, PlacementRequest]] = {}
    for case, request in found:
        seen.setdefault(case.id, (case, request))
    return list(seen.values())


def export(session: Session, *, year: int, k: int, majority_age: int) -> HtcdsExport:
    """The year's people assisted, table by table, protected as the module says."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in FIELDS}
    total = 0
    for case, request in _assisted(session, year):
        region = request.region_code or case.current_region or UNKNOWN
        types = list(case.exploitation_types or []) or [NOT_RECORDED]
        referral = case.referral_source or NOT_RECORDED
        if case.purged_at is not None or not case.members:
            people = sum(int(getattr(request, name) or 0) for name in STATUS_CELLS)
            for name in STATUS_CELLS:
                counts["member_status"][name.removeprefix("people_")] += int(
                    getattr(request, name) or 0
                )
            for column, sex in SEX_OF.items():
                counts["sex"][sex] += int(getattr(request, column) or 0)
            counts["age_band"][UNKNOWN] += people
        else:
            members = [
                Member(m["ref"], m["sex"], int(m["age"]), m.get("guardian_ref"))
                for m in case.members
            ]
            people = len(members)
            for m in members:
                counts["member_status"][member_status(m, members, majority_age)] += 1
                counts["sex"][m.sex] += 1
                counts["age_band"][age_band(m.age)] += 1
        total += people
        counts["region"][region] += people
        counts["referral_source"][referral] += people
        for kind in types:
            counts["exploitation_type"][kind] += people
    regions = sorted(session.scalars(select(Region.code)))
    values: dict[tuple[str, str], int] = {}
    for name in FIELDS:
        for value in _values(name, regions):
            values[(name, value)] = counts[name][value]
    values[TOTAL] = total
    relations = [
        Relation(
            (
                *(((name, value), 1) for value in _values(name, regions)),
                (TOTAL, -1),
            )
        )
        for name in SINGLE_VALUED
    ]
    hidden = suppress(values, relations, k, totals=[TOTAL])
    tables = [
        HtcdsTable(
            name,
            [
                (value, None if (name, value) in hidden else values[(name, value)])
                for value in _values(name, regions)
            ],
        )
        for name in FIELDS
    ]
    when = Period(date(year, 1, 1), date(year, 12, 31), utcnow())
    disclosure = Disclosure(
        method="linked-tables",
        k=k,
        period=when.label,
        year=year,
        tables=FIELDS,
        words=N_(
            "Counts of people from 1 to {below} are suppressed; complementary cells are chosen "
            "across every table of this export at once (each adds up to the year's total, but "
            "for exploitation types, where one person may count under several), so that no "
            "suppressed count can be recomputed from them."
        ),
        params=(("below", str(k - 1)),),
    )
    return HtcdsExport(
        year=year,
        k=k,
        total=None if TOTAL in hidden else total,
        tables=tables,
        suppressed=sorted(f"{name}:{value}" for name, value in hidden if (name, value) != TOTAL),
        disclosure=disclosure,
    )
