"""The web pages' session: a server-side session, its CSRF token, and who is logged in.

Logged in, the cookie ``refuge_session`` holds only a random session id; the server keeps its
SHA-256 (``shelters/web_sessions.py``), so logout, a password change or disabling the user ends
the session at once, and a copied cookie is worth nothing afterwards. A session lapses after
``idle_minutes`` without a request and ``max_hours`` after login whatever happens. Before
login, the login form's CSRF token travels in a second, signed cookie (``refuge_login``) that
names nobody, so anonymous visitors never write rows. Both cookies are HttpOnly,
SameSite=Strict, path ``/ui``, and Secure unless the settings say this is local development
over plain HTTP. The user is read from the database on every request, so a disabled account
stops working at once, as with the API's tokens. Every POST must carry the session's CSRF
token in the form field ``csrf_token``; a logged-in session's token is an HMAC of its id under
the app's secret, so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from service.auth import allow_via
from shelters import identity, web_sessions
from shelters.errors import NotFound
from shelters.identity import Principal, Role
from shelters.web_sessions import SessionPolicy

COOKIE = "refuge_session"
LOGIN_COOKIE = "refuge_login"
CSRF_FIELD = "csrf_token"
_SALT = "refuge.ui.login"
_CSRF_CONTEXT = b"refuge.ui.csrf|"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UiSettings(BaseSettings):
    """Settings of the web pages, from ``REFUGE_UI_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="REFUGE_UI_", extra="ignore")

    secure_cookies: bool = Field(
        default=True, description="false only for local development over plain http"
    )
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_hours: int = Field(default=12, ge=1, le=7 * 24)

    @property
    def policy(self) -> SessionPolicy:
        return SessionPolicy(
            idle=timedelta(minutes=self.idle_minutes), absolute=timedelta(hours=self.max_hours)
        )


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


@dataclass(frozen=True, slots=True)
class WebSession:
    """A request's session: logged in (``token`` and ``user_id`` set) or anonymous."""

    user_id: int | None
    csrf: str
    token: str | None = None


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt=_SALT)


def _settings(request: Request) -> UiSettings:
    settings: UiSettings = request.app.state.ui_settings
    return settings


def _csrf_of(request: Request, token: str) -> str:
    key = hashlib.sha256(request.app.state.secret_key.encode()).digest()
    return hmac.new(key, _CSRF_CONTEXT + token.encode(), hashlib.sha256).hexdigest()


def logged_in_session(request: Request, user_id: int, token: str) -> WebSession:
    """The session a login just began (its token from ``web_sessions.start``)."""
    session = WebSession(user_id=user_id, csrf=_csrf_of(request, token), token=token)
    request.state.web_session = session
    return session


def read_session(request: Request) -> WebSession | None:
    """The request's valid session, or None (absent, forged, ended, idle, too old).

    Blocking I/O for a logged-in cookie (one small read; a write at most once a minute): call
    it from a worker thread.
    """
    cached: WebSession | None = getattr(request.state, "web_session", None)
    if cached is not None:
        return cached
    session = _server_session(request) or _login_session(request)
    if session is not None:
        request.state.web_session = session
    return session


def _server_session(request: Request) -> WebSession | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    policy = _settings(request).policy
    sessions = request.app.state.sessions
    with sessions.lookup() as db:
        live = web_sessions.resolve(db, token, policy)
    if live is None:
        return None
    if live.seen_due:
        with sessions.write() as db, db.begin():
            web_sessions.note_seen(db, live.id)
    return WebSession(user_id=live.user_id, csrf=_csrf_of(request, token), token=token)


def _login_session(request: Request) -> WebSession | None:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw:
        return None
    try:
        data: Any = _serializer(request).loads(raw, max_age=_settings(request).idle_minutes * 60)
        return WebSession(user_id=None, csrf=str(data["c"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def new_session() -> WebSession:
    """A fresh anonymous session with a new CSRF token (for the login form)."""
    return WebSession(user_id=None, csrf=secrets.token_urlsafe(32))


def anonymous_session(request: Request) -> WebSession:
    """The request's session, or a new anonymous one (the login form needs a CSRF token)."""
    session = read_session(request)
    if session is None:
        session = new_session()
        request.state.web_session = session
    return session


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        secure=_settings(request).secure_cookies,
        httponly=True,
        samesite="strict",
    )


def _drop_cookie(request: Request, response: Response, name: str) -> None:
    secure = _settings(request).secure_cookies
    response.delete_cookie(name, path="/ui", secure=secure, httponly=True, samesite="strict")


def write_session(request: Request, response: Response, session: WebSession | None) -> None:
    """Set the cookies a session needs, or (None) clear both.

    A logged-in session's cookie is set at login and lasts at most ``max_hours``; the server
    tracks idleness. An anonymous one's signed cookie is re-signed, so its clock restarts.
    """
    settings = _settings(request)
    if session is None:
        _drop_cookie(request, response, COOKIE)
        _drop_cookie(request, response, LOGIN_COOKIE)
        return
    if session.token is not None:
        if request.cookies.get(COOKIE) != session.token:
            _cookie(request, response, COOKIE, session.token, settings.max_hours * 3600)
        if LOGIN_COOKIE in request.cookies:
            _drop_cookie(request, response, LOGIN_COOKIE)
        return
    if COOKIE in request.cookies:
        _drop_cookie(request, response, COOKIE)  # ended or run out: no use sending it again
    value = _serializer(request).dumps({"c": session.csrf})
    _cookie(request, response, LOGIN_COOKIE, value, settings.idle_minutes * 60)


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
    session = await run_in_threadpool(read_session, request)
    sent = (await request.form()).get(CSRF_FIELD)
    if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise CsrfRejected


async def _logged_in(request: Request) -> WebSession:
    session = await run_in_threadpool(read_session, request)
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
