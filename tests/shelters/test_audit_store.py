"""The stored audit chain on both engines: append, verify, and every kind of tampering.

The table refuses UPDATE and DELETE by trigger, so the tampering tests first do what an
attacker with the database owner's rights would do: on PostgreSQL turn triggers off for the
transaction (``session_replication_role = replica``, a superuser's switch), on SQLite drop the
triggers. Both are undone when the test's transaction rolls back.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from service.db import make_engine
from shelters import audit
from shelters.audit import GENESIS, AuditEvent, AuditRecord, canonical_content
from shelters.models import Region

SIX = 6


def seed(db: Session, n: int = SIX) -> list[AuditEvent]:
    return [
        audit.append(
            db,
            AuditRecord(
                action="read",
                resource_type="case",
                resource_id=i,
                actor_user_id=1,
                actor_role="caseworker",
                request_id=f"request-{i:04d}",
            ),
        )
        for i in range(1, n + 1)
    ]


def disable_guards(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    else:
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")


@pytest.fixture
def tamper(db: Session, connection: Connection) -> Callable[[str, dict[str, object]], None]:
    """Run raw SQL against the audit table with its guards off, behind the ORM's back."""
    db.flush()
    disable_guards(connection)

    def run(sql: str, params: dict[str, object]) -> None:
        connection.execute(text(sql), params)
        db.expire_all()

    return run


def forged_hash(seq: int, at: datetime, prev_hash: str) -> str:
    return hashlib.sha256(
        canonical_content(
            seq=seq,
            at=at,
            actor_user_id=1,
            actor_role="admin",
            action="read",
            resource_type="case",
            resource_id="77",
            outcome="ok",
            request_id=None,
            prev_hash=prev_hash,
        )
    ).hexdigest()


INSERT = (
    "INSERT INTO audit_events (seq, at, actor_user_id, actor_role, action, resource_type,"
    " resource_id, outcome, request_id, prev_hash, hash) VALUES (:seq, :at, 1, 'admin', 'read',"
    " 'case', '77', 'ok', NULL, :prev, :hash)"
)


def test_appends_form_a_chain_from_genesis(db: Session) -> None:
    events = seed(db)
    assert [e.seq for e in events] == list(range(1, SIX + 1))
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert audit.head(db) == (SIX, events[-1].hash)
    result = audit.verify(db)
    assert (result.ok, result.checked, result.first_broken_seq) == (True, SIX, None)


def test_stored_entries_read_back_as_hashed(db: Session) -> None:
    seed(db, 2)
    db.expire_all()
    assert audit.verify(db).ok  # times and ids survive the round trip byte for byte


def test_values_a_caller_typed_never_become_ids(db: Session) -> None:
    event = audit.append(
        db,
        AuditRecord(
            action="read",
            resource_type="case",
            resource_id="CANARY-7f3e",
            request_id="has spaces and {braces}",
        ),
    )
    assert (event.resource_id, event.request_id) == (None, None)


def test_an_unknown_outcome_is_refused(db: Session) -> None:
    with pytest.raises(ValueError, match="outcome"):
        audit.append(db, AuditRecord(action="read", resource_type="case", outcome="maybe"))


def test_a_changed_row_is_detected_at_its_seq(db: Session, tamper: Callable[..., None]) -> None:
    seed(db)
    tamper("UPDATE audit_events SET resource_id = '999' WHERE seq = 3", {})
    assert audit.verify(db).first_broken_seq == 3


def test_a_changed_row_with_a_recomputed_hash_is_detected_at_the_next_seq(
    db: Session, tamper: Callable[..., None]
) -> None:
    events = seed(db)
    at = events[2].at
    tamper(
        "UPDATE audit_events SET actor_role = 'admin', action = 'read', resource_id = '77',"
        " actor_user_id = 1, request_id = NULL, hash = :hash WHERE seq = 3",
        {"hash": forged_hash(3, at, events[1].hash)},
    )
    result = audit.verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 4)


def test_a_deleted_row_is_detected_at_its_seq(db: Session, tamper: Callable[..., None]) -> None:
    seed(db)
    tamper("DELETE FROM audit_events WHERE seq = 4", {})
    result = audit.verify(db)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 4, 4)


def test_reordered_rows_are_detected_at_the_first_moved_seq(
    db: Session, tamper: Callable[..., None]
) -> None:
    seed(db)
    tamper("UPDATE audit_events SET seq = 1000 WHERE seq = 2", {})
    tamper("UPDATE audit_events SET seq = 2 WHERE seq = 3", {})
    tamper("UPDATE audit_events SET seq = 3 WHERE seq = 1000", {})
    assert audit.verify(db).first_broken_seq == 2


