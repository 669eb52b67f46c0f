"""Engines and sessions: built by the app factory or the CLI, never at import time."""

from __future__ import annotations

import threading
import weakref
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

READ_ONLY = "refuge_read_only"
BUSY_TIMEOUT_S = 60
_HOLDS_TURN = "refuge_holds_writer_turn"


class WriterTurn:
    """Writers of one process take turns on a lock before SQLite's own write lock.

    SQLite answers a second ``BEGIN IMMEDIATE`` by sleeping and retrying (1, 2, 5 … 100 ms);
    threads of one process that queue here instead wake as soon as the writer before them
    commits. The lock only orders writers: SQLite's lock still guards the data, so a turn
    that is not given back in time (``BUSY_TIMEOUT_S``) lets the next writer fall back on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self, info: dict[Any, Any]) -> None:
        if not info.get(_HOLDS_TURN) and self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            info[_HOLDS_TURN] = True

    def give(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_TURN, False):
            self._lock.release()

    @property
    def taken(self) -> bool:
        return self._lock.locked()


_TURNS: weakref.WeakKeyDictionary[Engine, WriterTurn] = weakref.WeakKeyDictionary()


def writer_turn(engine: Engine) -> WriterTurn | None:
    """The writers' turn of a SQLite file engine made by ``make_engine`` (None otherwise)."""
    return _TURNS.get(engine)


def _json_loads(value: Any) -> Any:
    # SQLite's NUMERIC affinity hands a JSON number back as a number, not as text.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings Refuge depends on.

    SQLite: WAL, foreign keys, a busy timeout, and transactions that take the write lock when
    they begin (``BEGIN IMMEDIATE``), so two writers queue instead of failing with "database is
    locked" halfway through; writers of one process queue on a ``WriterTurn`` before that. A
    connection with the execution option ``refuge_read_only`` begins a deferred transaction
    instead, so that readers never wait for writers.
    """
    # JSON columns (services, admission rules, the documents of every match) are decoded on
    # every read and encoded on every write: orjson does both several times faster.
    kwargs.setdefault("json_deserializer", _json_loads)
    kwargs.setdefault("json_serializer", _json_dumps)
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
    turn = None if in_memory else WriterTurn()
    if turn is not None:
        _TURNS[engine] = turn

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
            return
        if turn is not None:
            turn.take(connection.info)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if turn is not None:
                turn.give(connection.info)
            raise

    if turn is not None:

        def _give(connection: Any, *_: Any) -> None:
            # An invalidated connection gave its turn back when the pool invalidated it.
            if not connection.invalidated:
                turn.give(connection.info)

        def _give_record(_dbapi: Any, record: Any) -> None:
            turn.give(record.info)

        def _give_on_reset(_dbapi: Any, record: Any, _state: Any) -> None:
            turn.give(record.info)

        # The turn ends with the transaction, however it ends: commit, rollback, or the pool
        # resetting, closing or invalidating the connection.
        event.listen(engine, "commit", _give)
        event.listen(engine, "rollback", _give)
        event.listen(engine.pool, "reset", _give_on_reset)
        for name in ("checkin", "close"):
            event.listen(engine.pool, name, _give_record)
        for name in ("invalidate", "soft_invalidate"):
            event.listen(engine.pool, name, _give_on_reset)

    return engine


class Sessions:
    """The session factories of a process: read-write, read-only, and one-statement lookups.

    On PostgreSQL the first two differ only in intent; on SQLite a read-only session begins a
    deferred transaction and a read-write session takes the write lock at once.
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
        # PostgreSQL in autocommit: a lookup of one statement needs no BEGIN and no ROLLBACK,
        # two of the four round trips it took. (SQLite's statements run in the process, and
        # its driver would take back transaction control on leaving autocommit.)
        self._lookup = self._read
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            self._lookup = sessionmaker(
                bind=bind.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
                **session_kwargs,
            )

    def write(self) -> Session:
        """A session whose transaction may write."""
        return self._write()

    def read(self) -> Session:
        """A session for requests that only read."""
        return self._read()

    def lookup(self) -> Session:
        """A session for reads whose statements need not share a snapshot (each is atomic).

        On PostgreSQL it runs in autocommit; elsewhere it is a read-only session.
        """
        return self._lookup()
