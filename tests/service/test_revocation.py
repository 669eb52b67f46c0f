"""Taking access back: every way in is tried after it should have closed.

Web sessions that live on the server, disabled users, revoked and expired API keys, tokens
that claim too much, the second factor, and the audit entry of every change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from service.app import create_app
from service.auth import ALGORITHM, ISSUER
from shelters import identity
from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.models import ApiKey, RecoveryCode, User, WebSession, utcnow
from tests.conftest import PASSWORD, TEST_SECRET, World, csrf_of, make_settings

NEW_PASSWORD = "a brand new long password"


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A cookie-keeping client over https, so that Secure cookies come back."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def page_login(client: TestClient, user: User, code: str | None = None) -> Any:
    form = {"username": user.username, "password": PASSWORD, "csrf_token": csrf_of(client)}
    if code is not None:
        form["totp"] = code
    return client.post("/ui/login", data=form)


def log_in(client: TestClient, user: User) -> str:
    """Log in on the pages; the session cookie's value."""
    response = page_login(client, user)
    assert response.status_code == 303, response.text
    cookie = client.cookies.get("refuge_session")
    assert cookie
    return cookie


def opens_page(cookie: str, app: FastAPI) -> bool:
    """Whether a fresh browser holding only this cookie gets the caseworker page."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as other:
        other.cookies.set("refuge_session", cookie, domain="testserver.local", path="/ui")
        response = other.get("/ui/caseworker")
    return response.status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issued_earlier(user: User, seconds: int = 5) -> dict[str, str]:
    """A valid token issued a few seconds ago (changes made now are later, to the second)."""
    now = int(utcnow().timestamp())
    claims = {"sub": str(user.id), "iss": ISSUER, "iat": now - seconds, "exp": now + 600}
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm=ALGORITHM))


def actions(db: Session) -> list[tuple[str, str, str | None, str]]:
    rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
    return [(e.action, e.resource_type, e.resource_id, e.outcome) for e in rows]


# --- web sessions on the server -----------------------------------------------------------------


def test_the_cookie_holds_a_random_id_and_only_its_hash_is_stored(
    browser: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    cookie = log_in(browser, user)
    stored = db.scalars(select(WebSession).where(WebSession.user_id == user.id)).one()
    assert str(user.id) not in cookie.split(".")  # no signed payload naming the user
    assert cookie not in stored.token_sha256
    assert len(cookie) >= 40


def test_a_copied_cookie_is_refused_after_logout(
    browser: TestClient, world: World, app: FastAPI, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    cookie = log_in(browser, user)
    assert opens_page(cookie, app)
    token = csrf_of(browser, "/ui/caseworker")
    assert browser.post("/ui/logout", data={"csrf_token": token}).status_code == 303
    assert not opens_page(cookie, app)
    assert db.scalars(select(WebSession).where(WebSession.user_id == user.id)).all() == []
    assert ("logout", "user", str(user.id), "ok") in actions(db)


def test_logging_in_again_ends_the_session_the_browser_had(
    browser: TestClient, world: World, app: FastAPI
) -> None:
    first = log_in(browser, world.user(Role.CASEWORKER))
    other = world.user(Role.CASEWORKER)
    form = {
        "username": other.username,
        "password": PASSWORD,
        "csrf_token": csrf_of(browser, "/ui/caseworker"),
    }
    assert browser.post("/ui/login", data=form).status_code == 303
    second = browser.cookies.get("refuge_session")
    assert second
    assert second != first
    assert not opens_page(first, app)
    assert opens_page(second, app)


def test_logout_without_the_csrf_token_ends_nothing(
    browser: TestClient, world: World, app: FastAPI
) -> None:
    cookie = log_in(browser, world.user(Role.CASEWORKER))
    assert browser.post("/ui/logout", data={}).status_code == 403
    assert opens_page(cookie, app)


def test_a_session_idle_too_long_or_too_old_ends(
    browser: TestClient, world: World, app: FastAPI, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    cookie = log_in(browser, user)
    settings = app.state.ui_settings
    rows = update(WebSession).where(WebSession.user_id == user.id)
    idle = utcnow() - timedelta(minutes=settings.idle_minutes, seconds=5)
    db.execute(rows.values(last_seen_at=idle))
    assert not opens_page(cookie, app)
    db.execute(rows.values(last_seen_at=utcnow()))
    assert opens_page(cookie, app)
    old = utcnow() - timedelta(hours=settings.max_hours, seconds=5)
    db.execute(rows.values(created_at=old, last_seen_at=utcnow()))
    assert not opens_page(cookie, app)


def test_a_page_restarts_the_idle_clock_at_most_once_a_minute(
    browser: TestClient, world: World, app: FastAPI, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    cookie = log_in(browser, user)
    rows = update(WebSession).where(WebSession.user_id == user.id)
    recent = utcnow() - timedelta(seconds=20)
    db.execute(rows.values(last_seen_at=recent))
    assert opens_page(cookie, app)
    seen = db.scalar(select(WebSession.last_seen_at).where(WebSession.user_id == user.id))
    assert seen == recent  # read, not written
    stale = utcnow() - timedelta(minutes=5)
    db.execute(rows.values(last_seen_at=stale))
    assert opens_page(cookie, app)
    seen = db.scalar(select(WebSession.last_seen_at).where(WebSession.user_id == user.id))
    assert seen is not None
    assert seen > stale + timedelta(minutes=4)


def test_a_forged_or_old_style_signed_cookie_logs_nobody_in(world: World, app: FastAPI) -> None:
    from itsdangerous import URLSafeTimedSerializer

    user = world.user(Role.CASEWORKER)
    old_style = URLSafeTimedSerializer(TEST_SECRET, salt="refuge.ui.session").dumps(
        {"u": user.id, "c": "x", "s": int(utcnow().timestamp())}
    )
    assert not opens_page(old_style, app)
    assert not opens_page("A" * 43, app)


# --- disabling users ----------------------------------------------------------------------------


def test_disabling_a_user_stops_their_token_key_and_sessions_on_the_next_request(
    client: TestClient, browser: TestClient, world: World, app: FastAPI, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    jwt_headers = issued_earlier(user)
    key = bearer(identity.create_api_key(db, user))
    cookie = log_in(browser, user)
    admin = world.headers(Role.ADMIN)
    for headers in (jwt_headers, key):
        assert client.get("/api/v1/me", headers=headers).status_code == 200

    response = client.post(f"/api/v1/users/{user.id}/disable", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": user.id, "active": False, "web_sessions_ended": 1}
    for headers in (jwt_headers, key):
        assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert not opens_page(cookie, app)
    assert page_login(browser, user).status_code == 401

    enabled = client.post(f"/api/v1/users/{user.id}/enable", headers=admin)
    assert enabled.json()["active"] is True
    # Enabling brings no stolen token or session back; the key (not revoked) works again.
    assert client.get("/api/v1/me", headers=jwt_headers).status_code == 401
    assert not opens_page(cookie, app)
    assert client.get("/api/v1/me", headers=key).status_code == 200
    assert client.get("/api/v1/me", headers=world.headers_for(user)).status_code == 200
    assert [a[:2] for a in actions(db) if a[0] in ("disable", "enable")] == [
        ("disable", "user"),
        ("enable", "user"),
    ]


def test_an_admin_cannot_disable_themselves(client: TestClient, world: World) -> None:
    admin = world.user(Role.ADMIN)
    response = client.post(f"/api/v1/users/{admin.id}/disable", headers=world.headers_for(admin))
    assert response.status_code == 409
    assert client.get("/api/v1/me", headers=world.headers_for(admin)).status_code == 200


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER])
def test_only_admins_disable_enable_or_reset_others(
    client: TestClient, world: World, db: Session, role: Role
) -> None:
    target = world.user(Role.CASEWORKER)
    headers = world.headers(role)
    for verb in ("disable", "enable", "totp/reset"):
        response = client.post(f"/api/v1/users/{target.id}/{verb}", headers=headers)
        assert response.status_code == 403, verb
    db.refresh(target)
    assert target.is_active
    denied = [a for a in actions(db) if a[0] in ("disable", "enable", "reset_totp")]
    assert [a[3] for a in denied] == ["denied"] * 3


def test_disabling_an_unknown_user_is_not_found(client: TestClient, world: World) -> None:
    response = client.post("/api/v1/users/999999/disable", headers=world.headers(Role.ADMIN))
    assert response.status_code == 404


# --- API keys -----------------------------------------------------------------------------------


def create_key(client: TestClient, user_id: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/v1/users/{user_id}/api-keys", headers=headers, json=body or None)


def test_a_revoked_key_is_refused_at_once(client: TestClient, world: World, db: Session) -> None:
    user = world.user(Role.FUNDER)
    created = create_key(client, user.id, world.headers_for(user))
    assert created.status_code == 201
    key = bearer(created.json()["token"])
    assert client.get("/api/v1/me", headers=key).status_code == 200
    revoked = client.post(f"/api/v1/api-keys/{created.json()['id']}/revoke", headers=key)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/me", headers=key).status_code == 401
    assert ("revoke", "api_key", str(created.json()["id"]), "ok") in actions(db)


def test_an_expired_key_is_refused(client: TestClient, world: World, db: Session) -> None:
    user = world.user(Role.FUNDER)
    soon = (utcnow() + timedelta(days=1)).isoformat()
    created = create_key(client, user.id, world.headers_for(user), expires_at=soon)
    assert created.status_code == 201, created.text
    assert created.json()["expires_at"] is not None
    key = bearer(created.json()["token"])
    assert client.get("/api/v1/me", headers=key).status_code == 200
    db.execute(
        update(ApiKey)
        .where(ApiKey.id == created.json()["id"])
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    assert client.get("/api/v1/me", headers=key).status_code == 401


@pytest.mark.parametrize("expires_at", ["2020-01-01T00:00:00Z", "2030-01-01T00:00:00", "soon"])
def test_a_key_cannot_be_made_already_expired_or_without_a_zone(
    client: TestClient, world: World, expires_at: str
) -> None:
    user = world.user(Role.FUNDER)
    response = create_key(client, user.id, world.headers_for(user), expires_at=expires_at)
    assert response.status_code == 422


def test_keys_are_listed_without_secrets_to_their_owner_and_admins_only(
    client: TestClient, world: World, db: Session
) -> None:
    owner = world.user(Role.CASEWORKER)
    token = create_key(client, owner.id, world.headers_for(owner)).json()["token"]
    listed = client.get(f"/api/v1/users/{owner.id}/api-keys", headers=world.headers_for(owner))
    assert listed.status_code == 200
    assert listed.json()["next_cursor"] is None
    [entry] = listed.json()["items"]
    assert token.split("_", 2)[2] not in str(listed.json())
    assert token.startswith(f"rfg_{entry['prefix']}_")
    admin = client.get(f"/api/v1/users/{owner.id}/api-keys", headers=world.headers(Role.ADMIN))
    assert admin.json() == listed.json()
    stranger = world.headers(Role.CASEWORKER)
    assert client.get(f"/api/v1/users/{owner.id}/api-keys", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/api-keys/{entry['id']}/revoke", headers=stranger).status_code == (
        404
    )
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert ("list_api_keys", "user", str(owner.id), "ok") in actions(db)


def test_an_admin_revokes_anyones_key(client: TestClient, world: World) -> None:
    owner = world.user(Role.COORDINATOR)
    created = create_key(client, owner.id, world.headers_for(owner)).json()
    response = client.post(
        f"/api/v1/api-keys/{created['id']}/revoke", headers=world.headers(Role.ADMIN)
    )
    assert response.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.FUNDER)
    created = create_key(client, user.id, world.headers_for(user)).json()
    key = bearer(created["token"])

    def last_used() -> Any:
        return db.scalar(select(ApiKey.last_used_at).where(ApiKey.id == created["id"]))

    assert last_used() is None
    assert client.get("/api/v1/me", headers=key).status_code == 200
    first = last_used()
    assert first is not None
    assert client.get("/api/v1/me", headers=key).status_code == 200
    assert last_used() == first
    earlier = utcnow() - timedelta(minutes=2)
    db.execute(update(ApiKey).where(ApiKey.id == created["id"]).values(last_used_at=earlier))
    assert client.get("/api/v1/me", headers=key).status_code == 200
    assert last_used() > earlier


# --- tokens that claim too much -----------------------------------------------------------------


def signed(claims: dict[str, Any]) -> dict[str, str]:
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm=ALGORITHM))


def claims_for(user: User, *, iat: int | None, lifetime_s: int) -> dict[str, Any]:
    # The lifetime counts from iat when there is one: a second ticking between the caller's
    # reading of the clock and this one made a token of exactly the allowed lifetime one
    # second too long (seen once under load on PostgreSQL).
    start = int(utcnow().timestamp()) if iat is None else iat
    claims: dict[str, Any] = {"sub": str(user.id), "iss": ISSUER, "exp": start + lifetime_s}
    if iat is not None:
        claims["iat"] = iat
    return claims


def test_a_token_signed_with_the_real_key_but_living_ten_years_is_refused(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.ADMIN)
    now = int(utcnow().timestamp())
    ten_years = claims_for(user, iat=now, lifetime_s=10 * 365 * 86400)
    assert client.get("/api/v1/me", headers=signed(ten_years)).status_code == 401
    allowed = claims_for(user, iat=now, lifetime_s=world.settings.token_minutes * 60)
    assert client.get("/api/v1/me", headers=signed(allowed)).status_code == 200
    one_more = claims_for(user, iat=now, lifetime_s=world.settings.token_minutes * 60 + 1)
    assert client.get("/api/v1/me", headers=signed(one_more)).status_code == 401


def test_a_token_issued_in_the_future_or_without_iat_is_refused(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.ADMIN)
    now = int(utcnow().timestamp())
    future = claims_for(user, iat=now + 600, lifetime_s=900)
    assert client.get("/api/v1/me", headers=signed(future)).status_code == 401
    missing = claims_for(user, iat=None, lifetime_s=600)
    assert client.get("/api/v1/me", headers=signed(missing)).status_code == 401
    text_iat = claims_for(user, iat=None, lifetime_s=600) | {"iat": str(now)}
    assert client.get("/api/v1/me", headers=signed(text_iat)).status_code == 401
    skewed = claims_for(user, iat=now + 10, lifetime_s=600)  # within the clock leeway
    assert client.get("/api/v1/me", headers=signed(skewed)).status_code == 200


def test_a_token_made_for_a_longer_lifetime_is_refused_once_the_setting_shrinks(
    connection: Connection, database_url: str, world: World
) -> None:
    user = world.user(Role.ADMIN)
    long_lived = world.headers_for(user)  # token_minutes=30 by default
    app = create_app(make_settings(database_url, token_minutes=10), bind=connection)
    with TestClient(app) as short:
        assert short.get("/api/v1/me", headers=long_lived).status_code == 401


# --- changing one's password --------------------------------------------------------------------


def test_a_password_change_ends_web_sessions_tokens_and_the_old_password(
    client: TestClient, browser: TestClient, world: World, app: FastAPI, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    cookie = log_in(browser, user)
    old_token = issued_earlier(user)
    response = client.post(
        "/api/v1/me/password",
        headers=old_token,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204, response.text
    assert not opens_page(cookie, app)
    assert client.get("/api/v1/me", headers=old_token).status_code == 401
    token = client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
    )
    assert token.status_code == 401
    token = client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": NEW_PASSWORD}
    )
    assert token.status_code == 200
    assert ("change_password", "user", str(user.id), "ok") in actions(db)


def test_a_wrong_current_password_changes_nothing_and_counts_towards_the_lock(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    headers = world.headers_for(user)
    body = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    statuses = [
        client.post("/api/v1/me/password", headers=headers, json=body).status_code
        for _ in range(world.settings.login_max_failures)
    ]
    assert statuses == [422] * world.settings.login_max_failures
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/v1/me/password", headers=headers, json=right).status_code == 429
    login = client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
    )
    assert login.status_code == 429


def test_a_short_new_password_is_refused(client: TestClient, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    body = {"current_password": PASSWORD, "new_password": "short"}
    response = client.post("/api/v1/me/password", headers=world.headers_for(user), json=body)
    assert response.status_code == 422


# --- the second factor --------------------------------------------------------------------------


def enrol(client: TestClient, headers: dict[str, str]) -> tuple[pyotp.TOTP, list[str], str]:
    """Set up a second factor; the app's factor, the recovery codes, and the first code used."""
    begun = client.post("/api/v1/me/totp", headers=headers)
    assert begun.status_code == 201, begun.text
    uri = begun.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/")
    factor = pyotp.parse_uri(uri)
    assert isinstance(factor, pyotp.TOTP)
    first = factor.now()
    confirmed = client.post("/api/v1/me/totp/confirm", headers=headers, json={"code": first})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    return factor, codes, first


