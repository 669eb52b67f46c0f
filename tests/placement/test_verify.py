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
