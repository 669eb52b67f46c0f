"""Concurrent writers queue instead of failing with "database is locked"."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from service.db import Sessions, make_engine, writer_turn
from shelters.models import Organization


def test_concurrent_read_then_write_transactions_all_succeed(
    fresh_database: str, is_postgres: bool
) -> None:
    engine = make_engine(fresh_database, pool_size=16, max_overflow=0)
    sessions = Sessions(engine)

    def read_then_write(n: int) -> int:
        with sessions.write() as session, session.begin():
            count = session.scalar(select(func.count()).select_from(Organization)) or 0
            session.add(Organization(name=f"Concurrent org {n} after {count}", kind="ngo"))
        return n

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            done = list(pool.map(read_then_write, range(64)))
        with sessions.read() as session:
            names = list(session.scalars(select(Organization.name)))
    finally:
        engine.dispose()
    assert sorted(done) == list(range(64))
    assert len(names) == 64
    if is_postgres:
        return  # READ COMMITTED: PostgreSQL use cases lock the rows they change instead.
    # SQLite writers are serialised from BEGIN: each saw every earlier commit, so the counts
    # they read are 0..63, each exactly once.
    assert sorted(int(name.rsplit(" ", 1)[1]) for name in names) == list(range(64))


def test_read_sessions_do_not_take_the_write_lock(fresh_database: str) -> None:
    engine = make_engine(fresh_database)
    sessions = Sessions(engine)
    try:
        with sessions.read() as reader, reader.begin():
            reader.scalar(select(func.count()).select_from(Organization))
            # A writer commits while the reader's transaction is still open.
            with sessions.write() as writer, writer.begin():
                writer.add(Organization(name="Written during a read", kind="ngo"))
        with sessions.read() as reader:
            assert reader.scalar(select(func.count()).select_from(Organization)) == 1
    finally:
        engine.dispose()


def test_lookups_see_every_commit_and_skip_the_transaction_on_postgresql(
    fresh_database: str, is_postgres: bool
) -> None:
    engine = make_engine(fresh_database)
    sessions = Sessions(engine)
    try:
        with sessions.lookup() as lookup:
            assert lookup.scalar(select(func.count()).select_from(Organization)) == 0
            # No snapshot is held between the statements of a lookup on PostgreSQL, and on
            # SQLite a lookup is a read: a writer commits meanwhile without waiting.
            with sessions.write() as writer, writer.begin():
                writer.add(Organization(name="Written during a lookup", kind="ngo"))
            dbapi = lookup.connection().connection.dbapi_connection
            assert dbapi is not None
            if is_postgres:
                assert dbapi.autocommit is True  # type: ignore[attr-defined]
                assert lookup.scalar(select(func.count()).select_from(Organization)) == 1
        # Connections go back to the pool in their usual mode.
        with sessions.read() as reader:
            dbapi = reader.connection().connection.dbapi_connection
            if is_postgres:
                assert dbapi.autocommit is False  # type: ignore[union-attr]
            assert reader.scalar(select(func.count()).select_from(Organization)) == 1
    finally:
        engine.dispose()


def test_the_writers_turn_is_given_back_however_a_transaction_ends(
    fresh_database: str, is_postgres: bool
) -> None:
    if is_postgres:
        pytest.skip("the writers' turn exists for SQLite files only")
    engine = make_engine(fresh_database)
    sessions = Sessions(engine)
    turn = writer_turn(engine)
    assert turn is not None
    try:
        with sessions.write() as session, session.begin():
            session.add(Organization(name="Committed", kind="ngo"))
            session.flush()
            assert turn.taken
        assert not turn.taken

        def failing_route() -> None:
            with sessions.write() as session, session.begin():
                session.add(Organization(name="Rolled back", kind="ngo"))
                session.flush()
                raise RuntimeError("the route failed")

        with pytest.raises(RuntimeError):
            failing_route()
        assert not turn.taken
        with sessions.write() as session:
            session.scalar(select(func.count()).select_from(Organization))
            assert turn.taken
            session.connection().invalidate()
            assert not turn.taken
            session.rollback()
        with sessions.write() as session:
            session.scalar(select(func.count()).select_from(Organization))
            assert turn.taken
        # Closed without commit or rollback: the pool's reset ends the transaction and the turn.
        assert not turn.taken
        with sessions.read() as reader:
            reader.scalar(select(func.count()).select_from(Organization))
            assert not turn.taken
            names = list(reader.scalars(select(Organization.name)))
        assert names == ["Committed"]
    finally:
        engine.dispose()