def ahead_of_now(factor: pyotp.TOTP) -> str:
    """The next step's code: valid (drift of one step) whether or not the step turns meanwhile."""
    return factor.generate_otp(factor.timecode(utcnow()) + 1)


def wrong_code(factor: pyotp.TOTP) -> str:
    near = {factor.generate_otp(factor.timecode(utcnow()) + d) for d in range(-2, 3)}
    return next(
        c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in near
    )


def token_login(client: TestClient, user: User, code: str | None = None) -> int:
    form = {"username": user.username, "password": PASSWORD}
    if code is not None:
        form["totp"] = code
    status: int = client.post("/api/v1/auth/token", data=form).status_code
    return status


def test_an_enrolled_user_needs_a_valid_unused_code(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    factor, _codes, first = enrol(client, world.headers_for(user))
    # The enrolment's code was used already: it does not log in.
    assert token_login(client, user, first) == 401
    assert token_login(client, user) == 401  # (two failures: the lock is at three)
    ahead = ahead_of_now(factor)
    assert token_login(client, user, ahead) == 200
    assert token_login(client, user, ahead) == 401  # replayed
    assert token_login(client, user, factor.now()) == 401  # older than the last one used
    assert ("confirm_totp", "user", str(user.id), "ok") in actions(db)


def test_a_recovery_code_works_once_and_is_stored_hashed(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.ADMIN)
    _factor, codes, _ = enrol(client, world.headers_for(user))
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))
    hashes = list(stored)
    assert len(hashes) == 10
    assert all(h.startswith("$argon2id$") and codes[0] not in h for h in hashes)
    assert token_login(client, user, codes[0]) == 200
    assert token_login(client, user, codes[0]) == 401
    assert token_login(client, user, codes[1].upper()) == 200


