"""Server-rendered web pages under /ui: the same use cases and permissions as the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import problems
from service.ui.routes import PREFIX, TEMPLATES, render, router
from service.ui.session import CsrfRejected, LoginRequired, UiSettings
from shelters.errors import DomainError

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
    message = "This form had expired or did not come from this site. Please try again."
    return render(request, "error.html", {"status": 403, "message": message}, 403)


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, DomainError):
        return problems.kind_of(exc).status, exc.detail
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, "This page does not exist." if exc.status_code == 404 else ""
    return 422, "The form could not be read."


def _pages_or(api_handler: Handler) -> Handler:
    """Errors on /ui are pages; everywhere else they stay problem documents."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await api_handler(request, exc)
        status, message = _status_of(exc)
        return render(request, "error.html", {"status": status, "message": message}, status)

    return handle


def install(app: FastAPI, settings: UiSettings) -> None:
    """Serve the pages from ``app``: after ``problems.install``, whose handlers it wraps."""
    app.state.ui_settings = settings
    app.state.ui_templates = Jinja2Templates(directory=TEMPLATES)
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    handlers: dict[Any, Any] = app.exception_handlers
    for error in (DomainError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(error, _pages_or(handlers[error]))
