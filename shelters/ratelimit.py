"""Fixed-window rate limits kept in the database, so that every worker process shares them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from shelters.errors import TooManyAttempts
from shelters.models import Base, UTCDateTime, insert_missing, utcnow


class RateWindow(Base):
    """How many calls one key (e.g. ``match:user:12``) made in the current window."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    calls: Mapped[int] = mapped_column(Integer, default=0)


def hit(
    session: Session, key: str, *, limit: int, window_s: int, now: datetime | None = None
) -> None:
    """Count one call for ``key``; ``TooManyAttempts`` when the window already holds ``limit``.

    A refused call is not counted, and its ``retry_after_s`` is the time left in the window.
    """
    now = now or utcnow()
    insert_missing(session, RateWindow, {"key": key, "window_started_at": now, "calls": 0})
    row = session.get(RateWindow, key, with_for_update=True, populate_existing=True)
    assert row is not None
    window_end = row.window_started_at + timedelta(seconds=window_s)
    if now >= window_end:
        row.window_started_at, row.calls = now, 1
    elif row.calls >= limit:
        wait = max(1, int((window_end - now).total_seconds()) + 1)
        raise TooManyAttempts(
            "at most {limit} calls per {window_s} s; retry later",
            wait,
            limit=limit,
            window_s=window_s,
        )
    else:
        row.calls += 1
    session.flush()


__all__ = ["RateWindow", "hit"]
