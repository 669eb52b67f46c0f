"""The admin's pages: the audit chain, starting and reading a run, and the users."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shelters import identity, notifications
from shelters.identity import Role
from shelters.models import MatchingRun, User, WebhookDelivery, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, request_for
from tests.ui.test_pages import held_bed, log_in, shelter_with_unit


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
    key, _ = identity.issue_api_key(db, victim.id)
    for path in (
        "/ui/admin",
        "/ui/users",
        "/ui/runs/1",
        f"/ui/users/{victim.id}/api-keys",
        "/ui/webhooks",
    ):
        assert browser.get(path).status_code == 403, path
    for path in (
        "/ui/runs",
        f"/ui/users/{victim.id}/disable",
        f"/ui/users/{victim.id}/enable",
        f"/ui/api-keys/{key.id}/revoke",
    ):
        response = browser.post(path, data={"csrf_token": token, "confirm": "yes"})
        assert response.status_code == 403, path
    made = browser.post(
        "/ui/users", data={"csrf_token": token, "username": "sneaky-admin", "role": "admin"}
    )
    assert made.status_code == 403
    assert db.query(User).filter_by(username="sneaky-admin").count() == 0
    db.refresh(victim)
    db.refresh(key)
    assert victim.is_active
    assert key.revoked_at is None
    assert db.query(MatchingRun).count() == 0
    assert db.get(User, victim.id) is not None


def test_an_admin_creates_a_coordinator_and_reads_the_first_password_once(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    org = world.organization()
    shelter = world.shelter(org)
    token = log_in(browser, world.user(Role.ADMIN))
    form = browser.get("/ui/users").text
    assert 'name="shelter_ids"' in form
    assert shelter.name in form
    made = browser.post(
        "/ui/users",
        data={
            "csrf_token": token,
            "username": "coord-synthetic-1",
            "role": "coordinator",
            "organization_id": str(org.id),
            "shelter_ids": [str(shelter.id)],
            "locale": "kk",
        },
    )
    assert made.status_code == 201, made.text
    user = db.query(User).filter_by(username="coord-synthetic-1").one()
    assert (user.role, user.organization_id, user.locale) == ("coordinator", org.id, "kk")
    password = made.text.split('<p class="code"><strong>')[1].split("</strong>")[0]
    assert len(password) >= 12
    assert identity.verify_password(password, user.password_hash)
    # The new user logs in with it, coordinating the chosen shelter; it is never shown again.
    answer = client.post(
        "/api/v1/auth/token", data={"username": "coord-synthetic-1", "password": password}
    )
    assert answer.status_code == 200
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"}
    )
    assert me.json()["shelter_ids"] == [shelter.id]
    assert password not in browser.get("/ui/users").text


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"username": "No Spaces!", "role": "caseworker"}, "a username is 3 to 64"),
        ({"username": "role-less", "role": "superuser"}, "choose a role from the list"),
        ({"username": "org-less", "role": "caseworker"}, "a caseworker needs an organization_id"),
        ({"username": "ghost-org", "role": "funder", "organization_id": "999999"}, "does not"),
        ({"username": "not-a-coord", "role": "caseworker", "shelter_ids": "1"}, "only coordi"),
        ({"username": "bad-shelter", "role": "coordinator", "shelter_ids": "x"}, "choose shel"),
        ({"username": "bad-lang", "role": "admin", "locale": "de"}, "choose a language"),
    ],
)
def test_a_refused_user_is_said_in_words_and_nothing_is_written(
    browser: TestClient, world: World, db: Session, fields: dict[str, str], words: str
) -> None:
    org = world.organization()
    token = log_in(browser, world.user(Role.ADMIN))
    if fields["role"] in ("caseworker", "coordinator") and fields["username"] != "org-less":
        fields = {"organization_id": str(org.id)} | fields
    before = db.query(User).count()
    refused = browser.post("/ui/users", data={"csrf_token": token} | fields)
    assert refused.status_code == 422
    assert words in refused.text
    assert f'value="{fields["username"]}"' in refused.text  # what was typed is kept
    assert db.query(User).count() == before


def test_a_taken_username_is_refused_in_russian(
    browser: TestClient, world: World, db: Session
) -> None:
    taken = world.user(Role.CASEWORKER)
    token = log_in(browser, world.user(Role.ADMIN))
    refused = browser.post(
        "/ui/users",
        data={"csrf_token": token, "username": taken.username, "role": "admin"},
        headers={"Accept-Language": "ru"},
    )
    assert refused.status_code == 422
    assert "занято" in refused.text


def test_an_admin_lists_a_users_keys_without_secrets_and_revokes_one(
    browser: TestClient, client: TestClient, world: World, db: Session
) -> None:
    owner = world.user(Role.CASEWORKER)
    kept, kept_token = identity.issue_api_key(db, owner.id)
    gone, gone_token = identity.issue_api_key(db, owner.id)
    token = log_in(browser, world.user(Role.ADMIN))
    page = browser.get(f"/ui/users/{owner.id}/api-keys")
    assert page.status_code == 200
    assert f"rfg_{kept.prefix}_" in page.text
    assert f"rfg_{gone.prefix}_" in page.text
    for key, secret in ((kept, kept_token), (gone, gone_token)):
        assert secret.removeprefix(f"rfg_{key.prefix}_") not in page.text
    assert "never used" in page.text
    revoked = browser.post(f"/ui/api-keys/{gone.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["location"].endswith(f"/api-keys?notice=key_revoked#key-{gone.id}")
    db.refresh(gone)
    db.refresh(kept)
    assert gone.revoked_at is not None
    assert kept.revoked_at is None
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {gone_token}"}).status_code
        == 401
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {kept_token}"}).status_code
        == 200
    )
    after = browser.get(revoked.headers["location"]).text
    assert "API key revoked: it no longer works." in after
    assert "Revoked" in after


def test_unknown_users_and_keys_are_404_pages(browser: TestClient, world: World) -> None:
    token = log_in(browser, world.user(Role.ADMIN))
    assert browser.get("/ui/users/999999/api-keys").status_code == 404
    missing = browser.post("/ui/api-keys/999999/revoke", data={"csrf_token": token})
    assert missing.status_code == 404
    assert "API key 999999 not found" in missing.text


def test_the_webhooks_page_shows_each_endpoints_latest_deliveries(
    browser: TestClient, world: World, db: Session
) -> None:
    admin = world.user(Role.ADMIN)
    made = notifications.create_endpoint(
        db, identity.principal_of(admin), url="https://receiver.example/hook", events=[]
    )
    now = utcnow()
    rows = [
        WebhookDelivery(
            message_id="msg_delivered",
            endpoint_id=made.endpoint.id,
            event="placement.proposed",
            payload={"placement_id": 1},
            status="delivered",
            attempts=1,
            delivered_at=now,
            last_status_code=204,
        ),
        WebhookDelivery(
            message_id="msg_retrying",
            endpoint_id=made.endpoint.id,
            event="unit.stale",
            payload={"unit_id": 1},
            status="pending",
            attempts=3,
            next_attempt_at=now + timedelta(minutes=5),
            last_status_code=503,
            last_error="HTTP 503",
        ),
    ]
    db.add_all(rows)
    db.flush()
    log_in(browser, admin)
    assert 'href="/ui/webhooks"' in browser.get("/ui/admin").text
    page = browser.get("/ui/webhooks")
    assert page.status_code == 200
    assert "https://receiver.example/hook" in page.text
    assert made.secret not in page.text
    delivered = page.text.split(f'id="delivery-{rows[0].id}"')[1].split("</li>")[0]
    assert "placement.proposed" in delivered
    assert "1 try" in delivered
    assert "last answer HTTP 204" in delivered
    retrying = page.text.split(f'id="delivery-{rows[1].id}"')[1].split("</li>")[0]
    assert "waiting to be sent" in retrying
    assert "3 tries" in retrying
    assert "HTTP 503" in retrying
    assert "next try" in retrying
    assert "placement_id" not in page.text  # payloads stay in the API


def test_an_admin_chooses_one_shelter_on_the_beds_page(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)  # a proposal waiting at held.shelter
    other, other_unit = shelter_with_unit(world)
    token = log_in(browser, world.user(Role.ADMIN))
    first = browser.get("/ui/coordinator")
    assert first.status_code == 200
    assert 'id="choose-shelter"' in first.text
    assert "My shelters" not in first.text
    assert f'id="shelter-{held.shelter.id}"' not in first.text  # no shelter until one is chosen
    assert f'id="placement-{held.placement.id}"' not in first.text
    assert f"{held.shelter.name} · 1 waiting" in first.text  # the chooser says where work waits
    page = browser.get(f"/ui/coordinator?shelter={held.shelter.id}").text
    assert f"Beds at {held.shelter.name}" in page
    assert "My shelters" not in page
    assert f'id="placement-{held.placement.id}"' in page
    assert f'id="shelter-{other.id}"' not in page
    assert f'<option value="{held.shelter.id}" selected>' in page
    theirs = browser.get(f"/ui/coordinator?shelter={other.id}").text
    assert f'id="unit-{other_unit.id}"' in theirs
    assert f'id="placement-{held.placement.id}"' not in theirs
    assert "Nothing is waiting at this shelter." in theirs
    assert browser.get("/ui/coordinator?shelter=999999").status_code == 404
    confirmed = browser.post(
        f"/ui/units/{other_unit.id}/confirm",
        data={"csrf_token": token, "version": str(other_unit.version)},
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == (
        f"/ui/coordinator?notice=unit_confirmed&shelter={other.id}#unit-{other_unit.id}"
    )


def test_a_coordinators_beds_page_is_unchanged_and_ignores_a_chosen_shelter(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    other, _ = shelter_with_unit(world)
    coordinator = db.get(User, held.coordinator.user_id)
    assert coordinator is not None
    log_in(browser, coordinator)
    page = browser.get(f"/ui/coordinator?shelter={other.id}").text
    assert "My shelters" in page
    assert 'id="choose-shelter"' not in page
    assert f'id="shelter-{held.shelter.id}"' in page
    assert f'id="placement-{held.placement.id}"' in page
    assert other.name not in page


def test_an_admin_cannot_disable_themselves_from_the_page(
    browser: TestClient, world: World, db: Session
) -> None:
    admin = world.user(Role.ADMIN)
    token = log_in(browser, admin)
    assert f'action="/ui/users/{admin.id}/disable"' not in browser.get("/ui/users").text
    refused = browser.post(
        f"/ui/users/{admin.id}/disable", data={"csrf_token": token, "confirm": "yes"}
    )
    assert refused.status_code == 409
    assert "you cannot disable your own account" in refused.text
    db.refresh(admin)
    assert admin.is_active
