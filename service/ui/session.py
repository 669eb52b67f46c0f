"""The web pages' session: a signed cookie, its CSRF token, and who is logged in.

The cookie holds only the user id, a CSRF token and when the session began; it is signed with
the app's secret (itsdangerous), HttpOnly, SameSite=Strict, and Secure unless the settings say
this is local development over plain HTTP. It is re-signed on every page, so it lapses after
``idle_minutes`` without a request, and after ``max_hours`` whatever happens. The user is read
from the database on every request, so a disabled account stops working at once, as with the
API's tokens. Every POST must carry the session's CSRF token in the form field ``csrf_token``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import FormData
from starlette.responses import Response

from service.auth import allow_via
from shelters import identity
from shelters.errors import NotFound
from shelters.identity import Principal, Role

COOKIE = "refuge_session"
CSRF_FIELD = "csrf_token"
_SALT = "refuge.ui.session"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UiSettings(BaseSettings):
    """Settings of the web pages, from ``REFUGE_UI_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="REFUGE_UI_", extra="ignore")

    secure_cookies: bool = Field(
        default=True, description="false only for local development over plain http"
    )
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_hours: int = Field(default=12, ge=1, le=7 * 24)


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: int | None
    csrf: str
    started: int


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt=_SALT)


def _settings(request: Request) -> UiSettings:
    settings: UiSettings = request.app.state.ui_settings
    return settings


def new_session(user_id: int | None) -> WebSession:
    """A fresh session with a new CSRF token (a login always starts one: no fixation)."""
    return WebSession(user_id=user_id, csrf=secrets.token_urlsafe(32), started=int(time.time()))


def read_session(request: Request) -> WebSession | None:
    """The valid session the request's cookie carries, or None (absent, forged, idle, too old)."""
    cached: WebSession | None = getattr(request.state, "web_session", None)
    if cached is not None:
        return cached
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    settings = _settings(request)
    try:
        data: Any = _serializer(request).loads(raw, max_age=settings.idle_minutes * 60)
        session = WebSession(
            user_id=None if data["u"] is None else int(data["u"]),
            csrf=str(data["c"]),
            started=int(data["s"]),
        )
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if time.time() - session.started > settings.max_hours * 3600:
        return None
    request.state.web_session = session
    return session


def anonymous_session(request: Request) -> WebSession:
    """The request's session, or a new anonymous one (the login form needs a CSRF token)."""
    session = read_session(request)
    if session is None:
        session = new_session(None)
        request.state.web_session = session
    return session


def write_session(request: Request, response: Response, session: WebSession | None) -> None:
    """Set (re-signed, so the idle clock restarts) or clear the session cookie."""
    secure = _settings(request).secure_cookies
    if session is None:
        response.delete_cookie(COOKIE, path="/ui", secure=secure, httponly=True, samesite="strict")
        return
    value = _serializer(request).dumps(
        {"u": session.user_id, "c": session.csrf, "s": session.started}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=_settings(request).idle_minutes * 60,
        path="/ui",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def csrf_token(request: Request) -> str:
    """The token every form of this page must carry."""
    return anonymous_session(request).csrf


async def posted_form(request: Request) -> FormData:
    """The submitted form (parsed once; Starlette caches it on the request)."""
    return await request.form()


async def verify_csrf(request: Request) -> None:
    """Refuse an unsafe request whose form lacks the session's CSRF token."""
    if request.method not in _UNSAFE:
        return
    session = read_session(request)
    sent = (await request.form()).get(CSRF_FIELD)
    if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise CsrfRejected


async def _logged_in(request: Request) -> WebSession:
    session = read_session(request)
    if session is None or session.user_id is None:
        raise LoginRequired
    await verify_csrf(request)
    return session


def session_principal(
    request: Request, session: Annotated[WebSession, Depends(_logged_in)]
) -> Principal:
    """The logged-in user, loaded fresh (its own short lookup session, like the API's)."""
    assert session.user_id is not None
    with request.app.state.sessions.lookup() as db:
        try:
            principal = identity.load_principal(db, session.user_id)
        except NotFound:
            raise LoginRequired from None
    request.state.principal = principal
    return principal


def page_allow(*roles: Role) -> Any:
    """Declare which roles may open a page; the others get 403, anonymous browsers the login."""
    return allow_via(session_principal, *roles)
