"""The refuge command line: migrate, create-user, create-api-key, openapi."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.db import make_engine
from shelters.models import ApiKey, Organization, User


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REFUGE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return url


def test_create_user_reads_the_password_from_stdin(cli_db: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["create-user", "ops-admin", "--role", "admin", "--password-stdin"],
        input="a very long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["role"] == "admin"
    engine = make_engine(cli_db)
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == "ops-admin")).one()
        assert user.password_hash.startswith("$argon2id$")
    engine.dispose()


def test_create_user_without_password_stdin_is_refused(cli_db: str) -> None:
    result = CliRunner().invoke(app, ["create-user", "ops-admin", "--role", "admin"])
    assert result.exit_code == 2


def test_create_user_for_unknown_organization_fails_cleanly(cli_db: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "create-user",
            "cw",
            "--role",
            "caseworker",
            "--organization-id",
            "42",
            "--password-stdin",
        ],
        input="a very long password here\n",
    )
    assert result.exit_code == 1
    assert "organization 42 does not exist" in result.output


def test_create_api_key_prints_a_token_once_and_stores_a_hash(cli_db: str) -> None:
    engine = make_engine(cli_db)
    with Session(engine) as session, session.begin():
        session.add(Organization(name="Funding org", kind="funder"))
    runner = CliRunner()
    runner.invoke(
        app,
        ["create-user", "fund", "--role", "funder", "--organization-id", "1", "--password-stdin"],
        input="a very long password here\n",
    )
    result = runner.invoke(app, ["create-api-key", "fund"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("rfg_")
    with Session(engine) as session:
        key = session.scalars(select(ApiKey)).one()
        secret = token.split("_", 2)[2]
        assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in {key.secret_sha256, key.prefix}
    engine.dispose()
    assert runner.invoke(app, ["create-api-key", "nobody"]).exit_code == 1


def test_openapi_command_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = CliRunner().invoke(app, ["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["info"]["title"] == "Refuge"
