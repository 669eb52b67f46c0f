"""The fast paths of the solver agree with the plain definitions they replace."""

from __future__ import annotations

import pytest
from ortools.sat.python import cp_model

from placement import Problem, lpbound
from placement.cost import ShelterCosts, soft_cost
from placement.generator import generate
from placement.instance import Instance
from placement.lpfix import Relaxation, restore
from tests.placement.test_neighbourhood import assert_feasible


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


@pytest.mark.parametrize("seed", range(4))
def test_the_wider_neighbourhood_frees_whole_groups_and_keeps_the_incumbent(seed: int) -> None:
    from placement.greedy import greedy_placement
    from placement.instance import Instance
    from placement.model import Model as _Model

    inst = Instance(_problem(120, 15, seed))
    m = _Model(inst, cost_aware=False)
    terms = [(v, -w) for v, w in m.level_terms[3]]
    rc = m.relaxation().minimise(terms)
    placement = greedy_placement(inst)
    values = m.values_of(placement)
    free = m.open_groups(rc.x, values, terms)
    level = {v for v, _ in terms}
    for g in m.groups:
        variables = [*g.n, *(y for ys in g.y for us in ys.values() for y in us.values())]
        waiting = sum(values[n] for n in g.n) < len(g.requests) and g.n[0] in level
        split = any(abs(rc.x[j] - round(rc.x[j])) > 1e-6 for j in variables)
        # A group is opened whole or not at all, exactly when it waits or the LP splits it.
        assert {j in free for j in variables} == {waiting or split}
    wide = rc.restricted(dict(enumerate(values)), free)
    narrow = rc.restricted(dict(enumerate(values)))
    for j, (a, b) in enumerate(zip(wide.proto.variables, narrow.proto.variables, strict=True)):
        assert a.domain[1] >= b.domain[1]  # only ever wider
        assert a.domain[0] <= values[j] <= a.domain[1]  # the incumbent stays feasible
        if j in free:
            assert list(a.domain) == list(m.model.proto.variables[j].domain)


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 2), (2, 1), (3, 0)])
def test_a_relaxation_restricted_to_few_columns_prices_in_the_rest_to_the_same_bound(
    seed: int, k: int
) -> None:
    from placement.greedy import greedy_placement
    from placement.instance import Instance
    from placement.model import Model as _Model
    from placement.problem import PRIORITIES

    inst = Instance(_problem(150, 15, seed))
    placement = greedy_placement(inst)
    placed = inst.placed_by_priority(placement)
    m = _Model(inst, cost_aware=True)
    restricted = m.relaxation()
    restricted.restrict(m.cheapest_columns(k))
    for p in PRIORITIES:
        if m.level_terms[p]:
            m.at_least(m.level_terms[p], placed[5 - p])
    full = Relaxation(m.model, m.rows, m.bounds).minimise(m.soft_terms)
    if k:  # the incumbent's columns make the restricted LP feasible
        restricted.release(v for v, x in enumerate(m.values_of(placement)) if x)
    # (k = 0 holds every column and no incumbent: the LP is infeasible, all columns return)
    priced = restricted.minimise(m.soft_terms)
    assert priced.bound == pytest.approx(full.bound, rel=1e-7, abs=1e-4)
    lower = priced.integer_bound()
    assert lower is not None
    assert lower <= sum(inst.pair_cost(ri, si) for ri, (si, _) in placement.items())
    # Every variable's reduced cost is there, held ones too, for the narrowing.
    assert len(priced.d) == len(m.bounds) == len(priced.x)


@pytest.mark.parametrize(("seed", "cost_aware"), [(0, False), (1, True), (2, True)])
def test_the_model_rows_give_the_relaxation_read_from_the_proto(
    seed: int, cost_aware: bool
) -> None:
    from placement.instance import Instance
    from placement.model import Model as _Model

    inst = Instance(_problem(120, 15, seed))
    m = _Model(inst, cost_aware=cost_aware)
    m.at_least(m.level_terms[5], 1)
    terms = m.soft_terms if cost_aware else [(v, -w) for v, w in m.level_terms[3]]
    objective = list(terms)
    from_rows = m.relaxation().minimise(objective)
    from_proto = Relaxation(m.model).minimise(objective)
    assert from_rows.bound == pytest.approx(from_proto.bound, rel=1e-9, abs=1e-6)


def _reduced(monkeypatch: pytest.MonkeyPatch, keep: int) -> None:
    from placement import instance

    monkeypatch.setattr(instance, "PAIR_LIMIT", 10)
    monkeypatch.setattr(instance, "MIN_KEPT", keep)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_member_levels_equal_the_rules_for_every_request_and_shelter(seed: int) -> None:
    from placement.eligibility import block_candidates, member_reasons
    from placement.instance import Instance

    problem = _problem(150, 25, seed)
    inst = Instance(problem)
    age = problem.majority_age
    for ri, q in enumerate(problem.requests):
        for si, s in enumerate(problem.shelters):
            expected = (
                member_reasons(q, s.units, age),
                tuple(c for _, c in block_candidates(q, s.units, age)),
            )
            assert inst.member_level(ri, inst.config[si]) == expected


