"""The needs of a group to be placed, as the domain sees them (SPEC §4).

A profile carries no name, birth date, document, contact or address of anyone: members are
local labels with sex and age in whole years. A minor may carry the month in which they come of
age (``YYYY-MM``), so that a shelter whose unit admits no adults hears of it in time; never a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from shelters.catalogue import EXPLOITATION_TYPES, REFERRAL_SOURCES, SERVICES
from shelters.errors import InvalidInput

SEXES = ("female", "male", "other")
STATUSES = ("adult", "accompanied_child", "unaccompanied_minor")
MAX_AGE = 120
YEAR_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def month_index(year_month: str) -> int:
    """``YYYY-MM`` as a count of months, to compare and subtract."""
    year, month = year_month.split("-")
    return int(year) * 12 + int(month) - 1


@dataclass(frozen=True, slots=True)
class MemberProfile:
    ref: str
    sex: str
    age: int
    guardian_ref: str | None = None
    comes_of_age: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class CaseProfile:
    """What eligibility and matching need to know about a case."""

    members: tuple[MemberProfile, ...]
    required_services: tuple[str, ...] = ()
    desired_services: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    wheelchair: bool = False
    high_risk: bool = False
    excluded_regions: tuple[str, ...] = ()
    excluded_shelter_ids: tuple[int, ...] = ()
    current_region: str | None = None
    location: Location | None = field(default=None)
    # Counted, never matched on: see shelters/htcds.py.
    exploitation_types: tuple[str, ...] = ()
    referral_source: str | None = None


def validate_profile(
    profile: CaseProfile,
    *,
    majority_age: int,
    known_regions: set[str],
    today: date | None = None,
) -> None:
    """Refuse a profile that breaks a rule of SPEC §4 (``InvalidInput``, naming the rule).

    Members: at least one, refs unique, sexes known, ages 0-120, a ``guardian_ref`` names an
    adult member of the same case other than the member, who has no guardian of their own.
    Services come from the catalogue; regions are known.
    """
    if not profile.members:
        raise InvalidInput("a case needs at least one member")
    refs = [m.ref for m in profile.members]
    if len(set(refs)) != len(refs):
        raise InvalidInput("member refs must be unique within a case")
    by_ref = {m.ref: m for m in profile.members}
    for m in profile.members:
        if m.sex not in SEXES:
            raise InvalidInput(
                "member {ref}: sex must be one of {sexes}", ref=m.ref, sexes=", ".join(SEXES)
            )
        if not 0 <= m.age <= MAX_AGE:
            raise InvalidInput("member {ref}: age must be 0-{max_age}", ref=m.ref, max_age=MAX_AGE)
        if m.comes_of_age is not None:
            _check_coming_of_age(m, majority_age, today or _today())
        if m.guardian_ref is not None:
            guardian = by_ref.get(m.guardian_ref)
            if guardian is None or guardian.ref == m.ref:
                raise InvalidInput(
                    "member {ref}: guardian_ref must name another member of the case", ref=m.ref
                )
            if guardian.age < majority_age:
                raise InvalidInput("member {ref}: the guardian must be an adult member", ref=m.ref)
            if guardian.guardian_ref is not None:
                # A guardian in the group's own care cannot be someone's guardian: this also
                # refuses two adults naming each other (A↔B), which would leave no one in charge.
                raise InvalidInput(
                    "member {ref}: the guardian {guardian} has a guardian in the case "
                    "and cannot be a guardian",
                    ref=m.ref,
                    guardian=guardian.ref,
                )
    unknown_types = sorted(set(profile.exploitation_types) - set(EXPLOITATION_TYPES))
    if unknown_types:
        raise InvalidInput(
            "exploitation_types must be among {codes}", codes=", ".join(EXPLOITATION_TYPES)
        )
    if profile.referral_source is not None and profile.referral_source not in REFERRAL_SOURCES:
        raise InvalidInput(
            "referral_source must be one of {codes}", codes=", ".join(REFERRAL_SOURCES)
        )
    unknown_services = sorted(
        (set(profile.required_services) | set(profile.desired_services)) - set(SERVICES)
    )
    if unknown_services:
        raise InvalidInput("unknown services: {codes}", codes=", ".join(unknown_services))
    regions = set(profile.excluded_regions)
    if profile.current_region is not None:
        regions.add(profile.current_region)
    unknown_regions = sorted(regions - known_regions)
    if unknown_regions:
        raise InvalidInput("unknown regions: {codes}", codes=", ".join(unknown_regions))


def _check_coming_of_age(m: MemberProfile, majority_age: int, today: date) -> None:
    """A coming-of-age month belongs to a minor, lies ahead, and fits their age."""
    month = m.comes_of_age or ""
    if not YEAR_MONTH.match(month):
        raise InvalidInput("member {ref}: comes_of_age must be a month, YYYY-MM", ref=m.ref)
    if m.age >= majority_age:
        raise InvalidInput("member {ref}: only a minor comes of age", ref=m.ref)
    ahead = month_index(month) - (today.year * 12 + today.month - 1)
    # At 17 (majority 18) the birthday that makes them an adult is 0 to 12 months away.
    low, high = 12 * (majority_age - m.age - 1), 12 * (majority_age - m.age)
    if not low <= ahead <= high:
        raise InvalidInput(
            "member {ref}: at {age} a member comes of age {low} to {high} months from this month",
            ref=m.ref,
            age=m.age,
            low=low,
            high=high,
        )


def _today() -> date:
    from shelters.models import utcnow  # models needs nothing from here; imported late all the same

    return utcnow().date()