def test_a_confirmed_factor_cannot_be_replaced_without_a_reset(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    headers = world.headers_for(user)
    enrol(client, headers)
    assert client.post("/api/v1/me/totp", headers=headers).status_code == 409
    reset = client.post(f"/api/v1/users/{user.id}/totp/reset", headers=world.headers(Role.ADMIN))
    assert reset.status_code == 204
    assert token_login(client, user) == 200
    enrol(client, headers)


def test_a_wrong_first_code_does_not_switch_the_factor_on(client: TestClient, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    headers = world.headers_for(user)
    factor = pyotp.parse_uri(client.post("/api/v1/me/totp", headers=headers).json()["otpauth_uri"])
    assert isinstance(factor, pyotp.TOTP)
    response = client.post(
        "/api/v1/me/totp/confirm", headers=headers, json={"code": wrong_code(factor)}
    )
    assert response.status_code == 422
    assert token_login(client, user) == 200  # not switched on


@pytest.fixture
def strict_app(database_url: str, connection: Connection) -> FastAPI:
    settings = make_settings(database_url, totp_required_roles="admin,caseworker")
    return create_app(settings, bind=connection)


def test_a_role_that_requires_the_second_factor_cannot_log_in_without_one(
    strict_app: FastAPI, world: World
) -> None:
    caseworker = world.user(Role.CASEWORKER)
    coordinator = world.user(Role.COORDINATOR)
    with TestClient(strict_app) as client:
        assert token_login(client, caseworker) == 401
        assert token_login(client, caseworker, "123456") == 401
        assert token_login(client, coordinator) == 200
    with TestClient(strict_app, base_url="https://testserver", follow_redirects=False) as pages:
        refused = page_login(pages, caseworker)
        assert refused.status_code == 401
        assert "one-time code" in refused.text
        assert page_login(pages, coordinator).status_code == 303


def test_the_web_login_takes_the_code_too(
    client: TestClient, browser: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    factor, _, _ = enrol(client, world.headers_for(user))
    assert page_login(browser, user).status_code == 401
    assert page_login(browser, user, wrong_code(factor)).status_code == 401
    assert page_login(browser, user, ahead_of_now(factor)).status_code == 303


def test_wrong_codes_count_towards_the_login_lock(client: TestClient, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    factor, _, _ = enrol(client, world.headers_for(user))
    wrong = wrong_code(factor)
    statuses = [token_login(client, user, wrong) for _ in range(world.settings.login_max_failures)]
    assert statuses == [401] * world.settings.login_max_failures
    assert token_login(client, user, ahead_of_now(factor)) == 429
