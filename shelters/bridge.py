"""Translation between the registry's rows and the solver's problem types.

The eligibility rules live once, in :mod:`placement.eligibility`; the registry reaches them
through the frozen problem types built here, never through a copy of the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from placement.problem import AdmissionRule, Member
from placement.problem import Location as ProblemLocation
from placement.problem import Request as ProblemRequest
from placement.problem import Shelter as ProblemShelter
from placement.problem import Unit as ProblemUnit
from shelters.models import Shelter, Unit
from shelters.profiles import CaseProfile


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


def shelter_for_solver(shelter: Shelter, units: Iterable[Unit]) -> ProblemShelter:
    """A shelter with its units' current free beds, as the solver sees it."""
    location = None
    if shelter.lat is not None and shelter.lon is not None:
        location = ProblemLocation(lat=shelter.lat, lon=shelter.lon)
    return ProblemShelter(
        id=str(shelter.id),
        region=shelter.region_code,
        location=location,
        security_level="high" if shelter.security_level == "high" else "standard",
        wheelchair_accessible=shelter.wheelchair_accessible,
        services=tuple(sorted(shelter.services)),
        languages=tuple(sorted(shelter.languages)),
        units=tuple(
            ProblemUnit(
                id=str(unit.id),
                free_beds=max(unit.available, 0),
                admits=admission_rules(unit.admits),
            )
            for unit in sorted(units, key=lambda u: u.id)
        ),
        status=shelter.status,
    )


def request_for_solver(
    profile: CaseProfile,
    *,
    request_id: str,
    priority: int,
    preferred_regions: Iterable[str] = (),
    separate_from: Iterable[str] = (),
    also_excluded_shelter_ids: Iterable[int] = (),
) -> ProblemRequest:
    """A case profile as a solver request.

    ``also_excluded_shelter_ids`` adds shelters the group may not go to for reasons outside
    its profile (a case it must be kept apart from is housed there).
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
        excluded_shelters=tuple(
            str(i)
            for i in sorted(set(profile.excluded_shelter_ids) | set(also_excluded_shelter_ids))
        ),
        preferred_regions=tuple(sorted(set(preferred_regions))),
        separate_from=tuple(sorted(set(separate_from))),
        current_region=profile.current_region,
        location=location,
    )
