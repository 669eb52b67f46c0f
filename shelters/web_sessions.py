"""The web pages' sessions, kept on the server so that they can be ended at once.

The browser's cookie carries only a random 256-bit id; the table keeps its SHA-256, the user,
when the session began and (to the minute) when it was last used. A session ends when its row
is deleted (logout, a password change, the user disabled), after ``idle`` without a request,
and ``absolute`` after it began whatever happens. A copied cookie is worth nothing once its
session has ended.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from shelters.models import WebSession, utcnow

LAST_SEEN_PRECISION = timedelta(minutes=1)
"""``last_seen_at`` is written at most this often per session, so most pages only read."""
TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives without a request (``idle``), and at most (``absolute``)."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session that may be used now; ``seen_due`` when its ``last_seen_at`` should be written."""

    id: int
    user_id: int
    seen_due: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session, user_id: int, policy: SessionPolicy, *, now: datetime | None = None
) -> str:
    """Begin a session for ``user_id`` and return its token (for the cookie, never stored).

    The user's sessions that have run out are deleted on the way, so the table holds live
    sessions and those of users who never came back.
    """
    now = now or utcnow()
    session.execute(
        delete(WebSession).where(
            WebSession.user_id == user_id,
            or_(
                WebSession.last_seen_at < now - policy.idle,
                WebSession.created_at < now - policy.absolute,
            ),
        )
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WebSession(user_id=user_id, token_sha256=_digest(token), created_at=now, last_seen_at=now)
    )
    session.flush()
    return token


_LIVE_ROW = select(
    WebSession.id, WebSession.user_id, WebSession.created_at, WebSession.last_seen_at
).where(WebSession.token_sha256 == bindparam("digest"))


def resolve(
    session: Session, token: str, policy: SessionPolicy, *, now: datetime | None = None
) -> LiveSession | None:
    """The live session this token names, or None (unknown, ended, idle too long, too old).

    Only reads; ``note_seen`` writes the use when ``seen_due``. Idle time is measured from
    ``last_seen_at``, so it is exact to ``LAST_SEEN_PRECISION``.
    """
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    row = session.connection().execute(_LIVE_ROW, {"digest": _digest(token)}).one_or_none()
    if row is None:
        return None
    _id, user_id, created_at, last_seen_at = row
    if now - last_seen_at > policy.idle or now - created_at > policy.absolute:
        return None
    return LiveSession(id=_id, user_id=user_id, seen_due=now - last_seen_at >= LAST_SEEN_PRECISION)


def note_seen(session: Session, session_id: int, *, now: datetime | None = None) -> None:
    """Restart the idle clock of a session, unless that was done less than a minute ago."""
    now = now or utcnow()
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.last_seen_at < now - LAST_SEEN_PRECISION)
        .values(last_seen_at=now)
    )


def end(session: Session, token: str) -> bool:
    """End the session this token names; whether there was one."""
    ended = session.scalars(
        delete(WebSession).where(WebSession.token_sha256 == _digest(token)).returning(WebSession.id)
    ).all()
    return bool(ended)
