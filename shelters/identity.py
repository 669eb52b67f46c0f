"""Users, passwords, API keys and login throttling.

Passwords are hashed with Argon2id (pwdlib). API keys are random 256-bit secrets of the form
``rfg_<prefix>_<secret>``; only the SHA-256 of the secret is stored, looked up by its prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import String, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from shelters.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    SecondFactorRequired,
    TooManyAttempts,
    WrongPassword,
)
from shelters.models import (
    LOCALES,
    ApiKey,
    LoginThrottle,
    Organization,
    Shelter,
    User,
    WebSession,
    insert_missing,
    user_shelters,
    utcnow,
)
from shelters.pagination import Page, paginate

_HASHER = PasswordHash((Argon2Hasher(),))
# Verified against when the username is unknown, so that both paths cost the same.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
API_KEY_PREFIX = "rfg_"
MIN_PASSWORD_LENGTH = 12
LAST_USED_PRECISION = timedelta(minutes=1)
"""``api_keys.last_used_at`` is written at most this often per key (see ``note_key_use``)."""


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
    tokens_not_before: int | None = None
    """Epoch second before which this user's access tokens were issued in vain (None: any)."""
    locale: str | None = None
    """The language the user chose to read Refuge in (kk, ru, en); None: not chosen."""


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures in how long lock a username, and for how long (seconds)."""

    max_failures: int
    window_s: int
    lockout_s: int


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``; refuses passwords shorter than 12 characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password must be at least {length} characters", length=MIN_PASSWORD_LENGTH
        )
    return _HASHER.hash(password)


def principal_of(user: User) -> Principal:
    """The principal for a loaded user (its ``shelters`` must be loaded)."""
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        organization_id=user.organization_id,
        shelter_ids=frozenset(s.id for s in user.shelters),
        tokens_not_before=_epoch(user.credentials_changed_at),
        locale=user.locale,
    )


def _epoch(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def get_user(session: Session, user_id: int) -> User:
    """The active user with that id and its shelters; ``NotFound`` otherwise."""
    user = session.scalar(
        select(User)
        .options(selectinload(User.shelters))
        .where(User.id == user_id, User.is_active.is_(True))
    )
    if user is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    organization_id: int | None,
    shelter_ids: list[int] | None = None,
    locale: str | None = None,
) -> User:
    """Create a user; coordinators get their shelters, which must belong to known shelters.

    Every role but ``admin`` needs an organisation; only coordinators have shelters.
    """
    shelter_ids = sorted(set(shelter_ids or []))
    if role is not Role.ADMIN and organization_id is None:
        raise InvalidInput("a {role} needs an organization_id", role=role.value)
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise InvalidInput(
            "organization {organization_id} does not exist", organization_id=organization_id
        )
    if shelter_ids and role is not Role.COORDINATOR:
        raise InvalidInput("only coordinators run shelters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput("username {username!r} is taken", username=username)
    shelters = list(session.scalars(select(Shelter).where(Shelter.id.in_(shelter_ids))))
    missing = set(shelter_ids) - {s.id for s in shelters}
    if missing:
        raise InvalidInput("unknown shelter ids: {ids}", ids=sorted(missing))
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        organization_id=organization_id,
        shelters=shelters,
        locale=locale,
    )
    session.add(user)
    session.flush()
    return user


def first_password() -> str:
    """A random first password (20 characters), for an admin to hand to a new user once.

    Only its hash is kept; the user changes it with their own password afterwards.
    """
    return secrets.token_urlsafe(15)


def set_locale(session: Session, principal: Principal, user_id: int, locale: str | None) -> User:
    """Set the language a user reads Refuge in: one's own, or (admins) anyone's.

    ``locale`` is ``kk``, ``ru``, ``en`` or None (no choice: the browser's language). Another
    user's id answers ``NotFound`` to non-admins, as for API keys.
    """
    if locale is not None and locale not in LOCALES:
        raise InvalidInput("locale must be one of {locales}, or null", locales=", ".join(LOCALES))
    user = user_for_key_issue(session, principal, user_id)
    user.locale = locale
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Replace the user's password hash; tokens issued before now stop working."""
    user.password_hash = hash_password(password)
    user.credentials_changed_at = utcnow()
    session.flush()


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches an Argon2id hash made by this module."""
    return _HASHER.verify(password, password_hash)


def hash_secret(secret: str) -> str:
    """Argon2id hash of a short secret that is not a password (a recovery code)."""
    return _HASHER.hash(secret)


def change_password(
    session: Session,
    user_id: int,
    *,
    current_password: str,
    new_password: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> int:
    """Replace an active user's password after checking the current one; end their web sessions.

    The check is the throttled login check: a wrong current password counts towards the
    username's lock (``WrongPassword`` keeps the count), so a stolen token cannot be used to
    guess the password. Returns how many web sessions were ended.
    """
    user = get_user(session, user_id)
    hashed = hash_password(new_password)  # refuse a short one before counting anything
    try:
        authenticate(
            session, username=user.username, password=current_password, policy=policy, now=now
        )
    except InvalidCredentials:
        raise WrongPassword("the current password is not right") from None
    user.password_hash = hashed
    user.credentials_changed_at = utcnow()
    return end_web_sessions(session, user.id)


def end_web_sessions(session: Session, user_id: int) -> int:
    """Delete every web session of a user (they end at once); returns how many there were."""
    session.flush()
    ended = count_web_sessions(session, user_id)
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return ended


def count_web_sessions(session: Session, user_id: int) -> int:
    """How many web sessions of a user are stored (some may have run out)."""
    counted = session.scalar(select(func.count()).where(WebSession.user_id == user_id))
    return int(counted or 0)


def set_active(
    session: Session, actor_id: int | None, user_id: int, *, active: bool
) -> tuple[User, int]:
    """Enable or disable a user; disabling ends their web sessions at once (how many: second).

    A disabled user's tokens and API keys stop working on their next request, because every
    caller's principal is read from an active user (and the principal cache on PostgreSQL is
    told of the change by the trigger on ``users`` when this commits). Enabling a user makes
    their unexpired tokens and unrevoked keys work again: revoke keys you no longer trust.
    An admin may not disable themselves (``Conflict``), so the last admin is not locked out
    by a slip. Raises ``NotFound`` for an unknown id.
    """
    if not active and actor_id == user_id:
        raise Conflict("you cannot disable your own account")
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    if user.is_active != active:
        user.is_active = active
    if not active:
        user.credentials_changed_at = utcnow()
    session.flush()
    return user, 0 if active else end_web_sessions(session, user.id)


def find_user_id(session: Session, username: str) -> int:
    """The id of the user with this username, active or not; ``NotFound`` otherwise."""
    user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise NotFound("no user named {username!r}", username=username)
    return user_id


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
    second_factor: Callable[[User], bool] | None = None,
) -> User:
    """The user whose credentials these are.

    Raises ``TooManyAttempts`` while the username is locked (even for a right password) and
    ``InvalidCredentials`` otherwise; each failure counts towards the lock. Both errors keep
    their counter changes (``commit_anyway``). ``second_factor``, when given, is asked about
    a user whose password was right; False refuses the login and counts as a failure.
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
    refusal = InvalidCredentials("incorrect username or password")
    if user is not None and ok and second_factor is not None and not second_factor(user):
        ok = False
        refusal = SecondFactorRequired("a valid one-time code is required for this account")
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
    raise refusal


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, user: User, *, expires_at: datetime | None = None) -> str:
    """Create an API key for ``user`` and return the token; it is never retrievable again."""
    return issue_api_key(session, user.id, expires_at=expires_at)[1]


