"""Domain errors: plain exceptions named after the condition.

The service maps each to an HTTP status and an RFC 9457 problem type in one table
(``service/problems.py``). ``detail`` is safe to show to the caller: it never carries personal
attributes, SQL or paths.

An error is raised with an English message template and its parameters
(``NotFound("unit {unit_id} not found", unit_id=7)``): ``detail`` is the English sentence, and
the service says the same template in the caller's language (``service/i18n.py``). The
templates are gettext msgids: ``babel.cfg`` names every error class as an extraction keyword.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues; it is translated where it is shown."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message and its plural form for the catalogues.

    For an error's ``message`` and ``plural``: extraction cannot read keyword arguments.
    """
    return singular, plural


class DomainError(Exception):
    """Base of every error the domain raises on purpose.

    ``commit_anyway`` marks errors whose side effects (a failed-login counter, say) must be
    kept although the request is refused. ``message`` is an English template with ``{name}``
    fields filled from ``params``; with ``plural`` given, ``params["count"]`` chooses between
    the two forms (and the forms of other languages).
    """

    commit_anyway = False

    def __init__(self, message: str, /, *, plural: str | None = None, **params: Any) -> None:
        chosen = plural if plural is not None and params.get("count") != 1 else message
        detail = chosen.format(**params) if params else chosen
        super().__init__(detail)
        self.detail = detail
        self.message = message
        self.plural = plural
        self.params = params


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it exists."""


class Forbidden(DomainError):
    """The caller's role may never do this."""


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a transition not allowed now)."""


class CapacityExceeded(Conflict):
    """The change would leave fewer than zero available beds in a unit."""


class StaleVersion(DomainError):
    """``If-Match`` names a version that is no longer current."""


class PreconditionRequired(DomainError):
    """A conditional request came without ``If-Match``."""


class InvalidInput(DomainError):
    """The input is well-formed but breaks a domain rule (unknown region, bad guardian, …)."""


class WrongPassword(InvalidInput):
    """A signed-in user's current password, asked again to change it, was wrong.

    Counted towards the username's login lock, like a failed login, so it commits anyway.
    """

    commit_anyway = True


class UnpublishedPeriod(InvalidInput):
    """A funder asked for a report period that is not a publication period (SPEC §8)."""


class InvalidCredentials(DomainError):
    """Unknown user, wrong password, or an invalid or expired token or key."""

    commit_anyway = True


class SecondFactorRequired(InvalidCredentials):
    """The password was right, but the account needs a valid one-time code and got none."""


class TooManyAttempts(DomainError):
    """Too many failed logins for one username; retry after ``retry_after_s`` seconds."""

    commit_anyway = True

    def __init__(self, message: str, /, retry_after_s: int, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after_s = retry_after_s


class ServiceBusy(DomainError):
    """Too much work under way (solver runs); retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, /, retry_after_s: int, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after_s = retry_after_s
