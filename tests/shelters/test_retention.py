"""Retention: member data of finished cases is purged; reports and the audit chain stay whole."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shelters import audit, reports, retention
from shelters.audit import AuditEvent
from shelters.identity import Principal, Role
from shelters.models import (
    Case,
    CaseSeparation,
    IdempotencyKey,
    Placement,
    PlacementRequest,
    RunOutcome,
    User,
    utcnow,
)
from tests.conftest import World
from tests.service.lifecycle_helpers import (
    MOTHER_AND_CHILD,
    WOMEN_AND_CHILDREN,
    create_case,
    create_request,
    match,
)

LONG_AGO = timedelta(days=400)
KEEP = timedelta(days=365)


class Story:
    """Cases in every state a purge must tell apart, built through the API."""

    def __init__(self, client: TestClient, world: World, db: Session) -> None:
        self.client, self.db = client, db
        shelter = world.shelter(security_level="high", services=["medical_care"])
        world.unit(shelter, capacity=12, admits=WOMEN_AND_CHILDREN)
        self.cw = world.headers(Role.CASEWORKER)
        self.coord = world.headers(Role.COORDINATOR, shelters=[shelter])
        self.admin = world.user(Role.ADMIN)

    def case(self, **extra: Any) -> int:
        body = {
            "required_services": ["medical_care"],
            "languages": ["ru"],
            "wheelchair": False,
            "current_region": "astana",
            "location": {"lat": 51.1, "lon": 71.4},
        } | extra
        return int(create_case(self.client, self.cw, MOTHER_AND_CHILD, **body)["id"])

    def request(self, case_id: int) -> int:
        return int(create_request(self.client, self.cw, case_id)["id"])

    def placed(self, case_id: int, *steps: str) -> int:
        placement = match(self.client, self.cw, self.request(case_id))["placement"]
        for step in steps:
            body = {"reason": "staffing"} if step == "decline" else None
            response = self.client.post(
                f"/api/v1/placements/{placement['id']}/{step}", json=body, headers=self.coord
            )
            assert response.status_code == 200, response.text
        return int(placement["id"])

    def backdate(self, case_id: int, by: timedelta) -> None:
        """Move every end of this case ``by`` into the past."""
        request_ids = select(PlacementRequest.id).where(PlacementRequest.case_id == case_id)
        self.db.execute(
            update(Placement)
            .where(Placement.request_id.in_(request_ids), Placement.ended_at.is_not(None))
            .values(ended_at=utcnow() - by)
        )
        self.db.execute(
            update(PlacementRequest)
            .where(PlacementRequest.case_id == case_id, PlacementRequest.cancelled_at.is_not(None))
            .values(cancelled_at=utcnow() - by)
        )
        self.db.expire_all()


@pytest.fixture
def story(client: TestClient, world: World, db: Session) -> dict[str, int]:
    s = Story(client, world, db)
    cases: dict[str, int] = {}
    cases["discharged_long_ago"] = s.case()
    s.placed(cases["discharged_long_ago"], "accept", "admit", "discharge")
    cases["cancelled_long_ago"] = s.case(separate_from_case_ids=[cases["discharged_long_ago"]])
    response = s.client.post(
        f"/api/v1/placement-requests/{s.request(cases['cancelled_long_ago'])}/cancel",
        headers=s.cw,
    )
    assert response.status_code == 200
    cases["declined_then_pending"] = s.case()
    s.placed(cases["declined_then_pending"], "decline")
    cases["housed_now"] = s.case()
    s.placed(cases["housed_now"], "accept", "admit")
    cases["discharged_lately"] = s.case()
    s.placed(cases["discharged_lately"], "accept", "admit", "discharge")
    cases["never_requested"] = s.case()
    for name in cases:
        if name != "discharged_lately":
            s.backdate(cases[name], LONG_AGO)
    s.db.execute(update(Case).values(created_at=utcnow() - LONG_AGO * 2))
    return cases


def snapshot(db: Session) -> dict[str, Any]:
    """What the reports read: requests with their counts, placements, run outcomes."""
    db.expire_all()

    def rows(model: Any) -> list[dict[str, Any]]:
        table = model.__table__
        return [dict(r._mapping) for r in db.execute(select(table).order_by(table.c.id))]

    return {
        "placement_requests": rows(PlacementRequest),
        "placements": rows(Placement),
        "run_outcomes": rows(RunOutcome),
    }


def report_outputs(db: Session, admin: Principal, when: reports.Period) -> list[Any]:
    db.expire_all()
    return [
        asdict(reports.allocation_report(db, when=when, group_by=g, k=3))
        for g in ("shelter", "region", "organization")
    ] + [
        asdict(reports.unmet_demand_report(db, when=when, k=3)),
        asdict(reports.grants_report(db, admin, when=when)),
    ]


ADMIN = Principal(
    user_id=0,
    username="retention-test",
    role=Role.ADMIN,
    organization_id=None,
    shelter_ids=frozenset(),
)


def test_purge_takes_exactly_the_cases_finished_before_the_cutoff(
    db: Session, story: dict[str, int]
) -> None:
    result = retention.purge(db, older_than=KEEP)
    assert result.case_ids == sorted([story["discharged_long_ago"], story["cancelled_long_ago"]])
    assert retention.due_case_ids(db, utcnow()) == [story["discharged_lately"]]


def test_purged_cases_keep_no_member_or_needs_data(
    db: Session, story: dict[str, int], client: TestClient, world: World
) -> None:
    retention.purge(db, older_than=KEEP)
    db.expire_all()
    for name in ("discharged_long_ago", "cancelled_long_ago"):
        case = db.get(Case, story[name])
        assert case is not None
        assert case.purged_at is not None
        assert case.members == []
        assert (case.required_services, case.languages, case.excluded_regions) == ([], [], [])
        assert (case.current_region, case.lat, case.lon, case.high_risk) == (
            None,
            None,
            None,
            False,
        )
    assert (
        db.scalars(
            select(CaseSeparation).where(CaseSeparation.case_id == story["cancelled_long_ago"])
        ).all()
        == []
    )
    kept = db.get(Case, story["housed_now"])
    assert kept is not None
    assert (kept.purged_at, len(kept.members)) == (None, 2)


def test_purge_is_idempotent_and_audited_once_per_case(db: Session, story: dict[str, int]) -> None:
    before = len(db.scalars(select(AuditEvent)).all())
    first = retention.purge(db, older_than=KEEP, request_id="purge-test-1")
    entries = db.scalars(select(AuditEvent).where(AuditEvent.action == "purge")).all()
    assert sorted(int(e.resource_id or 0) for e in entries) == first.case_ids
    assert all(
        (e.resource_type, e.actor_user_id, e.outcome, e.request_id)
        == ("case", None, "ok", "purge-test-1")
        for e in entries
    )
    state = snapshot(db)
    cases_after_first = [
        (c.id, c.members, c.purged_at) for c in db.scalars(select(Case).order_by(Case.id))
    ]
    second = retention.purge(db, older_than=KEEP)
    assert second.case_ids == []
    assert len(db.scalars(select(AuditEvent)).all()) == before + len(first.case_ids)
    assert snapshot(db) == state
    db.expire_all()
    assert [
        (c.id, c.members, c.purged_at) for c in db.scalars(select(Case).order_by(Case.id))
    ] == cases_after_first
    assert audit.verify(db).ok


def test_reports_are_identical_before_and_after_a_purge(db: Session, story: dict[str, int]) -> None:
    today = utcnow().date()
    when = reports.period(today - timedelta(days=800), today, as_of=utcnow())
    rows_before, reports_before = snapshot(db), report_outputs(db, ADMIN, when)
    assert any(row["rows"] for row in reports_before)  # the reports have something to lose
    assert retention.purge(db, older_than=KEEP).case_ids
    assert snapshot(db) == rows_before
    assert report_outputs(db, ADMIN, when) == reports_before


def test_purged_cases_read_as_purged_and_cannot_be_requested_again(
    db: Session, story: dict[str, int], client: TestClient, world: World
) -> None:
    retention.purge(db, older_than=KEEP)
    # The caseworker who made them belongs to the story's organisation.
    case = db.get(Case, story["discharged_long_ago"])
    assert case is not None
    user = db.scalar(select(PlacementRequest.created_by).where(PlacementRequest.case_id == case.id))
    headers = world.headers_for(db.get(User, user))  # type: ignore[arg-type]
    body = client.get(f"/api/v1/cases/{case.id}", headers=headers).json()
    assert (body["purged"], body["members"]) == (True, [])
    again = client.post("/api/v1/placement-requests", json={"case_id": case.id}, headers=headers)
    assert again.status_code == 409


def test_stored_answers_past_their_day_are_deleted(db: Session, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    now = utcnow()
    db.add_all(
        [
            IdempotencyKey(
                user_id=user.id,
                key="old",
                request_sha256="0" * 64,
                state="done",
                created_at=now - timedelta(hours=25),
            ),
            IdempotencyKey(
                user_id=user.id,
                key="new",
                request_sha256="0" * 64,
                state="done",
                created_at=now - timedelta(hours=1),
            ),
        ]
    )
    db.flush()
    assert retention.purge(db, older_than=KEEP, now=now).idempotency_keys_deleted == 1
    assert [k.key for k in db.scalars(select(IdempotencyKey))] == ["new"]
