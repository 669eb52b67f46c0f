"""``refuge settings``: every setting listed, where it came from, and never a secret's value."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import MASK, Settings

SECRET = "a-signing-key-that-must-never-be-printed-0123456789"
TOKEN = "a-metrics-token-that-must-never-be-printed"
DB_PASSWORD = "db-password-never-printed"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("REFUGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REFUGE_SECRET_KEY", SECRET)
    monkeypatch.setenv("REFUGE_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("REFUGE_DATABASE_URL", f"postgresql://refuge:{DB_PASSWORD}@db.internal/r")
    monkeypatch.setenv("REFUGE_TOKEN_MINUTES", "15")


def test_every_setting_is_listed_with_its_source_and_secrets_masked(environment: None) -> None:
    result = CliRunner().invoke(app, ["settings", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["env"]: row for row in map(json.loads, result.output.splitlines())}
    assert set(rows) == {f"REFUGE_{name.upper()}" for name in Settings.model_fields}
    for secret in (SECRET, TOKEN, DB_PASSWORD):
        assert secret not in result.output
    assert rows["REFUGE_SECRET_KEY"]["value"] == MASK
    assert rows["REFUGE_METRICS_TOKEN"]["value"] == MASK
    assert rows["REFUGE_DATABASE_URL"]["value"] == "postgresql+psycopg://refuge:***@db.internal/r"
    assert rows["REFUGE_TOKEN_MINUTES"] == {
        "env": "REFUGE_TOKEN_MINUTES",
        "value": "15",
        "default": "30",
        "source": "environment",
        "description": "access-token lifetime",
    }
    assert rows["REFUGE_MAJORITY_AGE"]["source"] == "default"
    assert all(row["description"] for row in rows.values())


def test_the_table_marks_what_the_environment_set(environment: None) -> None:
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    minutes = next(line for line in lines if line.startswith("REFUGE_TOKEN_MINUTES"))
    age = next(line for line in lines if line.startswith("REFUGE_MAJORITY_AGE"))
    assert minutes.split()[1:] == ["*", "15"]
    assert age.split()[1:] == ["18"]
    assert SECRET not in result.output


def test_an_invalid_setting_is_named_and_refused(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFUGE_TOKEN_MINUTES", "500")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 1
    assert "REFUGE_TOKEN_MINUTES" in result.output
