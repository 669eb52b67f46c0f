"""The inbox page: a proposal shows there in the reader's language, with a count in the nav."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import i18n
from shelters.identity import Role
from shelters.models import InboxEntry
from tests.conftest import World
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, match, request_for
from tests.ui.test_pages import log_in

WAITING = "A placement is waiting for your answer."


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_a_proposal_shows_in_the_coordinators_inbox_in_their_language(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=4, admits=WOMEN_AND_CHILDREN)
    coordinator = world.user(Role.COORDINATOR, shelters=[shelter])
    coordinator.locale = "ru"
    db.flush()
    caseworker = world.headers(Role.CASEWORKER)
    placed = match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))
    token = log_in(browser, coordinator)
    page = browser.get("/ui/inbox")
    assert page.status_code == 200
    assert i18n.gettext("ru", WAITING) in page.text
    assert WAITING not in page.text
    assert f'>{i18n.gettext("ru", "Inbox")} <span class="count"' in page.text
    entry = db.scalars(select(InboxEntry).where(InboxEntry.user_id == coordinator.id)).one()
    assert entry.placement_id == placed["placement"]["id"]
    read = browser.post(f"/ui/inbox/{entry.id}/read", data={"csrf_token": token})
    assert read.status_code == 303
    db.refresh(entry)
    assert entry.read_at is not None
    assert 'class="count"' not in browser.get("/ui/inbox").text


def test_nobody_reads_or_marks_another_users_entry(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=4, admits=WOMEN_AND_CHILDREN)
    owner = world.user(Role.COORDINATOR, shelters=[shelter])
    caseworker = world.headers(Role.CASEWORKER)
    match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))
    entry = db.scalars(select(InboxEntry).where(InboxEntry.user_id == owner.id)).one()
    for role in (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER):
        with TestClient(browser.app, base_url="https://testserver", follow_redirects=False) as b:
            token = log_in(b, world.user(role))
            assert WAITING not in b.get("/ui/inbox").text
            assert (
                b.post(f"/ui/inbox/{entry.id}/read", data={"csrf_token": token}).status_code == 404
            )
    db.refresh(entry)
    assert entry.read_at is None


def test_a_coming_of_age_notice_says_whether_the_month_is_known(
    browser: TestClient, world: World, db: Session
) -> None:
    coordinator = world.user(Role.COORDINATOR, shelters=[world.shelter()])
    for reason in ("comes_of_age", "may_come_of_age"):
        db.add(InboxEntry(user_id=coordinator.id, event="member.coming_of_age", reason=reason))
    db.flush()
    log_in(browser, coordinator)
    page = browser.get("/ui/inbox", headers={"Accept-Language": "ru"}).text
    assert "станет совершеннолетним в этом или следующем месяце" in page
    assert (
        i18n.gettext(
            "ru", "A placed minor may come of age during the stay: check the unit still fits."
        )
        in page
    )
