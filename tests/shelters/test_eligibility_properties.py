"""Property tests of eligibility as the registry uses it (shelters.bridge → placement rules).

The oracle here is written independently of the implementation, from SPEC §4's words.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from placement.eligibility import assign_beds, eligibility_reasons
from shelters.bridge import request_for_solver, shelter_for_solver
from shelters.catalogue import SERVICES
from shelters.models import Shelter, Unit
from shelters.profiles import CaseProfile, MemberProfile

MAJORITY = 18
SEXES = ["female", "male", "other"]
STATUSES = ["adult", "accompanied_child", "unaccompanied_minor"]
CODE = re.compile(
    r"^(shelter_not_open|region_excluded|shelter_excluded|missing_service:[a-z_]+|"
    r"not_wheelchair_accessible|security_level_too_low|member_not_admitted:\w+|"
    r"guardian_unit_mismatch:\w+)$"
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 60))
    return {
        "sexes": draw(st.lists(st.sampled_from(SEXES), min_size=1, max_size=3, unique=True)),
        "min_age": low,
        "max_age": draw(st.integers(low, 120)),
        "statuses": draw(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3, unique=True)),
    }


@st.composite
def shelters(draw: st.DrawFn) -> tuple[Shelter, list[Unit]]:
    shelter = Shelter(
        id=draw(st.integers(1, 5)),
        region_code=draw(st.sampled_from(["north", "south"])),
        lat=None,
        lon=None,
        security_level=draw(st.sampled_from(["standard", "high"])),
        wheelchair_accessible=draw(st.booleans()),
        services=draw(st.lists(st.sampled_from(list(SERVICES)), max_size=4, unique=True)),
        languages=["kk"],
        status=draw(st.sampled_from(["open", "open", "suspended", "closed"])),
    )
    units = [
        Unit(
            id=i + 1,
            shelter_id=shelter.id,
            capacity=draw(st.integers(0, 6)),
            out_of_service=0,
            external_occupied=0,
            occupied=0,
            held=0,
            admits=draw(st.lists(rules(), min_size=1, max_size=3)),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    return shelter, units


@st.composite
def profiles(draw: st.DrawFn) -> CaseProfile:
    count = draw(st.integers(1, 4))
    refs = [chr(ord("A") + i) for i in range(count)]
    members = []
    for i, ref in enumerate(refs):
        age = draw(st.integers(0, 90))
        guardian = draw(st.one_of(st.none(), st.sampled_from(refs[:i] or [None])))
        members.append(
            MemberProfile(ref=ref, sex=draw(st.sampled_from(SEXES)), age=age, guardian_ref=guardian)
        )
    return CaseProfile(
        members=tuple(members),
        required_services=tuple(
            draw(st.lists(st.sampled_from(list(SERVICES)), max_size=2, unique=True))
        ),
        wheelchair=draw(st.booleans()),
        high_risk=draw(st.booleans()),
        excluded_regions=tuple(draw(st.lists(st.sampled_from(["north", "south"]), max_size=1))),
        excluded_shelter_ids=tuple(draw(st.lists(st.integers(1, 5), max_size=1))),
    )


def status_of(member: MemberProfile, profile: CaseProfile) -> str:
    if member.age >= MAJORITY:
        return "adult"
    guardian = next((m for m in profile.members if m.ref == member.guardian_ref), None)
    if guardian is not None and guardian.age >= MAJORITY:
        return "accompanied_child"
    return "unaccompanied_minor"


def admits(unit: Unit, member: MemberProfile, status: str) -> bool:
    return any(
        member.sex in r["sexes"]
        and r["min_age"] <= member.age <= r["max_age"]
        and status in r["statuses"]
        for r in unit.admits
    )


@settings(max_examples=300, deadline=None)
@given(profiles(), shelters())
def test_reasons_are_sorted_known_codes_and_match_the_oracle(
    profile: CaseProfile, shelter_units: tuple[Shelter, list[Unit]]
) -> None:
    shelter, units = shelter_units
    request = request_for_solver(profile, request_id="r", priority=3)
    reasons = eligibility_reasons(request, shelter_for_solver(shelter, units), MAJORITY)
    assert reasons == sorted(reasons)
    assert all(CODE.match(r) for r in reasons), reasons
    assert ("shelter_not_open" in reasons) == (shelter.status != "open")
    assert ("region_excluded" in reasons) == (shelter.region_code in profile.excluded_regions)
    assert ("shelter_excluded" in reasons) == (shelter.id in profile.excluded_shelter_ids)
    assert ("not_wheelchair_accessible" in reasons) == (
        profile.wheelchair and not shelter.wheelchair_accessible
    )
    assert ("security_level_too_low" in reasons) == (
        profile.high_risk and shelter.security_level != "high"
    )
    missing = {
        f"missing_service:{s}" for s in profile.required_services if s not in shelter.services
    }
    assert {r for r in reasons if r.startswith("missing_service:")} == missing
    for member in profile.members:
        admitted = any(admits(u, member, status_of(member, profile)) for u in units)
        assert (f"member_not_admitted:{member.ref}" in reasons) == (not admitted)


@settings(max_examples=300, deadline=None)
@given(profiles(), shelters())
def test_when_eligible_and_roomy_every_member_gets_an_admitting_bed_beside_the_guardian(
    profile: CaseProfile, shelter_units: tuple[Shelter, list[Unit]]
) -> None:
    shelter, units = shelter_units
    for unit in units:
        unit.capacity = len(profile.members) * 3
    request = request_for_solver(profile, request_id="r", priority=3)
    candidate = shelter_for_solver(shelter, units)
    if eligibility_reasons(request, candidate, MAJORITY):
        return
    free = {u.id: u.free_beds for u in candidate.units}
    beds = assign_beds(request, candidate, free, MAJORITY)
    assert beds is not None
    assert sorted(beds) == sorted(m.ref for m in profile.members)
    by_id = {str(u.id): u for u in units}
    for member in profile.members:
        status = status_of(member, profile)
        assert admits(by_id[beds[member.ref]], member, status)
        if status == "accompanied_child":
            assert beds[member.ref] == beds[member.guardian_ref]  # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(profiles(), shelters())
def test_beds_never_exceed_what_is_free(
    profile: CaseProfile, shelter_units: tuple[Shelter, list[Unit]]
) -> None:
    shelter, units = shelter_units
    candidate = shelter_for_solver(shelter, units)
    request = request_for_solver(profile, request_id="r", priority=3)
    free = {u.id: u.free_beds for u in candidate.units}
    beds = assign_beds(request, candidate, free, MAJORITY)
    if beds is None:
        return
    for unit_id, capacity in free.items():
        assert sum(1 for u in beds.values() if u == unit_id) <= capacity
