"""The HSDS 3.1 export: valid against the official schema, open shelters only, no secrets."""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from sqlalchemy import event
from sqlalchemy.orm import Session

from shelters import hsds
from shelters.catalogue import SERVICES
from shelters.models import Shelter, utcnow
from tests.conftest import World

SCHEMA_MISSING = "HSDS schemas not found beside the project (../shared/hsds-3.1)"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)

ADULT_WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
CHILDREN_WITH_GUARDIAN = {
    "sexes": ["female", "male", "other"],
    "min_age": 0,
    "max_age": 17,
    "statuses": ["accompanied_child"],
}
UNACCOMPANIED_GIRLS = {
    "sexes": ["female"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}


def hsds_folder() -> Path | None:
    """``../shared/hsds-3.1`` beside the project, else the nearest ``shared/hsds-3.1`` above."""
    here = Path(__file__).resolve()
    beside = here.parents[2].parent / "shared" / "hsds-3.1"
    for folder in (beside, *(ancestor / "shared" / "hsds-3.1" for ancestor in here.parents)):
        if (folder / "schema" / "compiled" / "service.json").is_file():
            return folder
    return None


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def _format_checker() -> FormatChecker:
    # jsonschema checks date-time only with an optional package we do not ship; check it here.
    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_rfc3339)
    return checker


@functools.cache
def _validator(path: Path) -> Validator:
    schema = json.loads(path.read_text())
    # The compiled schemas name no $schema; HSDS 3.1's OpenAPI document sets the 2020-12 dialect.
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    validator: Validator = cls(schema, format_checker=_format_checker())
    return validator


def hsds_validator(name: str) -> Validator:
    """A validator for ``compiled/<name>.json``, loaded once per run; skips when absent."""
    folder = hsds_folder()
    if folder is None:
        pytest.skip(SCHEMA_MISSING)
    return _validator(folder / "schema" / "compiled" / f"{name}.json")


