"""The search by areas of a level: a sub-model of two areas' pairs, everything else fixed."""

from __future__ import annotations

import pytest
from ortools.sat.python import cp_model

from placement import Problem
from placement.budget import Budget
from placement.generator import generate
from placement.greedy import greedy_placement
from placement.instance import Instance
from placement.lpsearch import area_search
from placement.model import Model, Terms, Values
from placement.neighbourhood import shelter_neighbourhoods
from placement.search import Search
from tests.placement.test_neighbourhood import assert_feasible


def _level(family: str, seed: int) -> tuple[Instance, Model, Terms, Values]:
    inst = Instance(Problem.from_document(generate(240, 36, seed=seed, family=family)))
    m = Model(inst, cost_aware=False)
    start = greedy_placement(inst)
    placed = inst.placed_by_priority(start)
    # Levels 5 and 4 fixed at greedy's counts, level 3 searched (as the levels do).
    m.at_least(m.level_terms[5], placed[0])
    m.at_least(m.level_terms[4], placed[1])
    return inst, m, [(v, -w) for v, w in m.level_terms[3]], m.values_of(start)


def _optimum(model: cp_model.CpModel, terms: Terms) -> tuple[int, list[int]]:
    model.clear_objective()  # type: ignore[no-untyped-call]
    model.proto.objective.vars.extend([v for v, _ in terms])
    model.proto.objective.coeffs.extend([w for _, w in terms])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value), list(solver.response_proto.solution)


@pytest.mark.parametrize(("family", "seed"), [("rings", 0), ("national", 1), ("uniform", 2)])
def test_an_area_model_has_the_optimum_of_the_model_with_every_other_pair_fixed(
    family: str, seed: int
) -> None:
    inst, m, terms, values = _level(family, seed)
    by_shelter = m.variables_by_shelter()
    inside = set(range(0, len(inst.problem.shelters), 3))  # every third shelter
    sub, free, sub_terms = m.area(values, inside, terms)
    assert free == sorted(j for si in inside for j in by_shelter[si])
    got, found = _optimum(sub, sub_terms)

    # The reference: the whole model, every variable of a pair elsewhere fixed at its value.
    copy = cp_model.CpModel()
    copy.proto.copy_from(m.model.proto)
    for si, js in enumerate(by_shelter):
        if si not in inside:
            for j in js:
                copy.proto.variables[j].domain[0] = copy.proto.variables[j].domain[1] = values[j]
    want, _ = _optimum(copy, terms)
    kept = sum(values[v] * w for v, w in terms if v not in set(free))  # the fixed part
    assert got + kept == want
    assert want <= sum(values[v] * w for v, w in terms)

    # Put back, the sub-model's solution is one of the whole model (all fixed there: feasible)
    # and a valid placement.
    merged = list(values)
    for j, v in zip(free, found, strict=True):
        merged[j] = v
    check = cp_model.CpModel()
    check.proto.copy_from(m.model.proto)
    for j, v in enumerate(merged):
        check.proto.variables[j].domain[0] = check.proto.variables[j].domain[1] = v
    assert _optimum(check, terms)[0] == want
    assert_feasible(inst, m.placement_from(merged))


def test_area_search_keeps_the_levels_above_never_loses_and_repeats_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from placement import neighbourhood

    monkeypatch.setattr(neighbourhood, "MIN_SHELTERS", 4)
    inst, m, terms, values = _level("rings", 0)
    assert len(shelter_neighbourhoods(inst.problem)) >= 3
    before = inst.placed_by_priority(m.placement_from(values))

    def once() -> Values:
        found: Values = area_search(Search(Budget(60.0), 0, 1), m, terms, values, 5.0, -(10**9))
        return found

    first, second = once(), once()
    assert first == second
    cost = sum(first[v] * w for v, w in terms)
    # Greedy leaves room at level 3 on this network (135 people there): the areas find more.
    assert cost < sum(values[v] * w for v, w in terms)
    placement = m.placement_from(first)
    assert_feasible(inst, placement)
    after = inst.placed_by_priority(placement)
    assert after[0] >= before[0]
    assert after[1] >= before[1]
    assert after[2] == -cost