def test_a_row_inserted_in_the_middle_is_detected(db: Session, tamper: Callable[..., None]) -> None:
    events = seed(db)
    tamper("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4", {})
    tamper("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000", {})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    # A careful forger: the new row itself hashes correctly and links to seq 3 ...
    tamper(
        INSERT,
        {"seq": 4, "at": at, "prev": events[2].hash, "hash": forged_hash(4, at, events[2].hash)},
    )
    # ... so the break shows at the next row, which no longer matches its place.
    assert audit.verify(db).first_broken_seq == 5


def test_a_forged_row_with_a_wrong_hash_is_detected_at_its_seq(
    db: Session, tamper: Callable[..., None]
) -> None:
    events = seed(db)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    tamper(INSERT, {"seq": SIX + 1, "at": at, "prev": events[-1].hash, "hash": "0" * 64})
    assert audit.verify(db).first_broken_seq == SIX + 1


def test_truncation_is_detected_only_against_an_anchor(
    db: Session, tamper: Callable[..., None]
) -> None:
    events = seed(db)
    anchor = (SIX, events[-1].hash)
    tamper("DELETE FROM audit_events WHERE seq > 3", {})
    assert audit.verify(db).ok
    result = audit.verify(db, anchor=anchor)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 3, 4)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET action = 'x' WHERE seq = 1", "DELETE FROM audit_events"],
)
def test_the_database_refuses_to_change_or_delete_entries(
    db: Session, connection: Connection, statement: str
) -> None:
    seed(db, 2)
    savepoint = connection.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        connection.exec_driver_sql(statement)
    savepoint.rollback()
    db.expire_all()
    assert audit.verify(db).checked == 2


