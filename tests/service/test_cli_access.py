"""refuge disable-user, enable-user, list-api-keys, revoke-api-key and reset-totp."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.db import make_engine
from shelters import audit, identity, totp
from shelters.audit import AuditEvent
from shelters.errors import InvalidCredentials
from shelters.identity import Role
from shelters.models import ApiKey, User, WebSession
from shelters.web_sessions import SessionPolicy, start
from tests.conftest import PASSWORD

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REFUGE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def user_id(engine: Engine) -> int:
    with Session(engine) as session, session.begin():
        user = identity.create_user(
            session,
            username="ops-admin",
            password=PASSWORD,
            role=Role.ADMIN,
            organization_id=None,
        )
        start(session, user.id, POLICY)
        return user.id


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def last_entry(engine: Engine) -> tuple[str, str, str | None, str | None]:
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        assert audit.verify(session).ok
        return event.action, event.resource_type, event.resource_id, event.actor_role


def test_disable_user_ends_sessions_and_is_audited(engine: Engine, user_id: int) -> None:
    code, output = run("disable-user", "ops-admin")
    assert code == 0, output
    assert json.loads(output) == {
        "id": user_id,
        "username": "ops-admin",
        "active": False,
        "web_sessions_ended": 1,
    }
    with Session(engine) as session:
        assert session.get_one(User, user_id).is_active is False
        assert session.scalars(select(WebSession)).all() == []
    assert last_entry(engine) == ("disable", "user", str(user_id), "operator")
    code, output = run("enable-user", "ops-admin")
    assert code == 0
    assert json.loads(output)["active"] is True
    assert last_entry(engine) == ("enable", "user", str(user_id), "operator")


def test_unknown_users_and_keys_fail_and_write_nothing(engine: Engine, user_id: int) -> None:
    with Session(engine) as session:
        before = audit.head(session)
    assert run("disable-user", "nobody-here")[0] == 1
    assert run("revoke-api-key", "424242")[0] == 1
    with Session(engine) as session:
        assert audit.head(session) == before


def test_keys_are_listed_without_secrets_and_revoked(engine: Engine, user_id: int) -> None:
    with Session(engine) as session, session.begin():
        key, token = identity.issue_api_key(session, user_id)
        key_id = key.id
    code, output = run("list-api-keys", "ops-admin")
    assert code == 0
    [listed] = [json.loads(line) for line in output.splitlines()]
    assert listed["id"] == key_id
    assert listed["revoked_at"] is None
    assert token.split("_", 2)[2] not in output
    code, output = run("revoke-api-key", str(key_id))
    assert code == 0, output
    assert json.loads(output)["id"] == key_id
    with Session(engine) as session:
        assert session.get_one(ApiKey, key_id).revoked_at is not None
        with pytest.raises(InvalidCredentials):
            identity.check_api_key(session, token)
    assert last_entry(engine) == ("revoke", "api_key", str(key_id), "operator")


def test_reset_totp_removes_the_factor(engine: Engine, user_id: int) -> None:
    with Session(engine) as session, session.begin():
        totp.begin_enrolment(session, session.get_one(User, user_id))
    code, output = run("reset-totp", "ops-admin")
    assert code == 0
    assert json.loads(output) == {"id": user_id, "second_factor_removed": True}
    with Session(engine) as session:
        assert not totp.has_factor(session, user_id)
    assert last_entry(engine) == ("reset_totp", "user", str(user_id), "operator")
