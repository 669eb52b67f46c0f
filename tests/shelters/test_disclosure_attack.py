"""An attacker with every table a funder can ask for, and a linear programme.

Hypothesis draws small worlds (shelters in organisations and regions, placements and unmet
requests over the months of 2025). The attacker asks for every publication period (12 months,
4 quarters, the year) of every report kind: allocation by shelter, organisation and region
with the totals row, and unmet demand; also each period again when it was first published (at
the end of its quarter), as a funder would have seen it then. Every published cell is a known
sum of base cells (unit x month x count); the attacker adds non-negativity and what every
shelter-month obeys (people by status = people by sex, at least one person per admitted
placement; in unmet demand at least one person per request), then solves min and max of each
suppressed cell with GLOP. No suppressed cell may come out exactly, and no cell from 1 to k-1
in an interval narrower than k.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.linear_solver import pywraplp
from sqlalchemy.orm import Session

from shelters import reports
from shelters.disclosure import PERIODS, ProtectionCache
from shelters.identity import Role
from shelters.models import Case, MatchingRun, Placement, PlacementRequest, RunOutcome
from shelters.reports import COUNT_CELLS, SEX_CELLS, STATUS_CELLS, TOTAL_KEY, UNMET_CELLS
from tests.conftest import World

YEAR = 2025
AFTER = datetime(YEAR + 1, 1, 2, tzinfo=UTC)
KINDS = ("proposed", "admitted", "declined", "expired")
REASONS = ("capacity_taken", "missing_service:child_psychologist")
TOL = 1e-6


@dataclass(frozen=True)
class Event:
    shelter: int  # index into the world's shelters
    month: int
    kind: str
    adults: int
    children: int
    minors: int
    female: int


@dataclass(frozen=True)
class Unmet:
    region: int
    reasons: tuple[tuple[str, int], ...]  # (reason, month) events of one request
    adults: int
    minors: int


@dataclass(frozen=True)
class Drawn:
    k: int
    regions: int
    organisations: int
    shelters: tuple[tuple[int, int], ...]  # (region, organisation) per shelter
    events: tuple[Event, ...]
    unmet: tuple[Unmet, ...]


@st.composite
def worlds(draw: st.DrawFn) -> Drawn:
    k = draw(st.sampled_from((3, 5, 11)))
    regions, organisations = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shelters = tuple(
        draw(
            st.lists(
                st.tuples(st.integers(0, regions - 1), st.integers(0, organisations - 1)),
                min_size=2,
                max_size=5,
            )
        )
    )
    # Few active months, so that most cells are small: the hard case.
    months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True))
    events = []
    for _ in range(draw(st.integers(1, 45))):
        adults = draw(st.integers(0, 2))
        children = draw(st.integers(0, 2)) if adults else 0
        minors = draw(st.integers(0 if adults else 1, 1))
        events.append(
            Event(
                shelter=draw(st.integers(0, len(shelters) - 1)),
                month=draw(st.sampled_from(months)),
                kind=draw(st.sampled_from(KINDS)),
                adults=adults,
                children=children,
                minors=minors,
                female=draw(st.integers(0, adults + children + minors)),
            )
        )
    unmet = []
    for _ in range(draw(st.integers(0, 20))):
        reasons = draw(
            st.lists(
                st.tuples(st.sampled_from(REASONS), st.sampled_from(months)),
                min_size=1,
                max_size=3,
            )
        )
        adults = draw(st.integers(0, 2))
        unmet.append(
            Unmet(
                region=draw(st.integers(0, regions - 1)),
                reasons=tuple(reasons),
                adults=adults,
                minors=draw(st.integers(0 if adults else 1, 1)),
            )
        )
    return Drawn(k, regions, organisations, shelters, tuple(events), tuple(unmet))


def at(month: int, day: int, hour: int) -> datetime:
    return datetime(YEAR, month, day, hour, tzinfo=UTC)


class Built:
    """The drawn world in the database, and the truth the attacker tries to find."""

    def __init__(self, world: World, drawn: Drawn) -> None:
        db = world.db
        tag = secrets.token_hex(3)
        self.region_codes = [world.region(f"r{tag}{i}").code for i in range(drawn.regions)]
        orgs = [world.organization() for _ in range(drawn.organisations)]
        self.shelters = [
            world.shelter(org=orgs[o], region_code=self.region_codes[r]) for r, o in drawn.shelters
        ]
        self.groups = {
            "shelter": {s.id: str(s.id) for s in self.shelters},
            "region": {s.id: s.region_code for s in self.shelters},
            "organization": {s.id: str(s.organization_id) for s in self.shelters},
            TOTAL_KEY: {s.id: TOTAL_KEY for s in self.shelters},
        }
        user = world.user(Role.CASEWORKER)
        admin = world.user(Role.ADMIN)
        run = MatchingRun(kind="batch", status="done", dry_run=False, started_by=admin.id)
        db.add(run)
        db.flush()
        self.truth: Counter[tuple[int, int, str]] = Counter()
        people_rows: list[tuple[Any, ...]] = []
        for event in drawn.events:
            people = event.adults + event.children + event.minors
            people_rows.append((event, people, None))
        for need in drawn.unmet:
            people_rows.append((need, need.adults + need.minors, None))
        cases = [
            Case(
                code=f"X{secrets.token_hex(8)}",
                organization_id=user.organization_id,
                created_by=user.id,
                created_at=at(1, 1, 0),
            )
            for _ in people_rows
        ]
        db.add_all(cases)
        db.flush()
        requests = []
        for case, (item, people, _) in zip(cases, people_rows, strict=True):
            if isinstance(item, Event):
                counts = {
                    "people_adult": item.adults,
                    "people_accompanied_child": item.children,
                    "people_unaccompanied_minor": item.minors,
                    "people_female": item.female,
                    "people_male": people - item.female,
                }
                region = self.shelters[item.shelter].region_code
            else:
                counts = {
                    "people_adult": item.adults,
                    "people_unaccompanied_minor": item.minors,
                    "people_other": people,
                }
                region = self.region_codes[item.region]
            requests.append(
                PlacementRequest(
                    case_id=case.id,
                    organization_id=user.organization_id,
                    created_by=user.id,
                    priority=3,
                    created_at=at(1, 1, 0),
                    region_code=region,
                    **counts,
                )
            )
        db.add_all(requests)
        db.flush()
        placements, outcomes = [], []
        self.unmet: Counter[tuple[tuple[str, str], int, str]] = Counter()
        for request, (item, people, _) in zip(requests, people_rows, strict=True):
            if isinstance(item, Unmet):
                first: dict[str, int] = {}
                for reason, month in item.reasons:
                    first[reason] = min(first.get(reason, 13), month)
                    outcomes.append(
                        RunOutcome(
                            run_id=run.id,
                            request_id=request.id,
                            organization_id=user.organization_id,
                            placed=False,
                            reasons=[],
                            recorded_at=at(month, 10, 9),
                            reason_codes=[reason],
                        )
                    )
                for reason, month in first.items():
                    unit = (request.region_code or "", reason)
                    self.unmet[(unit, month, "requests")] += 1
                    self.unmet[(unit, month, "people_adult")] += item.adults
                    self.unmet[(unit, month, "people_unaccompanied_minor")] += item.minors
                continue
            shelter = self.shelters[item.shelter]
            day = 3 + item.month % 20
            times: dict[str, Any] = {"proposed_at": at(item.month, day, 10)}
            if item.kind == "admitted":
                times |= {"accepted_at": at(item.month, day, 11)}
                times |= {"admitted_at": at(item.month, day, 12)}
            if item.kind in ("declined", "expired"):
                times |= {"ended_at": at(item.month, day, 13)}
            placements.append(
                Placement(
                    request_id=request.id,
                    shelter_id=shelter.id,
                    organization_id=user.organization_id,
                    status=item.kind,
                    people=people,
                    expires_at=at(item.month, day, 10) + timedelta(hours=24),
                    decline_reason="no_capacity" if item.kind == "declined" else None,
                    **times,
                )
            )
            base = (shelter.id, item.month)
            self.truth[(*base, "placements_proposed")] += 1
            if item.kind == "admitted":
                self.truth[(*base, "placements_accepted")] += 1
                self.truth[(*base, "placements_admitted")] += 1
                for name in (*STATUS_CELLS, *SEX_CELLS):
                    self.truth[(*base, name)] += getattr(request, name)
            elif item.kind != "proposed":
                self.truth[(*base, f"placements_{item.kind}")] += 1
            if item.kind == "declined":
                unit = (request.region_code or "", "declined:no_capacity")
                self.unmet[(unit, item.month, "requests")] += 1
                for name in STATUS_CELLS:
                    self.unmet[(unit, item.month, name)] += getattr(request, name)
        db.add_all(placements + outcomes)
        db.flush()


def period_of(pid: str) -> tuple[date, date]:
    months = PERIODS[pid]
    first = date(YEAR, months[0], 1)
    end = date(YEAR + (months[-1] == 12), months[-1] % 12 + 1, 1) - timedelta(days=1)
    return first, end


@dataclass
class Attack:
    """Published cells as linear relations over base cells, and the LP that attacks them."""

    k: int
    published: dict[tuple[Any, ...], int | None]
    members: dict[tuple[Any, ...], list[tuple[Any, int, str]]]
    truth: dict[tuple[Any, int, str], int]
    at_least: tuple[tuple[tuple[str, int], ...], ...]
    equalities: tuple[tuple[tuple[str, int], ...], ...]
    names: tuple[str, ...]

    def publish(self, cell: tuple[Any, ...], value: int | None) -> None:
        if cell in self.published:  # every table shows the same value for the same cell
            assert self.published[cell] == value, cell
        self.published[cell] = value
        if value is not None:  # and the published value is the true one
            assert value == sum(self.truth.get(b, 0) for b in self.members[cell]), cell

    def run(self) -> tuple[int, int]:
        """(suppressed cells attacked, cells recovered or narrowed below k)."""
        solver = pywraplp.Solver.CreateSolver("GLOP")
        assert solver is not None
        units = sorted({b[0] for bases in self.members.values() for b in bases}, key=repr)
        x = {
            (u, m, n): solver.NumVar(0.0, solver.infinity(), "")
            for u in units
            for m in range(1, 13)
            for n in self.names
        }
        for cell, value in self.published.items():
            if value is not None:
                solver.Add(solver.Sum([x[b] for b in self.members[cell]]) == value)
        for u, m in itertools.product(units, range(1, 13)):
            for relation in self.equalities:
                solver.Add(solver.Sum([c * x[(u, m, n)] for n, c in relation]) == 0)
            for relation in self.at_least:
                solver.Add(solver.Sum([c * x[(u, m, n)] for n, c in relation]) >= 0)
        attacked = broken = 0
        for cell, value in sorted(self.published.items(), key=repr):
            if value is not None:
                continue
            attacked += 1
            true = sum(self.truth.get(b, 0) for b in self.members[cell])
            total = solver.Sum([x[b] for b in self.members[cell]])
            solver.Minimize(total)
            assert solver.Solve() == pywraplp.Solver.OPTIMAL
            low = solver.Objective().Value()
            solver.Maximize(total)
            status = solver.Solve()
            high = solver.Objective().Value() if status == pywraplp.Solver.OPTIMAL else 1e9
            assert low - TOL <= true <= high + TOL
            if high - low < TOL or (1 <= true < self.k and high - low < self.k - TOL):
                broken += 1
        return attacked, broken


def requests_of(built: Built, drawn: Drawn, session: Session) -> Iterator[tuple[str, Any]]:
    cache = ProtectionCache()
    for pid in PERIODS:
        first, last = period_of(pid)
        # At year end, and when the period was first published (its quarter's end): a funder
        # may hold both publications.
        quarter_end = period_of(f"q{(last.month - 1) // 3 + 1}")[1]
        ended = datetime.combine(quarter_end + timedelta(days=1), datetime.min.time(), UTC)
        for as_of in (AFTER, ended + timedelta(hours=1)):
            when = reports.period(first, last, as_of=as_of)
            assert when.published
            for group_by in reports.GROUPINGS:
                yield (
                    pid,
                    reports.allocation_report(
                        session, when=when, group_by=group_by, k=drawn.k, cache=cache
                    ),
                )
            yield pid, reports.unmet_demand_report(session, when=when, k=drawn.k, cache=cache)


def attack(world: World, drawn: Drawn) -> tuple[int, int]:
    built = Built(world, drawn)
    shelters = [s.id for s in built.shelters]
    allocation = Attack(
        k=drawn.k,
        published={},
        members={},
        truth=dict(built.truth),
        equalities=reports.ALLOCATION_EQUALITIES,
        at_least=reports.ALLOCATION_AT_LEAST,
        names=COUNT_CELLS,
    )
    unmet = Attack(
        k=drawn.k,
        published={},
        members={},
        truth=dict(built.unmet),
        equalities=(),
        at_least=reports.UNMET_AT_LEAST,
        names=UNMET_CELLS,
    )
    for pid, report in requests_of(built, drawn, world.db):
        months = PERIODS[pid]
        if isinstance(report, reports.AllocationReport):
            assert report.disclosure.method == "linked-tables"
            for grouping, row in [
                *((report.group_by, r) for r in report.rows),
                (TOTAL_KEY, report.totals),
            ]:
                group = [s for s in shelters if built.groups[grouping][s] == row.key]
                for name in COUNT_CELLS:
                    cell = (grouping, row.key, pid, name)
                    allocation.members[cell] = [(s, m, name) for s in group for m in months]
                    value = getattr(row, name)
                    assert (value is None) == (name in row.suppressed)
                    allocation.publish(cell, value)
        else:
            for unmet_row in report.rows:
                unit = (unmet_row.region, unmet_row.reason_code)
                for name in UNMET_CELLS:
                    cell = (unit, pid, name)
                    unmet.members[cell] = [(unit, m, name) for m in months]
                    unmet.publish(cell, getattr(unmet_row, name))
    # Every true small count was published as null.
    for attack_ in (allocation, unmet):
        for cell, value in attack_.published.items():
            true = sum(attack_.truth.get(b, 0) for b in attack_.members[cell])
            assert not (1 <= true < drawn.k) or value is None, cell
    a1, b1 = allocation.run()
    a2, b2 = unmet.run() if unmet.published else (0, 0)
    return a1 + a2, b1 + b2


TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_tally() -> Iterator[None]:
    yield
    print(  # the figures the README quotes
        f"\nattacker: {TALLY['worlds']} worlds, {TALLY['attacked']} suppressed cells attacked, "
        f"{TALLY['broken']} recovered or narrowed below k"
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=worlds())
def test_no_suppressed_cell_is_recovered_from_every_table_a_funder_can_ask_for(
    world: World, drawn: Drawn
) -> None:
    savepoint = world.db.begin_nested()
    try:
        attacked, broken = attack(world, drawn)
    finally:
        savepoint.rollback()
    TALLY["worlds"] += 1
    TALLY["attacked"] += attacked
    TALLY["broken"] += broken
    assert broken == 0
