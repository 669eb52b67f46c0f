"""Every error is an RFC 9457 ``application/problem+json`` document.

One table maps each domain error to its status, ``type`` and ``title``. HTTP-level errors
(unknown route, wrong method, missing credentials) use ``about:blank`` with the status phrase as
title, as RFC 9457 §4.2.1 recommends. A 500 says nothing about its cause: the log has the
request id.

``title`` and ``detail`` are human words in the request's language (``service/i18n.py``), said
by ``Content-Language``; ``type``, ``status`` and every extension member never change with it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.routing import compile_path

from service import audit, i18n
from shelters import errors
from shelters.errors import N_

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:refuge:problem:"
log = logging.getLogger("refuge.errors")


@dataclass(frozen=True)
class ProblemKind:
    status: int
    slug: str
    title: str


class MalformedHeader(errors.DomainError):
    """A request header the service reads does not have the syntax it must have."""


DOMAIN_PROBLEMS: dict[type[errors.DomainError], ProblemKind] = {
    errors.NotFound: ProblemKind(404, "not-found", N_("Not found")),
    errors.Forbidden: ProblemKind(403, "forbidden", N_("Not allowed for this role")),
    errors.CapacityExceeded: ProblemKind(409, "capacity-exceeded", N_("Not enough free beds")),
    errors.Conflict: ProblemKind(409, "conflict", N_("Conflicts with the current state")),
    errors.StaleVersion: ProblemKind(412, "stale-version", N_("The resource changed meanwhile")),
    errors.PreconditionRequired: ProblemKind(
        428, "if-match-required", N_("If-Match header required")
    ),
    errors.InvalidInput: ProblemKind(422, "invalid-input", N_("The input breaks a rule")),
    errors.UnpublishedPeriod: ProblemKind(
        422, "period-not-published", N_("Not a publication period")
    ),
    errors.InvalidCredentials: ProblemKind(401, "unauthorized", N_("Not authenticated")),
    errors.TooManyAttempts: ProblemKind(429, "too-many-attempts", N_("Too many attempts")),
    errors.ServiceBusy: ProblemKind(503, "busy", N_("Busy, retry later")),
    MalformedHeader: ProblemKind(400, "malformed-header", N_("Malformed header")),
}


def kind_of(exc: errors.DomainError) -> ProblemKind:
    """The most specific entry of the table for this error."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_PROBLEMS:
            return DOMAIN_PROBLEMS[cls]
    return ProblemKind(400, "bad-request", N_("Bad request"))


