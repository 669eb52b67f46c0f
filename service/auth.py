"""Authentication (JWT or API key, both as ``Authorization: Bearer``) and access declarations.

Every route declares who may call it with ``allow(...)`` or ``PUBLIC``; a test walks all routes
and fails on one that declares neither. Tokens are HS256 JWTs with a pinned algorithm, an issuer
and an expiry of at most 60 minutes.
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
from starlette.concurrency import run_in_threadpool

from service.principals import PrincipalCache
from service.settings import Settings
from shelters import identity
from shelters.errors import Forbidden, InvalidCredentials, NotFound
from shelters.identity import Principal, Role
from shelters.models import User, utcnow

ALGORITHM = "HS256"
ISSUER = "refuge"
ACCESS_MARK = "__refuge_access__"

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


@functools.lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> tuple[int, int]:
    """The user id and expiry of a token whose signature, issuer and claims check out.

    Cached: a client sends the same token for up to an hour, and checking it again costs more
    than the rest of a cheap read. Only tokens that verified are cached (a refusal raises), and
    the expiry is compared with the clock on every use by ``_user_id_from_jwt``.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        return int(claims["sub"]), int(claims["exp"])
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidCredentials("invalid or expired token") from None


def _user_id_from_jwt(token: str, secret: str) -> int:
    user_id, expires = _verified_claims(token, secret)
    if time.time() >= expires:
        raise InvalidCredentials("invalid or expired token")
    return user_id


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
    cache: PrincipalCache | None = request.app.state.principals
    if cache is None or identity.is_api_key(token):
        principal = await run_in_threadpool(_look_up, request, token)
    else:
        user_id = _user_id_from_jwt(token, request.app.state.secret_key)
        cached = cache.get(user_id)
        if cached is None:
            generation = cache.generation
            principal = await run_in_threadpool(_look_up, request, token)
            cache.put(principal, generation)
        else:
            principal = cached
    request.state.principal = principal
    return principal


def _look_up(request: Request, token: str) -> Principal:
    with request.app.state.sessions.lookup() as session:
        if identity.is_api_key(token):
            user_id = identity.api_key_user_id(session, token)
        else:
            user_id = _user_id_from_jwt(token, request.app.state.secret_key)
        try:
            return identity.load_principal(session, user_id)
        except NotFound:
            raise InvalidCredentials("invalid or expired credentials") from None


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
            raise Forbidden(f"the {principal.role.value} role may not do this")
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
