"""The tamper-evident audit log (SPEC §9): an append-only hash chain.

Each entry stores who did what to which resource and with what outcome, and nothing else:
never a personal attribute, a token or a body. Its ``hash`` is the SHA-256 of its canonical
content, which includes the previous entry's hash, so changing, deleting, reordering or
inserting any row breaks the chain at that row's sequence number.

A chain is only as strong as what is kept outside it: someone with write access to the
database can rewrite the whole tail and recompute every hash. ``head`` gives a (seq, hash)
anchor to store elsewhere; ``verify`` with that anchor then also detects a rewritten or
truncated tail.

Appends are serialised so that the chain stays linear: on PostgreSQL with a transaction-level
advisory lock, on SQLite by the write transaction itself (``BEGIN IMMEDIATE``). On PostgreSQL a
trigger refuses UPDATE, DELETE and TRUNCATE on the table; on SQLite a trigger refuses UPDATE and
DELETE.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Engine,
    Index,
    Integer,
    String,
    case,
    insert,
    literal,
    null,
    select,
    text,
    type_coerce,
)
from sqlalchemy import event as orm_event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.sql.compiler import Compiled

from shelters.models import Base, UTCDateTime, utcnow
from shelters.pagination import Page, paginate

GENESIS = "0" * 64
OUTCOMES = ("ok", "denied", "failed")
SYSTEM_ROLE = "system"
"""The actor role of what the system does by itself (no user): expiries, runs given up."""
# pg_advisory_xact_lock(int4, int4) lives in a key space of its own, apart from bigint keys.
LOCK_CLASS = 0x52464741  # "RFGA"
LOCK_OBJECT = 1
_SAFE_ID = re.compile(r"^[0-9]{1,20}$")
_HASH = re.compile(r"[0-9a-f]{64}")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AuditEvent(Base):
    """One entry of the audit chain. Rows are only ever inserted."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(10))
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'denied', 'failed')", name="outcome_known"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_audit_events_actor_user_id_seq", "actor_user_id", "seq"),
        Index("ix_audit_events_resource_seq", "resource_type", "resource_id", "seq"),
        Index("ix_audit_events_at", "at"),
    )


class ChainEntry(Protocol):
    """What verification reads of an entry: a stored row or any object with these fields."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor_user_id(self) -> int | None: ...
    @property
    def actor_role(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def resource_id(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, before it gets its place in the chain.

    ``resource_id`` is kept only when it is a decimal id; ``request_id`` only when it has the
    shape the edge middleware gives request ids. Anything else becomes None, so that a value a
    caller typed can never reach the log.
    """

    action: str
    resource_type: str
    outcome: str = "ok"
    actor_user_id: int | None = None
    actor_role: str | None = None
    resource_id: str | int | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of recomputing the chain.

    ``checked`` counts the entries read; ``first_broken_seq`` is the first sequence number at
    which the chain does not hold (an entry changed, missing, out of place, or not matching the
    anchor), None when ``ok``.
    """

    ok: bool
    checked: int
    first_broken_seq: int | None


def _format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(
    *,
    seq: int,
    at: datetime,
    actor_user_id: int | None,
    actor_role: str | None,
    action: str,
    resource_type: str,
    resource_id: str | None,
    outcome: str,
    request_id: str | None,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash covers: compact JSON, keys sorted, time in UTC microseconds.

    Every stored column except ``hash`` itself is included, so changing any of them (the
    sequence number too) changes the hash.
    """
    content = {
        "seq": seq,
        "at": _format_time(at),
        "actor_user_id": actor_user_id,
        "actor_role": actor_role,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "request_id": request_id,
        "prev_hash": prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _content_of(event: ChainEntry, *, seq: int, prev_hash: str) -> bytes:
    """An entry's canonical content with this sequence number and previous hash."""
    return canonical_content(
        seq=seq,
        at=event.at,
        actor_user_id=event.actor_user_id,
        actor_role=event.actor_role,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        outcome=event.outcome,
        request_id=event.request_id,
        prev_hash=prev_hash,
    )


def entry_hash(event: ChainEntry) -> str:
    """SHA-256 (hex) of the entry's canonical content, as it should be stored in ``hash``."""
    return hashlib.sha256(_content_of(event, seq=event.seq, prev_hash=event.prev_hash)).hexdigest()


def _safe_resource_id(value: str | int | None) -> str | None:
    if value is None:
        return None
    value = str(value)
    return value if _SAFE_ID.match(value) else None


def _safe_request_id(value: str | None) -> str | None:
    return value if value is not None and _SAFE_REQUEST_ID.match(value) else None


_EVENTS = AuditEvent.__table__
_HEAD = select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)
# PostgreSQL: lock, head and insert in one round trip (migration 0009).
_APPEND = text(
    "SELECT new_seq, new_prev_hash, new_hash FROM refuge_audit_append(:cls, :obj, :before, "
    ":after, :at, :actor_user_id, :actor_role, :action, :resource_type, :resource_id, "
    ":outcome, :request_id)"
).bindparams(cls=LOCK_CLASS, obj=LOCK_OBJECT)
# Stands for the previous hash in a content template; no field may hold a "<".
_PREV_MARK = "<prev_hash>"
_INSERT = insert(AuditEvent)
_COLUMNS = tuple(column.key for column in _EVENTS.columns)
_SERVER_SIDE = {"seq", "prev_hash", "hash"}


