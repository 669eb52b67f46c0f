"""Engines and sessions: built by the app factory or the CLI, never at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

READ_ONLY = "refuge_read_only"
BUSY_TIMEOUT_S = 60


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings Refuge depends on.

    SQLite: WAL, foreign keys, a busy timeout, and transactions that take the write lock when
    they begin (``BEGIN IMMEDIATE``), so two writers queue instead of failing with "database is
    locked" halfway through. A connection with the execution option ``refuge_read_only`` begins a
    deferred transaction instead, so that readers never wait for writers.
    """
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)

    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    else:
        # Writers queue on SQLite's lock holding a connection each; connections are cheap.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 30)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Sessions:
    """The two session factories of a process: read-only and read-write.

    On PostgreSQL they differ only in intent; on SQLite a read-only session begins a deferred
    transaction and a read-write session takes the write lock at once.
    """

    def __init__(self, bind: Any, **session_kwargs: Any) -> None:
        self.bind = bind
        self._write: sessionmaker[Session] = sessionmaker(
            bind=bind, expire_on_commit=False, **session_kwargs
        )
        # A test binds both factories to one connection inside an outer transaction.
        read_bind = (
            bind.execution_options(**{READ_ONLY: True}) if isinstance(bind, Engine) else bind
        )
        self._read: sessionmaker[Session] = sessionmaker(
            bind=read_bind, expire_on_commit=False, **session_kwargs
        )

    def write(self) -> Session:
        """A session whose transaction may write."""
        return self._write()

    def read(self) -> Session:
        """A session for requests that only read."""
        return self._read()
