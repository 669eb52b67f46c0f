"""Domain errors: plain exceptions named after the condition.

The service maps each to an HTTP status and an RFC 9457 problem type in one table
(``service/problems.py``). ``detail`` is safe to show to the caller: it never carries personal
attributes, SQL or paths.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose.

    ``commit_anyway`` marks errors whose side effects (a failed-login counter, say) must be
    kept although the request is refused.
    """

    commit_anyway = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ServiceBusy(DomainError):
    """Too much work under way (solver runs); retry after ``retry_after_s`` seconds."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
