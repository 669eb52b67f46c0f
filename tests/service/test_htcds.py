"""Coded case fields, and the HTCDS aggregate export that counts people the same way for all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shelters import htcds, retention
from shelters.identity import Role
from shelters.models import Case, Placement, PlacementRequest, Region, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN, create_case, create_request, match

MOTHER_TWO = [
    {"ref": "A", "sex": "female", "age": 31},
    {"ref": "B", "sex": "male", "age": 7, "guardian_ref": "A"},
    {"ref": "C", "sex": "female", "age": 12, "guardian_ref": "A"},
]


def _admitted(
    client: TestClient, caseworker: dict[str, str], coordinator: dict[str, str], **case: Any
) -> int:
    made = create_case(client, caseworker, MOTHER_TWO, **case)
    request = create_request(client, caseworker, made["id"])
    placement = match(client, caseworker, request["id"])["placement"]
    for action in ("accept", "admit"):
        done = client.post(f"/api/v1/placements/{placement['id']}/{action}", headers=coordinator)
        assert done.status_code == 200, done.text
    return int(made["id"])


@pytest.fixture
def shelter_staff(world: World) -> tuple[dict[str, str], dict[str, str]]:
    shelter = world.shelter()
    world.unit(shelter, capacity=40, admits=WOMEN_AND_CHILDREN)
    return world.headers(Role.CASEWORKER), world.headers(Role.COORDINATOR, shelters=[shelter])


def test_a_case_takes_coded_exploitation_and_referral_and_refuses_anything_else(
    client: TestClient, shelter_staff: tuple[dict[str, str], dict[str, str]]
) -> None:
    caseworker, _ = shelter_staff
    made = create_case(
        client, caseworker, exploitation_types=["labour", "sexual"], referral_source="hotline"
    )
    assert made["exploitation_types"] == ["labour", "sexual"]
    assert made["referral_source"] == "hotline"
    for wrong in ({"exploitation_types": ["trafficked"]}, {"referral_source": "a neighbour"}):
        body = {"members": [{"ref": "A", "sex": "female", "age": 30}]} | wrong
        refused = client.post("/api/v1/cases", json=body, headers=caseworker)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
    url = f"/api/v1/cases/{made['id']}"
    etag = client.get(url, headers=caseworker).headers["etag"]
    changed = client.patch(
        url, json={"referral_source": None}, headers=caseworker | {"If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["referral_source"] is None


def test_the_export_counts_each_person_once_a_year_in_every_table_and_hides_small_counts(
    client: TestClient,
    world: World,
    db: Session,
    shelter_staff: tuple[dict[str, str], dict[str, str]],
) -> None:
    caseworker, coordinator = shelter_staff
    year = utcnow().year
    labour = [
        _admitted(
            client, caseworker, coordinator, exploitation_types=["labour"], referral_source="police"
        )
        for _ in range(4)
    ]
    both = _admitted(
        client,
        caseworker,
        coordinator,
        exploitation_types=["labour", "sexual"],
        referral_source="ngo",
    )
    # k = 3 so that a small hand-made year has counts to show.
    found = htcds.export(db, year=year, k=3, majority_age=18)
    tables = {t.field: dict(t.rows) for t in found.tables}
    assert found.total == 15  # five families of three
    assert tables["age_band"]["0-8"] == 5
    assert tables["age_band"]["9-17"] == 5
    assert tables["age_band"]["30-38"] == 5
    assert tables["member_status"] == {
        "adult": 5,
        "accompanied_child": 10,
        "unaccompanied_minor": 0,
    }
    assert tables["sex"] == {"female": 10, "male": 5, "other": 0}
    # One person may count under several types: that table adds up to more than the total.
    assert tables["exploitation_type"]["labour"] == 15
    assert tables["exploitation_type"]["sexual"] == 3
    assert tables["referral_source"]["police"] == 12
    assert tables["referral_source"]["ngo"] == 3
    assert found.suppressed == []

    # A purged case keeps its people by status and sex; its ages and codes are gone.
    theirs = select(PlacementRequest.id).where(PlacementRequest.case_id == both)
    db.execute(
        update(Placement)
        .where(Placement.request_id.in_(theirs))
        .values(ended_at=utcnow() - timedelta(days=400), status="discharged")
    )
    db.execute(
        update(Case).where(Case.id == both).values(updated_at=utcnow() - timedelta(days=400))
    )
    retention.purge(db, older_than=timedelta(days=365))
    found = htcds.export(db, year=year, k=3, majority_age=18)
    tables = {t.field: dict(t.rows) for t in found.tables}
    purged = db.get(Case, both)
    assert purged is not None
    assert purged.purged_at is not None
    assert tables["age_band"]["unknown"] == 3
    assert tables["referral_source"]["not_recorded"] == 3
    assert tables["exploitation_type"]["sexual"] == 0
    assert tables["member_status"]["adult"] == 5
    assert found.total == 15

    # With k = 11 the counts of 1 to 10 are hidden, and so is what would give them away.
    protected = htcds.export(db, year=year, k=11, majority_age=18)
    rows = {(t.field, value): people for t in protected.tables for value, people in t.rows}
    assert all(p is None or p == 0 or p >= 11 for p in rows.values())
    assert {f"{f}:{v}" for (f, v), p in rows.items() if p is None} == set(protected.suppressed)
    assert protected.total == 15
    sexes = [rows[("sex", s)] for s in ("female", "male", "other")]
    assert sexes.count(None) != 1  # a single hidden cell would be the total minus the others
    assert len(labour) == 4


def test_only_admins_export_and_the_csv_says_how_it_was_protected(
    client: TestClient, world: World
) -> None:
    year = datetime.now(UTC).year
    path = "/api/v1/export/htcds-aggregates"
    for role in (Role.FUNDER, Role.COORDINATOR, Role.CASEWORKER):
        assert (
            client.get(path, params={"year": year}, headers=world.headers(role)).status_code == 403
        )
    admin = world.headers(Role.ADMIN)
    body = client.get(path, params={"year": year}, headers=admin).json()
    assert [t["field"] for t in body["tables"]] == list(htcds.FIELDS)
    assert body["disclosure"]["method"] == "linked-tables"
    table = client.get(path, params={"year": year}, headers=admin | {"Accept": "text/csv"}).text
    lines = table.splitlines()
    assert lines[0] == "field,value,people"
    assert lines[1].startswith("total,all,")
    assert "disclosure: linked-tables" in lines[-1]
    assert client.get(path, params={"year": 1999}, headers=admin).status_code == 422


def test_ages_fall_in_the_ctdc_bands() -> None:
    assert [htcds.age_band(a) for a in (0, 8, 9, 17, 18, 20, 29, 30, 47, 48, 90)] == [
        "0-8",
        "0-8",
        "9-17",
        "9-17",
        "18-20",
        "18-20",
        "27-29",
        "30-38",
        "39-47",
        "48+",
        "48+",
    ]
    assert htcds.age_band(None) == htcds.UNKNOWN


def _documented_tables() -> dict[str, list[str]]:
    """docs/htcds.md's "The tables": each exported field and the values it documents."""
    text = (Path(__file__).parents[2] / "docs" / "htcds.md").read_text(encoding="utf-8")
    section = text.split("## The tables", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        tables[cells[0].strip("`")] = re.findall(r"`([^`]+)`", cells[1])
    return tables


def test_the_export_has_exactly_the_fields_and_values_docs_htcds_defines(
    client: TestClient,
    world: World,
    db: Session,
    shelter_staff: tuple[dict[str, str], dict[str, str]],
) -> None:
    caseworker, coordinator = shelter_staff
    for _ in range(4):  # four families of three: every count 0 or at least k = 3
        _admitted(
            client, caseworker, coordinator, exploitation_types=["begging"], referral_source="self"
        )
    found = htcds.export(db, year=utcnow().year, k=3, majority_age=18)
    assert found.suppressed == []
    documented = _documented_tables()
    assert [t.field for t in found.tables] == list(documented) == list(htcds.FIELDS)
    regions = set(db.scalars(select(Region.code)))
    for table in found.tables:
        values = [value for value, _ in table.rows]
        if table.field == "region":  # "Kazakhstan's region codes, `unknown`"
            assert set(values) == regions | {"unknown"}
            assert documented["region"] == ["unknown"]
        else:
            assert values == documented[table.field], table.field
        if table.field != "exploitation_type":  # docs: every other table adds up to the total
            assert sum(p for _, p in table.rows if p is not None) == found.total, table.field
