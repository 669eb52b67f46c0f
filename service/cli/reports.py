"""``refuge bench-reports``: time the funder reports on a large synthetic history.

Builds, on a scratch SQLite file (default) or a PostgreSQL URL, a network of shelters with
five years of unit changes, requests, placements and unplaced matching outcomes, then times
each report over the whole five years. Synthetic data only: no person is described. The
database layer is imported when the command runs, not when ``refuge`` starts.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.cli.support import QUIET_HELP, Progress, shows_progress

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from shelters import reports

REASONS = (
    "capacity_taken",
    "member_not_admitted",
    "missing_service:child_psychologist",
    "missing_service:mother_and_baby_care",
    "security_level_too_low",
)
START = datetime(2021, 1, 1, tzinfo=UTC)
DAYS = 5 * 365


def build_history(
    session: Session,
    *,
    placements: int,
    shelters: int,
    seed: int,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Fill an empty, migrated database with a synthetic five-year history (bulk inserts).

    ``on_batch`` is called with the number of placements of each batch once it is written.
    """
    from sqlalchemy import insert

    from shelters.funding import Grant
    from shelters.models import (
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
        User,
    )

    rng = random.Random(seed)  # noqa: S311 (synthetic benchmark data, not secrets)
    regions = [f"region-{i:02d}" for i in range(20)]
    session.execute(
        insert(Region),
        [
            {"code": c, "name": c.title(), "lat": 40 + i % 10, "lon": 50 + i}
            for i, c in enumerate(regions)
        ],
    )
    session.execute(
        insert(Organization),
        [{"id": i + 1, "name": f"Synthetic org {i + 1}", "kind": "ngo"} for i in range(9)]
        + [{"id": 10, "name": "Synthetic funder", "kind": "funder"}],
    )
    session.execute(
        insert(User),
        [{"id": 1, "username": "bench", "password_hash": "x", "role": "admin"}],
    )
    session.execute(
        insert(Shelter),
        [
            {
                "id": s + 1,
                "organization_id": s % 9 + 1,
                "name": f"Shelter {s + 1}",
                "region_code": regions[s % 20],
                "locality": "Synthetic",
                "services": [],
                "languages": [],
            }
            for s in range(shelters)
        ],
    )
    units, changes = [], []
    for s in range(shelters):
        for u in range(2):
            unit_id = s * 2 + u + 1
            capacity = rng.randint(8, 30)
            units.append(
                {
                    "id": unit_id,
                    "shelter_id": s + 1,
                    "name": f"U{u}",
                    "capacity": capacity,
                    "created_at": START,
                    "admits": [],
                }
            )
            for field, value in (
                ("capacity", capacity),
                ("out_of_service", 0),
                ("external_occupied", 0),
            ):
                changes.append(
                    {
                        "unit_id": unit_id,
                        "changed_at": START,
                        "field": field,
                        "old_value": None,
                        "new_value": value,
                    }
                )
            for _ in range(rng.randint(5, 40)):  # a few changes a year
                when = START + timedelta(minutes=rng.randint(0, DAYS * 1440))
                field = rng.choice(("out_of_service", "external_occupied"))
                changes.append(
                    {
                        "unit_id": unit_id,
                        "changed_at": when,
                        "field": field,
                        "old_value": None,
                        "new_value": rng.randint(0, 3),
                    }
                )
    session.execute(insert(Unit), units)
    session.execute(insert(UnitChange), changes)
    session.execute(
        insert(Grant),
        [
            {
                "funder_organization_id": 10,
                "shelter_id": s + 1,
                "start": date(2021 + y, 1, 1),
                "end": date(2021 + y, 12, 31),
                "amount": Decimal(1_000_000),
                "currency": "KZT",
                "funded_beds": 20,
                "created_by": 1,
            }
            for s in range(shelters)
            for y in range(5)
        ],
    )
    session.execute(
        insert(MatchingRun),
        [{"id": 1, "kind": "batch", "status": "done", "dry_run": False, "started_by": 1}],
    )
    batch = 10_000
    for offset in range(0, placements, batch):
        cases, requests, rows, outcomes = [], [], [], []
        for i in range(offset, min(offset + batch, placements)):
            created = START + timedelta(minutes=rng.randint(0, DAYS * 1440))
            adults, children = rng.randint(0, 2), rng.randint(0, 3)
            minors = 1 if adults + children == 0 else 0
            people = adults + children + minors
            female = rng.randint(0, people)
            cases.append(
                {
                    "id": i + 1,
                    "code": f"B{i:09d}",
                    "organization_id": i % 9 + 1,
                    "created_by": 1,
                    "created_at": created,
                }
            )
            requests.append(
                {
                    "id": i + 1,
                    "case_id": i + 1,
                    "organization_id": i % 9 + 1,
                    "created_by": 1,
                    "priority": 3,
                    "created_at": created,
                    "region_code": regions[i % 20],
                    "people_adult": adults,
                    "people_accompanied_child": children,
                    "people_unaccompanied_minor": minors,
                    "people_female": female,
                    "people_male": people - female,
                    "people_other": 0,
                }
            )
            proposed = created + timedelta(hours=rng.uniform(0.1, 72))
            fate = rng.random()
            row: dict[str, Any] = {
                "id": i + 1,
                "request_id": i + 1,
                "shelter_id": rng.randint(1, shelters),
                "organization_id": i % 9 + 1,
                "people": people,
                "proposed_at": proposed,
                "expires_at": proposed + timedelta(hours=24),
            }
            if fate < 0.7:
                admitted = proposed + timedelta(hours=rng.uniform(1, 48))
                row |= {
                    "status": "discharged",
                    "accepted_at": admitted,
                    "admitted_at": admitted,
                    "ended_at": admitted + timedelta(days=rng.randint(3, 120)),
                }
            elif fate < 0.85:
                row |= {
                    "status": "declined",
                    "decline_reason": "no_capacity",
                    "ended_at": proposed + timedelta(hours=5),
                }
            else:
                row |= {"status": "expired", "ended_at": proposed + timedelta(hours=24)}
            rows.append(row)
            if fate >= 0.7:
                outcomes.append(
                    {
                        "run_id": 1,
                        "request_id": i + 1,
                        "organization_id": i % 9 + 1,
                        "placed": False,
                        "reasons": [],
                        "recorded_at": created,
                        "reason_codes": rng.sample(REASONS, rng.randint(1, 2)),
                    }
                )
        session.execute(insert(Case), cases)
        session.execute(insert(PlacementRequest), requests)
        session.execute(insert(Placement), rows)
        if outcomes:
            session.execute(insert(RunOutcome), outcomes)
        if on_batch is not None:
            on_batch(len(rows))


