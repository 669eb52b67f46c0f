"""Privacy checks that fail loudly (SPEC §9).

1. No table column and no OpenAPI field or parameter may be named like a personal identifier
   (a name, birth date, document or passport number, phone, e-mail, street address, ...),
   except the few listed in ALLOWED with the reason they are not about a person.
2. Canary strings sent in request bodies, query strings, paths and headers appear in no log
   line (of any logger) and in no audit entry.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, select
from sqlalchemy.orm import Session

from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.schema import metadata
from tests.conftest import PASSWORD, World

# Fragments of field names that suggest an attribute of a person. Matched against the name
# lower-cased with everything but letters removed ("date_of_birth" → "dateofbirth").
SUSPICIOUS = (
    "name",  # first_name, surname, full_name, nickname
    "birth",  # birth_date, date_of_birth, place_of_birth
    "passport",
    "document",  # document_number, identity_document
    "nationalid",
    "phone",  # phone, telephone, mobile_phone
    "mobile",
    "mail",  # email, e_mail, mail_address
    "street",
    "address",  # home_address, street_address
    "postcode",
    "postal",
    "zipcode",
    "contact",
    "nationality",
    "ethnic",
    "photo",
    "fingerprint",
)
# Short words that would match too much as fragments: compared as whole words instead.
SUSPICIOUS_WORDS = {"dob", "iin", "ssn", "zip", "tel", "fio"}

# Names that look personal but are not, each with why. Keyed (table or schema, field).
ALLOWED: dict[tuple[str, str], str] = {
    # Names of organisations, shelters, regions and bed units: places and bodies, not people.
    ("organizations", "name"): "an organisation's name",
    ("shelters", "name"): "a shelter's name",
    ("regions", "name"): "a region's name",
    ("units", "name"): "a bed unit's label inside a shelter",
    ("OrganizationIn", "name"): "an organisation's name",
    ("OrganizationOut", "name"): "an organisation's name",
    ("RegionIn", "name"): "a region's name",
    ("RegionOut", "name"): "a region's name",
    ("ShelterIn", "name"): "a shelter's name",
    ("ShelterOut", "name"): "a shelter's name",
    ("ShelterPatch", "name"): "a shelter's name",
    ("ShelterConfidentialOut", "name"): "a shelter's name",
    ("ShelterBedsOut", "name"): "a shelter's name",
    ("GrantRowOut", "shelter_name"): "a shelter's name",
    ("UnitIn", "name"): "a bed unit's label",
    ("UnitOut", "name"): "a bed unit's label",
    ("UnitPatch", "name"): "a bed unit's label",
    ("UnitBedsOut", "name"): "a bed unit's label",
    # The same names of regions and shelters per language (kk, ru, en).
    **{
        (owner, "names"): "a region's or shelter's name per language"
        for owner in (
            "regions",
            "shelters",
            "RegionIn",
            "RegionOut",
            "ShelterIn",
            "ShelterOut",
            "ShelterPatch",
            "ShelterConfidentialOut",
            "ShelterBedsOut",
        )
    },
    # The shelter's own confidential address (SPEC §3), never a person's.
    ("shelters", "address"): "the shelter's confidential address",
    ("ShelterIn", "address"): "the shelter's confidential address",
    ("ShelterPatch", "address"): "the shelter's confidential address",
    ("ShelterConfidentialOut", "address"): "the shelter's confidential address",
    # Staff login names (SPEC §2): members of staff, never the people being placed.
    ("users", "username"): "a staff login",
    ("login_throttle", "username"): "a staff login being throttled",
    ("UserIn", "username"): "a staff login",
    ("MeOut", "username"): "a staff login",
    ("Body_create_token_api_v1_auth_token_post", "username"): "OAuth2 password flow login",
}


def looks_personal(field: str) -> bool:
    compact = re.sub(r"[^a-z]", "", field.lower())
    words = set(re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", field).lower()))
    return any(part in compact for part in SUSPICIOUS) or bool(words & SUSPICIOUS_WORDS)


def offenders(fields: set[tuple[str, str]]) -> list[str]:
    return sorted(
        f"{owner}.{name}"
        for owner, name in fields
        if looks_personal(name) and (owner, name) not in ALLOWED
    )


def openapi_fields(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """Every property of every schema (nested too) and every parameter, with its owner."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any, owner: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    found.update((owner, name) for name in value)
                walk(value, owner)
        elif isinstance(node, list):
            for item in node:
                walk(item, owner)

    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        walk(schema, name)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            owner = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                found.add((owner, parameter["name"]))
            walk(operation.get("requestBody", {}), owner)
            walk(operation.get("responses", {}), owner)
    return found


def test_the_name_check_catches_personal_fields_and_spares_others() -> None:
    for bad in (
        "first_name",
        "lastName",
        "surname",
        "date_of_birth",
        "birthDate",
        "dob",
        "passport_no",
        "document_number",
        "phone",
        "mobile_number",
        "email",
        "e_mail",
        "street",
        "home_address",
        "iin",
        "zip",
    ):
        assert looks_personal(bad), bad
    for fine in ("region_code", "sex", "age", "guardian_ref", "member_ref", "locality", "code"):
        assert not looks_personal(fine), fine
    assert offenders({("cases", "full_name"), ("units", "name")}) == ["cases.full_name"]


