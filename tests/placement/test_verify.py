"""The verifier catches every kind of broken solution."""

from __future__ import annotations

import dataclasses
from typing import Any

from placement import Problem, Solution, solve, verify
from placement.solution import Assignment, Bed, Objective, Reason, Unplaced
from tests.placement.test_solve import doc, shelter, woman, women_unit


def solved() -> tuple[Problem, Solution]:
    family: dict[str, Any] = {
        "id": "fam",
        "priority": 4,
        "members": [
            {"ref": "A", "sex": "female", "age": 30},
            {"ref": "B", "sex": "male", "age": 4, "guardian_ref": "A"},
        ],
    }
    problem = Problem.from_document(
        doc(
            [
                shelter("s1", women_unit("u1", 2), women_unit("u2", 1)),
                shelter("s2", women_unit("u3", 1)),
            ],
            [family, woman("w1", 2, separate_from=["w2"]), woman("w2", 1)],
        )
    )
    solution = solve(problem)
    assert verify(problem, solution) == []
    return problem, solution


def with_assignments(solution: Solution, *assignments: Assignment) -> Solution:
    return dataclasses.replace(solution, assignments=assignments)


def test_a_valid_solution_has_no_violations_and_survives_the_round_trip() -> None:
    problem, solution = solved()
    again = Solution.from_document(solution.to_document())
    assert again == solution
    assert verify(problem, again) == []


def test_an_overbooked_unit_is_named() -> None:
    problem, solution = solved()
    extra = Assignment("w2", "s1", (Bed("A", "u1"),))
    broken = dataclasses.replace(
        with_assignments(
            solution,
            Assignment("fam", "s1", (Bed("A", "u1"), Bed("B", "u1"))),
            extra,
        ),
        unplaced=(Unplaced("w1", (Reason("x", ("s1",)),)),),
    )
    violations = verify(problem, broken)
    assert "unit u1 of shelter s1: 3 people placed, 2 free beds" in violations


def test_a_child_away_from_the_guardian_is_named() -> None:
    problem, solution = solved()
    broken = with_assignments(
        solution,
        Assignment("fam", "s1", (Bed("A", "u1"), Bed("B", "u2"))),
        *[a for a in solution.assignments if a.request != "fam"],
    )
    assert any("child B is in unit u2, guardian A in unit u1" in v for v in verify(problem, broken))


def test_separated_requests_in_one_shelter_and_missing_requests_are_named() -> None:
    problem, solution = solved()
    broken = dataclasses.replace(
        solution,
        assignments=(
            Assignment("w1", "s2", (Bed("A", "u3"),)),
            Assignment("w2", "s2", (Bed("A", "u3"),)),
        ),
        unplaced=(),
    )
    violations = verify(problem, broken)
    assert "requests w1 and w2 must be separated but share shelter s2" in violations
    assert "request fam: neither assigned nor listed as unplaced" in violations
    assert any(v.startswith("objective.placed_by_priority") for v in violations)


def test_a_partial_group_and_a_wrong_digest_are_named() -> None:
    problem, solution = solved()
    fam = next(a for a in solution.assignments if a.request == "fam")
    broken = dataclasses.replace(
        with_assignments(
            solution,
            Assignment("fam", fam.shelter, fam.beds[:1]),
            *[a for a in solution.assignments if a.request != "fam"],
        ),
        problem_digest="0" * 64,
    )
    violations = verify(problem, broken)
    assert "problem_digest: does not match the problem" in violations
    assert any("member B has no bed" in v for v in violations)


def test_a_bound_below_the_objective_and_a_false_optimal_are_named() -> None:
    problem, solution = solved()
    broken = dataclasses.replace(
        solution, bound=Objective((0, 0, 0, 0, 0), solution.objective.soft_cost + 1)
    )
    violations = verify(problem, broken)
    assert any(v.startswith("bound.placed_by_priority.4") for v in violations)
    assert any(v.startswith("bound.soft_cost") for v in violations)
    assert "status: optimal, but the bound differs from the objective" in violations