@pytest.mark.parametrize(("seed", "keep"), [(0, 3), (1, 5), (2, 1), (3, 8)])
def test_the_cheapest_pairs_of_a_reduced_model_equal_the_plain_sort(
    monkeypatch: pytest.MonkeyPatch, seed: int, keep: int
) -> None:
    from placement.eligibility import assign_beds, eligibility_reasons
    from placement.instance import Instance

    _reduced(monkeypatch, keep)
    problem = _problem(150, 40, seed)
    regions = {r.code: r for r in problem.regions}
    inst = Instance(problem)
    assert inst.reduced
    assert inst.kept == keep
    age = problem.majority_age
    for ri, q in enumerate(problem.requests):
        order = sorted(
            (soft_cost(q, s, regions, problem.weights), si)
            for si, s in enumerate(problem.shelters)
            if not eligibility_reasons(q, s, age)
        )
        viable = [
            (cost, si)
            for cost, si in order
            if assign_beds(
                q,
                problem.shelters[si],
                {u.id: u.free_beds for u in problem.shelters[si].units},
                age,
            )
            is not None
        ]
        kept = viable[:keep]
        rest = [v for v in viable if len(kept) == keep and v > kept[-1]]
        assert [(p.cost, p.shelter) for p in inst.pairs[ri]] == kept
        assert [(p.cost, p.shelter) for p in inst.more_pairs(ri)] == rest


def _plain_reasons(problem: Problem, solution: object) -> dict[str, tuple[str, ...]]:
    """The reasons of docs/solver.md, shelter by shelter, from the rules alone."""
    from placement.eligibility import assign_beds, block_candidates, eligibility_reasons

    age = problem.majority_age
    assignments = solution.assignments  # type: ignore[attr-defined]
    holders: dict[str, list[tuple[str, set[str]]]] = {}
    left = {u.id: u.free_beds for s in problem.shelters for u in s.units}
    order = {q.id: i for i, q in enumerate(problem.requests)}
    for a in sorted(assignments, key=lambda a: order[a.request]):
        holders.setdefault(a.shelter, []).append((a.request, {b.unit for b in a.beds}))
        for b in a.beds:
            left[b.unit] -= 1
    apart: dict[str, set[str]] = {q.id: set() for q in problem.requests}
    for q in problem.requests:
        for other in q.separate_from:
            if other in apart and other != q.id:
                apart[q.id].add(other)
                apart[other].add(q.id)
    out = {}
    placed = {a.request for a in assignments}
    for q in problem.requests:
        if q.id in placed:
            continue
        reasons: list[str] = []
        for s in problem.shelters:
            prefix = f"shelter:{s.id}:"
            codes = eligibility_reasons(q, s, age)
            if codes:
                reasons += [prefix + c for c in codes]
                continue
            found = False
            for rid, _ in holders.get(s.id, []):
                if rid in apart[q.id]:
                    reasons.append(f"{prefix}separated_from:{rid}")
                    found = True
            if assign_beds(q, s, {u.id: u.free_beds for u in s.units}, age) is None:
                reasons.append(prefix + "too_few_beds")
                continue
            if assign_beds(q, s, left, age) is None:
                usable = {s.units[i].id for _, c in block_candidates(q, s.units, age) for i in c}
                reasons += [
                    f"{prefix}capacity_taken:{rid}"
                    for rid, units in holders.get(s.id, [])
                    if units & usable
                ]
                found = True
            if not found:
                reasons.append(prefix + "not_chosen")
        out[q.id] = tuple(sorted(reasons))
    return out


