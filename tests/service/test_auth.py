"""Tokens, API keys, login throttling and users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import auth
from service.auth import ALGORITHM, ISSUER
from shelters.identity import Role
from shelters.models import ApiKey, User, utcnow
from tests.conftest import PASSWORD, TEST_SECRET, World


def login(client: TestClient, username: str, password: str) -> object:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_login_returns_a_short_lived_pinned_jwt(client: TestClient, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    response = login(client, user.username, PASSWORD)
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 3600
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {
        "id": user.id,
        "username": user.username,
        "role": "caseworker",
        "organization_id": user.organization_id,
        "shelter_ids": [],
        "locale": None,
    }


def test_wrong_password_and_unknown_user_are_refused_alike(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    wrong = login(client, user.username, "not the password at all")
    unknown = login(client, "nobody-here", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401  # type: ignore[attr-defined]
    assert wrong.json()["detail"] == unknown.json()["detail"]  # type: ignore[attr-defined]


def test_repeated_failures_lock_the_username_even_for_the_right_password(
    client: TestClient, world: World
) -> None:
    user = world.user(Role.COORDINATOR)
    statuses = [login(client, user.username, "wrong password!!").status_code for _ in range(3)]  # type: ignore[attr-defined]
    assert statuses == [401, 401, 401]
    locked = login(client, user.username, PASSWORD)
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert int(locked.headers["retry-after"]) > 0  # type: ignore[attr-defined]
    assert locked.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


def test_success_before_the_limit_resets_the_counter(client: TestClient, world: World) -> None:
    user = world.user(Role.COORDINATOR)
    for _ in range(2):
        login(client, user.username, "wrong password!!")
    assert login(client, user.username, PASSWORD).status_code == 200  # type: ignore[attr-defined]
    for _ in range(2):
        login(client, user.username, "wrong password!!")
    assert login(client, user.username, PASSWORD).status_code == 200  # type: ignore[attr-defined]


def _token(claims: dict[str, object], secret: str = TEST_SECRET, alg: str = ALGORITHM) -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def test_expired_forged_and_unsigned_tokens_are_refused(client: TestClient, world: World) -> None:
    user = world.user(Role.ADMIN)
    now = utcnow()
    good = {"sub": str(user.id), "iss": ISSUER, "iat": int(now.timestamp())}
    expired = _token(good | {"exp": int((now - timedelta(minutes=1)).timestamp())})
    forged = _token(good | {"exp": int((now + timedelta(minutes=5)).timestamp())}, secret="x" * 48)
    unsigned = jwt.encode(
        good | {"exp": int((now + timedelta(minutes=5)).timestamp())}, key=None, algorithm="none"
    )
    wrong_issuer = _token(
        good | {"iss": "elsewhere", "exp": int((now + timedelta(minutes=5)).timestamp())}
    )
    for token in (expired, forged, unsigned, wrong_issuer, "garbage"):
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_a_token_checked_before_is_still_refused_once_it_expires(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verified tokens are cached; the expiry must still be compared on every use.
    user = world.user(Role.CASEWORKER)
    now = utcnow()
    exp = int((now + timedelta(minutes=5)).timestamp())
    token = _token({"sub": str(user.id), "iss": ISSUER, "iat": int(now.timestamp()), "exp": exp})
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    monkeypatch.setattr(auth.time, "time", lambda: float(exp))
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    monkeypatch.setattr(auth.time, "time", lambda: exp - 1.0)
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_a_disabled_user_is_refused_at_once(client: TestClient, world: World, db: Session) -> None:
    user = world.user(Role.CASEWORKER)
    headers = world.headers_for(user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user.is_active = False
    db.flush()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_api_key_is_shown_once_stored_hashed_and_works(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.FUNDER)
    response = client.post(f"/api/v1/users/{user.id}/api-keys", headers=world.headers_for(user))
    assert response.status_code == 201
    token = response.json()["token"]
    stored = db.scalars(select(ApiKey).where(ApiKey.user_id == user.id)).one()
    assert token.split("_", 2)[2] not in {stored.secret_sha256, stored.prefix}
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == user.id
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401
    )


def test_api_keys_for_another_user_are_not_found_unless_admin(
    client: TestClient, world: World
) -> None:
    other = world.user(Role.CASEWORKER)
    response = client.post(
        f"/api/v1/users/{other.id}/api-keys", headers=world.headers(Role.COORDINATOR)
    )
    assert response.status_code == 404
    admin = client.post(f"/api/v1/users/{other.id}/api-keys", headers=world.headers(Role.ADMIN))
    assert admin.status_code == 201


def test_only_admins_create_users_and_passwords_are_hashed(
    client: TestClient, world: World, db: Session, as_role: Callable[[Role], dict[str, str]]
) -> None:
    org = world.organization()
    shelter = world.shelter(org)
    body = {
        "username": "new-coordinator",
        "password": "a long enough password",
        "role": "coordinator",
        "organization_id": org.id,
        "shelter_ids": [shelter.id],
    }
    for role in (Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER):
        assert client.post("/api/v1/users", json=body, headers=as_role(role)).status_code == 403
    created = client.post("/api/v1/users", json=body, headers=as_role(Role.ADMIN))
    assert created.status_code == 201
    assert "password" not in created.json()
    assert created.json()["shelter_ids"] == [shelter.id]
    stored = db.scalars(select(User).where(User.username == "new-coordinator")).one()
    assert stored.password_hash.startswith("$argon2id$")
    duplicate = client.post("/api/v1/users", json=body, headers=as_role(Role.ADMIN))
    assert duplicate.status_code == 422


def test_user_rules_are_checked(
    client: TestClient, world: World, as_role: Callable[[Role], dict[str, str]]
) -> None:
    shelter = world.shelter()
    admin = as_role(Role.ADMIN)
    no_org = {
        "username": "caseworker-x",
        "password": "a long enough password",
        "role": "caseworker",
    }
    assert client.post("/api/v1/users", json=no_org, headers=admin).status_code == 422
    org = world.organization()
    shelters_for_caseworker = no_org | {"organization_id": org.id, "shelter_ids": [shelter.id]}
    assert (
        client.post("/api/v1/users", json=shelters_for_caseworker, headers=admin).status_code == 422
    )
    short = no_org | {"organization_id": org.id, "password": "short"}
    assert client.post("/api/v1/users", json=short, headers=admin).status_code == 422