def problem_response(
    status: int,
    *,
    detail: str,
    type_: str = "about:blank",
    title: str | None = None,
    headers: dict[str, str] | None = None,
    locale: str | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build a problem document response; ``locale`` translates ``title`` and says so.

    ``detail`` is given already in the words of ``locale``; ``title`` is translated here (a
    missing one is the status phrase, as RFC 9457 §4.2.1 recommends).
    """
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if locale is not None:
        body["title"] = i18n.gettext(locale, body["title"])
    body.update(extensions)
    response = JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)
    if locale is not None:
        i18n.say_language(response, locale)
    return response


def _bearer_challenge(status: int) -> dict[str, str]:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else {}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    kind = kind_of(exc)
    headers = _bearer_challenge(kind.status)
    if isinstance(exc, errors.TooManyAttempts | errors.ServiceBusy):
        headers["Retry-After"] = str(exc.retry_after_s)
    if audit.wants_denial(request, kind.status):
        await run_in_threadpool(audit.record_denied, request, kind.status)
    locale = i18n.request_locale(request)
    return problem_response(
        kind.status,
        detail=i18n.error_detail(exc, locale),
        type_=TYPE_BASE + kind.slug,
        title=kind.title,
        headers=headers,
        locale=locale,
    )


@functools.lru_cache(maxsize=512)
def _path_regex(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this request's path (HEAD wherever GET is).

    Starlette's 405 names only the methods of the first route that matched the path; a path
    served by several routes (``GET`` and ``POST /regions``) must list them all (RFC 9110).
    """
    from service.app import iter_api_routes  # the app module imports this one

    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_api_routes(request.app):
        if _path_regex(route.path).match(path):
            methods |= set(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = allowed_methods(request)
        if allowed:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(allowed)
    headers.update(_bearer_challenge(exc.status_code))
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if audit.wants_denial(request, exc.status_code):
        await run_in_threadpool(audit.record_denied, request, exc.status_code)
    locale = i18n.request_locale(request)
    detail = i18n.gettext(locale, detail) if detail in HTTP_PHRASES else detail
    return problem_response(exc.status_code, detail=detail, headers=headers, locale=locale)


HTTP_PHRASES = (
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Unsupported Media Type"),
    N_("Not Acceptable"),
    N_("Content Too Large"),
    N_("Too Many Requests"),
    N_("Bad Request"),
    N_("Unprocessable Content"),
    N_("Conflict"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
)
"""The status phrases HTTP-level errors are titled with, in the catalogues to be translated."""


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


VALIDATION_WORDS: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("The shortest allowed length is {min_length}"),
    "string_too_long": N_("The longest allowed length is {max_length}"),
    "string_pattern_mismatch": N_("The value is not in an allowed form"),
    "too_short": N_("The fewest allowed items: {min_length}"),
    "too_long": N_("The most allowed items: {max_length}"),
    "int_type": N_("Input should be a whole number"),
    "int_parsing": N_("Input should be a whole number"),
    "int_from_float": N_("Input should be a whole number"),
    "float_type": N_("Input should be a number"),
    "float_parsing": N_("Input should be a number"),
    "bool_type": N_("Input should be true or false"),
    "bool_parsing": N_("Input should be true or false"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be at least {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be at most {le}"),
    "literal_error": N_("Allowed values: {expected}"),
    "enum": N_("Allowed values: {expected}"),
    "json_invalid": N_("The body is not valid JSON"),
    "date_type": N_("Input should be a date (YYYY-MM-DD)"),
    "date_parsing": N_("Input should be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("Input should be a date (YYYY-MM-DD)"),
    "list_type": N_("Input should be a list"),
    "dict_type": N_("Input should be an object"),
    "model_type": N_("Input should be an object"),
    "model_attributes_type": N_("Input should be an object"),
}
"""Pydantic's error types said in the caller's language (the ``type`` stays pydantic's); in
English, and for a type not listed here, pydantic's own message is kept."""


def _validation_words(err: Mapping[str, Any], locale: str) -> str:
    english = str(err.get("msg", ""))
    template = VALIDATION_WORDS.get(str(err.get("type")))
    if locale == "en" or template is None:  # the msgids' language: pydantic's words stand
        return english
    ctx = {
        name: i18n.format_number(value, locale)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
        for name, value in (err.get("ctx") or {}).items()
    }
    if "expected" in ctx:  # "'x' or 'y'": the one English word in pydantic's list
        ctx["expected"] = ctx["expected"].replace(" or ", ", ")
    try:
        return i18n.translations(locale).gettext(template).format(**ctx)
    except (KeyError, IndexError, ValueError):  # a template naming a field pydantic did not give
        return english


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    locale = i18n.request_locale(request)
    # The submitted values are not echoed: they may be about a person.
    problems = [
        {
            "loc": _location(err.get("loc", ())),
            "msg": _validation_words(err, locale),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]
    return problem_response(
        422,
        detail="; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:10]),
        type_=TYPE_BASE + "validation",
        title=N_("Invalid request"),
        locale=locale,
        errors=problems,
    )


# SQLSTATEs of a transaction that lost a race and may simply run again.
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
RETRY_HEADER = "x-refuge-retry"


def is_retryable(exc: BaseException) -> bool:
    """Whether the database refused the transaction only because another one won a race."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RETRYABLE_SQLSTATES


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Connection lost, server restarting, lock timeout, lost race: nothing was committed.
    log.warning("database unavailable: %s", type(exc).__name__)
    headers = {"Retry-After": "2"}
    if is_retryable(exc):
        headers[RETRY_HEADER] = "1"  # RetryMiddleware runs the request again, then drops this
    locale = i18n.request_locale(request)
    return problem_response(
        503,
        detail=i18n.gettext(
            locale, N_("The database is unavailable; nothing was changed. Retry shortly.")
        ),
        type_=TYPE_BASE + "unavailable",
        headers=headers,
        locale=locale,
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint the domain should have checked first (a CHECK on beds, a unique name)
    # caught a concurrent or unforeseen write: refuse it, nothing was written.
    log.warning("integrity error refused: %s", type(getattr(exc, "orig", exc)).__name__)
    locale = i18n.request_locale(request)
    return problem_response(
        409,
        detail=i18n.gettext(
            locale, N_("The change conflicts with the current state and was not saved.")
        ),
        type_=TYPE_BASE + "conflict",
        title=N_("Conflicts with the current state"),
        locale=locale,
    )


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # A well-formed number the database cannot hold (an id past its integer column), or a
    # value it refuses as data: the request is at fault, not the server.
    log.info("value refused by the database: %s", type(getattr(exc, "orig", exc)).__name__)
    locale = i18n.request_locale(request)
    return problem_response(
        422,
        detail=i18n.gettext(locale, N_("A value is out of the range the service can store.")),
        type_=TYPE_BASE + "invalid-input",
        title=N_("The input breaks a rule"),
        locale=locale,
    )


def internal_error_body(request_id: str, locale: str = "en") -> bytes:
    """The body of a 500: the request id to quote, nothing about the cause, in ``locale``."""
    return json.dumps(
        {
            "type": TYPE_BASE + "internal",
            "title": i18n.gettext(locale, "Internal Server Error"),
            "status": 500,
            "detail": i18n.gettext(locale, N_("An internal error occurred; it has been logged.")),
            "request_id": request_id,
        }
    ).encode()


def edge_locale(scope: Mapping[str, Any]) -> str:
    """The language of an answer given at the edge (413, 500): :func:`i18n.request_locale`.

    Before authentication ran there is no caller yet: ``Accept-Language``, else the default.
    """
    return i18n.request_locale(HTTPConnection(dict(scope)))


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(OverflowError, _out_of_range)
    # Anything else is answered by EdgeMiddleware, so the 500 still gets the edge headers.


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem documents for these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
