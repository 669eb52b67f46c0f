"""Reports against a crafted history whose figures are worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shelters import reports
from shelters.funding import Grant
from shelters.identity import Principal, Role
from shelters.models import (
    Case,
    MatchingRun,
    Placement,
    PlacementRequest,
    RunOutcome,
    Shelter,
    Unit,
    UnitChange,
)
from tests.conftest import World

FIRST, LAST = date(2026, 3, 1), date(2026, 3, 10)
AS_OF = datetime(2026, 4, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class History:
    def __init__(self, world: World) -> None:
        self.world = world
        self.db: Session = world.db
        self.user = world.user(Role.CASEWORKER)
        self.org_id = self.user.organization_id
        assert self.org_id is not None
        self.cases = 0

    def unit(self, shelter: Shelter, created: datetime, **counts: int) -> Unit:
        values = {"capacity": 0, "out_of_service": 0, "external_occupied": 0} | counts
        unit = Unit(
            shelter_id=shelter.id, name=f"U{created.isoformat()}", created_at=created, **values
        )
        self.db.add(unit)
        self.db.flush()
        for name, value in values.items():
            self.change(unit, created, name, None, value)
        return unit

    def change(self, unit: Unit, when: datetime, name: str, old: Any, new: Any) -> None:
        self.db.add(
            UnitChange(unit_id=unit.id, changed_at=when, field=name, old_value=old, new_value=new)
        )
        self.db.flush()

    def request(self, created: datetime, region: str = "astana", **people: int) -> PlacementRequest:
        self.cases += 1
        case = Case(
            code=f"C{self.cases}",
            organization_id=self.org_id,
            created_by=self.user.id,
            created_at=created,
        )
        self.db.add(case)
        self.db.flush()
        request = PlacementRequest(
            case_id=case.id,
            organization_id=self.org_id,
            created_by=self.user.id,
            priority=3,
            created_at=created,
            region_code=region,
            **people,
        )
        self.db.add(request)
        self.db.flush()
        return request

    def placement(
        self,
        request: PlacementRequest,
        shelter: Shelter,
        status: str,
        people: int,
        **times: datetime,
    ) -> Placement:
        placement = Placement(
            request_id=request.id,
            shelter_id=shelter.id,
            organization_id=self.org_id,
            status=status,
            people=people,
            expires_at=times["proposed_at"],
            **times,
        )
        self.db.add(placement)
        self.db.flush()
        return placement


@pytest.fixture
def history(world: World) -> History:
    return History(world)


def build_crafted(history: History) -> tuple[Shelter, Shelter]:
    """Shelter A (region astana) has the whole story; shelter B (region almaty) only beds."""
    world = history.world
    a = world.shelter()
    b = world.shelter(region_code=world.region("almaty", 43.2, 76.9).code)
    u1 = history.unit(a, at(2, 20, 10), capacity=10)
    history.change(u1, at(3, 3, 12), "out_of_service", 0, 2)
    history.change(u1, at(3, 6), "capacity", 10, 12)  # exactly at the snapshot ending 5 March
    history.unit(a, at(3, 8, 9), capacity=3, external_occupied=1)
    history.unit(b, at(1, 1), capacity=5)

    r1 = history.request(
        at(2, 28, 10), people_adult=3, people_accompanied_child=4, people_female=4, people_male=3
    )
    history.placement(
        r1,
        a,
        "discharged",
        7,
        proposed_at=at(3, 1, 10),
        accepted_at=at(3, 1, 12),
        admitted_at=at(3, 2, 16),
        ended_at=at(3, 5, 10),
    )
    r2 = history.request(at(3, 3), people_adult=2, people_female=2)
    history.placement(
        r2,
        a,
        "declined",
        2,
        proposed_at=at(3, 3, 6),
        ended_at=at(3, 4, 8),
        decline_reason="no_capacity",
    )
    r3 = history.request(at(3, 8), people_unaccompanied_minor=3, people_other=3)
    history.placement(
        r3,
        a,
        "admitted",
        3,
        proposed_at=at(3, 9, 12),
        accepted_at=at(3, 9, 13),
        admitted_at=at(3, 10, 20),
    )
    r4 = history.request(at(2, 24, 12), people_adult=2, people_male=2)
    history.placement(
        r4,
        a,
        "admitted",
        2,
        proposed_at=at(2, 25),
        accepted_at=at(2, 25, 1),
        admitted_at=at(2, 26, 12),
    )
    r5 = history.request(at(3, 6, 9), people_adult=4, people_female=4)
    history.placement(r5, a, "expired", 4, proposed_at=at(3, 7, 9), ended_at=at(3, 8, 9))
    return a, b


def test_allocation_by_shelter_matches_figures_worked_out_by_hand(history: History) -> None:
    a, b = build_crafted(history)
    when = reports.period(FIRST, LAST, as_of=AS_OF)
    report = reports.allocation_report(history.db, when=when, group_by="shelter", k=3)
    rows = {row.key: row for row in report.rows}
    row = rows[str(a.id)]
    # Unit 1, nights 1-10 March counted at the following midnight: 10, 10, then 2 out of
    # service from 3 March 12:00: 8, 8; the capacity rise at 6 March 00:00 counts for the night
    # of 5 March: 10, and 10 for 6-10 March: 10+10+8+8+10+5*10 = 96. Unit 2 from 8 March 09:00:
    # 3 - 1 external on the nights of 8, 9, 10 March = 6.
    assert row.bed_nights_available == 96 + 6
    # Occupied: 7 people admitted 2 March 16:00, out 5 March 10:00 -> nights 2, 3, 4 = 21;
    # 3 people admitted 10 March 20:00 -> night of 10 March = 3; 2 people admitted in February,
    # still there -> 10 nights = 20.
    assert row.bed_nights_occupied == 21 + 3 + 20
    # Held: 7 (night 1), 2 (night 3, declined 4 March 08:00), 3 (night 9), 4 (night 7).
    assert row.bed_nights_held == 7 + 2 + 3 + 4
    assert row.occupancy_rate == round(44 / 102, 4)
    # Proposed in the period: r1, r2, r3, r5. Accepted and admitted: r1, r3 (2: below k=3).
    assert row.placements_proposed == 4
    assert row.placements_accepted is None
    assert row.placements_admitted is None
    assert row.placements_declined is None
    assert row.placements_expired is None
    assert {
        "placements_accepted",
        "placements_admitted",
        "placements_declined",
        "placements_expired",
    } <= set(row.suppressed)
    # Hours to proposal: 24 (r1), 6 (r2), 36 (r3), 24 (r5) -> median 24.
    assert row.median_hours_to_proposal == 24.0
    # Hours to admission rest on 2 placements (< k): suppressed.
    assert row.median_hours_to_admission is None
    # People of r1 and r3 (admitted in the period): 3 adults, 4 accompanied children,
    # 3 unaccompanied minors; 4 female, 3 male, 3 other.
    assert (row.people_adult, row.people_accompanied_child, row.people_unaccompanied_minor) == (
        3,
        4,
        3,
    )
    assert (row.people_female, row.people_male, row.people_other) == (4, 3, 3)
    other = rows[str(b.id)]
    assert other.bed_nights_available == 50
    assert other.bed_nights_occupied == 0
    assert other.placements_proposed == 0
    assert report.totals.bed_nights_available == 152
    assert report.totals.placements_proposed == 4
    assert report.totals.median_hours_to_proposal == 24.0


def test_unsuppressed_counts_with_a_larger_table_hold_their_exact_values(
    history: History,
) -> None:
    _a, _ = build_crafted(history)
    when = reports.period(FIRST, LAST, as_of=AS_OF)
    report = reports.allocation_report(history.db, when=when, group_by="region", k=11)
    row = {r.key: r for r in report.rows}["astana"]
    assert row.bed_nights_available == 102
    assert row.placements_proposed is None  # 4 < 11
    assert row.people_adult is None
    assert "people_adult" in row.suppressed
    assert report.totals.people_adult is None


def test_nights_after_as_of_do_not_count(history: History) -> None:
    a, _ = build_crafted(history)
    # As of 6 March 12:00 only the nights of 1-5 March have ended.
    when = reports.period(FIRST, LAST, as_of=at(3, 6, 12))
    report = reports.allocation_report(history.db, when=when, group_by="shelter", k=3)
    row = {r.key: r for r in report.rows}[str(a.id)]
    assert row.bed_nights_available == 10 + 10 + 8 + 8 + 10
    assert row.bed_nights_occupied == 21 + 2 * 5


def test_unit_without_history_counts_at_current_value_from_creation(
    history: History, world: World
) -> None:
    shelter = world.shelter()
    unit = Unit(
        shelter_id=shelter.id, name="bare", capacity=4, out_of_service=1, created_at=at(3, 5, 12)
    )
    history.db.add(unit)
    history.db.flush()
    when = reports.period(FIRST, LAST, as_of=AS_OF)
    report = reports.allocation_report(history.db, when=when, group_by="shelter", k=3)
    assert {r.key: r for r in report.rows}[str(shelter.id)].bed_nights_available == 3 * 6


def test_grant_delivery_compares_funded_and_delivered_bed_nights(
    history: History, world: World
) -> None:
    a, b = build_crafted(history)
    funder = world.organization("funder")
    admin = world.user(Role.ADMIN)
    g_a = Grant(
        funder_organization_id=funder.id,
        shelter_id=a.id,
        start=date(2026, 3, 6),
        end=date(2026, 3, 15),
        amount=Decimal("1000.00"),
        currency="KZT",
        funded_beds=10,
        created_by=admin.id,
    )
    g_b = Grant(
        funder_organization_id=funder.id,
        shelter_id=b.id,
        start=date(2026, 2, 1),
        end=date(2026, 3, 31),
        amount=Decimal("590.00"),
        currency="EUR",
        funded_beds=10,
        created_by=admin.id,
    )
    history.db.add_all([g_a, g_b])
    history.db.flush()
    when = reports.period(FIRST, LAST, as_of=AS_OF)
    principal = Principal(
        user_id=admin.id,
        username="x",
        role=Role.ADMIN,
        organization_id=None,
        shelter_ids=frozenset(),
    )
    rows = {r.grant_id: r for r in reports.grants_report(history.db, principal, when=when).rows}
    ra = rows[g_a.id]
    # 6-10 March inside the period: 5 days x 10 beds funded.
    assert ra.funded_bed_nights == 50
    # Shelter A on nights 6-10 March: unit 1 10 each = 50, unit 2 2 each on 8-10 = 6.
    assert ra.available_bed_nights == 56
    # Occupied nights 6-10: 2 people x 5 + 3 people x 1 = 13.
    assert ra.occupied_bed_nights == 13
    assert ra.amount_in_period == Decimal("500.00")  # 5 of the grant's 10 days
    assert ra.cost_per_occupied_bed_night == Decimal("38.46")
    assert ra.under_delivery is False
    rb = rows[g_b.id]
    assert rb.funded_bed_nights == 100
    assert rb.available_bed_nights == 50
    assert rb.under_delivery is True
    assert rb.cost_per_occupied_bed_night is None
    assert rb.amount_in_period == Decimal("100.00")  # 10 of 59 days


def test_funder_grants_report_lists_only_their_grants(history: History, world: World) -> None:
    a, _ = build_crafted(history)
    mine, theirs = world.organization("funder"), world.organization("funder")
    admin = world.user(Role.ADMIN)
    for org in (mine, theirs):
        history.db.add(
            Grant(
                funder_organization_id=org.id,
                shelter_id=a.id,
                start=FIRST,
                end=LAST,
                amount=Decimal(1),
                currency="USD",
                funded_beds=1,
                created_by=admin.id,
            )
        )
    history.db.flush()
    funder = Principal(
        user_id=admin.id,
        username="f",
        role=Role.FUNDER,
        organization_id=mine.id,
        shelter_ids=frozenset(),
    )
    report = reports.grants_report(
        history.db, funder, when=reports.period(FIRST, LAST, as_of=AS_OF)
    )
    assert [r.funder_organization_id for r in report.rows] == [mine.id]


def test_unmet_demand_counts_unplaced_outcomes_and_declines_by_region_and_reason(
    history: History,
) -> None:
    build_crafted(history)
    admin = history.world.user(Role.ADMIN)
    real = MatchingRun(kind="batch", status="done", dry_run=False, started_by=admin.id)
    dry = MatchingRun(kind="batch", status="done", dry_run=True, started_by=admin.id)
    history.db.add_all([real, dry])
    history.db.flush()
    minors = [
        history.request(at(3, 2), region="almaty", people_unaccompanied_minor=1, people_female=1)
        for _ in range(12)
    ]
    for i, request in enumerate(minors):
        for run in (real, dry):
            history.db.add(
                RunOutcome(
                    run_id=run.id,
                    request_id=request.id,
                    organization_id=history.org_id,
                    placed=False,
                    reasons=[],
                    recorded_at=at(3, 4 + i % 3),
                    reason_codes=["member_not_admitted", "missing_service:child_psychologist"],
                )
            )
    # The same request left unplaced twice for the same reason counts once.
    history.db.add(
        RunOutcome(
            run_id=real.id,
            request_id=minors[0].id,
            organization_id=history.org_id,
            placed=False,
            reasons=[],
            recorded_at=at(3, 9),
            reason_codes=["member_not_admitted"],
        )
    )
    # Outside the period: not counted.
    history.db.add(
        RunOutcome(
            run_id=real.id,
            request_id=minors[1].id,
            organization_id=history.org_id,
            placed=False,
            reasons=[],
            recorded_at=at(3, 11),
            reason_codes=["capacity_taken"],
        )
    )
    history.db.flush()
    report = reports.unmet_demand_report(history.db, when=reports.period(FIRST, LAST), k=11)
    rows = {(r.region, r.reason_code): r for r in report.rows}
    assert set(rows) == {
        ("almaty", "member_not_admitted"),
        ("almaty", "missing_service:child_psychologist"),
        ("astana", "declined:no_capacity"),
    }
    row = rows[("almaty", "member_not_admitted")]
    assert row.requests == 12
    assert row.people_unaccompanied_minor == 12
    assert row.people_adult == 0
    declined = rows[("astana", "declined:no_capacity")]
    assert declined.requests is None
    assert declined.people_adult is None
    assert declined.suppressed == ["requests", "people_adult"]


def test_a_period_ending_before_it_starts_is_refused() -> None:
    from shelters.errors import InvalidInput

    with pytest.raises(InvalidInput):
        reports.period(LAST, FIRST)
