"""SPEC §4 eligibility: statuses, admission rules, reason codes and bed assignment."""

from __future__ import annotations

from hypothesis import given, settings

from placement import (
    AdmissionRule,
    Member,
    Problem,
    Request,
    Shelter,
    Unit,
    assign_beds,
    eligibility_reasons,
    member_status,
    rule_admits,
)
from tests.placement.strategies import problem_docs

ADULT_WOMEN = AdmissionRule(("female",), 18, 120, ("adult",))
CHILDREN = AdmissionRule(("female", "male", "other"), 0, 12, ("accompanied_child",))
MINORS = AdmissionRule(("female", "male", "other"), 6, 17, ("unaccompanied_minor",))

MOTHER = Member("A", "female", 30, None)
SON = Member("B", "male", 5, "A")


def shelter(*units: Unit, **extra: object) -> Shelter:
    fields: dict[str, object] = {
        "id": "s1",
        "region": "north",
        "location": None,
        "security_level": "standard",
        "wheelchair_accessible": False,
        "services": (),
        "languages": (),
        "units": units,
    }
    fields.update(extra)
    return Shelter(**fields)  # type: ignore[arg-type]


def request(*members: Member, **extra: object) -> Request:
    return Request(id="r1", priority=3, members=members, **extra)  # type: ignore[arg-type]


def test_statuses_follow_the_majority_age_and_the_guardian() -> None:
    orphan = Member("C", "female", 10, None)
    with_minor_guardian = Member("D", "male", 4, "C")
    group = (MOTHER, SON, orphan, with_minor_guardian)
    assert member_status(MOTHER, group, 18) == "adult"
    assert member_status(SON, group, 18) == "accompanied_child"
    assert member_status(orphan, group, 18) == "unaccompanied_minor"
    assert member_status(with_minor_guardian, group, 18) == "unaccompanied_minor"
    assert member_status(MOTHER, group, 31) == "unaccompanied_minor"


def test_a_rule_matches_sex_age_bounds_and_status() -> None:
    assert rule_admits(CHILDREN, "male", 12, "accompanied_child")
    assert rule_admits(CHILDREN, "male", 0, "accompanied_child")
    assert not rule_admits(CHILDREN, "male", 13, "accompanied_child")
    assert not rule_admits(CHILDREN, "male", 5, "unaccompanied_minor")
    assert not rule_admits(ADULT_WOMEN, "male", 30, "adult")


def test_a_mother_and_son_fit_a_women_and_children_unit() -> None:
    s = shelter(Unit("w", 2, (ADULT_WOMEN, CHILDREN)))
    q = request(MOTHER, SON)
    assert eligibility_reasons(q, s, 18) == []
    assert assign_beds(q, s, {"w": 2}, 18) == {"A": "w", "B": "w"}
    assert assign_beds(q, s, {"w": 1}, 18) is None
    assert assign_beds(q, s, {}, 18) is None


def test_a_child_whose_unit_differs_from_the_mothers_is_a_guardian_mismatch() -> None:
    s = shelter(Unit("w", 5, (ADULT_WOMEN,)), Unit("k", 5, (CHILDREN,)))
    assert eligibility_reasons(request(MOTHER, SON), s, 18) == ["guardian_unit_mismatch:B"]


def test_every_shelter_level_code_is_reported_sorted() -> None:
    s = shelter(Unit("w", 5, (ADULT_WOMEN,)), status="suspended", region="south")
    q = request(
        MOTHER,
        Member("C", "male", 40, None),
        required_services=("legal_aid", "education"),
        wheelchair=True,
        high_risk=True,
        excluded_regions=("south",),
        excluded_shelters=("s1",),
    )
    assert eligibility_reasons(q, s, 18) == [
        "member_not_admitted:C",
        "missing_service:education",
        "missing_service:legal_aid",
        "not_wheelchair_accessible",
        "region_excluded",
        "security_level_too_low",
        "shelter_excluded",
        "shelter_not_open",
    ]


def test_unaccompanied_minors_have_nowhere_without_a_minors_unit() -> None:
    girl = Member("A", "female", 14, None)
    s = shelter(Unit("w", 5, (ADULT_WOMEN, CHILDREN)))
    assert eligibility_reasons(request(girl), s, 18) == ["member_not_admitted:A"]
    s2 = shelter(Unit("m", 5, (MINORS,)))
    assert eligibility_reasons(request(girl), s2, 18) == []


def test_beds_are_spread_over_units_when_one_unit_is_too_small() -> None:
    sisters = (Member("A", "female", 20, None), Member("B", "female", 22, None))
    s = shelter(Unit("u1", 1, (ADULT_WOMEN,)), Unit("u2", 1, (ADULT_WOMEN,)))
    assert assign_beds(request(*sisters), s, {"u1": 1, "u2": 1}, 18) == {"A": "u1", "B": "u2"}


@settings(max_examples=80, deadline=None)
@given(problem_docs())
def test_eligible_exactly_when_beds_exist_for_an_unlimited_capacity(doc: dict[str, object]) -> None:
    problem = Problem.from_document(doc)
    for q in problem.requests:
        for s in problem.shelters:
            member_codes = [
                c
                for c in eligibility_reasons(q, s, problem.majority_age)
                if c.startswith(("member_not_admitted", "guardian_unit_mismatch"))
            ]
            unlimited = {u.id: 1000 for u in s.units}
            beds = assign_beds(q, s, unlimited, problem.majority_age)
            assert (beds is not None) == (member_codes == [])
            if beds is not None:
                assert list(beds) == [m.ref for m in q.members]


def test_a_shelter_that_declined_or_houses_a_separated_case_says_so() -> None:
    s = shelter(Unit("w", 5, (ADULT_WOMEN, CHILDREN)))
    assert eligibility_reasons(request(MOTHER, SON, declined_shelters=("s1",)), s, 18) == [
        "declined_by_shelter"
    ]
    assert eligibility_reasons(request(MOTHER, SON, separated_shelters=("s1",)), s, 18) == [
        "separated_case_housed"
    ]
    elsewhere = request(MOTHER, SON, declined_shelters=("s2",), separated_shelters=("s3",))
    assert eligibility_reasons(elsewhere, s, 18) == []


@settings(max_examples=150, deadline=None)
@given(problem_docs(max_requests=6, max_shelters=4))
def test_member_codes_and_block_candidates_equal_their_plain_definition(
    doc: dict[str, object],
) -> None:
    from placement.eligibility import bed_blocks, block_candidates, member_reasons, unit_admits

    problem = Problem.from_document(doc)
    age = problem.majority_age
    for q in problem.requests:
        status = {m.ref: member_status(m, q.members, age) for m in q.members}
        for s in problem.shelters:
            units = s.units
            blocks = bed_blocks(q, age)
            cands = [
                tuple(
                    i
                    for i, u in enumerate(units)
                    if all(unit_admits(u, m, status[m.ref]) for m in block)
                )
                for block in blocks
            ]
            assert block_candidates(q, units, age) == tuple(zip(blocks, cands, strict=True))
            alone = {m.ref: any(unit_admits(u, m, status[m.ref]) for u in units) for m in q.members}
            expected = [f"member_not_admitted:{r}" for r, ok in alone.items() if not ok]
            for block, found in zip(blocks, cands, strict=True):
                if len(block) > 1 and not found and alone[block[0].ref]:
                    expected += [
                        f"guardian_unit_mismatch:{c.ref}" for c in block[1:] if alone[c.ref]
                    ]
            assert member_reasons(q, units, age) == sorted(expected)
