"""The demo's synthetic history: made through the service's own paths, so it holds every rule.

It is checked the way an auditor would check real data: every stored run verifies, no unit is
overbooked, the audit chain is whole and in time order, and the reports have something to show.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from placement import Problem, Solution, verify
from service import demo_history
from service.db import make_engine
from shelters import audit, demo, freshness, reports
from shelters.audit import AuditEvent
from shelters.funding import Grant
from shelters.integrity import overbooked_units
from shelters.models import (
    InboxEntry,
    MatchingRun,
    Placement,
    Unit,
    User,
    utcnow,
)
from tests.conftest import make_settings


def test_a_month_of_history_holds_every_rule_and_fills_the_reports(fresh_database: str) -> None:
    settings = make_settings(fresh_database)
    now = utcnow()
    start = demo_history.history_start(now, months=1)
    engine = make_engine(fresh_database)
    try:
        with Session(engine) as session, session.begin():
            demo.load_demo(session, since=start)
        demo_history.load_history(settings, start=start, end=now, seed=3)

        with Session(engine) as session:
            done = session.scalars(select(MatchingRun).where(MatchingRun.status == "done")).all()
            # Three runs a week, from the first of last month.
            assert len(done) >= 3 * ((now - start).days // 7)
            for run in done:
                assert run.problem is not None
                assert run.solution is not None
                problem = Problem.from_document(run.problem)
                assert verify(problem, Solution.from_document(run.solution)) == []
            statuses = set(session.scalars(select(Placement.status)))
            assert {"admitted", "discharged", "declined"} <= statuses
            assert overbooked_units(session.connection()) == []

            # The chain is whole, and its entries were written in the order they happened.
            assert audit.verify(session).ok
            times = session.scalars(select(AuditEvent.at).order_by(AuditEvent.seq)).all()
            assert times == sorted(times)
            assert times[0] < start + timedelta(days=1)

            # Nobody comes back to hundreds of unread notices; the intake accounts are shut.
            unread = (
                select(func.count()).select_from(InboxEntry).where(InboxEntry.read_at.is_(None))
            )
            assert session.scalar(unread) == 0
            intake = session.scalars(select(User).where(User.username.like("demo-intake-%")))
            assert [u.is_active for u in intake] == [False, False]
            assert session.scalar(select(func.count()).select_from(Grant)) == 3

            # Every unit but one was confirmed in the last hours: the demo shows one stale unit.
            stale = freshness.stale_unit_ids(session, after_hours=settings.stale_after_hours)
            units = session.scalar(select(func.count()).select_from(Unit))
            assert len(stale) == 1
            assert (units or 0) > 1

            last_month_end = now.date().replace(day=1) - timedelta(days=1)
            when = reports.period(last_month_end.replace(day=1), last_month_end)
            allocation = reports.allocation_report(session, when=when, group_by="region", k=11)
            assert allocation.totals.bed_nights_occupied > 0
            assert (
                0 < allocation.totals.bed_nights_occupied <= allocation.totals.bed_nights_available
            )
            unmet = reports.unmet_demand_report(session, when=when, k=11)
            assert unmet.rows
    finally:
        engine.dispose()


def test_history_starts_on_the_first_of_a_month_back_in_time() -> None:
    now = utcnow().replace(year=2026, month=1, day=15)
    assert demo_history.history_start(now, months=6).date() == date(2025, 7, 1)
    assert demo_history.history_start(now, months=1).date() == date(2025, 12, 1)
