"""Server-rendered web pages under /ui: the same use cases and permissions as the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import i18n, problems
from service.ui import admin, inbox, national, scenarios
from service.ui.routes import PREFIX, TEMPLATES, render, router
from service.ui.session import CsrfRejected, LoginRequired, UiSettings
from shelters.errors import N_, DomainError

__all__ = ["UiSettings", "install", "router"]

Handler = Callable[[Request, Exception], Awaitable[Response]]


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


async def _login_required(request: Request, exc: Exception) -> Response:
    target = PREFIX + "/login"
    if request.method == "GET" and request.url.path != PREFIX:
        target += "?next=" + request.url.path
    return RedirectResponse(target, status_code=303)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    message = i18n.gettext(
        i18n.request_locale(request),
        N_("This form had expired or did not come from this site. Please try again."),
    )
    return render(request, "error.html", {"status": 403, "message": message}, 403)


def _status_of(exc: Exception, locale: str) -> tuple[int, str]:
    if isinstance(exc, DomainError):
        return problems.kind_of(exc).status, i18n.error_detail(exc, locale)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return 404, i18n.gettext(locale, N_("This page does not exist."))
        return exc.status_code, ""
    return 422, i18n.gettext(locale, N_("The form could not be read."))


def _pages_or(api_handler: Handler) -> Handler:
    """Errors on /ui are pages; everywhere else they stay problem documents."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await api_handler(request, exc)
        status, message = _status_of(exc, i18n.request_locale(request))
        return render(request, "error.html", {"status": status, "message": message}, status)

    return handle


def _templates(locale: str) -> Jinja2Templates:
    """The pages in one language: an environment per locale, so no request swaps another's."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    return Jinja2Templates(env=env)


def install(app: FastAPI, settings: UiSettings) -> None:
    """Serve the pages from ``app``: after ``problems.install``, whose handlers it wraps."""
    app.state.ui_settings = settings
    app.state.ui_templates = {locale: _templates(locale) for locale in i18n.LOCALES}
    app.include_router(router)
    app.include_router(inbox.router)
    app.include_router(national.router)
    app.include_router(admin.router)
    app.include_router(scenarios.router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    handlers: dict[Any, Any] = app.exception_handlers
    for error in (DomainError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(error, _pages_or(handlers[error]))