def issue_api_key(
    session: Session, user_id: int, *, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """The stored key and its token (shown once) for an existing user.

    ``expires_at`` (optional) ends the key by itself; ``InvalidInput`` unless in the future.
    """
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at must lie in the future")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user_id, prefix=prefix, secret_sha256=_sha256(secret), expires_at=expires_at
    )
    session.add(key)
    session.flush()
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


@dataclass(frozen=True, slots=True)
class KeyUse:
    """A valid API key's owner, and whether its ``last_used_at`` is due to be written."""

    user_id: int
    key_id: int
    note_due: bool


_KEY_ROW = select(
    ApiKey.id,
    ApiKey.user_id,
    ApiKey.secret_sha256,
    ApiKey.revoked_at,
    ApiKey.expires_at,
    ApiKey.last_used_at,
).where(ApiKey.prefix == bindparam("prefix"))


def check_api_key(session: Session, token: str, *, now: datetime | None = None) -> KeyUse:
    """The owner of this API key if it is valid now; ``InvalidCredentials`` for anything else.

    Revoked and expired keys are refused alike. Reads only: ``note_key_use`` writes the use.
    """
    now = now or utcnow()
    body = token.removeprefix(API_KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    row = session.execute(_KEY_ROW, {"prefix": prefix}).one_or_none()
    if (
        row is None
        or not hmac.compare_digest(row.secret_sha256, _sha256(secret))
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
    ):
        raise InvalidCredentials("invalid API key")
    last = row.last_used_at
    return KeyUse(
        user_id=row.user_id,
        key_id=row.id,
        note_due=last is None or now - last >= LAST_USED_PRECISION,
    )


def api_key_user_id(session: Session, token: str) -> int:
    """The id of the user owning this API key; ``InvalidCredentials`` for anything else."""
    return check_api_key(session, token).user_id


def note_key_use(session: Session, key_id: int, *, now: datetime | None = None) -> None:
    """Record that a key was used, unless that was recorded less than a minute ago.

    Coarse on purpose: a write on every request would turn each read made with a key into a
    write transaction (on SQLite, a turn at the one write lock), for a field whose use is to
    tell keys in use from keys forgotten. The condition makes concurrent notes harmless.
    """
    now = now or utcnow()
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_PRECISION),
        )
        .values(last_used_at=now)
    )


