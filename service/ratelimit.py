"""Per-user rate limits on expensive calls (single matches, matching runs): 429 + Retry-After.

The call is counted in a short transaction of its own, committed before the work starts, so
that concurrent calls of one user do not wait on each other's work and every worker process
sees the count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from service.auth import current_principal
from service.db import Sessions
from shelters import ratelimit
from shelters.identity import Principal

WINDOW_S = 60


def limited(
    bucket: str,
    per_minute: Callable[[Any], int],
    source: Callable[..., Principal | Awaitable[Principal]] = current_principal,
) -> Any:
    """A dependency that counts one call of ``bucket`` for the caller, refusing over the limit.

    ``source`` finds the caller (the API's bearer token by default; the web pages pass their
    session's). The count is per user and bucket, so a user's API calls and page clicks share
    one budget.
    """

    # A default, not an annotation: ``source`` is local, and annotations are resolved later.
    async def check(request: Request, principal: Principal = Depends(source)) -> None:  # noqa: B008
        sessions: Sessions = request.app.state.sessions
        limit = per_minute(request.app.state.settings)

        def count() -> None:
            with sessions.write() as session, session.begin():
                ratelimit.hit(
                    session, f"{bucket}:user:{principal.user_id}", limit=limit, window_s=WINDOW_S
                )

        await run_in_threadpool(count)

    return Depends(check)


MATCH_LIMIT = limited("match", lambda s: s.match_rate_per_minute)
RUN_LIMIT = limited("run", lambda s: s.run_rate_per_minute)
