"""Every write and every read of case-level data appends exactly one audit entry (SPEC §9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service import audit as service_audit
from shelters import audit
from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.models import utcnow
from tests.conftest import PASSWORD, World
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN, create_case, match, request_for
from tests.shelters.test_audit_store import disable_guards

CASEWORKER_REQUEST_ID = "audit-test-0001"


def entries(db: Session) -> list[dict[str, Any]]:
    db.expire_all()
    return [audit.as_dict(e) for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


def brief(db: Session) -> list[tuple[Any, ...]]:
    return [
        (e["action"], e["resource_type"], e["resource_id"], e["outcome"], e["actor_role"])
        for e in entries(db)
    ]


def test_creating_a_case_appends_one_entry_naming_actor_resource_and_request(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    headers = world.headers_for(user) | {"X-Request-ID": CASEWORKER_REQUEST_ID}
    case = create_case(client, headers)
    [entry] = entries(db)
    assert entry["seq"] == 1
    assert entry["action"] == "create"
    assert (entry["resource_type"], entry["resource_id"]) == ("case", str(case["id"]))
    assert (entry["actor_user_id"], entry["actor_role"]) == (user.id, "caseworker")
    assert (entry["outcome"], entry["request_id"]) == ("ok", CASEWORKER_REQUEST_ID)
    assert audit.verify(db).ok


def test_reads_of_case_level_data_are_audited_and_registry_reads_are_not(
    client: TestClient, world: World, db: Session
) -> None:
    headers = world.headers(Role.CASEWORKER)
    case = create_case(client, headers)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=headers).status_code == 200
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert client.get("/api/v1/regions", headers=headers).status_code == 200
    assert client.get("/api/v1/services", headers=headers).status_code == 200
    assert brief(db) == [
        ("create", "case", str(case["id"]), "ok", "caseworker"),
        ("read", "case", str(case["id"]), "ok", "caseworker"),
        ("list", "case", None, "ok", "caseworker"),
    ]


def test_an_audited_read_on_a_read_only_session_is_recorded_too(
    client: TestClient, world: World, db: Session
) -> None:
    assert client.get("/api/v1/export/hsds", headers=world.headers(Role.FUNDER)).status_code == 200
    assert brief(db) == [("export", "hsds", None, "ok", "funder")]


def test_placement_transitions_name_the_placement(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=2, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])
    request_id = request_for(client, caseworker)
    placement = match(client, caseworker, request_id)["placement"]
    response = client.post(f"/api/v1/placements/{placement['id']}/accept", headers=coordinator)
    assert response.status_code == 200, response.text
    assert brief(db)[-2:] == [
        ("match", "placement_request", str(request_id), "ok", "caseworker"),
        ("accept", "placement", str(placement["id"]), "ok", "coordinator"),
    ]


def test_a_refused_write_leaves_no_ok_entry(client: TestClient, world: World, db: Session) -> None:
    headers = world.headers(Role.CASEWORKER)
    case = create_case(client, headers)
    stale = client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"wheelchair": True},
        headers=headers | {"If-Match": '"case-1-v999"'},
    )
    assert stale.status_code == 412
    bad = client.post("/api/v1/cases", json={"members": []}, headers=headers)
    assert bad.status_code == 422
    assert brief(db) == [("create", "case", str(case["id"]), "ok", "caseworker")]


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.FUNDER, "/api/v1/cases", 403),
        (Role.COORDINATOR, "/api/v1/cases/{case}", 403),
        (Role.CASEWORKER, "/api/v1/cases/{case}", 404),
        (None, "/api/v1/cases/{case}", 401),
    ],
)
def test_denied_attempts_are_recorded_in_a_transaction_of_their_own(
    client: TestClient, world: World, db: Session, role: Role | None, path: str, status: int
) -> None:
    case = create_case(client, world.headers(Role.CASEWORKER))
    user = world.user(role) if role is not None else None
    headers = world.headers_for(user) if user is not None else {}
    response = client.get(path.format(case=case["id"]), headers=headers)
    assert response.status_code == status
    last = entries(db)[-1]
    assert last["outcome"] == "denied"
    assert last["actor_user_id"] == (user.id if user else None)
    assert last["resource_id"] == (str(case["id"]) if "{case}" in path else None)
    assert len(entries(db)) == 2
    assert audit.verify(db).ok


def test_logins_are_audited_failures_and_lockouts_as_denied(
    client: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.ADMIN)
    ok = client.post("/api/v1/auth/token", data={"username": user.username, "password": PASSWORD})
    assert ok.status_code == 200
    statuses = [
        client.post(
            "/api/v1/auth/token", data={"username": user.username, "password": "wrong password!"}
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    assert (
        brief(db)
        == [("login", "user", str(user.id), "ok", None)]
        + [("login", "user", None, "denied", None)] * 4
    )
    assert audit.verify(db).ok


def test_unaudited_routes_and_unknown_paths_write_nothing(
    client: TestClient, world: World, db: Session
) -> None:
    headers = world.headers(Role.ADMIN)
    assert client.get("/api/v1/organizations/424242", headers=headers).status_code == 404
    assert client.get("/api/v1/no-such-thing", headers=headers).status_code == 404
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert entries(db) == []


# --- reading and verifying the log ------------------------------------------------------------


@pytest.fixture
def tamper(db: Session, connection: Connection) -> Callable[[str], None]:
    db.flush()
    disable_guards(connection)

    def run(sql: str) -> None:
        connection.execute(text(sql))
        db.expire_all()

    return run


def test_verify_answers_admins_and_funders_only(client: TestClient, world: World) -> None:
    for role in (Role.ADMIN, Role.FUNDER):
        response = client.get("/api/v1/audit/verify", headers=world.headers(role))
        assert response.status_code == 200
        assert response.json() == {"ok": True, "checked": 0, "first_broken_seq": None}
    for role in (Role.CASEWORKER, Role.COORDINATOR):
        assert client.get("/api/v1/audit/verify", headers=world.headers(role)).status_code == 403


def test_verify_reports_where_the_chain_was_tampered_with(
    client: TestClient, world: World, db: Session, tamper: Callable[[str], None]
) -> None:
    headers = world.headers(Role.CASEWORKER)
    for _ in range(4):
        create_case(client, headers)
    funder = world.headers(Role.FUNDER)
    assert client.get("/api/v1/audit/verify", headers=funder).json() == {
        "ok": True,
        "checked": 4,
        "first_broken_seq": None,
    }
    tamper("UPDATE audit_events SET actor_user_id = actor_user_id + 1 WHERE seq = 2")
    assert client.get("/api/v1/audit/verify", headers=funder).json() == {
        "ok": False,
        "checked": 2,
        "first_broken_seq": 2,
    }


def test_verify_reports_a_malformed_row_as_a_break_not_a_500(
    client: TestClient, world: World, db: Session
) -> None:
    headers = world.headers(Role.CASEWORKER)
    create_case(client, headers)
    at = "'infinity'" if db.get_bind().dialect.name == "postgresql" else "'not a time'"
    db.execute(
        text(
            "INSERT INTO audit_events (seq, at, action, resource_type, outcome, prev_hash, hash)"  # noqa: S608
            f" VALUES (2, {at}, 'read', 'case', 'ok', 'x', 'y')"
        )
    )
    create_case(client, headers)
    response = client.get("/api/v1/audit/verify", headers=world.headers(Role.ADMIN))
    assert response.status_code == 200
    assert response.json() == {"ok": False, "checked": 2, "first_broken_seq": 2}


def test_audit_events_are_listed_newest_first_and_filtered(
    client: TestClient, world: World, db: Session
) -> None:
    caseworker = world.user(Role.CASEWORKER)
    headers = world.headers_for(caseworker)
    first = create_case(client, headers)
    second = create_case(client, headers)
    client.get(f"/api/v1/cases/{first['id']}", headers=headers)
    admin = world.user(Role.ADMIN)
    admin_headers = world.headers_for(admin)

    def seqs(**params: Any) -> list[int]:
        response = client.get("/api/v1/audit-events", params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        return [item["seq"] for item in response.json()["items"]]

    assert seqs() == [3, 2, 1]
    assert seqs(actor_user_id=caseworker.id) == [3, 2, 1]
    assert seqs(actor_user_id=admin.id) == [5, 4]  # the listings before this one
    assert seqs(resource_type="case", resource_id=first["id"]) == [3, 1]
    assert seqs(resource_type="case", resource_id=second["id"]) == [2]
    now = utcnow()
    assert seqs(since=(now + timedelta(minutes=1)).isoformat(), resource_type="case") == []
    assert seqs(until=(now - timedelta(minutes=5)).isoformat()) == []
    paged: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/audit-events", params=params, headers=admin_headers).json()
        paged += [item["seq"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Pages continue below the first page's top, whatever was appended meanwhile.
    assert paged == list(range(paged[0], 0, -1))
    naive = client.get(
        "/api/v1/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=admin_headers
    )
    assert naive.status_code == 422


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.COORDINATOR, Role.FUNDER])
def test_only_admins_read_audit_events(client: TestClient, world: World, role: Role) -> None:
    assert client.get("/api/v1/audit-events", headers=world.headers(role)).status_code == 403


# --- how an entry is worked out from the request ------------------------------------------------


def fake_request(method: str, path: str, params: dict[str, Any], **state: Any) -> Request:
    route = SimpleNamespace(path=path)
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "route": route,
        "path_params": params,
        "state": {"request_id": "fake-request-0001"} | state,
    }
    return Request(scope)


def test_a_page_that_does_several_transitions_records_which_one(db: Session) -> None:
    path = "/ui/placements/{placement_id}/{action}"
    service_audit.commit_with_entry(
        db, fake_request("POST", path, {"placement_id": 7, "action": "admit"})
    )
    service_audit.commit_with_entry(
        db, fake_request("POST", path, {"placement_id": 8, "action": "evil"})
    )
    assert brief(db) == [
        ("admit", "placement", "7", "ok", None),
        ("transition", "placement", "8", "ok", None),
    ]


def test_a_route_that_answers_a_refusal_itself_can_say_so(db: Session) -> None:
    request = fake_request("POST", "/ui/login", {})
    service_audit.set_outcome(request, "denied")
    service_audit.commit_with_entry(db, request)
    service_audit.commit_with_entry(db, request)  # once per request, however often it is asked
    assert brief(db) == [("login", "user", None, "denied", None)]
    with pytest.raises(ValueError, match="outcome"):
        service_audit.set_outcome(request, "fine")


class LostRace(Exception):
    sqlstate = "40001"  # serialization_failure, as psycopg reports it


def test_a_request_retried_after_its_commit_failed_still_gets_its_one_entry(
    client: TestClient, world: World, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service_audit.commit_with_entry
    attempts = {"n": 0}

    def lose_the_first_race(session: Session, request: Request) -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:
            service_audit._claim(request)  # the entry was claimed, then its commit failed
            raise OperationalError("COMMIT", {}, LostRace())
        real(session, request)

    monkeypatch.setattr(service_audit, "commit_with_entry", lose_the_first_race)
    case = create_case(client, world.headers(Role.CASEWORKER))
    assert attempts["n"] == 2
    assert brief(db) == [("create", "case", str(case["id"]), "ok", "caseworker")]


def test_created_grants_and_matching_runs_are_named_by_their_new_id(
    client: TestClient, world: World, db: Session
) -> None:
    shelter = world.shelter()
    funder_org = world.organization("funder")
    funder = world.headers(Role.FUNDER, org=funder_org)
    grant = client.post(
        "/api/v1/grants",
        json={
            "funder_organization_id": funder_org.id,
            "shelter_id": shelter.id,
            "start": "2026-01-01",
            "end": "2026-12-31",
            "amount": "1000.00",
            "currency": "KZT",
            "funded_beds": 2,
        },
        headers=funder,
    )
    assert grant.status_code == 201, grant.text
    run = client.post(
        "/api/v1/matching-runs", json={"dry_run": True}, headers=world.headers(Role.ADMIN)
    )
    assert run.status_code == 202, run.text
    created = [e for e in brief(db) if e[0] == "create"]
    assert created == [
        ("create", "grant", str(grant.json()["id"]), "ok", "funder"),
        ("create", "matching_run", str(run.json()["id"]), "ok", "admin"),
    ]


def _system_record(resource_id: int) -> audit.AuditRecord:
    return audit.AuditRecord(
        action="expire", resource_type="placement", resource_id=resource_id, actor_role="system"
    )


def test_deferred_entries_are_appended_at_commit_and_dropped_on_rollback(db: Session) -> None:
    before = audit.head(db)
    audit.defer(db, _system_record(1))
    assert audit.head(db) == before  # nothing written before the commit
    db.rollback()
    audit.defer(db, _system_record(2))
    # A savepoint rolled back inside the transaction does not drop what was deferred before it.
    with pytest.raises(RuntimeError), db.begin_nested():
        raise RuntimeError("the savepoint goes")
    db.commit()
    seq, _ = audit.head(db)
    assert seq == before[0] + 1  # record 1 went down with its transaction
    entry = db.get(AuditEvent, seq)
    assert entry is not None
    assert (entry.action, entry.resource_id, entry.actor_role, entry.actor_user_id) == (
        "expire",
        "2",
        "system",
        None,
    )
    assert audit.verify(db).ok
    with pytest.raises(ValueError, match="outcome"):
        audit.defer(db, audit.AuditRecord(action="expire", resource_type="x", outcome="maybe"))