def test_no_table_has_a_column_named_like_a_personal_identifier(connection: Connection) -> None:
    migrated = inspect(connection)
    columns = {
        (table, column["name"])
        for table in migrated.get_table_names()
        for column in migrated.get_columns(table)
    }
    modelled = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns}
    assert len(columns) > 50  # the walk really saw the schema
    assert offenders(columns | modelled) == []


def test_no_api_field_or_parameter_is_named_like_a_personal_identifier(app: FastAPI) -> None:
    fields = openapi_fields(app.openapi())
    assert len(fields) > 100
    assert offenders(fields) == []


def test_every_allowance_is_still_needed(connection: Connection, app: FastAPI) -> None:
    migrated = inspect(connection)
    seen = {(t, c["name"]) for t in migrated.get_table_names() for c in migrated.get_columns(t)}
    seen |= openapi_fields(app.openapi())
    assert sorted(f"{o}.{n}" for o, n in ALLOWED if (o, n) not in seen) == []


# --- canaries ---------------------------------------------------------------------------------

CLIENT_LOGGERS = ("httpx", "httpcore")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger, from DEBUG up, the access log included."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    saved = {}
    for logger in loggers:
        if isinstance(logger, logging.Logger):
            saved[logger] = (logger.level, logger.propagate, logger.disabled)
            logger.propagate = logger is not logging.getLogger() or logger.propagate
            logger.disabled = False
    with caplog.at_level(logging.DEBUG):
        for name in ("refuge.access", "refuge.errors", "refuge.audit", "refuge.app"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield caplog
    for logger, (level, propagate, disabled) in saved.items():
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


def test_canaries_in_bodies_queries_paths_and_headers_reach_no_log_and_no_audit_entry(
    client: TestClient, world: World, db: Session, all_logs: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    admin = world.user(Role.ADMIN)
    admin_h = world.headers_for(admin)
    caseworker = world.headers(Role.CASEWORKER)
    # Headers other than the request id, which is a correlation id echoed by design.
    noisy = {
        "User-Agent": canary,
        "Referer": f"https://example.invalid/{canary}",
        "X-Forwarded-For": canary,
        "Cookie": f"tracking={canary}",
        "Accept-Language": canary,
    }
    responses = [
        # bodies
        client.post(
            "/api/v1/organizations", json={"name": canary, "kind": "ngo"}, headers=admin_h | noisy
        ),
        client.post(
            "/api/v1/cases",
            json={"members": [{"ref": canary[:16], "sex": "female", "age": 30}]},
            headers=caseworker | noisy,
        ),
        client.post(
            "/api/v1/cases",
            json={"members": [{"ref": "A", "sex": canary, "age": 30}], canary: canary},
            headers=caseworker | noisy,
        ),
        client.post(
            "/api/v1/availability/check",
            json={"members": [{"ref": "A", "sex": "female", "age": 30}], "languages": [canary]},
            headers=caseworker,
        ),
        client.post(
            "/api/v1/users",
            json={"username": canary, "password": canary * 2, "role": "admin"},
            headers=admin_h,
        ),
        client.post("/api/v1/auth/token", data={"username": canary, "password": canary}),
        client.post(
            "/api/v1/auth/token", data={"username": admin.username, "password": canary + "x"}
        ),
        # query strings
        client.get(f"/api/v1/cases?code={canary}", headers=caseworker),
        client.get(f"/api/v1/cases?cursor={canary}", headers=caseworker),
        client.get(f"/api/v1/placements?status={canary}", headers=caseworker),
        client.get(f"/api/v1/audit-events?resource_type={canary}", headers=admin_h),
        # paths
        client.get(f"/api/v1/cases/{canary}", headers=caseworker),
        client.get(f"/api/v1/{canary}", headers=caseworker),
        # headers that carry credentials and conditions
        client.get("/api/v1/cases", headers={"Authorization": f"Bearer {canary}"}),
        client.get("/api/v1/cases", headers={"Authorization": f"Bearer rfg_{canary}_{canary}"}),
        client.patch(
            "/api/v1/cases/1", json={"wheelchair": True}, headers=caseworker | {"If-Match": canary}
        ),
        client.post(
            "/api/v1/cases",
            json={"members": [{"ref": "A", "sex": "female", "age": 30}]},
            headers=caseworker | {"Idempotency-Key": canary},
        ),
    ]
    statuses = [r.status_code for r in responses]
    assert 201 in statuses
    assert 401 in statuses
    assert 422 in statuses  # refusals are logged and audited too: they must not leak either
    # The test client's own request log (httpx) shows the URLs it sent: not the server's.
    records = [r for r in all_logs.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name == "refuge.access" for r in records)  # the capture really sees the log
    for record in records:
        assert canary not in record.getMessage(), record.name
        assert canary not in repr(record.__dict__), record.name
        if record.exc_info:
            assert canary not in logging.Formatter().formatException(record.exc_info)
    db.expire_all()
    entries = db.scalars(select(AuditEvent)).all()
    assert len(entries) >= 8
    for entry in entries:
        assert canary not in repr([getattr(entry, c.name) for c in AuditEvent.__table__.columns]), (
            entry.seq
        )
    assert not any(PASSWORD in r.getMessage() for r in records)
