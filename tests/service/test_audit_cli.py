"""``refuge audit verify``, ``refuge audit anchor`` and ``refuge purge`` on a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import typer
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import audit as cli_audit
from service.db import make_engine
from shelters import audit, cases, identity, lifecycle
from shelters.audit import AuditEvent, AuditRecord
from shelters.identity import Role
from shelters.models import Case, Organization, PlacementRequest, utcnow
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import PASSWORD


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    cli_audit.register(app)
    return app


@pytest.fixture
def cli_engine(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("REFUGE_DATABASE_URL", fresh_database)
    eng = make_engine(fresh_database)
    yield eng
    eng.dispose()


def seed(cli_engine: Engine, n: int) -> None:
    with Session(cli_engine) as session, session.begin():
        for i in range(n):
            audit.append(session, AuditRecord(action="read", resource_type="case", resource_id=i))


def tamper(cli_engine: Engine, sql: str) -> None:
    """Change the table behind the triggers' back, as its owner could."""
    with cli_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
        conn.execute(text(sql))


def run(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


def test_verify_prints_the_result_and_exits_zero_on_an_intact_chain(
    cli: typer.Typer, cli_engine: Engine
) -> None:
    seed(cli_engine, 3)
    code, out = run(cli, "audit", "verify")
    assert code == 0
    assert json.loads(out) == {"ok": True, "checked": 3, "first_broken_seq": None}


def test_verify_exits_non_zero_at_a_tampered_entry(cli: typer.Typer, cli_engine: Engine) -> None:
    seed(cli_engine, 4)
    tamper(cli_engine, "UPDATE audit_events SET outcome = 'denied' WHERE seq = 2")
    code, out = run(cli, "audit", "verify")
    assert code == 1
    assert json.loads(out) == {"ok": False, "checked": 2, "first_broken_seq": 2}


def test_anchor_prints_the_head_and_verify_detects_truncation_after_it(
    cli: typer.Typer, cli_engine: Engine
) -> None:
    seed(cli_engine, 5)
    code, anchor = run(cli, "audit", "anchor")
    with Session(cli_engine) as session:
        assert anchor.strip() == "{}:{}".format(*audit.head(session))
    assert run(cli, "audit", "verify", "--anchor", anchor.strip())[0] == 0
    tamper(cli_engine, "DELETE FROM audit_events WHERE seq >= 4")
    assert run(cli, "audit", "verify")[0] == 0  # the cut is invisible without the anchor
    code, out = run(cli, "audit", "verify", "--anchor", anchor.strip())
    assert code == 1
    assert json.loads(out)["first_broken_seq"] == 4


def test_a_malformed_anchor_is_a_usage_error(cli: typer.Typer, cli_engine: Engine) -> None:
    assert run(cli, "audit", "verify", "--anchor", "12:not-a-hash")[0] == 2


def cancelled_case(cli_engine: Engine, days_ago: int) -> int:
    with Session(cli_engine, expire_on_commit=False) as session, session.begin():
        org = Organization(name="CLI test org", kind="ngo")
        session.add(org)
        session.flush()
        user = identity.create_user(
            session,
            username="cli-caseworker",
            password=PASSWORD,
            role=Role.CASEWORKER,
            organization_id=org.id,
        )
        principal = identity.principal_of(identity.get_user(session, user.id))
        profile = CaseProfile(members=(MemberProfile(ref="A", sex="female", age=30),))
        case = cases.create_case(
            session, principal, profile, separate_from_case_ids=[], majority_age=18
        )
        request = lifecycle.create_request(
            session,
            principal,
            case_id=case.id,
            priority=None,
            preferred_regions=[],
            majority_age=18,
        )
        lifecycle.cancel_request(session, principal, request.id)
        session.execute(
            update(PlacementRequest)
            .where(PlacementRequest.id == request.id)
            .values(cancelled_at=utcnow() - timedelta(days=days_ago))
        )
        return case.id


def test_purge_uses_the_configured_retention_and_is_idempotent(
    cli: typer.Typer, cli_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = cancelled_case(cli_engine, days_ago=40)
    monkeypatch.setenv("REFUGE_RETENTION_DAYS", "60")
    code, out = run(cli, "purge")
    assert (code, json.loads(out)["purged_cases"]) == (0, 0)
    code, out = run(cli, "purge", "--older-than", "30")
    assert (code, json.loads(out)["purged_cases"]) == (0, 1)
    assert json.loads(run(cli, "purge", "--older-than", "30")[1])["purged_cases"] == 0
    with Session(cli_engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert (case.members, case.purged_at is not None) == ([], True)
        [entry] = session.scalars(select(AuditEvent).where(AuditEvent.action == "purge")).all()
        assert entry.resource_id == str(case_id)
        assert str(entry.request_id).startswith("purge-")
        assert audit.verify(session).ok


def test_verify_reports_a_malformed_row_in_one_line_not_a_traceback(
    cli: typer.Typer, cli_engine: Engine
) -> None:
    seed(cli_engine, 2)
    at = "'infinity'" if cli_engine.dialect.name == "postgresql" else "'not a time'"
    with cli_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, at, action, resource_type, outcome, prev_hash,"  # noqa: S608
                f" hash) VALUES (3, {at}, 'read', 'case', 'ok', 'x', 'y')"
            )
        )
    seed(cli_engine, 1)
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"ok": False, "checked": 3, "first_broken_seq": 3}
    assert result.stderr.strip().splitlines() == ["error: the audit chain breaks at seq 3"]
    assert result.exception is None or isinstance(result.exception, SystemExit)
