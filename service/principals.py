"""The principals of recent callers, kept until PostgreSQL says they changed.

Every request needs its caller's role, organisation and shelters, read fresh so that a user
who is disabled or moved loses access at once. That read was a sixth of a capacity update's
CPU and a worker-thread hand-off of its own. On PostgreSQL a process now keeps what it read,
per user id, and forgets it when told:

- migration 0010's triggers send the user's id on ``refuge_principal`` whenever a row of
  ``users`` or ``user_shelters`` changes (``*`` for a TRUNCATE); PostgreSQL delivers it when
  that transaction commits;
- a thread of each process listens on its own connection and forgets the user (everyone, for
  ``*``) as soon as the notice arrives;
- nothing is kept, and every caller is looked up, while that connection is not listening:
  before it first is, and from the moment it is lost until it listens again (what was kept is
  forgotten then, since notices may have been missed);
- a lookup that overlapped any notice is not kept (it may have read the row before the
  change), and nothing is kept longer than ``max_age_s``, whatever happens.

So a change reaches every process within the time its notice takes to arrive, a few
milliseconds; a request that has already loaded its caller finishes as before. API keys are
always looked up (a key is revoked by a row these triggers do not watch). SQLite processes
look every caller up, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine

from shelters.identity import Principal

CHANNEL = "refuge_principal"
APPLICATION_NAME = "refuge-principal-listener"
MAX_ENTRIES = 10_000
log = logging.getLogger("refuge.principals")


class PrincipalCache:
    """Principals by user id, valid while this process's listener hears every change."""

    def __init__(self, connect_kwargs: Mapping[str, Any], *, max_age_s: float) -> None:
        self._connect_kwargs = connect_kwargs
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[Principal, float]] = {}
        self._generation = 0
        self._listening = False
        self._stopping = threading.Event()
        self._heard = threading.Event()
        self._thread = threading.Thread(target=self._listen, name=APPLICATION_NAME, daemon=True)

    @classmethod
    def for_engine(cls, engine: Engine, *, max_age_s: float) -> PrincipalCache:
        """A cache whose listener connects where ``engine`` does (psycopg)."""
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        if args:
            raise ValueError("expected keyword connection arguments from the psycopg dialect")
        kwargs.pop("context", None)  # SQLAlchemy's adapters; the listener reads no rows
        return cls(kwargs, max_age_s=max_age_s)

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def generation(self) -> int:
        """Changes with every notice heard and every start or loss of listening."""
        return self._generation

    def get(self, user_id: int) -> Principal | None:
        """The kept principal of ``user_id``, if there is one that may still be used."""
        if not self._listening:
            return None
        entry = self._entries.get(user_id)
        if entry is None or time.monotonic() - entry[1] > self.max_age_s:
            return None
        return entry[0]

    def put(self, principal: Principal, generation: int) -> None:
        """Keep ``principal``, read after ``generation`` was current, if nothing changed since."""
        with self._lock:
            if not self._listening or generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[principal.user_id] = (principal, time.monotonic())

    def forget(self, user_id: int | None) -> None:
        """Forget one user (None: everyone); lookups already running will not be kept."""
        with self._lock:
            self._generation += 1
            if user_id is None:
                self._entries.clear()
            else:
                self._entries.pop(user_id, None)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout_s)

    def wait_listening(self, timeout_s: float) -> bool:
        """Block until the listener has listened at least once (tests, start-up)."""
        return self._heard.wait(timeout_s)

    def _set_listening(self, listening: bool) -> None:
        with self._lock:
            self._listening = listening
            self._generation += 1
            self._entries.clear()

    def _listen(self) -> None:
        pause = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    **self._connect_kwargs,
                    autocommit=True,
                    application_name=APPLICATION_NAME,
                    connect_timeout=5,
                    # A peer that vanishes without closing is noticed within about 20 s;
                    # max_age_s bounds what is used meanwhile.
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=2,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._set_listening(True)
                    self._heard.set()
                    pause = 0.5
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            payload = notice.payload
                            self.forget(int(payload) if payload.isdigit() else None)
            except (psycopg.Error, OSError) as exc:
                if not self._stopping.is_set():
                    log.warning("principal listener lost (%s); every caller is looked up", exc)
            finally:
                self._set_listening(False)
            self._stopping.wait(pause)
            pause = min(pause * 2, 10.0)
