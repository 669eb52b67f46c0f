"""The languages people read Refuge in: kk, ru, en.

Catalogues are gettext files under ``service/locale`` (compiled ``.mo`` committed beside their
``.po``; ``make messages-update messages-compile`` after changing a word). Which language a
request gets: the caller's own ``locale``, else the best of ``Accept-Language``, else
``REFUGE_DEFAULT_LOCALE``. Only human words change with it: codes, statuses, ``type`` URIs and
field names never do. Times people read are shown in ``REFUGE_TIMEZONE``; the API stays UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date as _format_date
from babel.dates import format_time as _format_time
from babel.dates import format_timedelta as _format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from starlette.requests import HTTPConnection
from starlette.responses import Response

from shelters.errors import N_, DomainError

LOCALES = ("kk", "ru", "en")
"""Every language with a catalogue. The msgids in the code are English: what every catalogue
falls back to, and the ``en`` catalogue's (empty) translations."""
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

ROLE_WORDS = {
    "admin": N_("admin"),
    "coordinator": N_("coordinator"),
    "caseworker": N_("caseworker"),
    "funder": N_("funder"),
}
STATE_WORDS = {
    "open": N_("open"),
    "suspended": N_("suspended"),
    "closed": N_("closed"),
    "pending": N_("pending"),
    "proposed": N_("proposed"),
    "accepted": N_("accepted"),
    "admitted": N_("admitted"),
    "discharged": N_("discharged"),
    "declined": N_("declined"),
    "expired": N_("expired"),
    "cancelled": N_("cancelled"),
    "placed": N_("placed"),
}
"""Statuses of shelters, requests and placements as people read them (the codes stay)."""
_WORD_PARAMS = {
    "status": STATE_WORDS,
    "current": STATE_WORDS,
    "start": STATE_WORDS,
    "first": STATE_WORDS,
    "second": STATE_WORDS,
    "role": ROLE_WORDS,
}
"""Parameters of error templates that hold a status or role code, said in words."""


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalogue of ``locale`` (loaded once per process); English falls back."""
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    return Translations.load(str(LOCALE_DIR), [locale], DOMAIN)


def gettext(locale: str, message: str, **params: Any) -> str:
    """``message`` in ``locale``, with ``params`` put into its ``{name}`` fields."""
    text = translations(locale).gettext(message)
    return text.format(**params) if params else text


def ngettext(locale: str, singular: str, plural: str, n: int, **params: Any) -> str:
    """The form of ``singular``/``plural`` that ``n`` takes in ``locale`` (``{n}`` is ``n``)."""
    text = translations(locale).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def error_detail(exc: DomainError, locale: str) -> str:
    """A domain error's detail in ``locale``; its English detail when the words do not fit."""
    if exc.plural is not None:
        text = translations(locale).ngettext(exc.message, exc.plural, int(exc.params["count"]))
    else:
        text = translations(locale).gettext(exc.message)
    params = dict(exc.params)
    for name, value in params.items():
        table = _WORD_PARAMS.get(name)
        if table is not None and isinstance(value, str) and value in table:
            params[name] = translations(locale).gettext(table[value])
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):  # a translation naming a field it does not get
        return exc.detail


def parse_accept_language(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    if not header:
        return []
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            wanted.append((-q, index, tag))
    return [tag for _, _, tag in sorted(wanted)]


def negotiate(header: str | None) -> str | None:
    """The supported locale ``Accept-Language`` prefers (``ru-RU`` gives ``ru``), or None."""
    for tag in parse_accept_language(header):
        found = negotiate_locale([tag.replace("_", "-")], LOCALES, sep="-", aliases={})
        if found is not None:
            return found.lower()
    return None


def choose(user_locale: str | None, accept_language: str | None, default: str) -> str:
    """The caller's own locale, else the best of ``Accept-Language``, else ``default``."""
    if user_locale in LOCALES:
        return str(user_locale)
    return negotiate(accept_language) or default


def request_locale(request: HTTPConnection) -> str:
    """The locale of this request's words (the caller known so far, their header, the default)."""
    principal = getattr(request.state, "principal", None)
    settings = request.app.state.settings
    return choose(
        getattr(principal, "locale", None),
        request.headers.get("accept-language"),
        settings.default_locale,
    )


# --- dates and numbers as people read them --------------------------------------------------


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


def format_datetime(value: datetime, locale: str, timezone: str) -> str:
    """A moment as people read it: in ``timezone`` (``Asia/Almaty``), words of ``locale``.

    The day in the locale's medium form and the time to the minute (``Dec 4, 2026, 1:30 AM`` in en),
    joined as the locale joins them.
    """
    where = _babel_locale(locale)
    local = value.astimezone(_zone(timezone))
    day = _format_date(local, "medium", locale=where)
    time = _format_time(local, "short", locale=where)
    return str(where.datetime_formats["medium"]).format(time, day)


def format_date(value: date, locale: str) -> str:
    """A calendar day in the words of ``locale``."""
    return _format_date(value, "medium", locale=_babel_locale(locale))


def format_month(value: date, locale: str) -> str:
    """A calendar month and its year, as the locale names it standing alone (``сентябрь 2026``)."""
    return _format_date(value, "LLLL y", locale=_babel_locale(locale))


def format_duration(value: timedelta, locale: str) -> str:
    """A span of time, rounded as people say it (``3 часа``, ``40 минут``, ``2 күн``)."""
    return _format_timedelta(value, threshold=1.5, locale=_babel_locale(locale))


def format_number(value: float | int, locale: str) -> str:
    """A number with the digit grouping of ``locale`` (``12 345`` in ru and kk)."""
    return format_decimal(value, locale=_babel_locale(locale))


def language_names() -> Mapping[str, str]:
    """Each supported language named in its own words, as a language menu shows them."""
    return {code: Locale.parse(code).get_display_name(code) or code for code in LOCALES}


def say_language(response: Response, locale: str) -> Response:
    """Mark ``response`` as worded in ``locale``, words that follow the caller's header."""
    response.headers["Content-Language"] = locale
    response.headers.add_vary_header("Accept-Language")
    return response
