"""The greedy baseline and the instance agree with their obviously correct slow versions.

The fast code skips shelters without room, caches answers for requests alike and walks the
shelters left out of a reduced model by cost cells; the references below do none of that.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings

from placement import Problem
from placement import instance as instance_module
from placement.cost import soft_cost
from placement.eligibility import block_candidates, eligibility_reasons, fit_blocks
from placement.generator import generate
from placement.greedy import (
    STOP_EVERY,
    greedy_placement,
    improve_soft_cost,
    insert_by_moves,
)
from placement.instance import Instance, Placement
from tests.placement.strategies import problem_docs


def _saturated(n_requests: int, n_shelters: int, seed: int) -> dict[str, Any]:
    """A generated network made harder: fewer beds, crowded regions, big families, exclusions."""
    doc = generate(n_requests, n_shelters, seed=seed)
    rng = random.Random(seed)
    for s in doc["shelters"]:
        for u in s["units"]:
            u["free_beds"] = max(1, round(u["free_beds"] / 2.5))
    codes = [r["code"] for r in doc["regions"]]
    for i, q in enumerate(doc["requests"]):
        if rng.random() < 0.4:
            q["current_region"], q["location"] = codes[rng.randint(0, 1)], None
        if rng.random() < 0.3:
            q["excluded_regions"] = [q["current_region"]]
            q["preferred_regions"] = []
        head = q["members"][0]
        if rng.random() < 0.15 and head["age"] >= 18:
            q["members"] = [head] + [
                {"ref": "BCDEFG"[k], "sex": "male", "age": rng.randint(0, 12), "guardian_ref": "A"}
                for k in range(rng.randint(3, 6))
            ]
        if rng.random() < 0.05 and i > 0:
            q["separate_from"] = [f"r{rng.randrange(i)}"]
    return doc


def _network(kind: str, n_requests: int, n_shelters: int, seed: int) -> Problem:
    doc = generate(n_requests, n_shelters, seed=seed) if kind == "uniform" else None
    return Problem.from_document(doc or _saturated(n_requests, n_shelters, seed))


def _reduce(monkeypatch: pytest.MonkeyPatch, limit: int, keep: int) -> None:
    from placement import instance

    monkeypatch.setattr(instance, "PAIR_LIMIT", limit)
    monkeypatch.setattr(instance, "MIN_KEPT", keep)


def _viable_order(problem: Problem) -> list[list[tuple[int, int, tuple[tuple[int, ...], ...]]]]:
    """Per request: (cost, shelter, block candidates) of every viable shelter, cheapest first."""
    regions = {r.code: r for r in problem.regions}
    age = problem.majority_age
    out = []
    for q in problem.requests:
        rows = []
        for si, s in enumerate(problem.shelters):
            if eligibility_reasons(q, s, age):
                continue
            blocks = block_candidates(q, s.units, age)
            sizes = [len(b) for b, _ in blocks]
            cands = tuple(c for _, c in blocks)
            if fit_blocks(sizes, cands, [u.free_beds for u in s.units]) is None:
                continue
            rows.append((soft_cost(q, s, regions, problem.weights), si, cands))
        out.append(sorted(rows, key=lambda r: (r[0], r[1])))
    return out


def _plain_greedy(problem: Problem, start: Placement | None = None) -> Placement:
    """Most urgent first, each to its cheapest viable shelter with room and nobody to avoid."""
    order = _viable_order(problem)
    index = {q.id: i for i, q in enumerate(problem.requests)}
    apart: list[set[int]] = [set() for _ in problem.requests]
    for ri, q in enumerate(problem.requests):
        for other in q.separate_from:
            if other in index and index[other] != ri:
                apart[ri].add(index[other])
                apart[index[other]].add(ri)
    age = problem.majority_age
    sizes = [[len(b) for b, _ in block_candidates(q, (), age)] for q in problem.requests]
    left = [[u.free_beds for u in s.units] for s in problem.shelters]
    placement: Placement = dict(start or {})
    for ri, (si, choice) in placement.items():
        for b, u in enumerate(choice):
            left[si][u] -= sizes[ri][b]
    urgent = sorted(range(len(problem.requests)), key=lambda i: (-problem.requests[i].priority, i))
    for ri in urgent:
        if ri in placement:
            continue
        for _, si, cands in order[ri]:
            if any(placement.get(o, (-1,))[0] == si for o in apart[ri]):
                continue
            fitted = fit_blocks(sizes[ri], cands, left[si])
            if fitted is not None:
                for b, u in enumerate(fitted):
                    left[si][u] -= sizes[ri][b]
                placement[ri] = (si, tuple(fitted))
                break
    return placement


def _assert_feasible(inst: Instance, placement: Placement) -> None:
    problem = inst.problem
    load: dict[tuple[int, int], int] = {}
    for ri, (si, choice) in placement.items():
        q, s = problem.requests[ri], problem.shelters[si]
        assert not eligibility_reasons(q, s, problem.majority_age)
        cands = [c for _, c in block_candidates(q, s.units, problem.majority_age)]
        for b, u in enumerate(choice):
            assert u in cands[b]
            load[si, u] = load.get((si, u), 0) + inst.block_sizes[ri][b]
        for other in inst.separated[ri]:
            assert placement.get(other, (-1,))[0] != si
    for (si, u), n in load.items():
        assert n <= problem.shelters[si].units[u].free_beds


NETWORKS = [("uniform", 300, 30, 0), ("saturated", 300, 30, 1), ("saturated", 500, 25, 2)]


@pytest.mark.parametrize(("kind", "n_requests", "n_shelters", "seed"), NETWORKS)
def test_pairs_and_greedy_equal_the_plain_versions_on_generated_networks(
    kind: str, n_requests: int, n_shelters: int, seed: int
) -> None:
    problem = _network(kind, n_requests, n_shelters, seed)
    inst = Instance(problem)
    assert not inst.reduced
    for ri, rows in enumerate(_viable_order(problem)):
        assert [(p.cost, p.shelter, p.candidates) for p in inst.pairs[ri]] == rows
    expected = _plain_greedy(problem)
    assert greedy_placement(inst) == expected
    assert greedy_placement(inst, extend=True) == expected
    half = dict(sorted(expected.items())[::2])
    assert greedy_placement(inst, half) == _plain_greedy(problem, half)


@pytest.mark.parametrize(("kind", "n_requests", "n_shelters", "seed"), NETWORKS)
def test_extended_greedy_on_a_reduced_model_sees_every_shelter(
    monkeypatch: pytest.MonkeyPatch, kind: str, n_requests: int, n_shelters: int, seed: int
) -> None:
    _reduce(monkeypatch, limit=10, keep=3)
    problem = _network(kind, n_requests, n_shelters, seed)
    inst = Instance(problem)
    assert inst.reduced
    order = _viable_order(problem)
    for ri, rows in enumerate(order):
        assert [(p.cost, p.shelter, p.candidates) for p in inst.pairs[ri]] == rows[:3]
    placement = greedy_placement(inst, extend=True)
    assert placement == _plain_greedy(problem)
    # Every pair used is now in the model, still cheapest first among the kept ones.
    for ri, (si, _) in placement.items():
        assert si in {p.shelter for p in inst.pairs[ri]}


@settings(max_examples=150, deadline=None)
@given(problem_docs(max_requests=8, max_shelters=4, max_beds=4))
def test_pairs_and_greedy_equal_the_plain_versions_on_random_problems(doc: dict[str, Any]) -> None:
    problem = Problem.from_document(doc)
    inst = Instance(problem)
    for ri, rows in enumerate(_viable_order(problem)):
        assert [(p.cost, p.shelter, p.candidates) for p in inst.pairs[ri]] == rows
    expected = _plain_greedy(problem)
    assert greedy_placement(inst) == expected
    reduced = Instance(problem, pair_limit=1)
    assert greedy_placement(reduced, extend=True) == expected


@settings(max_examples=100, deadline=None)
@given(problem_docs(max_requests=8, max_shelters=4, max_beds=4))
def test_a_reduced_instances_lazy_pairs_are_the_cheapest_of_the_plain_order_whenever_asked(
    doc: dict[str, Any],
) -> None:
    problem = Problem.from_document(doc)
    rows = _viable_order(problem)
    saved = instance_module.MIN_KEPT
    instance_module.MIN_KEPT = 1  # keep one pair each: the rest comes from more_pairs
    try:
        reduced = Instance(problem, pair_limit=-1)  # reduced even without any pair
    finally:
        instance_module.MIN_KEPT = saved
    assert reduced.reduced
    assert reduced.kept == 1
    backwards = list(range(len(rows)))[::-1]  # asked in another order than the requests'
    for ri in backwards:
        assert reduced.has_viable(ri) == bool(rows[ri])
        kept = [(p.cost, p.shelter, p.candidates) for p in reduced.pairs[ri]]
        assert kept == rows[ri][: reduced.kept]
        rest = [(p.cost, p.shelter, p.candidates) for p in reduced.more_pairs(ri)]
        assert kept + rest == rows[ri]
    assert reduced.trivial_bound() == Instance(problem).trivial_bound()


class _Counter:
    """A ``stop`` that says yes from its ``after``-th call on, counting the calls."""

    def __init__(self, after: int) -> None:
        self.after, self.calls = after, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.after


@pytest.mark.parametrize("after", [1, 2, 3])
def test_greedy_stops_when_told_with_the_urgent_part_of_the_full_answer(after: int) -> None:
    problem = _network("saturated", 3 * STOP_EVERY, 30, 3)
    inst = Instance(problem)
    full = greedy_placement(inst)
    stop = _Counter(after)
    part = greedy_placement(inst, stop=stop)
    assert stop.calls == after
    requests = problem.requests
    urgent = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    seen = set(urgent[: (after - 1) * STOP_EVERY])
    assert part == {ri: at for ri, at in full.items() if ri in seen}
    _assert_feasible(inst, part)


def test_a_stop_that_never_fires_changes_nothing() -> None:
    problem = _network("saturated", 3 * STOP_EVERY, 30, 4)
    inst = Instance(problem)
    never = _Counter(10**9)
    placement = greedy_placement(inst, stop=never)
    assert placement == greedy_placement(inst)
    assert never.calls == -(-len(problem.requests) // STOP_EVERY)
    assert improve_soft_cost(inst, placement, stop=never) == improve_soft_cost(inst, placement)
    assert insert_by_moves(inst, placement, stop=never) == insert_by_moves(inst, placement)


@pytest.mark.parametrize("after", [1, 2])
def test_improving_and_inserting_stop_when_told_and_stay_feasible(after: int) -> None:
    problem = _network("saturated", 3 * STOP_EVERY, 30, 5)
    inst = Instance(problem)
    start = greedy_placement(inst)
    placed = inst.placed_by_priority(start)
    stop = _Counter(after)
    cheaper = improve_soft_cost(inst, start, stop=stop)
    assert stop.calls == after
    _assert_feasible(inst, cheaper)
    assert inst.placed_by_priority(cheaper) == placed
    if after == 1:
        assert cheaper == start
    stop = _Counter(after)
    more = insert_by_moves(inst, start, stop=stop)
    assert stop.calls == after
    _assert_feasible(inst, more)
    assert set(start) <= set(more)
    if after == 1:
        assert more == start
