"""Users, passwords, API keys and login throttling.

Passwords are hashed with Argon2id (pwdlib). API keys are random 256-bit secrets of the form
``rfg_<prefix>_<secret>``; only the SHA-256 of the secret is stored, looked up by its prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.orm import Session, selectinload

from shelters.errors import InvalidCredentials, InvalidInput, NotFound, TooManyAttempts
from shelters.models import (
    ApiKey,
    LoginThrottle,
    Organization,
    Shelter,
    User,
    insert_missing,
    user_shelters,
    utcnow,
)

_HASHER = PasswordHash((Argon2Hasher(),))
# Verified against when the username is unknown, so that both paths cost the same.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
API_KEY_PREFIX = "rfg_"
MIN_PASSWORD_LENGTH = 12


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    CASEWORKER = "caseworker"
    FUNDER = "funder"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: enough to decide every permission without another query."""

    user_id: int
    username: str
    role: Role
    organization_id: int | None
    shelter_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures in how long lock a username, and for how long (seconds)."""

    max_failures: int
    window_s: int
    lockout_s: int


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``; refuses passwords shorter than 12 characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def principal_of(user: User) -> Principal:
    """The principal for a loaded user (its ``shelters`` must be loaded)."""
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        organization_id=user.organization_id,
        shelter_ids=frozenset(s.id for s in user.shelters),
    )


def get_user(session: Session, user_id: int) -> User:
    """The active user with that id and its shelters; ``NotFound`` otherwise."""
    user = session.scalar(
        select(User)
        .options(selectinload(User.shelters))
        .where(User.id == user_id, User.is_active.is_(True))
    )
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    organization_id: int | None,
    shelter_ids: list[int] | None = None,
) -> User:
    """Create a user; coordinators get their shelters, which must belong to known shelters.

    Every role but ``admin`` needs an organisation; only coordinators have shelters.
    """
    shelter_ids = sorted(set(shelter_ids or []))
    if role is not Role.ADMIN and organization_id is None:
        raise InvalidInput(f"a {role.value} needs an organization_id")
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise InvalidInput(f"organization {organization_id} does not exist")
    if shelter_ids and role is not Role.COORDINATOR:
        raise InvalidInput("only coordinators run shelters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"username {username!r} is taken")
    shelters = list(session.scalars(select(Shelter).where(Shelter.id.in_(shelter_ids))))
    missing = set(shelter_ids) - {s.id for s in shelters}
    if missing:
        raise InvalidInput(f"unknown shelter ids: {sorted(missing)}")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        organization_id=organization_id,
        shelters=shelters,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Replace the user's password hash."""
    user.password_hash = hash_password(password)
    session.flush()


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> User:
    """The user whose credentials these are.

    Raises ``TooManyAttempts`` while the username is locked (even for a right password) and
    ``InvalidCredentials`` otherwise; each failure counts towards the lock. Both errors keep
    their counter changes (``commit_anyway``).
    """
    now = now or utcnow()
    insert_missing(
        session,
        LoginThrottle,
        {"username": username, "failures": 0, "window_started_at": now, "locked_until": None},
    )
    throttle = session.get(LoginThrottle, username, with_for_update=True, populate_existing=True)
    assert throttle is not None
    if throttle.locked_until is not None and throttle.locked_until > now:
        wait = int((throttle.locked_until - now).total_seconds()) + 1
        raise TooManyAttempts("too many failed logins; try again later", retry_after_s=wait)
    user = session.scalar(
        select(User)
        .options(selectinload(User.shelters))
        .where(User.username == username, User.is_active.is_(True))
    )
    ok, new_hash = _HASHER.verify_and_update(password, user.password_hash if user else _DUMMY_HASH)
    if user is not None and ok:
        session.delete(throttle)
        if new_hash is not None:  # parameters were raised since this hash was made
            user.password_hash = new_hash
        session.flush()
        return user
    if now - throttle.window_started_at > timedelta(seconds=policy.window_s):
        throttle.failures, throttle.window_started_at = 0, now
    throttle.failures += 1
    if throttle.failures >= policy.max_failures:
        throttle.locked_until = now + timedelta(seconds=policy.lockout_s)
        throttle.failures, throttle.window_started_at = 0, now
    session.flush()
    raise InvalidCredentials("incorrect username or password")


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, user: User) -> str:
    """Create an API key for ``user`` and return the token; it is never retrievable again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(user_id=user.id, prefix=prefix, secret_sha256=_sha256(secret)))
    session.flush()
    return f"{API_KEY_PREFIX}{prefix}_{secret}"


def api_key_user_id(session: Session, token: str) -> int:
    """The id of the user owning this API key; ``InvalidCredentials`` for anything else."""
    body = token.removeprefix(API_KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.secret_sha256, _sha256(secret))
    ):
        raise InvalidCredentials("invalid API key")
    return key.user_id


_PRINCIPAL_ROW = select(
    User.id,
    User.username,
    User.role,
    User.organization_id,
    select(func.aggregate_strings(cast(user_shelters.c.shelter_id, String), ","))
    .where(user_shelters.c.user_id == User.id)
    .scalar_subquery(),
).where(User.id == bindparam("user_id"), User.is_active.is_(True))
"""Built once: the statement runs on every request, its construction need not."""


def load_principal(session: Session, user_id: int) -> Principal:
    """The principal of an active user, read with one small query (no shelter rows).

    Raises ``NotFound`` when there is no such active user. Called on every request, so it
    selects only the columns a permission decision needs, with the user's shelter ids folded
    into one string by the database.
    """
    row = session.connection().execute(_PRINCIPAL_ROW, {"user_id": user_id}).one_or_none()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return Principal(
        user_id=row[0],
        username=row[1],
        role=Role(row[2]),
        organization_id=row[3],
        shelter_ids=frozenset(map(int, row[4].split(","))) if row[4] else frozenset(),
    )


def is_api_key(token: str) -> bool:
    """Whether a bearer token has the shape of an API key rather than a JWT."""
    return token.startswith(API_KEY_PREFIX)


def user_for_key_issue(session: Session, principal: Principal, user_id: int) -> User:
    """The user an API key may be issued for: oneself, or anyone for an admin.

    Another user's id answers ``NotFound`` to non-admins, so ids of staff are not probed.
    """
    if principal.role is not Role.ADMIN and principal.user_id != user_id:
        raise NotFound(f"user {user_id} not found")
    return get_user(session, user_id)
