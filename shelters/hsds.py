"""The registry as Open Referral HSDS 3.1: one ``service`` per open shelter (SPEC §10).

Contract of :func:`export_services`: it takes a session, reads (never writes), and returns
``{"services": [...]}`` of plain JSON-ready dicts, one per shelter whose status is ``open``, in
shelter id order. Each is a residential rehabilitation service valid against HSDS 3.1
``compiled/service.json`` and carries:

- ``organization``: the shelter's organisation, nested (id, name, a description of its kind);
- ``service_at_locations``: one location of type ``physical`` whose name and description give
  the locality and region only. The shelter's ``address``, ``lat`` and ``lon`` are confidential
  (SPEC §3): they are not even selected (deferred with ``raiseload``), so no code path here
  can put them into the export;
- ``languages``: the shelter's ISO 639-1 codes, with an English name where we know it;
- ``attributes``: the shelter's catalogue services (:data:`shelters.catalogue.SERVICES`) as
  terms of our own taxonomy, described below; unknown codes are left out;
- ``minimum_age`` / ``maximum_age`` / ``eligibility_description``: derived from the admission
  rules of all the shelter's units (SPEC §4), ages as the statuses allow them (an ``adult``
  rule starts at the majority age), e.g. ``"Admits: adult women; children 0-17 with their
  guardian"``; left out when no unit has a rule that admits anybody;
- ``capacities``: one ``service_capacity`` per unit, in unit id order, with the unit "bed",
  ``available`` (the unit's free beds), ``maximum`` (its capacity) and ``updated`` (its
  ``confirmed_at``: when a coordinator last changed or confirmed the numbers, ISO 8601 UTC with
  milliseconds, as HSDS asks); a unit not confirmed within ``REFUGE_STALE_AFTER_HOURS`` ends its
  ``description`` with "Stale: not confirmed since …".

Nothing about any person is read or exported: counts of beds are the only trace of placements.

**Names.** HSDS 3.1 gives a service, organisation or location one ``name`` and no name per
language (its ``alternate_name`` is one more string, with no language). The export keeps the
fallback ``name`` of shelters and regions; the names per language (``names``, see
:mod:`shelters.names`) are not exported, so that a consumer never gets a language-less string
it cannot tell from the name. A consumer that wants them reads ``GET /api/v1/shelters``.

**Identifiers.** HSDS wants UUIDs. Every id is ``uuid5(NAMESPACE, "<table>/<our key>")``, e.g.
``service/12`` for shelter 12 and ``service_capacity/40`` for unit 40, so the same database
always exports the same ids and a consumer can diff two exports. ``NAMESPACE`` must never
change: changing it renames every object for every consumer.

**Taxonomy "Refuge shelter services".** A flat taxonomy (id ``taxonomy/refuge-services``,
version 1) whose terms are exactly the fixed catalogue of SPEC §3.1: term ``code`` is the
catalogue code (``medical_care``, ``legal_aid``, ...), term ``name`` its English label, term id
``taxonomy_term/<code>``. A shelter offering a service gets one ``attribute`` linking its HSDS
service (``link_entity`` ``service``) to that term. The catalogue is fixed, so term ids are
stable across exports and shelters.

Relationships are ``lazy="raise"``: the export costs two queries whatever the number of
shelters (shelters joined with organisation and region, then their units by ``selectinload``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer, selectinload

from shelters.catalogue import SERVICES
from shelters.models import Organization, Region, Shelter, Unit, utcnow

NAMESPACE = uuid.UUID("93723c32-4685-45d0-80f7-63a8715c3a81")
"""Namespace of every exported UUID. Never change it (see the module docstring)."""

DEFAULT_MAJORITY_AGE = 18
# A max_age of 120 means "no upper limit" (SPEC §4, placement.problem.MAX_AGE). Not imported:
# the export should not load the solver package and OR-Tools.
OPEN_ENDED_AGE = 120
BED = "bed"
TAXONOMY_NAME = "Refuge shelter services"

JsonDict = dict[str, Any]

ORGANIZATION_KINDS: dict[str, str] = {
    "ngo": "Non-governmental organisation",
    "state": "State agency",
    "international": "International organisation",
    "funder": "Funding organisation",
}

# English names of the ISO 639-1 codes a shelter in the region is likely to list; an unknown
# code is exported with its code only (HSDS makes the name optional).
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "az": "Azerbaijani",
    "de": "German",
    "en": "English",
    "fa": "Persian",
    "fr": "French",
    "hi": "Hindi",
    "kk": "Kazakh",
    "ko": "Korean",
    "ky": "Kyrgyz",
    "mn": "Mongolian",
    "ru": "Russian",
    "tg": "Tajik",
    "tk": "Turkmen",
    "tr": "Turkish",
    "ug": "Uyghur",
    "uk": "Ukrainian",
    "uz": "Uzbek",
    "zh": "Chinese",
}

_SEXES = ("female", "male", "other")
_MINOR_STATUSES = frozenset({"accompanied_child", "unaccompanied_minor"})
_STATUS_WORDS = {
    "adult": "adults",
    "accompanied_child": "children with their guardian",
    "unaccompanied_minor": "unaccompanied minors",
}
# Nouns by age group for one sex, and for all sexes at once.
_NOUNS: dict[str, dict[str, str]] = {
    "adult": {"female": "women", "male": "men", "other": "adults of other sex"},
    "minor": {"female": "girls", "male": "boys", "other": "children of other sex"},
    "mixed": {"female": "women and girls", "male": "men and boys", "other": "people of other sex"},
}
_EVERYBODY = {"adult": "adults", "minor": "children", "mixed": "people"}


def stable_id(table: str, key: object) -> str:
    """The UUID (version 5) of the object of HSDS ``table`` that our ``key`` identifies.

    The same ``(table, key)`` always gives the same UUID; different tables never collide.
    """
    return str(uuid.uuid5(NAMESPACE, f"{table}/{key}"))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _effective_ages(rule: Mapping[str, Any], majority_age: int) -> tuple[int, int] | None:
    """The ages a rule really admits, or None when it admits nobody.

    A status bounds the ages too: an ``adult`` rule admits nobody under ``majority_age``, and a
    rule for minors nobody from it on, whatever its ``min_age`` and ``max_age`` say.
    """
    statuses = set(rule["statuses"]) & _STATUS_WORDS.keys()
    if not statuses or not set(rule["sexes"]) & set(_SEXES):
        return None
    low, high = int(rule["min_age"]), int(rule["max_age"])
    if statuses == {"adult"}:
        low = max(low, majority_age)
    elif statuses <= _MINOR_STATUSES:
        high = min(high, majority_age - 1)
    return (low, high) if low <= high else None


def _rule_phrase(rule: Mapping[str, Any], low: int, high: int, majority_age: int) -> str:
    sexes = [s for s in _SEXES if s in rule["sexes"]]
    statuses = set(rule["statuses"]) & _STATUS_WORDS.keys()
    ages = f"{low}+" if high >= OPEN_ENDED_AGE else f"{low}-{high}"
    if statuses == {"adult"}:
        group = "adult"
    elif statuses <= _MINOR_STATUSES:
        group = "minor"
    else:
        group = "mixed"
    if len(sexes) == len(_SEXES):
        noun = _EVERYBODY[group]
    else:
        noun = " and ".join(_NOUNS[group][s] for s in sexes)
        if group == "adult" and sexes[0] != "other":
            noun = f"adult {noun}"
    if group == "adult":
        return noun if low == majority_age and high >= OPEN_ENDED_AGE else f"{noun} {ages}"
    if group == "minor":
        if statuses == {"unaccompanied_minor"}:
            return f"unaccompanied {noun} {ages}"
        if statuses == {"accompanied_child"}:
            return f"{noun} {ages} with their guardian"
        return f"{noun} {ages}, with or without a guardian"
    kinds = ", ".join(_STATUS_WORDS[s] for s in _STATUS_WORDS if s in statuses)
    return f"{noun} {ages} ({kinds})"


def describe_admission(
    rules: Iterable[Mapping[str, Any]], *, majority_age: int = DEFAULT_MAJORITY_AGE
) -> str:
    """A plain-English summary of admission rules (SPEC §4), each distinct phrase once.

    Args:
        rules: Admission rules ``{sexes, min_age, max_age, statuses}`` in the order to describe
            them. Ages are those a rule really admits: an ``adult`` rule starts at
            ``majority_age`` at the earliest, a rule for minors ends below it. Rules that admit
            nobody (no known sex or status, or no age left) are skipped.
        majority_age: Age from which a person is an adult; an adult rule from exactly this age
            with no upper limit (``max_age`` ≥ 120) is described without ages.

    Returns:
        ``"Admits: "`` followed by the phrases joined with ``"; "``, e.g. ``"Admits: adult
        women; children 0-17 with their guardian; unaccompanied girls 12-17"``; the empty string
        when no rule admits anybody.
    """
    phrases: list[str] = []
    for rule in rules:
        ages = _effective_ages(rule, majority_age)
        if ages is not None:
            phrase = _rule_phrase(rule, *ages, majority_age)
            if phrase not in phrases:
                phrases.append(phrase)
    return "Admits: " + "; ".join(phrases) if phrases else ""


def eligibility(
    rules: Sequence[Mapping[str, Any]], *, majority_age: int = DEFAULT_MAJORITY_AGE
) -> JsonDict:
    """HSDS eligibility fields of a service whose units admit by these rules.

    Returns:
        ``minimum_age`` (the lowest age any rule admits), ``maximum_age`` (the highest, 120
        standing for no limit) and ``eligibility_description`` (:func:`describe_admission`);
        an empty dict when no rule admits anybody, so that such a service claims no
        eligibility at all.
    """
    ranges = [ages for rule in rules if (ages := _effective_ages(rule, majority_age)) is not None]
    if not ranges:
        return {}
    return {
        "minimum_age": min(low for low, _ in ranges),
        "maximum_age": max(high for _, high in ranges),
        "eligibility_description": describe_admission(rules, majority_age=majority_age),
    }


def _taxonomy() -> JsonDict:
    return {
        "id": stable_id("taxonomy", "refuge-services"),
        "name": TAXONOMY_NAME,
        "description": (
            "The fixed catalogue of services a Refuge shelter may offer (Refuge SPEC §3.1); "
            "term codes are the catalogue codes."
        ),
        "version": "1",
    }


def _attribute(service_id: str, code: str) -> JsonDict:
    term_id = stable_id("taxonomy_term", code)
    taxonomy = _taxonomy()
    return {
        "id": stable_id("attribute", f"{service_id}/{code}"),
        "link_id": service_id,
        "link_entity": "service",
        "taxonomy_term_id": term_id,
        "label": SERVICES[code],
        "taxonomy_term": {
            "id": term_id,
            "code": code,
            "name": SERVICES[code],
            "description": f"The shelter offers {SERVICES[code].lower()} to the people it houses.",
            "taxonomy": TAXONOMY_NAME,
            "taxonomy_id": taxonomy["id"],
            "taxonomy_detail": taxonomy,
            "language": "en",
        },
    }


def _language(service_id: str, code: str) -> JsonDict:
    language: JsonDict = {
        "id": stable_id("language", f"{service_id}/{code}"),
        "service_id": service_id,
        "code": code,
    }
    if code in LANGUAGE_NAMES:
        language["name"] = LANGUAGE_NAMES[code]
    return language


def _organization(org: Organization) -> JsonDict:
    return {
        "id": stable_id("organization", org.id),
        "name": org.name,
        "description": ORGANIZATION_KINDS.get(org.kind, "Organisation") + " in the Refuge network.",
    }


def _service_at_location(shelter: Shelter, region: Region, service_id: str) -> JsonDict:
    location_id = stable_id("location", shelter.id)
    # Only the locality and the region: the address and coordinates are confidential.
    location: JsonDict = {
        "id": location_id,
        "location_type": "physical",
        "organization_id": stable_id("organization", shelter.organization_id),
        "name": f"{shelter.locality}, {region.name}",
        "description": (
            f"A shelter in {shelter.locality}, {region.name} (region code {region.code}). "
            "Its address is confidential and given only to the referring organisation once a "
            "placement is accepted."
        ),
    }
    if shelter.wheelchair_accessible:
        location["accessibility"] = [
            {
                "id": stable_id("accessibility", shelter.id),
                "location_id": location_id,
                "description": "Wheelchair accessible",
            }
        ]
    return {
        "id": stable_id("service_at_location", shelter.id),
        "service_id": service_id,
        "location_id": location_id,
        "location": location,
    }


def _capacity(
    unit: Unit, service_id: str, majority_age: int, stale_before: datetime | None
) -> JsonDict:
    admits = describe_admission(unit.admits, majority_age=majority_age)
    stale = stale_before is not None and unit.confirmed_at < stale_before
    flag = (
        f" Stale: not confirmed since {_timestamp(unit.confirmed_at)}; the numbers may be out of "
        "date."
        if stale
        else ""
    )
    return {
        "id": stable_id("service_capacity", unit.id),
        "service_id": service_id,
        "unit": {"id": stable_id("unit", BED), "name": BED},
        "available": unit.available,
        "maximum": unit.capacity,
        "description": f"Beds in unit {unit.name}." + (f" {admits}." if admits else "") + flag,
        # When a coordinator last said the numbers are true (shelters/freshness.py).
        "updated": _timestamp(unit.confirmed_at),
    }


def hsds_service(
    shelter: Shelter,
    organization: Organization,
    region: Region,
    units: Sequence[Unit],
    *,
    majority_age: int = DEFAULT_MAJORITY_AGE,
    stale_before: datetime | None = None,
) -> JsonDict:
    """One shelter as an HSDS 3.1 ``service`` (see the module docstring for the fields).

    A unit confirmed before ``stale_before`` says so in its capacity's description.

    Pure: reads only the arguments, and of the shelter never its address or coordinates.
    ``status`` is ``active``: callers pass open shelters only.
    """
    service_id = stable_id("service", shelter.id)
    languages = list(dict.fromkeys(shelter.languages))
    offered = set(shelter.services)
    modified = max([shelter.updated_at, *(unit.updated_at for unit in units)])
    return {
        "id": service_id,
        "organization_id": stable_id("organization", organization.id),
        "name": shelter.name,
        "description": (
            "Residential rehabilitation shelter for victims of human trafficking and "
            f"exploitation in {shelter.locality}, {region.name}."
        ),
        "status": "active",
        "application_process": (
            "By referral from a caseworker of the Refuge network; the shelter confirms each "
            "placement."
        ),
        **eligibility([rule for unit in units for rule in unit.admits], majority_age=majority_age),
        "last_modified": _timestamp(modified),
        "organization": _organization(organization),
        "service_at_locations": [_service_at_location(shelter, region, service_id)],
        "languages": [_language(service_id, code) for code in languages],
        "attributes": [_attribute(service_id, code) for code in SERVICES if code in offered],
        "capacities": [_capacity(unit, service_id, majority_age, stale_before) for unit in units],
    }


def export_services(
    session: Session,
    *,
    majority_age: int = DEFAULT_MAJORITY_AGE,
    stale_after_hours: float | None = None,
) -> dict[str, list[JsonDict]]:
    """Every open shelter as an HSDS 3.1 service: ``{"services": [...]}``, by shelter id.

    Two queries whatever the size of the network; nothing is written. Suspended and closed
    shelters are left out. See the module docstring for the full contract.
    """
    rows = session.execute(
        select(Shelter, Organization, Region)
        .join(Organization, Organization.id == Shelter.organization_id)
        .join(Region, Region.code == Shelter.region_code)
        .where(Shelter.status == "open")
        .options(
            defer(Shelter.address, raiseload=True),
            defer(Shelter.lat, raiseload=True),
            defer(Shelter.lon, raiseload=True),
            selectinload(Shelter.units),
        )
        .order_by(Shelter.id)
    ).all()
    stale_before = (
        None if stale_after_hours is None else utcnow() - timedelta(hours=stale_after_hours)
    )
    return {
        "services": [
            hsds_service(
                shelter,
                org,
                region,
                shelter.units,
                majority_age=majority_age,
                stale_before=stale_before,
            )
            for shelter, org, region in rows
        ]
    }
