"""The admin's pages: the audit chain, starting and reading a run, and the users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shelters.identity import Role
from shelters.models import MatchingRun, User
from tests.conftest import World
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, request_for
from tests.ui.test_pages import log_in


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as page:
        yield page


def test_the_admins_first_screen_says_the_chain_is_intact(
    browser: TestClient, world: World
) -> None:
    log_in(browser, world.user(Role.ADMIN))
    landing = browser.get("/ui")
    assert landing.headers["location"] == "/ui/admin"
    page = browser.get("/ui/admin")
    assert page.status_code == 200
    assert "Anchor:" in page.text
    assert "Verified" not in page.text  # verifying is asked for, not done on every view
    verified = browser.get("/ui/admin?verify=true").text
    assert "Verified: every entry is intact." in verified


def test_an_admin_starts_a_run_and_reads_why_a_request_was_not_placed(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    world.unit(world.shelter(), capacity=4, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    request_for(client, caseworker, MOTHER_AND_CHILD)
    alone = request_for(client, caseworker, [{"ref": "A", "sex": "female", "age": 15}])
    token = log_in(browser, world.user(Role.ADMIN))
    started = browser.post("/ui/runs", data={"csrf_token": token, "time_limit_s": "5"})
    assert started.status_code == 303, started.text
    run_url = started.headers["location"]
    run = db.get(MatchingRun, int(run_url.rsplit("/", 1)[1]))
    assert run is not None
    db.refresh(run)
    page = browser.get(run_url)
    assert page.status_code == 200
    assert "1 of 2 requests were placed." in page.text
    assert f"Request {alone}" in page.text
    assert "No unit there admits member A" in page.text
    assert 'http-equiv="refresh"' not in page.text  # done: it no longer refreshes
    refused = browser.post("/ui/runs", data={"csrf_token": token, "time_limit_s": "100000"})
    assert refused.status_code == 422
    assert "time_limit_s may be at most" in refused.text


def test_disabling_a_user_needs_a_tick_and_works(
    browser: TestClient, world: World, db: Session
) -> None:
    target = world.user(Role.CASEWORKER)
    token = log_in(browser, world.user(Role.ADMIN))
    assert target.username in browser.get("/ui/users").text
    unticked = browser.post(f"/ui/users/{target.id}/disable", data={"csrf_token": token})
    assert unticked.status_code == 422
    db.refresh(target)
    assert target.is_active
    done = browser.post(
        f"/ui/users/{target.id}/disable", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 303
    db.refresh(target)
    assert not target.is_active
    again = browser.post(f"/ui/users/{target.id}/enable", data={"csrf_token": token})
    assert again.status_code == 303
    db.refresh(target)
    assert target.is_active


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER])
def test_no_other_role_reaches_the_admin_pages(
    browser: TestClient, world: World, db: Session, role: Role
) -> None:
    victim = world.user(Role.CASEWORKER)
    token = log_in(browser, world.user(role))
    for path in ("/ui/admin", "/ui/users", "/ui/runs/1"):
        assert browser.get(path).status_code == 403, path
    for path in ("/ui/runs", f"/ui/users/{victim.id}/disable", f"/ui/users/{victim.id}/enable"):
        response = browser.post(path, data={"csrf_token": token, "confirm": "yes"})
        assert response.status_code == 403, path
    db.refresh(victim)
    assert victim.is_active
    assert db.query(MatchingRun).count() == 0
    assert db.get(User, victim.id) is not None
