"""``refuge backup`` and ``refuge restore`` on the engine under test, as an operator runs them.

The round trip happens while writers keep appending to the audit chain and changing a unit: the
backup must be a consistent snapshot (its chain verifies, its anchor is its own head), and after
a restore ``refuge audit verify --anchor`` proves that nothing up to the backup was lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from service.db import make_engine
from shelters import audit
from shelters.audit import AuditEvent, AuditRecord
from shelters.models import Organization, Region, Shelter, Unit
from tests.conftest import create_scratch_database, drop_scratch_database, migrate

REFUGE = str(Path(sys.executable).with_name("refuge"))


def refuge(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"REFUGE_DATABASE_URL": url}
    return subprocess.run(
        [REFUGE, *args], env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def target(server_url: str | None, tmp_path: Path) -> Iterator[str]:
    """An empty database to restore into, on the engine under test."""
    if server_url is None:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    url = create_scratch_database(server_url)
    try:
        yield url
    finally:
        drop_scratch_database(server_url, url)


def _unit(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            region = Region(code="backup-region", name="Backup region", lat=50.0, lon=70.0)
            org = Organization(name="Backup test organisation", kind="ngo")
            session.add_all([region, org])
            session.flush()
            shelter = Shelter(
                organization_id=org.id,
                region_code=region.code,
                name="Backup test shelter",
                locality="Test locality",
                address="Confidential test address",
                lat=region.lat,
                lon=region.lon,
                services=[],
                languages=["kk", "ru"],
            )
            session.add(shelter)
            session.flush()
            unit = Unit(shelter_id=shelter.id, name="beds", capacity=10)
            session.add(unit)
            session.flush()
            return unit.id
    finally:
        engine.dispose()


class Writers:
    """Threads that append audit entries and bump a unit's version until stopped."""

    def __init__(self, url: str, unit_id: int, threads: int = 2) -> None:
        self.engine = make_engine(url)
        self.unit_id = unit_id
        self.stop = threading.Event()
        self.written = 0
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop) for _ in range(threads)]

    def _loop(self) -> None:
        try:
            while not self.stop.is_set():
                with Session(self.engine) as session:
                    session.execute(
                        update(Unit).where(Unit.id == self.unit_id).values(version=Unit.version + 1)
                    )
                    audit.append_and_commit(
                        session,
                        AuditRecord(
                            action="update", resource_type="unit", resource_id=self.unit_id
                        ),
                    )
                with self.lock:
                    self.written += 1
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def wait_for(self, count: int) -> None:
        while True:
            with self.lock:
                if self.written >= count or self.errors:
                    return
            self.stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.engine.dispose()


def _chain(url: str) -> tuple[int, int]:
    """(entries, the unit's version) as the database at ``url`` holds them."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            entries = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
            version = session.scalar(select(func.max(Unit.version))) or 0
            return entries, version
    finally:
        engine.dispose()


def test_a_backup_under_write_load_restores_with_the_chain_intact(
    fresh_database: str, target: str, tmp_path: Path
) -> None:
    unit_id = _unit(fresh_database)
    backup_file = tmp_path / "refuge.backup"
    with Writers(fresh_database, unit_id) as writers:
        writers.wait_for(20)
        done = refuge(fresh_database, "backup", str(backup_file))
        writers.wait_for(writers.written + 20)  # the writers went on during and after it
    assert writers.errors == []
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    seq = int(made["anchor"].split(":")[0])
    assert made["audit_entries"] == seq >= 20
    assert made["backup"] == str(backup_file)
    assert backup_file.stat().st_size == made["bytes"]
    assert not backup_file.with_name(backup_file.name + ".partial").exists()
    live_entries, _ = _chain(fresh_database)
    assert live_entries > seq  # the live database went on past the snapshot

    restored = refuge(target, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["anchor"] == made["anchor"]
    verify = refuge(target, "audit", "verify", "--anchor", made["anchor"])
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout) == {"ok": True, "checked": seq, "first_broken_seq": None}
    # One snapshot: each writer's transaction changed the unit and appended one entry, so the
    # unit's version (it began at 1) says how many of them the backup holds.
    entries, version = _chain(target)
    assert entries == seq
    assert version == 1 + seq
    assert refuge(target, "migrate").returncode == 0  # already the newest: nothing to do


def test_a_restore_refuses_a_database_that_holds_one(fresh_database: str, tmp_path: Path) -> None:
    backup_file = tmp_path / "refuge.backup"
    assert refuge(fresh_database, "backup", str(backup_file)).returncode == 0
    refused = refuge(fresh_database, "restore", str(backup_file))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert "not changed" in refused.stderr
    again = refuge(fresh_database, "backup", str(backup_file))
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert refuge(fresh_database, "backup", "--force", str(backup_file)).returncode == 0


def test_a_file_that_is_no_backup_changes_nothing(
    fresh_database: str, target: str, tmp_path: Path
) -> None:
    _unit(fresh_database)
    garbage = tmp_path / "not-a-backup"
    garbage.write_bytes(b"this is not a database\n" * 100)
    failed = refuge(fresh_database, "restore", "--force", str(garbage))
    assert failed.returncode == 1
    assert "not changed" in failed.stderr
    engine = make_engine(fresh_database)
    try:
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Unit)).scalar() == 1
    finally:
        engine.dispose()
    assert refuge(target, "restore", str(tmp_path / "missing")).returncode == 1


def test_a_tampered_chain_is_not_backed_up(fresh_database: str, tmp_path: Path) -> None:
    unit_id = _unit(fresh_database)
    with Writers(fresh_database, unit_id, threads=1) as writers:
        writers.wait_for(3)
    engine = make_engine(fresh_database)
    try:
        with engine.begin() as connection:
            # The append-only triggers refuse updates; an attacker with the owner's rights
            # would remove them first.
            if connection.dialect.name == "postgresql":
                connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            else:
                connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(
                update(AuditEvent).where(AuditEvent.seq == 2).values(action="delete")
            )
    finally:
        engine.dispose()
    backup_file = tmp_path / "refuge.backup"
    refused = refuge(fresh_database, "backup", str(backup_file))
    assert refused.returncode == 1
    assert "seq 2" in refused.stderr
    assert not backup_file.exists()
    assert not backup_file.with_name(backup_file.name + ".partial").exists()


def test_migrated_is_required_before_a_backup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    refused = refuge(url, "backup", str(tmp_path / "b"))
    assert refused.returncode == 1
    assert "no database" in refused.stderr
    migrate(url)
    assert refuge(url, "backup", str(tmp_path / "b")).returncode == 0