def test_a_request_in_a_shelter_that_declined_it_is_named() -> None:
    declined = woman("w1", 3, declined_shelters=["s1"], separated_shelters=["s2"])
    problem = Problem.from_document(
        doc([shelter("s1", women_unit("u1", 1)), shelter("s2", women_unit("u2", 1))], [declined])
    )
    solution = solve(problem)
    assert solution.assignments == ()
    assert solution.unplaced[0].reasons == (
        Reason("declined_by_shelter", ("s1",)),
        Reason("separated_case_housed", ("s2",)),
    )
    forced = dataclasses.replace(
        solution, assignments=(Assignment("w1", "s1", (Bed("A", "u1"),)),), unplaced=()
    )
    assert "assignments[0] (request w1): shelter s1 declined the request" in verify(problem, forced)


def family_of(rid: str, size: int, **extra: Any) -> dict[str, Any]:
    members = [{"ref": "A", "sex": "female", "age": 30}] + [
        {"ref": f"C{k}", "sex": "male", "age": 4, "guardian_ref": "A"} for k in range(size - 1)
    ]
    return {"id": rid, "priority": 3, "members": members, **extra}


def test_a_separation_stands_beside_too_few_beds() -> None:
    # s1 has one bed: the family of three never fits it, and w1, whom it must be kept apart
    # from, is placed there. Both facts are true and both are said (issue 18).
    problem = Problem.from_document(
        doc(
            [shelter("s1", women_unit("u1", 1))],
            [woman("w1", 5), family_of("fam", 3, separate_from=["w1"])],
        )
    )
    solution = solve(problem)
    assert [a.request for a in solution.assignments] == ["w1"]
    assert solution.unplaced[0].reasons == (
        Reason("separated_from", ("s1",), ("w1",)),
        Reason("too_few_beds", ("s1",)),
    )
    assert verify(problem, solution) == []
    silent = dataclasses.replace(
        solution, unplaced=(Unplaced("fam", (Reason("too_few_beds", ("s1",)),)),)
    )
    assert (
        "unplaced[0] (request fam) at shelter s1: w1 placed there, separated_from not listed"
        in (verify(problem, silent))
    )


def _with_reasons(solution: Solution, *reasons: Reason) -> Solution:
    (u,) = solution.unplaced
    return dataclasses.replace(solution, unplaced=(Unplaced(u.request, reasons),))


def test_reasons_that_do_not_hold_are_named() -> None:
    problem = Problem.from_document(
        doc(
            [shelter("s1", women_unit("u1", 1)), shelter("s2", women_unit("u2", 0))],
            [woman("w1", 5), woman("w2", 1, excluded_shelters=["s2"])],
        )
    )
    solution = solve(problem, method="greedy")
    assert solution.unplaced[0].reasons == (
        Reason("capacity_taken", ("s1",), ("w1",)),
        Reason("shelter_excluded", ("s2",)),
    )
    assert verify(problem, solution) == []
    cases = {
        (Reason("capacity_taken", ("s1",), ("w1",)), Reason("shelter_excluded", ("s9",))): (
            "unknown shelter s9"
        ),
        (Reason("capacity_taken", ("s1",), ("w1",)), Reason("made_up", ("s2",))): (
            "unknown reason code"
        ),
        (Reason("capacity_taken", ("s1",), ("w1",)),): "at shelter s2: no reason given",
        (Reason("capacity_taken", ("s1",), ("w1",)), Reason("region_excluded", ("s2",))): (
            "eligibility codes ['region_excluded'] stated, ['shelter_excluded'] hold"
        ),
        (Reason("not_chosen", ("s1",)), Reason("shelter_excluded", ("s2",))): (
            "not_chosen from greedy, status feasible"
        ),
        (Reason("shelter_excluded", ("s2",)), Reason("too_few_beds", ("s1",))): (
            "too_few_beds, but the group fits the free beds"
        ),
        (Reason("capacity_taken", ("s1",), ("w2",)), Reason("shelter_excluded", ("s2",))): (
            "w2 is not assigned to any of its shelters"
        ),
        (Reason("shelter_excluded", ("s2",)), Reason("capacity_taken", ("s1",), ("w1",))): (
            "reasons are not sorted by code"
        ),
        (Reason("capacity_taken", ("s1",), ("w1",)), Reason("shelter_excluded", ("s2", "s2"))): (
            "shelters are not in id order, once each"
        ),
    }
    for reasons, expected in cases.items():
        found = verify(problem, _with_reasons(solution, *reasons))
        assert any(expected in v for v in found), (reasons, found)
