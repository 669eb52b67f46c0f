"""Authentication (JWT or API key, both as ``Authorization: Bearer``) and access declarations.

Every route declares who may call it with ``allow(...)`` or ``PUBLIC``; a test walks all routes
and fails on one that declares neither. Tokens are HS256 JWTs with a pinned algorithm, an issuer
and an expiry of at most 60 minutes. A token must say when it was issued (``iat``), not in the
future, and live no longer than ``token_minutes``: a token signed with the real key but made to
last longer (a leaked key, a bug) is refused all the same. Tokens issued (to the second) before
the user's password changed or the user was disabled are refused too.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.principals import PrincipalCache
from service.settings import Settings
from shelters import identity, totp
from shelters.errors import Forbidden, InvalidCredentials, NotFound
from shelters.identity import Principal, Role, ThrottlePolicy
from shelters.models import User, utcnow

ALGORITHM = "HS256"
ISSUER = "refuge"
ACCESS_MARK = "__refuge_access__"
CLOCK_LEEWAY_S = 30
"""How far in the future a token's ``iat`` may lie (clocks of two hosts disagree a little)."""

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A JWT from POST /api/v1/auth/token, or an API key (rfg_…).",
)


def issue_token(settings: Settings, secret: str, user: User) -> tuple[str, int]:
    """A signed access token for ``user`` and its lifetime in seconds."""
    lifetime = timedelta(minutes=settings.token_minutes)
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), int(lifetime.total_seconds())


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The failed-login lock the settings ask for."""
    return ThrottlePolicy(
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
        lockout_s=settings.login_lockout_s,
    )


def log_in(
    session: Session, settings: Settings, *, username: str, password: str, code: str | None
) -> User:
    """The user these credentials name, through the throttled check (API and web pages alike).

    A one-time code (``code``: TOTP or a recovery code) is asked of users who set up a second
    factor and of every user whose role ``REFUGE_TOTP_REQUIRED_ROLES`` names; one of those
    without a factor cannot log in until one is set up (README, "Taking access back").
    """
    required = settings.roles_needing_totp

    def second_factor(user: User) -> bool:
        if user.role not in required and not totp.has_factor(session, user.id):
            return True
        return totp.check(session, user.id, code)

    return identity.authenticate(
        session,
        username=username,
        password=password,
        policy=throttle_policy(settings),
        second_factor=second_factor,
    )


@functools.lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str, max_lifetime_s: int) -> tuple[int, int, int]:
    """The user id, issue time and expiry of a token whose signature and claims check out.

    Cached: a client sends the same token for up to an hour, and checking it again costs more
    than the rest of a cheap read. Only tokens that verified are cached (a refusal raises), and
    the times are compared with the clock on every use by ``_jwt_subject``. A token that
    claims to live longer than ``max_lifetime_s`` is refused whatever its signature.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"], "verify_iat": False},
        )
        user_id, issued, expires = int(claims["sub"]), claims["iat"], claims["exp"]
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidCredentials("invalid or expired token") from None
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (issued, expires)):
        raise InvalidCredentials("invalid or expired token")
    if expires - issued > max_lifetime_s:
        raise InvalidCredentials("token lifetime exceeds the allowed maximum")
    return user_id, issued, expires


def _jwt_subject(token: str, secret: str, settings: Settings) -> tuple[int, int]:
    """The user id and issue time of a token valid now."""
    user_id, issued, expires = _verified_claims(token, secret, settings.token_minutes * 60)
    now = time.time()
    if now >= expires or issued > now + CLOCK_LEEWAY_S:
        raise InvalidCredentials("invalid or expired token")
    return user_id, issued


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller as the database has it now, so that a disabled user is refused at once.

    Looked up in a short session of its own (autocommit on PostgreSQL), closed before the
    route's unit of work begins; on PostgreSQL a JWT caller's principal may come from the
    process's ``PrincipalCache``, which forgets it as soon as the database says it changed.
    On a hit nothing is handed to a worker thread.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidCredentials("missing bearer token")
    token = credentials.credentials
    if identity.is_api_key(token):
        principal = await run_in_threadpool(_look_up_key, request, token)
    else:
        user_id, issued = _jwt_subject(
            token, request.app.state.secret_key, request.app.state.settings
        )
        cache: PrincipalCache | None = request.app.state.principals
        cached = cache.get(user_id) if cache is not None else None
        if cached is not None:
            principal = cached
        else:
            generation = cache.generation if cache is not None else 0
            principal = await run_in_threadpool(_look_up_user, request, user_id)
            if cache is not None:
                cache.put(principal, generation)
        if principal.tokens_not_before is not None and issued < principal.tokens_not_before:
            # Issued before a password change or the user being disabled.
            raise InvalidCredentials("invalid or expired token")
    request.state.principal = principal
    return principal


def _look_up_user(request: Request, user_id: int) -> Principal:
    with request.app.state.sessions.lookup() as session:
        try:
            return identity.load_principal(session, user_id)
        except NotFound:
            raise InvalidCredentials("invalid or expired credentials") from None


def _look_up_key(request: Request, token: str) -> Principal:
    sessions = request.app.state.sessions
    with sessions.lookup() as session:
        use = identity.check_api_key(session, token)
        try:
            principal = identity.load_principal(session, use.user_id)
        except NotFound:
            raise InvalidCredentials("invalid or expired credentials") from None
    if use.note_due:
        # At most once a minute per key, in a short write of its own (the lookup only reads).
        with sessions.write() as session, session.begin():
            identity.note_key_use(session, use.key_id)
    return principal


def allow(*roles: Role) -> Any:
    """Declare that a route may be called by these roles only (others: 403)."""
    return allow_via(current_principal, *roles)


def allow_via(source: Callable[..., Principal | Awaitable[Principal]], *roles: Role) -> Any:
    """Like ``allow``, with the caller taken from ``source`` (the web pages' session cookie)."""
    allowed = frozenset(roles)

    # A default, not Annotated: the annotation is a string resolved in this module's globals,
    # where the closure's ``source`` is not.
    # Async: a pure check, so FastAPI runs it on the event loop instead of handing it to a
    # worker thread (each hand-off costs about a third of a millisecond of CPU).
    async def check(principal: Principal = Depends(source)) -> Principal:  # noqa: B008
        if principal.role not in allowed:
            raise Forbidden("the {role} role may not do this", role=principal.role.value)
        return principal

    setattr(check, ACCESS_MARK, allowed)
    return Depends(check)


ANY_ROLE = tuple(Role)


def _public() -> None:
    """Marks a route that anybody may call."""


setattr(_public, ACCESS_MARK, frozenset())
PUBLIC = Depends(_public)


def access_of(call: Callable[..., Any]) -> frozenset[Role] | None:
    """The roles a dependency declares (empty for public), or None if it declares nothing."""
    marked: frozenset[Role] | None = getattr(call, ACCESS_MARK, None)
    return marked
