"""The fast paths of the solver agree with the plain definitions they replace."""

from __future__ import annotations

import pytest
from ortools.sat.python import cp_model

from placement import Problem
from placement.cost import ShelterCosts, soft_cost
from placement.generator import generate
from placement.lpfix import Relaxation, restore


def _problem(requests: int, shelters: int, seed: int) -> Problem:
    doc = generate(requests, shelters, seed=seed)
    return doc if isinstance(doc, Problem) else Problem.from_document(doc)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shelter_costs_equal_soft_cost_for_every_pair(seed: int) -> None:
    problem = _problem(120, 25, seed)
    regions = {r.code: r for r in problem.regions}
    table = ShelterCosts(problem.shelters, regions, problem.weights)
    every = list(range(len(problem.shelters)))
    for q in problem.requests:
        expected = [soft_cost(q, s, regions, problem.weights) for s in problem.shelters]
        assert table.costs(q, every) == expected


def _knapsack(seed: int) -> tuple[cp_model.CpModel, list[cp_model.IntVar], list[int]]:
    import random

    rng = random.Random(seed)
    model = cp_model.CpModel()
    xs = [model.new_int_var(0, rng.randint(1, 3), f"x{i}") for i in range(12)]
    costs = [rng.randint(1, 40) for _ in xs]
    model.add(sum(rng.randint(1, 5) * x for x in xs) >= 20)
    model.add(sum(xs[:6]) <= 5)
    model.add(xs[0] + xs[1] == 2)
    return model, xs, costs


def _optimum(model: cp_model.CpModel, xs: list[cp_model.IntVar], costs: list[int]) -> int:
    model.minimize(sum(c * x for c, x in zip(costs, xs, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value)


@pytest.mark.parametrize("seed", range(8))
def test_reduced_cost_narrowing_keeps_the_optimum(seed: int) -> None:
    model, xs, costs = _knapsack(seed)
    best = _optimum(model, xs, costs)
    model.clear_objective()  # type: ignore[no-untyped-call]
    rc = Relaxation(model).minimise([(x.index, c) for x, c in zip(xs, costs, strict=True)])
    assert rc.bound <= best + 1e-6
    lower = rc.integer_bound()
    assert lower is not None
    assert lower <= best
    rc.tighten(best)
    assert _optimum(model, xs, costs) == best
    # A guess below the optimum may cut every solution; restoring gives the model back.
    saved = rc.tighten(best - 1)
    restore(model, saved)
    model.clear_objective()  # type: ignore[no-untyped-call]
    assert _optimum(model, xs, costs) == best


@pytest.mark.parametrize("seed", range(8))
def test_relaxation_resolves_with_added_rows_and_new_objectives(seed: int) -> None:
    model, xs, costs = _knapsack(seed)
    relaxation = Relaxation(model)
    first = relaxation.minimise([(x.index, c) for x, c in zip(xs, costs, strict=True)])
    # A row added to both the model and its relaxation: the bound only rises, stays valid.
    model.add(sum(xs) >= 6)
    relaxation.add([x.index for x in xs], [1] * len(xs), 6.0, float("inf"))
    again = relaxation.minimise([(x.index, c) for x, c in zip(xs, costs, strict=True)])
    best = _optimum(model, xs, costs)
    assert first.bound <= again.bound + 1e-6
    lower = again.integer_bound()
    assert lower is not None
    assert lower <= best
    # Another objective on the same relaxation: maximise the first variable.
    model.clear_objective()  # type: ignore[no-untyped-call]
    top = relaxation.minimise([(xs[0].index, -1)])
    assert top.integer_bound() is not None
    model.maximize(xs[0])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    assert -top.bound >= solver.objective_value - 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_the_lp_neighbourhood_keeps_the_incumbent_and_leaves_the_model_alone(seed: int) -> None:
    model, xs, costs = _knapsack(seed)
    best = _optimum(model, xs, costs)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    incumbent = {x.index: int(solver.value(x)) for x in xs}
    model.clear_objective()  # type: ignore[no-untyped-call]
    rc = Relaxation(model).minimise([(x.index, c) for x, c in zip(xs, costs, strict=True)])
    constraints = len(model.proto.constraints)
    nearby = rc.restricted(incumbent)
    assert len(model.proto.constraints) == constraints
    # The incumbent is an optimum and stays feasible in the neighbourhood.
    assert _optimum(nearby, xs, costs) == best


@pytest.mark.parametrize(("seed", "cost_aware"), [(0, False), (1, True), (2, True)])
def test_the_model_rows_give_the_relaxation_read_from_the_proto(
    seed: int, cost_aware: bool
) -> None:
    from placement.instance import Instance
    from placement.solve import _Model

    inst = Instance(_problem(120, 15, seed))
    m = _Model(inst, cost_aware=cost_aware)
    m.at_least(m.level_terms[5], 1)
    terms = m.soft_terms if cost_aware else [(v, -w) for v, w in m.level_terms[3]]
    objective = [(v.index, w) for v, w in terms]
    from_rows = m.relaxation().minimise(objective)
    from_proto = Relaxation(m.model).minimise(objective)
    assert from_rows.bound == pytest.approx(from_proto.bound, rel=1e-9, abs=1e-6)