@pytest.mark.parametrize(
    ("seed", "method", "reduce"),
    [(0, "greedy", False), (1, "cp-sat", False), (2, "cp-sat", True), (3, "greedy", True)],
)
def test_explanations_equal_the_plain_definition(
    monkeypatch: pytest.MonkeyPatch, seed: int, method: str, reduce: bool
) -> None:
    from placement import solve

    if reduce:
        _reduced(monkeypatch, 2)
    problem = _problem(200, 20, seed)
    solution = solve(problem, method=method, time_limit_s=1.0)
    from placement.solution import reasons_to_strings

    assigned = {a.request: a.shelter for a in solution.assignments}
    got = {u.request: tuple(reasons_to_strings(u.reasons, assigned)) for u in solution.unplaced}
    assert got, "the network should leave someone unplaced"
    assert got == _plain_reasons(problem, solution)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lp_bounds_hold_for_the_optimum_and_do_not_depend_on_the_reduction(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    from placement import solve
    from placement.instance import Instance
    from placement.lpbound import level_bounds, total_bound

    problem = _problem(60, 8, seed)
    best = solve(problem, time_limit_s=10.0)
    assert best.status == "optimal"
    placed = best.objective.placed_by_priority
    full = Instance(problem)
    levels, total = level_bounds(full, placed), total_bound(full)
    assert all(b >= p for b, p in zip(levels, placed, strict=True))
    assert total >= sum(placed)
    # Starting from a reduced model's few pairs, pricing reaches the same LP.
    _reduced(monkeypatch, 1)
    reduced = Instance(problem)
    assert reduced.reduced
    assert level_bounds(reduced, placed) == levels
    assert total_bound(reduced) == total


def _level_lp(inst: Instance, placed: tuple[int, ...], p: int) -> int | None:
    """The LP bound of level ``p`` of ``inst``'s own model, given ``placed`` above it."""
    from placement.model import Model

    m = Model(inst, cost_aware=False)
    for q in range(p + 1, 6):
        m.at_least(m.level_terms[q], placed[5 - q])
    bound = m.relaxation().minimise([(v, -w) for v, w in m.level_terms[p]]).integer_bound()
    return None if bound is None else -bound


@pytest.mark.parametrize("family", ["rings", "national"])
def test_widened_pairs_lift_a_reduced_model_to_the_bound_over_every_pair(
    monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    from placement.budget import Budget
    from placement.greedy import greedy_baseline
    from placement.lpbound import level_bounds, widen_pairs

    problem = Problem.from_document(generate(400, 40, 0, family=family))
    _reduced(monkeypatch, 1)
    inst = Instance(problem)
    assert inst.reduced
    greedy, _ = greedy_baseline(inst)
    placed = inst.placed_by_priority(greedy)
    bounds = level_bounds(inst, placed)
    # The first level where greedy leaves room: the one widened.
    p = next(q for q in range(5, 0, -1) if bounds[5 - q] > placed[5 - q])
    before = {ri: [pair.shelter for pair in inst.pairs[ri]] for ri in range(len(inst.pairs))}
    narrow = _level_lp(inst, placed, p)
    assert narrow is not None
    assert narrow < bounds[5 - p]  # one pair a request is too few
    added = widen_pairs(inst, greedy, Budget(60))
    assert added > 0
    wide = _level_lp(inst, placed, p)
    assert wide == bounds[5 - p]
    # Pairs are only added, each to a shelter the request may use, after the kept ones.
    for ri, shelters in before.items():
        now = [pair.shelter for pair in inst.pairs[ri]]
        assert now[: len(shelters)] == shelters
        assert all(inst.viable(ri, si) is not None for si in now[len(shelters) :])
        assert len(set(now)) == len(now)


def test_widening_stops_when_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    from placement.budget import Budget
    from placement.greedy import greedy_baseline
    from placement.lpbound import widen_pairs

    problem = Problem.from_document(generate(400, 40, 0, family="rings"))
    _reduced(monkeypatch, 1)
    monkeypatch.setattr(lpbound, "PRICE_CHECK_EVERY", 8)  # more checks inside the pricing

    def widened(reads: int | None) -> tuple[int, Budget, list[int]]:
        inst = Instance(problem)
        greedy, _ = greedy_baseline(inst)
        budget = Budget(60, clock=_Readings(reads))
        return widen_pairs(inst, greedy, budget), budget, [len(pairs) for pairs in inst.pairs]

    added, budget, _ = widened(None)
    assert added > 0
    assert not budget.expired
    # Every reading of the clock but the last could have been the one past the deadline.
    needed = _Readings.last
    assert needed > 3
    unwidened = widened(1)[2]
    for reads in range(1, needed):
        added, budget, pairs = widened(reads)
        assert (added, budget.expired, pairs) == (0, True, unwidened), reads


class _Readings:
    """A clock at 0 for ``reads`` readings (always when None), then far past any deadline."""

    last = 0

    def __init__(self, reads: int | None) -> None:
        self.reads = reads
        self.count = 0

    def __call__(self) -> float:
        self.count += 1
        _Readings.last = self.count
        return 0.0 if self.reads is None or self.count <= self.reads else 1e9


@pytest.mark.parametrize(("family", "seed"), [("rings", 0), ("national", 0), ("uniform", 1)])
def test_rounding_an_integral_solution_gives_it_back(family: str, seed: int) -> None:
    """Each group's count at each shelter, in the units the values give: nothing is lost."""
    from collections import Counter

    from placement.greedy import greedy_placement, insert_by_moves
    from placement.model import Model

    problem = Problem.from_document(generate(400, 40, seed, family=family))
    inst = Instance(problem)
    # A maximal placement unlike the one rounding builds (the insertion moved requests about).
    start = greedy_placement(inst, insert_by_moves(inst, greedy_placement(inst)))
    m = Model(inst, cost_aware=False)
    values = m.values_of(start)
    rounded = m.rounded([float(v) for v in values])
    assert_feasible(inst, rounded)

    def where(placement: dict[int, tuple[int, tuple[int, ...]]]) -> Counter[tuple[int, int]]:
        return Counter((problem.requests[ri].priority, si) for ri, (si, _) in placement.items())

    assert where(rounded) == where(start)
    assert m.values_of(rounded) == values
