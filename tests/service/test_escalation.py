"""Requests that wait too long are escalated once, to the right people; the time-to-placement
report counts them by region and priority with small counts suppressed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.settings import DEFAULT_ESCALATION, Settings
from shelters import notifications, reports
from shelters.identity import Role
from shelters.models import InboxEntry, PlacementRequest, utcnow
from tests.conftest import PASSWORD, World, csrf_of
from tests.service.lifecycle_helpers import (
    WOMEN_AND_CHILDREN,
    create_case,
    create_request,
    request_for,
)

HOURS = DEFAULT_ESCALATION


def _aged(db: Session, request_id: int, hours: float) -> None:
    """Make a request look as if it was made ``hours`` ago."""
    db.execute(
        update(PlacementRequest)
        .where(PlacementRequest.id == request_id)
        .values(created_at=utcnow() - timedelta(hours=hours))
    )


def _request(client: TestClient, headers: dict[str, str], priority: int) -> int:
    case = create_case(client, headers)
    return int(create_request(client, headers, case["id"], priority=priority)["id"])


def test_a_request_is_escalated_once_its_priority_allows_no_longer_and_the_right_people_hear(
    client: TestClient, world: World, db: Session
) -> None:
    org = world.organization()
    caseworker = world.user(Role.CASEWORKER, org=org)
    colleague = world.user(Role.CASEWORKER, org=org)
    outsider = world.user(Role.CASEWORKER)
    admin = world.user(Role.ADMIN)
    coordinator = world.user(Role.COORDINATOR, shelters=[world.shelter(org)])
    headers = world.headers_for(caseworker)
    urgent_late = _request(client, headers, 5)
    urgent_early = _request(client, headers, 5)
    calm_late = _request(client, headers, 3)
    _aged(db, urgent_late, HOURS[5] + 0.5)
    _aged(db, urgent_early, HOURS[5] - 0.5)
    _aged(db, calm_late, HOURS[5] + 0.5)  # priority 3 may wait a day

    assert notifications.escalate_waiting(db, after_hours=HOURS) == 1
    assert notifications.escalate_waiting(db, after_hours=HOURS) == 0  # once only
    told = {
        (e.user_id, e.request_id)
        for e in db.scalars(select(InboxEntry).where(InboxEntry.event == "request.escalated"))
    }
    assert told == {
        (caseworker.id, urgent_late),
        (colleague.id, urgent_late),
        (admin.id, urgent_late),
    }
    assert outsider.id not in {u for u, _ in told}
    assert coordinator.id not in {u for u, _ in told}

    body = client.get(f"/api/v1/placement-requests/{urgent_late}", headers=headers).json()
    assert body["escalated_at"] is not None
    body = client.get(f"/api/v1/placement-requests/{urgent_early}", headers=headers).json()
    assert body["escalated_at"] is None
    assert notifications.escalated_waiting(db) == 1

    # A day later the priority-3 request's turn comes; the withdrawn one is never escalated.
    cancelled = _request(client, headers, 4)
    _aged(db, cancelled, HOURS[4] + 1)
    assert (
        client.post(f"/api/v1/placement-requests/{cancelled}/cancel", headers=headers).status_code
        == 200
    )
    later = utcnow() + timedelta(hours=HOURS[3])
    assert notifications.escalate_waiting(db, after_hours=HOURS, now=later) == 2  # calm, early
    escalated = set(
        db.scalars(select(PlacementRequest.id).where(PlacementRequest.escalated_at.is_not(None)))
    )
    assert escalated == {urgent_late, urgent_early, calm_late}


def test_a_request_with_beds_held_is_not_escalated(
    client: TestClient, world: World, db: Session
) -> None:
    org = world.organization()
    shelter = world.shelter(org)
    world.unit(shelter, capacity=2, admits=WOMEN_AND_CHILDREN)
    headers = world.headers(Role.CASEWORKER, org=org)
    request_id = request_for(client, headers)
    assert client.post(f"/api/v1/placement-requests/{request_id}/match", headers=headers).json()[
        "placement"
    ]
    _aged(db, request_id, 1000)
    assert notifications.escalate_waiting(db, after_hours=HOURS) == 0


def test_the_caseworker_page_puts_an_escalated_request_first_and_says_why(
    client: TestClient, app: FastAPI, world: World, db: Session
) -> None:
    caseworker = world.user(Role.CASEWORKER)
    headers = world.headers_for(caseworker)
    escalated = _request(client, headers, 3)
    _request(client, headers, 5)  # newer and more urgent, but not escalated
    _aged(db, escalated, HOURS[3] + 1)
    notifications.escalate_waiting(db, after_hours=HOURS)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as browser:
        login = {"username": caseworker.username, "password": PASSWORD}
        page = browser.post("/ui/login", data=login | {"csrf_token": csrf_of(browser)})
        assert page.status_code == 303
        text = browser.get("/ui/caseworker").text
        assert 'href="/ui/caseworker?escalated=1">1 request has waited longer' in text
        only = browser.get("/ui/caseworker?escalated=1").text
        assert only.count('class="card case"') == 1
    first_case = text.index('class="card case"')
    assert "Escalated" in text[first_case : text.index("</article>", first_case)]


def test_escalation_hours_are_set_per_priority_and_refused_outside_one_to_five() -> None:
    settings = Settings(escalate_after_hours={5: 1.5})
    assert settings.escalate_after_hours[5] == 1.5
    assert settings.escalate_after_hours[1] == HOURS[1]
    with pytest.raises(ValueError, match="priorities are 1 to 5"):
        Settings(escalate_after_hours={6: 1})
    with pytest.raises(ValueError, match="hours must be above 0"):
        Settings(escalate_after_hours={5: 0})


def test_time_to_placement_counts_by_region_and_priority_and_suppresses_small_counts(
    client: TestClient, world: World, db: Session
) -> None:
    headers = world.headers(Role.CASEWORKER)
    made = [_request(client, headers, 5) for _ in range(4)] + [_request(client, headers, 2)]
    _aged(db, made[0], HOURS[5] + 1)
    notifications.escalate_waiting(db, after_hours=HOURS)
    today = utcnow().date()
    when = reports.period(today - timedelta(days=1), today)
    report = reports.time_to_placement_report(db, when=when, k=3)
    by_key = {(r.region, r.priority): r for r in report.rows}
    region = db.scalar(select(PlacementRequest.region_code).where(PlacementRequest.id == made[0]))
    region = region or reports.UNKNOWN_REGION
    five = by_key[(region, 5)]
    assert (five.requests, five.waiting, five.placed) == (4, 4, 0)
    # One escalated is below k = 3: hidden, and hidden in the all-regions row it would be
    # recomputed from.
    assert five.escalated is None
    assert by_key[(reports.ALL_REGIONS, 5)].escalated is None
    assert by_key[(region, 2)].requests is None  # one request
    # Most urgent first, each priority's regions before its total.
    assert [r.priority for r in report.rows] == sorted(
        (r.priority for r in report.rows), reverse=True
    )

    admin = world.headers(Role.ADMIN)
    params = {"from": when.first.isoformat(), "to": when.last.isoformat()}
    answer = client.get("/api/v1/reports/time-to-placement", params=params, headers=admin)
    assert answer.status_code == 200
    assert {r["priority"] for r in answer.json()["rows"]} == {5, 2}
    table = client.get(
        "/api/v1/reports/time-to-placement", params=params, headers=admin | {"Accept": "text/csv"}
    )
    assert table.text.splitlines()[0].startswith("region,priority,requests,placed,escalated")
    for role in (Role.FUNDER, Role.COORDINATOR, Role.CASEWORKER):
        refused = client.get(
            "/api/v1/reports/time-to-placement", params=params, headers=world.headers(role)
        )
        assert refused.status_code == 403
