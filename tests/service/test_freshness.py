"""How current a unit's numbers are: confirmed, stale, flagged, and told of."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shelters import freshness, notifications
from shelters.identity import Role
from shelters.models import InboxEntry, Unit, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, match, request_for
from tests.ui.test_pages import log_in

DAYS_AGO = timedelta(days=3)


def _age(db: Session, unit: Unit, by: timedelta) -> None:
    unit.confirmed_at = utcnow() - by
    db.flush()


def _read(client: TestClient, headers: dict[str, str], unit: Unit) -> Any:
    response = client.get(f"/api/v1/units/{unit.id}", headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_a_unit_unconfirmed_for_a_day_is_stale_until_confirmed(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4)
    coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])
    assert _read(client, coordinator, unit).json()["stale"] is False
    _age(db, unit, timedelta(hours=25))
    before = _read(client, coordinator, unit)
    assert before.json()["stale"] is True
    confirmed = client.post(
        f"/api/v1/units/{unit.id}/confirm",
        headers=coordinator | {"If-Match": before.headers["etag"]},
    )
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["stale"] is False
    assert body["version"] == before.json()["version"] + 1
    assert body["capacity"] == 4  # nothing else changed
    assert confirmed.headers["etag"] != before.headers["etag"]


def test_changing_the_numbers_confirms_them_too(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4)
    coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])
    _age(db, unit, DAYS_AGO)
    etag = _read(client, coordinator, unit).headers["etag"]
    changed = client.patch(
        f"/api/v1/units/{unit.id}", json={"capacity": 5}, headers=coordinator | {"If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["stale"] is False


def test_only_the_units_coordinators_and_admins_may_confirm(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4)
    _age(db, unit, DAYS_AGO)
    etag = f'"unit-{unit.id}-v1"'
    url = f"/api/v1/units/{unit.id}/confirm"
    other = world.headers(Role.COORDINATOR, shelters=[world.shelter()])
    assert client.post(url, headers=other | {"If-Match": etag}).status_code == 404
    for role in (Role.CASEWORKER, Role.FUNDER):
        assert client.post(url, headers=world.headers(role) | {"If-Match": etag}).status_code == 403
    mine = world.headers(Role.COORDINATOR, shelters=[shelter])
    assert client.post(url, headers=mine).status_code == 428  # no If-Match
    stale_tag = client.post(url, headers=mine | {"If-Match": f'"unit-{unit.id}-v9"'})
    assert stale_tag.status_code == 412
    db.refresh(unit)
    assert freshness.is_stale(unit.confirmed_at, now=utcnow(), after_hours=24)
    assert (
        client.post(url, headers=world.headers(Role.ADMIN) | {"If-Match": etag}).status_code == 200
    )


def test_a_match_says_when_it_relied_on_stale_numbers(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    fresh = match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))
    assert fresh["placed"] is True
    assert fresh["stale_unit_ids"] == []
    _age(db, unit, DAYS_AGO)
    old = match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))
    assert old["placed"] is True
    assert old["stale_unit_ids"] == [unit.id]


def test_stale_units_are_counted_by_region_and_told_once_per_staleness(
    world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4)
    coordinator = world.user(Role.COORDINATOR, shelters=[shelter])
    _age(db, unit, DAYS_AGO)
    assert freshness.stale_counts_by_region(db, after_hours=24).get(shelter.region_code, 0) >= 1
    assert unit.id in freshness.stale_unit_ids(db, after_hours=24)
    assert notifications.warn_stale(db, after_hours=24) >= 1

    def told() -> int:
        entries = db.scalars(
            select(InboxEntry).where(
                InboxEntry.user_id == coordinator.id, InboxEntry.event == "unit.stale"
            )
        ).all()
        return len(entries)

    assert told() == 1
    notifications.warn_stale(db, after_hours=24)
    assert told() == 1  # once
    unit.confirmed_at = utcnow() + timedelta(seconds=1)  # confirmed after being told...
    db.flush()  # ...and 30 hours later stale again
    notifications.warn_stale(db, after_hours=24, now=utcnow() + timedelta(hours=30))
    assert told() == 2


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as page:
        yield page


def test_the_coordinator_page_marks_full_and_stale_units_and_confirms_in_one_tap(
    browser: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    full = world.unit(shelter, capacity=2, occupied=2)
    old = world.unit(shelter, capacity=3)
    _age(db, old, DAYS_AGO)
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    page = browser.get("/ui/coordinator").text
    full_card = page[page.index(f'id="unit-{full.id}"') :][:600]
    assert "full" in page[page.rindex("<article", 0, page.index(f'id="unit-{full.id}"')) :][:80]
    assert ">Full<" in full_card
    assert "In all: 3 free of 5 beds" in page
    old_card = page[page.index(f'id="unit-{old.id}"') :][:1500]
    assert "Check" in old_card
    assert "3 days ago" in old_card
    done = browser.post(
        f"/ui/units/{old.id}/confirm", data={"csrf_token": token, "version": str(old.version)}
    )
    assert done.status_code == 303
    db.refresh(old)
    assert not freshness.is_stale(old.confirmed_at, now=utcnow(), after_hours=24)
    again = browser.post(f"/ui/units/{old.id}/confirm", data={"csrf_token": token, "version": "1"})
    assert again.status_code == 409  # the page was older than the unit


def test_the_match_page_asks_the_caseworker_to_check_stale_numbers(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4, admits=WOMEN_AND_CHILDREN)
    caseworker = world.user(Role.CASEWORKER)
    headers = world.headers_for(caseworker)
    fresh_request = request_for(client, headers, MOTHER_AND_CHILD)
    old_request = request_for(client, headers, MOTHER_AND_CHILD)
    token = log_in(browser, caseworker)
    warning = "were not confirmed lately"
    page = browser.post(f"/ui/requests/{fresh_request}/match", data={"csrf_token": token})
    assert page.status_code == 200, page.text
    assert warning not in page.text
    _age(db, unit, DAYS_AGO)
    page = browser.post(f"/ui/requests/{old_request}/match", data={"csrf_token": token})
    assert page.status_code == 200, page.text
    assert f"The numbers of {unit.name} {warning}" in page.text
