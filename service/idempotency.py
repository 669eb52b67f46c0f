"""``Idempotency-Key`` on creating POSTs (SPEC §5).

The key is scoped to the caller and kept 24 hours. The first request with a key claims it in
a transaction of its own, committed at once, so that a concurrent retry sees the claim:

- same key, same body, first request finished → the original status and body, no new row;
- same key, another body → 422;
- same key while the first is still running → 409 (a claim older than five minutes is taken
  to be abandoned by a crashed process and may be taken over).

The response is stored in the request's own unit of work, so it exists exactly when the
created rows do; if the request fails, the claim is released and the key may be used again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.auth import current_principal
from service.db import Sessions
from service.problems import MalformedHeader
from shelters.errors import Conflict, InvalidInput
from shelters.identity import Principal
from shelters.models import IdempotencyKey, utcnow

KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=5)
MAX_KEY_LENGTH = 128
# Visible ASCII only: what every client can send and every engine stores unchanged.
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")


class Idempotency:
    """The key of one request, if it sent one, and the stored answer to replay, if any."""

    def __init__(
        self, user_id: int | None = None, key: str | None = None, replay: JSONResponse | None = None
    ) -> None:
        self.user_id = user_id
        self.key = key
        self.replay = replay
        self.stored = False

    def remember(self, db: Session, status: int, body: BaseModel) -> Any:
        """Store the answer in the request's transaction and hand the body back."""
        if self.key is not None and self.user_id is not None:
            row = db.get(IdempotencyKey, (self.user_id, self.key))
            assert row is not None, "the claim is committed before the route runs"
            row.state = "done"
            row.status_code = status
            row.response_body = jsonable_encoder(body)
            db.flush()
            self.stored = True
        return body


def _digest(request: Request, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.hex()
    material = f"{request.method} {request.url.path}\n{canonical}"
    return hashlib.sha256(material.encode()).hexdigest()


def _claim(sessions: Sessions, user_id: int, key: str, digest: str) -> tuple[str, Any]:
    now = utcnow()
    try:
        with sessions.write() as session, session.begin():
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
            row = session.get(IdempotencyKey, (user_id, key), with_for_update=True)
            if row is None:
                session.add(
                    IdempotencyKey(user_id=user_id, key=key, request_sha256=digest, created_at=now)
                )
                return "claimed", None
            if row.request_sha256 != digest:
                return "mismatch", None
            if row.state == "running":
                if row.created_at < now - ABANDONED:
                    row.created_at = now
                    return "claimed", None
                return "running", None
            return "done", (row.status_code, row.response_body)
    except IntegrityError:
        # Another request inserted the same key between our look and our insert.
        return "running", None


def _release(sessions: Sessions, user_id: int, key: str) -> None:
    with sessions.write() as session, session.begin():
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "running",
            )
        )


async def idempotency(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> AsyncIterator[Idempotency]:
    """Claim the request's ``Idempotency-Key`` (if any) for the duration of the request."""
    key = request.headers.get("idempotency-key")
    if key is None:
        yield Idempotency()
        return
    if not _KEY.fullmatch(key):
        raise MalformedHeader(
            "Idempotency-Key must be 1-{max_length} visible ASCII characters (no spaces)",
            max_length=MAX_KEY_LENGTH,
        )
    sessions: Sessions = request.app.state.sessions
    digest = _digest(request, await request.body())
    outcome, stored = await run_in_threadpool(_claim, sessions, principal.user_id, key, digest)
    if outcome == "mismatch":
        raise InvalidInput("this Idempotency-Key was used with a different request body")
    if outcome == "running":
        raise Conflict("a request with this Idempotency-Key is still being processed")
    if outcome == "done":
        status, body = stored
        yield Idempotency(replay=JSONResponse(body, status_code=status))
        return
    handle = Idempotency(principal.user_id, key)
    try:
        yield handle
    except BaseException:
        await run_in_threadpool(_release, sessions, principal.user_id, key)
        raise
    if not handle.stored:
        await run_in_threadpool(_release, sessions, principal.user_id, key)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency, scope="function")]