def head(session: Session) -> tuple[int, str]:
    """The newest entry's (seq, hash); (0, GENESIS) for an empty log."""
    row = session.connection().execute(_HEAD).first()
    return (row.seq, row.hash) if row is not None else (0, GENESIS)


def _content_template(event: AuditEvent) -> tuple[str, str]:
    """The entry's canonical content as (before, after): before + prev_hash + after + seq + "}".

    What migration 0009's function completes once it holds the chain lock and knows the head.
    """
    content = _content_of(event, seq=0, prev_hash=_PREV_MARK).decode()
    before, mark, after = content.partition(_PREV_MARK)
    # "seq" sorts last: the content ends with its number and the closing brace.
    if not mark or _PREV_MARK in after or not after.endswith('"seq":0}'):
        raise ValueError("an audit field holds what the content template reserves")
    return before, after.removesuffix("0}")


def _event_of(record: AuditRecord, now: datetime | None) -> AuditEvent:
    if record.outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {record.outcome!r}")
    return AuditEvent(
        # Whole microseconds in UTC: what both engines store and give back unchanged.
        at=(now or utcnow()).astimezone(UTC),
        actor_user_id=record.actor_user_id,
        actor_role=record.actor_role,
        action=record.action,
        resource_type=record.resource_type,
        resource_id=_safe_resource_id(record.resource_id),
        outcome=record.outcome,
        request_id=_safe_request_id(record.request_id),
    )


def _append_parameters(event: AuditEvent) -> dict[str, Any]:
    """What ``_APPEND`` needs besides the lock key: the content template and the columns."""
    before, after = _content_template(event)
    fields = {key: getattr(event, key) for key in _COLUMNS if key not in _SERVER_SIDE}
    return fields | {"before": before, "after": after}


def append(session: Session, record: AuditRecord, *, now: datetime | None = None) -> AuditEvent:
    """Append one entry at the head of the chain, in the session's transaction; written at once.

    Takes the chain lock first (PostgreSQL; held until the transaction ends, so call this as
    late as possible, just before commit; ``append_and_commit`` holds it shorter still). On
    SQLite the caller's write transaction already excludes other writers. Refuses an unknown
    ``outcome`` with ``ValueError``.
    """
    event = _event_of(record, now)
    session.flush()  # the transaction's own writes first, as before the entry
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Lock, head, hash and insert in one call, the lock held for as short as can be.
        row = connection.execute(_APPEND, _append_parameters(event)).one()
        event.seq, event.prev_hash, event.hash = row
        return event
    # SQLite: the caller's write transaction already excludes every other writer. A plain
    # insert on the session's connection, not the ORM's unit of work: every audited request
    # appends one entry, never changed afterwards. The returned object is not in the session.
    event.seq, event.prev_hash = head(session)
    event.seq += 1
    event.hash = entry_hash(event)
    connection.execute(_INSERT, {key: getattr(event, key) for key in _COLUMNS})
    return event


