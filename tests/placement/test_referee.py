"""The HiGHS referee: its own model agrees with the solver's proven optima and with brute force."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from placement import Problem, solve, verify
from placement.generator import FAMILIES, generate
from placement.referee import BACKENDS, referee
from tests.placement.strategies import brute_force, problem_docs
from tests.placement.test_solve import doc, shelter, woman, women_unit

SMALL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SMALL
@given(problem_docs())
def test_the_referee_equals_solve_where_solve_says_optimal(document: dict[str, Any]) -> None:
    problem = Problem.from_document(document)
    judged = referee(problem, level_time_limit_s=10)
    assert verify(problem, judged.solution) == []
    assert judged.proven
    assert judged.bound == judged.placed
    solved = solve(problem, time_limit_s=5)
    if solved.status == "optimal":
        assert judged.placed == solved.objective.placed_by_priority


@SMALL
@given(problem_docs(max_requests=4, max_shelters=3, max_beds=3))
def test_the_referee_equals_brute_force(document: dict[str, Any]) -> None:
    problem = Problem.from_document(document)
    placed, _ = brute_force(problem)
    assert referee(problem, level_time_limit_s=10).placed == placed


@pytest.mark.parametrize("family", FAMILIES)
def test_on_every_family_the_referee_is_valid_and_proves_small_networks(family: str) -> None:
    problem = Problem.from_document(generate(60, 8, seed=1, family=family))
    judged = referee(problem, level_time_limit_s=20)
    assert verify(problem, judged.solution) == []
    assert judged.proven
    solved = solve(problem, time_limit_s=5)
    if solved.status == "optimal":
        assert judged.placed == solved.objective.placed_by_priority


def test_a_higher_priority_is_fixed_before_a_lower_one_is_counted() -> None:
    # One bed: the priority-5 woman takes it although two priority-3 women could not both fit.
    problem = Problem.from_document(
        doc([shelter("s1", women_unit("u1", 1))], [woman("r1", 3), woman("r2", 5), woman("r3", 3)])
    )
    judged = referee(problem)
    assert judged.placed == (1, 0, 0, 0, 0)
    assert [a.request for a in judged.solution.assignments] == ["r2"]
    assert [u.request for u in judged.solution.unplaced] == ["r1", "r3"]


def test_a_ring_of_separations_puts_at_most_one_per_shelter() -> None:
    ring = ["r1", "r2", "r3"]
    requests = [woman(r, 3, separate_from=[o for o in ring if o != r][:1]) for r in ring]
    requests[2]["separate_from"] = ["r1", "r2"]
    problem = Problem.from_document(
        doc([shelter("s1", women_unit("u1", 3)), shelter("s2", women_unit("u2", 3))], requests)
    )
    judged = referee(problem)
    assert judged.placed == (0, 0, 2, 0, 0)
    assert len({a.shelter for a in judged.solution.assignments}) == 2
    assert verify(problem, judged.solution) == []


def test_a_level_out_of_time_reports_a_bound_and_keeps_a_valid_answer() -> None:
    problem = Problem.from_document(generate(300, 40, seed=2, family="rings"))
    judged = referee(problem, level_time_limit_s=0.001)
    assert verify(problem, judged.solution) == []
    for level in judged.levels:
        assert level.bound >= level.placed
        assert level.proven == (level.bound == level.placed)
        assert level.outcome in ("optimal", "feasible", "greedy")


def test_the_referee_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    referee(Problem.from_document(generate(20, 4, seed=0)))
    assert capfd.readouterr().out == ""


def test_an_unknown_backend_is_refused() -> None:
    assert BACKENDS[0] == "HIGHS"
    with pytest.raises(RuntimeError, match="NOPE"):
        referee(Problem.from_document(generate(5, 2)), backend="NOPE")


def test_a_level_solve_past_its_hard_wall_is_killed_and_answers_nothing() -> None:
    from ortools.linear_solver import pywraplp

    from placement.referee import _blocks, _bounded, _groups

    problem = Problem.from_document(generate(40, 6, seed=0, family="national"))
    blocks = [_blocks(q, problem.majority_age) for q in problem.requests]
    groups, cliques, _ = _groups(problem, blocks)
    outcome, found, best = _bounded(("HIGHS", problem, groups, cliques, 5, {}, 5.0), 0.0)
    assert outcome == pywraplp.Solver.NOT_SOLVED
    assert found is None
    assert best != best  # NaN: no bound either
    outcome, found, _ = _bounded(("HIGHS", problem, groups, cliques, 5, {}, 5.0), 60.0)
    assert outcome == pywraplp.Solver.OPTIMAL
    assert found is not None


def test_the_referee_document_has_the_published_solution_shape() -> None:
    from tests.placement.test_documents import SOLUTION

    judged = referee(Problem.from_document(generate(60, 8, seed=0, family="national")))
    document = judged.solution.to_document()
    # The schema names the service's two methods; the referee's document stays in the bench.
    assert document["solver"]["name"] == "referee-highs"
    document["solver"]["name"] = "cp-sat"
    SOLUTION.validate(document)