def list_api_keys(session: Session, principal: Principal, user_id: int) -> list[ApiKey]:
    """The keys of a user, newest first: one's own, or (admins) anyone's; others ``NotFound``."""
    if principal.role is not Role.ADMIN and principal.user_id != user_id:
        raise NotFound("user {user_id} not found", user_id=user_id)
    if session.get(User, user_id) is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    return list_user_api_keys(session, user_id)


def list_user_api_keys(session: Session, user_id: int) -> list[ApiKey]:
    """Every key of a user, newest first (the operator's view: no permission check)."""
    return list(
        session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id.desc()))
    )


def revoke_api_key(session: Session, principal: Principal | None, key_id: int) -> ApiKey:
    """Revoke a key at once: its owner or an admin may (``principal`` None: the operator's CLI).

    Anyone else's key is ``NotFound``, so key ids are not probed. Revoking twice keeps the
    first time.
    """
    key = session.get(ApiKey, key_id, with_for_update=True)
    if key is None or (
        principal is not None
        and principal.role is not Role.ADMIN
        and principal.user_id != key.user_id
    ):
        raise NotFound("API key {key_id} not found", key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


_PRINCIPAL_ROW = select(
    User.id,
    User.username,
    User.role,
    User.organization_id,
    select(func.aggregate_strings(cast(user_shelters.c.shelter_id, String), ","))
    .where(user_shelters.c.user_id == User.id)
    .scalar_subquery(),
    User.credentials_changed_at,
    User.locale,
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
        raise NotFound("user {user_id} not found", user_id=user_id)
    return Principal(
        user_id=row[0],
        username=row[1],
        role=Role(row[2]),
        organization_id=row[3],
        shelter_ids=frozenset(map(int, row[4].split(","))) if row[4] else frozenset(),
        tokens_not_before=_epoch(row[5]),
        locale=row[6],
    )


def is_api_key(token: str) -> bool:
    """Whether a bearer token has the shape of an API key rather than a JWT."""
    return token.startswith(API_KEY_PREFIX)


def user_for_key_issue(session: Session, principal: Principal, user_id: int) -> User:
    """The user an API key may be issued for: oneself, or anyone for an admin.

    Another user's id answers ``NotFound`` to non-admins, so ids of staff are not probed.
    """
    if principal.role is not Role.ADMIN and principal.user_id != user_id:
        raise NotFound("user {user_id} not found", user_id=user_id)
    return get_user(session, user_id)


def list_users(session: Session, *, limit: int, cursor: str | None) -> Page[User]:
    """Every user, active or not, oldest first (the admins' page)."""
    return paginate(session, select(User), User.id, limit=limit, cursor=cursor)
