"""Backups that can be trusted: a consistent copy, checked before it is kept, and its anchor.

``backup`` copies the configured database to a file while the service keeps running:

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies every page in one read
  transaction, a consistent snapshot however many writers go on beside it;
- PostgreSQL: ``pg_dump --format=custom`` with the snapshot of a transaction that also reads the
  audit chain's head, so the anchor printed is the dump's own.

The copy is written beside its destination as ``<name>.partial`` and renamed into place only when
it opens and its audit chain verifies, so a backup that fails leaves nothing that looks like one.
The result names the audit chain's head (``SEQ:HASH``, the anchor of ``refuge audit anchor``):
after ``restore``, ``refuge audit verify --anchor SEQ:HASH`` proves that nothing recorded up to
the backup was lost or altered.

``restore`` puts a backup into the configured database: a SQLite file is written as a copy
beside it and renamed over it; a PostgreSQL database is filled by ``pg_restore`` in one
transaction. Both refuse a target that holds a Refuge schema already unless told to replace it.
Stop the service before a restore: its processes hold the database open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.db import make_engine
from shelters import audit


class BackupError(Exception):
    """A backup or restore that could not be done; nothing was put in place."""


@dataclass(frozen=True)
class Copied:
    """What a backup holds, or what a restore put in place."""

    path: Path
    engine: str
    bytes: int
    anchor: str  # SEQ:HASH of the audit chain's head in the copy
    audit_entries: int
    revision: str | None


def _anchor(seq: int, digest: str) -> str:
    return f"{seq}:{digest}"


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _checked(url: str, path: Path, engine_name: str) -> Copied:
    """Open the database at ``url`` (a copy), verify its audit chain, and describe it.

    A SQLite copy is opened as it is (not through ``make_engine``, which would turn on WAL).
    """
    engine = create_engine(url) if engine_name == "sqlite" else make_engine(url)
    try:
        return _described(engine, path, engine_name)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(f"the copy cannot be read as a Refuge database: {reason}") from None
    finally:
        engine.dispose()


def _sound(session: Session, what: str) -> tuple[str, int, str]:
    """``what``'s schema revision and audit head, once its chain verifies; else BackupError."""
    revision = _revision(session.connection())
    if revision is None:
        raise BackupError(f"{what} holds no Refuge schema")
    verification = audit.verify(session)
    if not verification.ok:
        raise BackupError(f"{what}'s audit chain breaks at seq {verification.first_broken_seq}")
    seq, digest = audit.head(session)
    return revision, seq, digest


def _described(engine: Engine, path: Path, engine_name: str) -> Copied:
    with Session(engine) as session, session.begin():
        revision, seq, digest = _sound(session, "the copy")
    return Copied(path, engine_name, path.stat().st_size, _anchor(seq, digest), seq, revision)


def _partial(destination: Path) -> Path:
    return destination.with_name(destination.name + ".partial")


@contextlib.contextmanager
def _written_then_renamed(destination: Path, *, replace: bool) -> Iterator[Path]:
    """A scratch path beside ``destination``, renamed onto it if the block succeeds."""
    if destination.exists() and not replace:
        raise BackupError(f"{destination} exists; pass --force to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = _partial(destination)
    scratch.unlink(missing_ok=True)
    try:
        yield scratch
        os.replace(scratch, destination)
    finally:
        scratch.unlink(missing_ok=True)


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a SQLite database page by page in one read transaction (the online backup API)."""
    try:
        _sqlite_pages(source, target)
    except sqlite3.Error as exc:
        raise BackupError(f"{source} cannot be copied: {exc}") from None


def _sqlite_pages(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            (check,) = dst.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise BackupError(f"the copy failed SQLite's integrity check: {check}")
            # One file, not a WAL beside it: the copy stands on its own.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _libpq(url: str) -> str:
    """The URL as libpq's tools take it (no SQLAlchemy driver name)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools are needed)")
    return found


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{Path(command[0]).name} failed: {lines[-1] if lines else 'no output'}")


def backup(database_url: str, destination: Path, *, replace: bool = False) -> Copied:
    """Copy the database at ``database_url`` to ``destination`` consistently, then check it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        source = Path(url.database or "")
        if not url.database or not source.is_file():
            raise BackupError(f"no SQLite database at {source}")
        with _written_then_renamed(destination, replace=replace) as scratch:
            _sqlite_copy(source, scratch)
            copied = _checked(f"sqlite:///{scratch}", scratch, "sqlite")
        return dataclasses.replace(copied, path=destination)
    return _pg_backup(database_url, destination, replace=replace)


def _pg_backup(database_url: str, destination: Path, *, replace: bool) -> Copied:
    pg_dump = _tool("pg_dump")
    engine = make_engine(database_url)
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection,
            connection.begin(),
        ):
            # The dump and the anchor read one snapshot: the anchor is the dump's own head.
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            with Session(bind=connection) as session:
                revision, seq, digest = _sound(session, "the database")
            with _written_then_renamed(destination, replace=replace) as scratch:
                _run(
                    [
                        pg_dump,
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        "--no-owner",
                        f"--file={scratch}",
                        f"--dbname={_libpq(database_url)}",
                    ]
                )
                _run([_tool("pg_restore"), "--list", str(scratch)])  # it reads back
    finally:
        engine.dispose()
    return Copied(
        destination, "postgresql", destination.stat().st_size, _anchor(seq, digest), seq, revision
    )


def _holds_schema(database_url: str) -> bool:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return bool(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def restore(database_url: str, source: Path, *, replace: bool = False) -> Copied:
    """Put the backup at ``source`` into the database at ``database_url``, then check it."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        target = Path(url.database or "")
        if not url.database:
            raise BackupError("restore needs a SQLite file, not an in-memory database")
        if target.exists() and _holds_schema(database_url) and not replace:
            raise BackupError(f"{target} holds a database; pass --force to replace it")
        scratch = _partial(target)
        scratch.unlink(missing_ok=True)
        try:
            _sqlite_copy(source, scratch)
            copied = _checked(f"sqlite:///{scratch}", scratch, "sqlite")
            # The replaced database's journal must not be read as the restored one's.
            for leftover in ("-wal", "-shm"):
                target.with_name(target.name + leftover).unlink(missing_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch, target)
        finally:
            scratch.unlink(missing_ok=True)
        return dataclasses.replace(copied, path=target)
    if _holds_schema(database_url) and not replace:
        raise BackupError("the database holds tables; pass --force to replace them")
    command = [
        _tool("pg_restore"),
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        f"--dbname={_libpq(database_url)}",
    ]
    if replace:
        command[1:1] = ["--clean", "--if-exists"]
    _run([*command, str(source)])
    checked = _checked(database_url, source, "postgresql")
    return checked
