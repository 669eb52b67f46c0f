"""Translation between the registry's rows and the solver's problem types.

The eligibility rules live once, in :mod:`placement.eligibility`; the registry reaches them
through the frozen problem types built here, never through a copy of the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from placement.problem import AdmissionRule, Member
from placement.problem import Location as ProblemLocation
from placement.problem import Request as ProblemRequest
from placement.problem import Shelter as ProblemShelter
from placement.problem import Unit as ProblemUnit
from shelters.models import Shelter, Unit
from shelters.profiles import CaseProfile

OPEN = "open"


def admission_rules(rules: Iterable[Mapping[str, Any]]) -> tuple[AdmissionRule, ...]:
    """Stored admission rules (JSON) as solver rules."""
    return _rules(tuple(_rule_key(rule) for rule in rules))


def _rule_key(rule: Mapping[str, Any]) -> tuple[tuple[str, ...], int, int, tuple[str, ...]]:
    return (
        tuple(rule["sexes"]),
        int(rule["min_age"]),
        int(rule["max_age"]),
        tuple(rule["statuses"]),
    )


@lru_cache(maxsize=4096)
def _rules(
    keys: tuple[tuple[tuple[str, ...], int, int, tuple[str, ...]], ...],
) -> tuple[AdmissionRule, ...]:
    # Units share a handful of rule shapes; building each frozen rule once per process saves
    # most of the time of turning a network into a problem.
    return tuple(
        AdmissionRule(sexes=sexes, min_age=low, max_age=high, statuses=statuses)
        for sexes, low, high, statuses in keys
    )


@lru_cache(maxsize=4096)
def _rules_of(stored: str) -> tuple[AdmissionRule, ...]:
    return admission_rules(orjson.loads(stored))


@lru_cache(maxsize=4096)
def _codes_of(stored: str) -> tuple[str, ...]:
    return tuple(sorted(orjson.loads(stored)))


def open_shelters_for_solver(session: Session) -> tuple[ProblemShelter, ...]:
    """Every open shelter with its units' current free beds, as the solver sees them.

    Called for every match: read as plain rows in two queries, with the JSON columns kept as
    text and parsed once per distinct value (units share a handful of rule shapes, shelters a
    handful of service lists), instead of loading ORM objects.
    """
    units: dict[int, list[ProblemUnit]] = {}
    unit_rows = session.execute(
        select(Unit.shelter_id, Unit.id, Unit.available, cast(Unit.admits, Text))
        .join(Shelter, Shelter.id == Unit.shelter_id)
        .where(Shelter.status == OPEN)
        .order_by(Unit.id)
    )
    for shelter_id, unit_id, available, admits in unit_rows:
        units.setdefault(shelter_id, []).append(
            ProblemUnit(id=str(unit_id), free_beds=max(available, 0), admits=_rules_of(admits))
        )
    shelter_rows = session.execute(
        select(
            Shelter.id,
            Shelter.region_code,
            Shelter.lat,
            Shelter.lon,
            Shelter.security_level,
            Shelter.wheelchair_accessible,
            cast(Shelter.services, Text),
            cast(Shelter.languages, Text),
        )
        .where(Shelter.status == OPEN)
        .order_by(Shelter.id)
    )
    return tuple(
        _problem_shelter(
            shelter_id,
            region,
            lat,
            lon,
            security_level,
            wheelchair,
            _codes_of(services),
            _codes_of(languages),
            OPEN,
            units.get(shelter_id, ()),
        )
        for shelter_id, region, lat, lon, security_level, wheelchair, services, languages in (
            shelter_rows
        )
    )


def shelter_for_solver(shelter: Shelter, units: Iterable[Unit]) -> ProblemShelter:
    """One shelter (ORM object) with its units' current free beds, as the solver sees it."""
    return _problem_shelter(
        shelter.id,
        shelter.region_code,
        shelter.lat,
        shelter.lon,
        shelter.security_level,
        shelter.wheelchair_accessible,
        tuple(sorted(shelter.services)),
        tuple(sorted(shelter.languages)),
        shelter.status,
        [
            ProblemUnit(
                id=str(unit.id),
                free_beds=max(unit.available, 0),
                admits=admission_rules(unit.admits),
            )
            for unit in sorted(units, key=lambda u: u.id)
        ],
    )


def _problem_shelter(
    shelter_id: int,
    region: str,
    lat: float | None,
    lon: float | None,
    security_level: str,
    wheelchair: bool,
    services: tuple[str, ...],
    languages: tuple[str, ...],
    status: str,
    units: Iterable[ProblemUnit],
) -> ProblemShelter:
    return ProblemShelter(
        id=str(shelter_id),
        region=region,
        location=ProblemLocation(lat=lat, lon=lon) if lat is not None and lon is not None else None,
        security_level="high" if security_level == "high" else "standard",
        wheelchair_accessible=wheelchair,
        services=services,
        languages=languages,
        units=tuple(units),
        status=status,
    )


def request_for_solver(
    profile: CaseProfile,
    *,
    request_id: str,
    priority: int,
    preferred_regions: Iterable[str] = (),
    separate_from: Iterable[str] = (),
    declined_shelter_ids: Iterable[int] = (),
    separated_shelter_ids: Iterable[int] = (),
) -> ProblemRequest:
    """A case profile as a solver request.

    Two exclusions come from outside the profile: ``declined_shelter_ids``, shelters that
    declined this request (reason ``declined_by_shelter``), and ``separated_shelter_ids``,
    shelters where a case this one must be kept apart from is held or housed (reason
    ``separated_case_housed``).
    """
    location = None
    if profile.location is not None:
        location = ProblemLocation(lat=profile.location.lat, lon=profile.location.lon)
    return ProblemRequest(
        id=request_id,
        priority=priority,
        members=tuple(
            Member(ref=m.ref, sex=m.sex, age=m.age, guardian_ref=m.guardian_ref)
            for m in profile.members
        ),
        required_services=tuple(sorted(profile.required_services)),
        desired_services=tuple(sorted(profile.desired_services)),
        languages=tuple(sorted(profile.languages)),
        wheelchair=profile.wheelchair,
        high_risk=profile.high_risk,
        excluded_regions=tuple(sorted(profile.excluded_regions)),
        # Sorted as text, as Problem.from_document sorts them: a stored problem then parses
        # back to the very problem that was solved (shelter 10 before shelter 9).
        excluded_shelters=_ids(profile.excluded_shelter_ids),
        declined_shelters=_ids(declined_shelter_ids),
        separated_shelters=_ids(separated_shelter_ids),
        preferred_regions=tuple(sorted(set(preferred_regions))),
        separate_from=tuple(sorted(set(separate_from))),
        current_region=profile.current_region,
        location=location,
    )


def _ids(ids: Iterable[int]) -> tuple[str, ...]:
    return tuple(sorted({str(i) for i in ids}))