def schema_errors(validator: Validator, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the schema, as ``path: message`` lines."""
    return sorted(
        "/".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(instance)
    )


@pytest.fixture(scope="module")
def service_schema() -> Validator:
    return hsds_validator("service")


@pytest.fixture(scope="module")
def organization_schema() -> Validator:
    return hsds_validator("organization")


def export(db: Session) -> list[dict[str, Any]]:
    return hsds.export_services(db)["services"]


def service_of(db: Session, shelter: Shelter) -> dict[str, Any]:
    wanted = hsds.stable_id("service", shelter.id)
    [service] = [s for s in export(db) if s["id"] == wanted]
    return service


def export_recording_sql(db: Session) -> tuple[list[dict[str, Any]], list[str]]:
    """The exported services and the SQL statements the export sent."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        services = export(db)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    return services, statements


def keys_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from keys_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys_in(inner)


def test_every_exported_service_is_valid_hsds(
    db: Session, world: World, service_schema: Validator, organization_schema: Validator
) -> None:
    org = world.organization("state")
    full = world.shelter(
        org, services=list(SERVICES), languages=["kk", "ru", "en"], wheelchair_accessible=True
    )
    world.unit(full, capacity=6, admits=[ADULT_WOMEN, CHILDREN_WITH_GUARDIAN])
    world.unit(full, capacity=3, occupied=1, held=1, admits=[UNACCOMPANIED_GIRLS])
    world.shelter(org, languages=["kk", "qq"])  # no units, a language we cannot name
    other = world.shelter(region_code=world.region("almaty", 43.2, 76.9).code)
    world.unit(other, capacity=2, out_of_service=2, admits=[])

    services = export(db)

    assert len(services) >= 3
    for service in services:
        assert schema_errors(service_schema, service) == [], service["name"]
        assert schema_errors(organization_schema, service["organization"]) == []


def test_the_schema_check_refuses_a_broken_service(
    db: Session, world: World, service_schema: Validator
) -> None:
    shelter = world.shelter()
    world.unit(shelter, admits=[ADULT_WOMEN])
    valid = service_of(db, shelter)
    assert schema_errors(service_schema, valid) == []

    not_uuid, no_name, bad_time = (copy.deepcopy(valid) for _ in range(3))
    not_uuid["id"] = str(shelter.id)
    del no_name["name"]
    bad_time["capacities"][0]["updated"] = "last Tuesday"

    assert schema_errors(service_schema, not_uuid) == [f"id: '{shelter.id}' is not a 'uuid'"]
    assert schema_errors(service_schema, no_name) == [": 'name' is a required property"]
    assert schema_errors(service_schema, bad_time) == [
        "capacities/0/updated: 'last Tuesday' is not a 'date-time'"
    ]


def test_only_open_shelters_are_exported(db: Session, world: World) -> None:
    shelters = {status: world.shelter(status=status) for status in ("open", "suspended", "closed")}

    ids = {service["id"] for service in export(db)}

    assert hsds.stable_id("service", shelters["open"].id) in ids
    assert hsds.stable_id("service", shelters["suspended"].id) not in ids
    assert hsds.stable_id("service", shelters["closed"].id) not in ids
    assert service_of(db, shelters["open"])["status"] == "active"


def test_the_address_and_coordinates_never_appear(db: Session, world: World) -> None:
    address = "17 Synthetic Street, flat 4"
    shelter = world.shelter(address=address, lat=43.2567891, lon=76.9286543, locality="Esik")
    world.unit(shelter, admits=[ADULT_WOMEN])

    text = json.dumps(hsds.export_services(db))
    service = service_of(db, shelter)

    assert address not in text
    assert "Synthetic Street" not in text
    assert "43.2567891" not in text
    assert "76.9286543" not in text
    assert {"latitude", "longitude", "addresses"}.isdisjoint(keys_in(service))
    [at_location] = service["service_at_locations"]
    assert at_location["location"]["name"] == "Esik, Astana"
    assert "astana" in at_location["location"]["description"]


def test_the_export_does_not_even_select_the_confidential_columns(
    db: Session, world: World
) -> None:
    world.unit(world.shelter(address="17 Synthetic Street"))
    db.flush()

    services, statements = export_recording_sql(db)

    assert services
    selected = " ".join(statements)
    assert "shelters.locality" in selected
    assert re.findall(r"shelters\.(?:address|lat|lon)\b", selected) == []


def test_capacities_are_the_units_free_and_total_beds(db: Session, world: World) -> None:
    shelter = world.shelter()
    stamp = datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    busy = world.unit(
        shelter,
        capacity=10,
        out_of_service=1,
        external_occupied=2,
        occupied=3,
        held=1,
        updated_at=stamp,
        confirmed_at=stamp,
        admits=[ADULT_WOMEN],
    )
    empty = world.unit(shelter, capacity=4)

    capacities = service_of(db, shelter)["capacities"]

    assert [(c["available"], c["maximum"]) for c in capacities] == [
        (10 - 1 - 2 - 3 - 1, 10),
        (4, 4),
    ]
    assert [c["available"] for c in capacities] == [busy.available, empty.available]
    assert {c["unit"]["name"] for c in capacities} == {"bed"}
    assert capacities[0]["unit"]["id"] == capacities[1]["unit"]["id"]
    assert capacities[0]["id"] != capacities[1]["id"]
    assert capacities[0]["updated"] == "2025-03-04T05:06:07.891+00:00"
    assert datetime.fromisoformat(capacities[1]["updated"]) == empty.confirmed_at.replace(
        microsecond=empty.confirmed_at.microsecond // 1000 * 1000
    )
    assert capacities[0]["description"] == f"Beds in unit {busy.name}. Admits: adult women."


def test_a_stale_unit_says_so_and_the_export_stays_valid(
    db: Session, world: World, service_schema: Validator
) -> None:
    shelter = world.shelter()
    old = world.unit(shelter, capacity=3, confirmed_at=utcnow() - timedelta(hours=30))
    fresh = world.unit(shelter, capacity=3)
    services = hsds.export_services(db, stale_after_hours=24)["services"]
    [service] = [s for s in services if s["name"] == shelter.name]
    by_unit = {c["description"].split(".")[0]: c for c in service["capacities"]}
    stale_text = by_unit[f"Beds in unit {old.name}"]["description"]
    assert "Stale: not confirmed since " in stale_text
    assert "Stale" not in by_unit[f"Beds in unit {fresh.name}"]["description"]
    # Without a threshold nothing is flagged (the pure function's default).
    again = hsds.export_services(db)["services"]
    assert "Stale" not in json.dumps(again)
    assert schema_errors(service_schema, service) == []


def test_attributes_are_the_shelters_catalogue_services(db: Session, world: World) -> None:
    first = world.shelter(services=["legal_aid", "medical_care"])
    second = world.shelter(services=["legal_aid"])
    bare = world.shelter(services=[])

    attributes = service_of(db, first)["attributes"]

    assert [a["taxonomy_term"]["code"] for a in attributes] == ["medical_care", "legal_aid"]
    assert [a["taxonomy_term"]["name"] for a in attributes] == ["Medical care", "Legal aid"]
    assert {a["link_id"] for a in attributes} == {hsds.stable_id("service", first.id)}
    assert {a["taxonomy_term"]["taxonomy"] for a in attributes} == {hsds.TAXONOMY_NAME}
    [legal_aid_elsewhere] = service_of(db, second)["attributes"]
    assert legal_aid_elsewhere["taxonomy_term_id"] == attributes[1]["taxonomy_term_id"]
    assert legal_aid_elsewhere["id"] != attributes[1]["id"]
    assert service_of(db, bare)["attributes"] == []


def test_languages_carry_code_and_name(db: Session, world: World) -> None:
    shelter = world.shelter(languages=["kk", "ru", "qq"])

    languages = service_of(db, shelter)["languages"]

    assert [(lang["code"], lang.get("name")) for lang in languages] == [
        ("kk", "Kazakh"),
        ("ru", "Russian"),
        ("qq", None),
    ]


def test_eligibility_derives_from_the_units_admission_rules(db: Session, world: World) -> None:
    family = world.shelter()
    world.unit(family, admits=[ADULT_WOMEN, CHILDREN_WITH_GUARDIAN])
    world.unit(family, admits=[UNACCOMPANIED_GIRLS, ADULT_WOMEN])
    men = world.shelter()
    world.unit(
        men, admits=[{"sexes": ["male"], "min_age": 25, "max_age": 60, "statuses": ["adult"]}]
    )

    family_service = service_of(db, family)
    men_service = service_of(db, men)

    assert (family_service["minimum_age"], family_service["maximum_age"]) == (0, 120)
    assert family_service["eligibility_description"] == (
        "Admits: adult women; children 0-17 with their guardian; unaccompanied girls 12-17"
    )
    assert (men_service["minimum_age"], men_service["maximum_age"]) == (25, 60)
    assert men_service["eligibility_description"] == "Admits: adult men 25-60"


def test_eligible_ages_are_those_the_statuses_allow() -> None:
    rules = [
        {**ADULT_WOMEN, "min_age": 0},
        {**UNACCOMPANIED_GIRLS, "min_age": 14, "max_age": 30},
    ]

    fields = hsds.eligibility(rules, majority_age=18)

    assert (fields["minimum_age"], fields["maximum_age"]) == (14, 120)
    assert fields["eligibility_description"] == "Admits: adult women; unaccompanied girls 14-17"


def test_a_shelter_whose_units_admit_nobody_claims_no_eligibility(
    db: Session, world: World
) -> None:
    shelter = world.shelter()
    world.unit(shelter, admits=[])
    world.unit(shelter, admits=[{"sexes": [], "min_age": 0, "max_age": 17, "statuses": ["adult"]}])

    service = service_of(db, shelter)

    assert {"minimum_age", "maximum_age", "eligibility_description"}.isdisjoint(service)
    assert len(service["capacities"]) == 2


@pytest.mark.parametrize(
    ("rules", "majority_age", "expected"),
    [
        ([ADULT_WOMEN, ADULT_WOMEN], 18, "Admits: adult women"),
        ([{**ADULT_WOMEN, "min_age": 60}], 18, "Admits: adult women 60+"),
        ([{**ADULT_WOMEN, "min_age": 16}], 18, "Admits: adult women"),
        ([ADULT_WOMEN], 16, "Admits: adult women 18+"),
        (
            [{**CHILDREN_WITH_GUARDIAN, "max_age": 20}],
            18,
            "Admits: children 0-17 with their guardian",
        ),
        ([{**UNACCOMPANIED_GIRLS, "min_age": 18}], 18, ""),
        ([{**ADULT_WOMEN, "statuses": ["retired"]}], 18, ""),
        (
            [{**ADULT_WOMEN, "sexes": ["male", "other"]}],
            18,
            "Admits: adult men and adults of other sex",
        ),
        ([{**ADULT_WOMEN, "sexes": ["other", "male", "female"]}], 18, "Admits: adults"),
        (
            [{**CHILDREN_WITH_GUARDIAN, "min_age": 6, "statuses": ["unaccompanied_minor"]}],
            18,
            "Admits: unaccompanied children 6-17",
        ),
        (
            [{**UNACCOMPANIED_GIRLS, "statuses": ["unaccompanied_minor", "accompanied_child"]}],
            18,
            "Admits: girls 12-17, with or without a guardian",
        ),
        (
            [
                {
                    "sexes": ["female"],
                    "min_age": 16,
                    "max_age": 24,
                    "statuses": ["adult", "unaccompanied_minor"],
                }
            ],
            18,
            "Admits: women and girls 16-24 (adults, unaccompanied minors)",
        ),
        ([{**ADULT_WOMEN, "min_age": 30, "max_age": 20}], 18, ""),
        ([{**ADULT_WOMEN, "statuses": []}], 18, ""),
        ([], 18, ""),
    ],
)
def test_admission_rules_read_as_plain_english(
    rules: list[dict[str, Any]], majority_age: int, expected: str
) -> None:
    assert hsds.describe_admission(rules, majority_age=majority_age) == expected


def test_the_export_is_reproducible_with_uuid5_ids(db: Session, world: World) -> None:
    org = world.organization()
    for _ in range(3):
        shelter = world.shelter(org, services=["legal_aid"])
        world.unit(shelter)

    first, second = hsds.export_services(db), hsds.export_services(db)

    assert first == second
    service_ids = [service["id"] for service in first["services"]]
    assert len(set(service_ids)) == len(service_ids)
    assert {uuid.UUID(i).version for i in service_ids} == {5}
    assert hsds.stable_id("service", 1) != hsds.stable_id("organization", 1)


def test_the_export_costs_two_queries_whatever_the_number_of_shelters(
    db: Session, world: World
) -> None:
    def count_selects() -> int:
        services, statements = export_recording_sql(db)
        assert services
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    world.unit(world.shelter())
    db.flush()
    small = count_selects()
    for _ in range(4):
        shelter = world.shelter(services=["education"])
        world.unit(shelter)
        world.unit(shelter)
    db.flush()
    db.expunge_all()  # a cold identity map: everything is loaded by the export itself

    assert count_selects() == small == 2