def append_and_commit(
    session: Session, record: AuditRecord, *, now: datetime | None = None
) -> AuditEvent:
    """Append ``record`` as the transaction's last entry, then commit the session.

    What the system did by itself in the transaction (``defer``) is appended right after it.
    On PostgreSQL, when the session runs its own transaction on a psycopg connection, the
    entries and the ``COMMIT`` leave for the server in one message (psycopg's pipeline mode):
    the chain lock is taken and released by the server alone, so a client process that is
    descheduled between its last statement and its commit no longer holds up every other
    writer, and the commit costs no round trip of its own. SQLAlchemy's commit that follows
    finds the connection idle and sends nothing. Anywhere else (SQLite, or a session inside a
    transaction it does not own, as in the tests' rolled-back transactions) it is ``append``
    followed by ``session.commit()``.

    If the pipelined commit fails, the session is rolled back and the error raised: nothing of
    the transaction, the entries included, was written.
    """
    records = [record, *session.info.pop(_DEFERRED, ())]
    connection = session.connection()
    if not _owns_pipelinable_transaction(session, connection.dialect.driver):
        events = [append(session, r, now=now) for r in records]
        session.commit()
        return events[0]
    events = [_event_of(r, now) for r in records]
    session.flush()  # the transaction's own writes first, as before the entry
    statement = _compiled_append(connection.dialect)
    parameters = [statement.construct_params(_append_parameters(e)) for e in events]
    driver = connection.connection.driver_connection
    assert driver is not None, "a connection that has begun a transaction is open"
    dialect = connection.dialect
    try:
        with driver.pipeline():
            cursors = [driver.execute(statement.string, p) for p in parameters]
            driver.commit()
            for event, cursor in zip(events, cursors, strict=True):
                event.seq, event.prev_hash, event.hash = cursor.fetchone()
    except dialect.loaded_dbapi.Error as exc:
        # Raised as SQLAlchemy raises it, so that callers (the 503 handler, the retries)
        # tell a lost connection or a lock timeout from anything else.
        lost = dialect.is_disconnect(exc, driver, None)
        if lost:
            connection.invalidate(exc)
        session.rollback()
        raise DBAPIError.instance(
            statement.string,
            parameters[0],
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return events[0]


@functools.lru_cache(maxsize=4)
def _compiled_append(dialect: Dialect) -> Compiled:
    """``_APPEND`` compiled once per dialect: the pipelined path sends the driver its SQL."""
    return _APPEND.compile(dialect=dialect)


def _owns_pipelinable_transaction(session: Session, driver: str) -> bool:
    bind = session.get_bind()
    return driver == "psycopg" and isinstance(bind, Engine) and not session.in_nested_transaction()


_DEFERRED = "refuge_audit_deferred"


def defer(session: Session, record: AuditRecord) -> None:
    """Append ``record`` when the session's transaction commits, just before it does.

    For what the system does by itself inside some other transaction (a hold that ran out, a
    run given up): appending at once would take the chain lock on PostgreSQL for the rest of
    that transaction, a solve included. A rollback of the whole transaction drops the
    records; one of a savepoint does not, so do not defer inside ``begin_nested``.
    """
    if record.outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {record.outcome!r}")
    session.info.setdefault(_DEFERRED, []).append(record)


def defer_system(session: Session, action: str, resource_type: str, resource_id: int) -> None:
    """``defer`` an entry for what the system did by itself (no user: role ``system``)."""
    defer(
        session,
        AuditRecord(
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            actor_role=SYSTEM_ROLE,
        ),
    )


@orm_event.listens_for(Session, "before_commit")
def _append_deferred(session: Session) -> None:
    for record in session.info.pop(_DEFERRED, ()):
        append(session, record)


@orm_event.listens_for(Session, "after_soft_rollback")
def _drop_deferred(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_DEFERRED, None)


def verify_entries(
    events: Iterable[ChainEntry], *, anchor: tuple[int, str] | None = None
) -> Verification:
    """Recompute a chain given in ascending ``seq`` order; pure, no database.

    The chain starts at seq 1 with ``prev_hash`` GENESIS and goes up by one. The first entry
    that is missing (a gap), malformed (a field of another type than ``append`` writes: ``at``
    not an aware datetime, a hash not 64 lowercase hex digits, a number where text belongs…),
    whose ``prev_hash`` is not its predecessor's hash, or whose hash does not match its content
    is the first broken one. With ``anchor`` (seq, hash) the entry at that seq must carry that
    hash, and a chain that ends before it is broken at its first missing seq (truncation).
    """
    expected_seq = 1
    prev_hash = GENESIS
    checked = 0
    for event in events:
        checked += 1
        if event.seq != expected_seq:
            return Verification(False, checked, expected_seq)
        if (
            not _well_formed(event)
            or event.prev_hash != prev_hash
            or entry_hash(event) != event.hash
        ):
            return Verification(False, checked, event.seq)
        if anchor is not None and event.seq == anchor[0] and event.hash != anchor[1]:
            return Verification(False, checked, event.seq)
        prev_hash = event.hash
        expected_seq += 1
    if anchor is not None and anchor[0] >= expected_seq:
        return Verification(False, checked, expected_seq)
    return Verification(True, checked, None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _well_formed(event: ChainEntry) -> bool:
    """Whether every field has the type ``append`` gives it (so that it can be hashed)."""
    texts = (event.action, event.resource_type, event.outcome, event.prev_hash, event.hash)
    optional_texts = (event.actor_role, event.resource_id, event.request_id)
    return (
        isinstance(event.at, datetime)
        and event.at.tzinfo is not None
        and (event.actor_user_id is None or _is_int(event.actor_user_id))
        and all(isinstance(value, str) for value in texts)
        and all(value is None or isinstance(value, str) for value in optional_texts)
        and _HASH.fullmatch(event.hash) is not None
        and _HASH.fullmatch(event.prev_hash) is not None
    )


@dataclass(frozen=True, slots=True)
class _StoredEntry:
    """A stored row as read for verification: any field may hold what no entry should."""

    seq: Any
    at: Any
    actor_user_id: Any
    actor_role: Any
    action: Any
    resource_type: Any
    resource_id: Any
    outcome: Any
    request_id: Any
    prev_hash: Any
    hash: Any


# PostgreSQL's timestamps reach from 4713 BC to 294276 AD and infinity; Python's datetime (and
# so psycopg) reads years 1 to 9999 only. A value outside is read as NULL, a malformed entry,
# rather than failing the whole read; the margin covers any session time zone.
_READABLE_FROM = datetime(1, 1, 2, tzinfo=UTC)
_READABLE_UNTIL = datetime(9999, 12, 30, tzinfo=UTC)


def _readable_at(dialect: Dialect) -> ColumnElement[Any]:
    at = _EVENTS.c.at
    if dialect.name == "postgresql":
        return case(
            (at.between(literal(_READABLE_FROM, at.type), literal(_READABLE_UNTIL, at.type)), at),
            else_=null(),
        ).label("at")
    # SQLite keeps whatever a row was given: read it raw, convert it here (``_converted``).
    return type_coerce(at, String()).label("at")


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> Verification:
    """Recompute the stored chain from its first entry (see ``verify_entries``).

    A row no entry could be (a time that is not one, a blob where text belongs) is a break at
    its seq like any other, never an error.
    """
    dialect = session.get_bind().dialect
    columns = [_readable_at(dialect) if c.key == "at" else c for c in _EVENTS.columns]
    # Plain rows, not ORM objects: a long chain streams through without filling the session.
    rows = session.execute(
        select(*columns).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    )
    at_type = _EVENTS.c.at.type.dialect_impl(dialect)
    convert = None if dialect.name == "postgresql" else at_type.result_processor(dialect, None)

    def entries() -> Iterable[ChainEntry]:
        for row in rows:
            fields = row._asdict()
            if convert is not None:
                fields["at"] = _converted(fields["at"], convert)
            yield _StoredEntry(**fields)

    try:
        return verify_entries(entries(), anchor=anchor)
    finally:
        rows.close()  # a break ends the walk early: release the server-side cursor


def _converted(raw: Any, convert: Any) -> Any:
    """A raw stored time read as a datetime, or left as it is if it is not one."""
    try:
        return convert(raw)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return raw


def parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``refuge audit anchor``; ``ValueError`` if malformed."""
    seq_text, sep, digest = value.strip().partition(":")
    if not sep or not seq_text.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("an anchor looks like SEQ:HASH (a sequence number, 64 hex digits)")
    return int(seq_text), digest


def list_events(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    actor_user_id: int | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEvent]:
    """Entries, newest first, filtered by actor, resource and time (``since`` ≤ at < ``until``)."""
    stmt = select(AuditEvent)
    if actor_user_id is not None:
        stmt = stmt.where(AuditEvent.actor_user_id == actor_user_id)
    if resource_type is not None:
        stmt = stmt.where(AuditEvent.resource_type == resource_type)
    if resource_id is not None:
        stmt = stmt.where(AuditEvent.resource_id == resource_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return paginate(session, stmt, AuditEvent.seq, limit=limit, cursor=cursor, descending=True)


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """An entry as plain values (for the CLI and tests)."""
    return {
        "seq": event.seq,
        "at": _format_time(event.at),
        "actor_user_id": event.actor_user_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