@pytest.mark.postgres
def test_postgres_refuses_truncate(db: Session, connection: Connection, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("PostgreSQL only")
    seed(db, 1)
    savepoint = connection.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        connection.exec_driver_sql("TRUNCATE audit_events")
    savepoint.rollback()


def _append_then_commit(session: Session, record: AuditRecord) -> None:
    with session.begin():
        audit.append(session, record)


@pytest.mark.parametrize(
    "write", [_append_then_commit, audit.append_and_commit], ids=["append", "append_and_commit"]
)
def test_concurrent_appends_keep_one_linear_chain(
    fresh_database: str, write: Callable[[Session, AuditRecord], object]
) -> None:
    engine = make_engine(
        fresh_database, **({} if fresh_database.startswith("sqlite") else {"pool_size": 8})
    )
    workers, each = 6, 10
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with Session(engine) as session:
                    write(
                        session,
                        AuditRecord(
                            action="read", resource_type="case", resource_id=worker * 100 + i
                        ),
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with Session(engine) as session:
            result = audit.verify(session)
            seqs = list(session.scalars(text("SELECT seq FROM audit_events ORDER BY seq")))
        assert (result.ok, result.checked) == (True, workers * each)
        assert seqs == list(range(1, workers * each + 1))
    finally:
        engine.dispose()


def test_the_content_template_completes_to_the_canonical_content() -> None:
    # What PostgreSQL's append function hashes: the template around the previous hash and seq.
    event = AuditEvent(
        at=datetime(2026, 11, 29, 2, 30, 0, 123456, tzinfo=UTC),
        actor_user_id=7,
        actor_role="coordinator",
        action="update",
        resource_type="unit",
        resource_id="42",
        outcome="ok",
        request_id="req-1.a_b",
    )
    before, after = audit._content_template(event)
    prev = "ab" * 32
    completed = (before + prev + after + "1234" + "}").encode()
    assert completed == audit.canonical_content(
        seq=1234,
        at=event.at,
        actor_user_id=7,
        actor_role="coordinator",
        action="update",
        resource_type="unit",
        resource_id="42",
        outcome="ok",
        request_id="req-1.a_b",
        prev_hash=prev,
    )
    event.resource_type = "<prev_hash>"
    with pytest.raises(ValueError, match="reserves"):
        audit._content_template(event)


def _regions_coded(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(text("SELECT code FROM regions WHERE code = :c"), {"c": name}).all()
        )


def test_append_and_commit_commits_the_transaction_with_its_entry(fresh_database: str) -> None:
    engine = make_engine(fresh_database)
    try:
        with Session(engine) as session:
            session.add(Region(code="audited", name="Audited", lat=50.0, lon=70.0))
            # What the system did meanwhile is appended after the request's own entry.
            audit.defer(session, AuditRecord(action="expire", resource_type="placement"))
            event = audit.append_and_commit(
                session, AuditRecord(action="create", resource_type="region", resource_id=1)
            )
            # On PostgreSQL the entry and the commit went out together (pipeline mode).
            owns = audit._owns_pipelinable_transaction(session, engine.dialect.driver)
            assert owns == (engine.dialect.name == "postgresql")
        assert _regions_coded(engine, "audited") == 1
        with Session(engine) as session:
            assert event.seq == 1
            assert audit.head(session)[0] == 2
            actions = session.scalars(text("SELECT action FROM audit_events ORDER BY seq"))
            assert list(actions) == ["create", "expire"]
            assert audit.verify(session).ok
    finally:
        engine.dispose()


def test_an_entry_that_cannot_be_appended_leaves_nothing_written(
    fresh_database: str, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("the chain lock is PostgreSQL's; SQLite's writers exclude each other")
    engine = make_engine(fresh_database)
    try:
        with engine.connect() as holder, Session(engine) as session:
            holder.execute(
                text("SELECT pg_advisory_lock(:c, :o)"),
                {"c": audit.LOCK_CLASS, "o": audit.LOCK_OBJECT},
            )
            session.execute(text("SET LOCAL lock_timeout = '100ms'"))
            session.add(Region(code="lost", name="Lost", lat=50.0, lon=70.0))
            with pytest.raises(OperationalError, match="lock timeout"):  # answered 503
                audit.append_and_commit(
                    session, AuditRecord(action="create", resource_type="region", resource_id=1)
                )
            assert not session.in_transaction()
        assert _regions_coded(engine, "lost") == 0
        with Session(engine) as session:
            assert audit.head(session) == (0, GENESIS)
    finally:
        engine.dispose()


def test_a_session_inside_a_transaction_it_does_not_own_commits_as_usual(
    db: Session, connection: Connection
) -> None:
    # The tests' rolled-back transaction: no COMMIT may reach the server from here.
    assert not audit._owns_pipelinable_transaction(db, connection.dialect.driver)
    audit.append_and_commit(db, AuditRecord(action="read", resource_type="case", resource_id=3))
    assert connection.in_transaction()
    assert audit.head(db)[0] == 1


MALFORMED = (
    "INSERT INTO audit_events (seq, at, actor_user_id, actor_role, action, resource_type,"
    " resource_id, outcome, request_id, prev_hash, hash) VALUES (:seq, {at}, {actor}, 'admin',"
    " {action}, 'case', '77', 'ok', NULL, :prev, :hash)"
)
# What each engine lets a row hold that append never writes. SQLite keeps any value in any
# column; PostgreSQL's columns are typed, but a timestamp may lie outside what Python reads.
# Where the content can still be hashed, "hashed_as" gives what the row's hash is computed
# over, so that only the wrong type itself can break the chain.
SQLITE_MALFORMED: dict[str, dict[str, Any]] = {
    "at is not a time": {"at": "'not a time'"},
    "at is a number": {"at": "12345"},
    "at is a blob": {"at": "X'00ff'"},
    "action is a blob": {"action": "X'ff'"},
    "actor_user_id is text": {"actor": "'x'", "hashed_as": {"actor_user_id": "x"}},
}
POSTGRES_MALFORMED: dict[str, dict[str, Any]] = {
    "at is infinity": {"at": "'infinity'"},
    "at is -infinity": {"at": "'-infinity'"},
    "at is past year 9999": {"at": "'10000-01-01T00:00:00Z'"},
    "at is before Christ": {"at": "'0044-03-15 12:00:00+00 BC'"},
}
AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def row_hash(prev_hash: str, **changes: Any) -> str:
    content: dict[str, Any] = {
        "seq": 4,
        "at": AT,
        "actor_user_id": 1,
        "actor_role": "admin",
        "action": "read",
        "resource_type": "case",
        "resource_id": "77",
        "outcome": "ok",
        "request_id": None,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_content(**(content | changes))).hexdigest()


def insert_row_4(db: Session, prev_hash: str, malformation: dict[str, Any], digest: str) -> None:
    fields = {"at": ":at", "actor": "1", "action": "'read'"}
    fields |= {k: v for k, v in malformation.items() if k != "hashed_as"}
    db.execute(
        text(MALFORMED.format(**fields)),
        {"seq": 4, "at": AT, "prev": prev_hash, "hash": digest},
    )


@pytest.mark.parametrize(
    "malformation", sorted({*SQLITE_MALFORMED, *POSTGRES_MALFORMED, "hash is not hex"})
)
def test_a_malformed_row_is_a_break_at_its_seq(db: Session, malformation: str) -> None:
    dialect = db.get_bind().dialect.name
    possible = SQLITE_MALFORMED if dialect == "sqlite" else POSTGRES_MALFORMED
    if malformation != "hash is not hex" and malformation not in possible:
        pytest.skip(f"a {dialect} column cannot hold this")
    events = seed(db, 3)
    change = possible.get(malformation, {})
    prev = events[-1].hash
    digest = (
        "not-hex"
        if malformation == "hash is not hex"
        else row_hash(prev, **change.get("hashed_as", {}))
    )
    insert_row_4(db, prev, change, digest)
    seed(db, 1)  # an intact entry after it changes nothing
    result = audit.verify(db)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 4, 4)


def test_a_row_of_the_right_types_with_its_own_hash_verifies(db: Session) -> None:
    # The control for the test above: the same insert without a malformation is intact.
    events = seed(db, 3)
    insert_row_4(db, events[-1].hash, {}, row_hash(events[-1].hash))
    seed(db, 1)
    assert audit.verify(db).ok
