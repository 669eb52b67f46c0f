"""Settings refuse unsafe secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import SecretKeyMissing, Settings


def test_a_secret_is_generated_beside_a_sqlite_file_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'refuge.db'}")
    key = settings.resolved_secret_key()
    key_file = tmp_path / "refuge.db.secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert settings.resolved_secret_key() == key


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'refuge.db'}")
    settings.resolved_secret_key()
    (tmp_path / "refuge.db.secret").chmod(0o644)
    with pytest.raises(SecretKeyMissing, match="chmod 600"):
        settings.resolved_secret_key()


def test_postgres_without_a_secret_is_refused() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1/refuge")
    assert settings.database_url.startswith("postgresql+psycopg://")
    with pytest.raises(SecretKeyMissing, match="REFUGE_SECRET_KEY"):
        settings.resolved_secret_key()


def test_short_secret_is_refused() -> None:
    with pytest.raises(SecretKeyMissing, match="32"):
        Settings(database_url="sqlite://", secret_key="short").resolved_secret_key()


def test_token_lifetime_cannot_exceed_an_hour() -> None:
    with pytest.raises(ValueError, match="60"):
        Settings(token_minutes=61)


def test_suppression_threshold_never_below_three() -> None:
    with pytest.raises(ValueError, match="3"):
        Settings(suppression_k=2)


def test_a_heartbeat_timeout_shorter_than_two_beats_is_refused() -> None:
    with pytest.raises(ValidationError, match="twice REFUGE_RUN_HEARTBEAT_S"):
        Settings(run_heartbeat_s=5, run_heartbeat_timeout_s=9)
    assert Settings(run_heartbeat_s=5, run_heartbeat_timeout_s=10).run_heartbeat_timeout_s == 10