def _time(progress: Progress, label: str, work: Any) -> None:
    task = progress.task(label)
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    progress.done(task)
    progress.echo(f"{label:<34} {elapsed * 1000:9.1f} ms  ({len(result.rows)} rows)")


def publication(label: str) -> tuple[date, date]:
    """``2023``, ``2023-Q2`` or ``2023-04`` as its first and last date."""
    year, _, part = label.partition("-")
    first_month, last_month = 1, 12
    if part.upper().startswith("Q"):
        first_month = 3 * int(part[1:]) - 2
        last_month = first_month + 2
    elif part:
        first_month = last_month = int(part)
    first = date(int(year), first_month, 1)
    following = date(int(year) + last_month // 12, last_month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _show(session: Session, label: str, group_by: reports.GroupBy, k: int) -> None:
    from service import report_formats
    from shelters import reports
    from shelters.identity import Principal, Role

    first, last = publication(label)
    funder = Principal(
        user_id=1,
        username="bench",
        role=Role.FUNDER,
        organization_id=10,
        shelter_ids=frozenset(),
    )
    when = reports.period_for(funder, first, last)
    report = reports.allocation_report(session, when=when, group_by=group_by, k=k)
    columns = ("key", *(c for c in reports.COUNT_CELLS if c.startswith("placements")))
    rows = [asdict(r) for r in report.rows] + [asdict(report.totals)]
    typer.echo(
        report_formats.to_csv(columns, rows, k=report.k, disclosure=report.disclosure), nl=False
    )


def bench_reports_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="An EMPTY database to fill (default: a scratch SQLite file)."
        ),
    ] = None,
    placements: Annotated[int, typer.Option(min=1, help="Placements to create.")] = 100_000,
    shelters: Annotated[int, typer.Option(min=1, help="Shelters to create.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    k: Annotated[int, typer.Option(min=3, help="Suppression threshold.")] = 11,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    show: Annotated[
        str | None,
        typer.Option(
            help="Also print, as a funder gets it, the allocation CSV (placement counts) of "
            "one publication period: 2023, 2023-Q2 or 2023-04."
        ),
    ] = None,
    group_by: Annotated[str, typer.Option(help="Grouping of the --show table.")] = "organization",
) -> None:
    """Build a five-year synthetic history and time each report over it."""
    from alembic import command
    from sqlalchemy.orm import Session

    from migrations import alembic_config
    from service.db import make_engine
    from service.settings import Settings
    from shelters import reports
    from shelters.disclosure import ProtectionCache
    from shelters.identity import Principal, Role

    scratch = None
    if database_url is None:
        scratch = tempfile.TemporaryDirectory(prefix="refuge-bench-reports-")
        database_url = f"sqlite:///{Path(scratch.name) / 'bench.db'}"
    url = Settings(database_url=database_url).database_url
    engine = make_engine(url)
    try:
        with (
            Progress(enabled=shows_progress(quiet=quiet)) as progress,
            engine.begin() as connection,
        ):
            task = progress.task("migrating the scratch database")
            command.upgrade(alembic_config(connection=connection), "heads")
            progress.done(task)
        started = time.perf_counter()
        with (
            Progress(enabled=shows_progress(quiet=quiet)) as progress,
            Session(engine) as session,
            session.begin(),
        ):
            task = progress.task("building the history (placements)", total=placements)
            build_history(
                session,
                placements=placements,
                shelters=shelters,
                seed=seed,
                on_batch=lambda n: progress.advance(task, n),
            )
            progress.done(task)
        typer.echo(
            f"engine {engine.dialect.name}; built {placements} placements, {shelters} shelters "
            f"over five years in {time.perf_counter() - started:.1f} s"
        )
        when = reports.period(date(2021, 1, 1), date(2025, 12, 30))
        admin = Principal(
            user_id=1,
            username="bench",
            role=Role.ADMIN,
            organization_id=None,
            shelter_ids=frozenset(),
        )
        with Progress(enabled=shows_progress(quiet=quiet)) as progress, Session(engine) as session:
            for group_by in reports.GROUPINGS:
                _time(
                    progress,
                    f"allocation by {group_by}",
                    lambda g=group_by: reports.allocation_report(
                        session, when=when, group_by=g, k=k
                    ),
                )
            _time(progress, "grants", lambda: reports.grants_report(session, admin, when=when))
            _time(
                progress,
                "unmet demand",
                lambda: reports.unmet_demand_report(session, when=when, k=k),
            )
            year = reports.period(date(2023, 1, 1), date(2023, 12, 31))
            cache = ProtectionCache()
            for run in ("first", "cached"):
                _time(
                    progress,
                    f"allocation 2023, linked ({run})",
                    lambda: reports.allocation_report(
                        session, when=year, group_by="region", k=k, cache=cache
                    ),
                )
            if show is not None:
                if group_by not in reports.GROUPINGS:
                    raise typer.BadParameter(f"group_by must be one of {reports.GROUPINGS}")
                _show(session, show, group_by, k)
    finally:
        engine.dispose()
        if scratch is not None:
            scratch.cleanup()


def register(app: typer.Typer) -> None:
    """Add ``bench-reports`` to the ``refuge`` command line."""
    app.command("bench-reports")(bench_reports_command)
