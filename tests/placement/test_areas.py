"""The search by areas of a level: a sub-model of two areas' pairs, everything else fixed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest
from ortools.sat.python import cp_model

from placement import Problem, solve
from placement.budget import Budget
from placement.generator import generate
from placement.greedy import greedy_placement
from placement.instance import Instance
from placement.lpsearch import area_rounds, area_search
from placement.model import Model, Terms, Values
from placement.neighbourhood import shelter_neighbourhoods
from placement.search import Job, Search
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


def _apart(
    m: Model, values: Values, sets: list[set[int]], terms: Terms
) -> list[tuple[cp_model.CpModel, list[int], Terms]]:
    """The area models of disjoint ``sets`` searched at the same time, shared rows split."""
    shares = m.area_shares(sets)
    return [m.area(values, s, terms, share=share) for s, share in zip(sets, shares, strict=True)]


def _optimum(model: cp_model.CpModel, terms: Terms) -> tuple[int, list[int]]:
    model.clear_objective()  # type: ignore[no-untyped-call]
    model.proto.objective.vars.extend([v for v, _ in terms])
    model.proto.objective.coeffs.extend([w for _, w in terms])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value), list(solver.response_proto.solution)


def _fixed_at(m: Model, values: Values) -> cp_model.CpModel:
    """A copy of the whole model with every variable fixed at ``values``."""
    check = cp_model.CpModel()
    check.proto.copy_from(m.model.proto)
    for j, v in enumerate(values):
        check.proto.variables[j].domain[0] = check.proto.variables[j].domain[1] = v
    return check


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
    assert _optimum(_fixed_at(m, merged), terms)[0] == want
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


@pytest.mark.parametrize("n", [3, 4, 5, 12, 13])
def test_area_rounds_take_every_pair_once_and_pairs_of_a_round_share_no_area(n: int) -> None:
    rounds = area_rounds(n)
    pairs = [i for r in rounds for i in r]
    assert sorted(pairs) == list(range(n))
    assert pairs[0] == 0
    for r in rounds:
        assert 1 <= len(r) <= 2
        areas = [{i, (i + 1) % n} for i in r]
        assert len(r) == 1 or not areas[0] & areas[1]
    if n >= 4:
        assert len(rounds[0]) == 2  # the second core has work from the start


@pytest.mark.parametrize(("family", "seed"), [("rings", 0), ("national", 1), ("uniform", 2)])
def test_areas_searched_at_once_keep_every_row_when_their_answers_are_put_together(
    family: str, seed: int
) -> None:
    inst, m, terms, values = _level(family, seed)
    n = len(inst.problem.shelters)
    # Two halves of the network: many groups may be placed on either side, and the level
    # floors read both, so each side's optimum alone could take the same people or room.
    sets = [set(range(0, n, 2)), set(range(1, n, 2))]
    subs = _apart(m, values, sets, terms)
    merged = list(values)
    for sub, free, sub_terms in subs:
        _, found = _optimum(sub, sub_terms)
        for j, v in zip(free, found, strict=True):
            merged[j] = v
    _optimum(_fixed_at(m, merged), terms)  # the whole model holds them together (or fails)
    assert m.holds(merged, range(n))
    assert_feasible(inst, m.placement_from(merged))
    assert sum(merged[v] * w for v, w in terms) <= sum(values[v] * w for v, w in terms)


@pytest.mark.parametrize(("family", "seed"), [("rings", 0), ("national", 1), ("uniform", 2)])
def test_without_the_split_the_two_optima_put_together_break_a_row(family: str, seed: int) -> None:
    inst, m, terms, values = _level(family, seed)
    n = len(inst.problem.shelters)
    alone = list(values)
    for s in (set(range(0, n, 2)), set(range(1, n, 2))):
        sub, free, sub_terms = m.area(values, s, terms)
        _, found = _optimum(sub, sub_terms)
        for j, v in zip(free, found, strict=True):
            alone[j] = v
    assert not m.holds(alone, range(n))


def test_one_set_apart_is_the_area_model_itself() -> None:
    inst, m, terms, values = _level("rings", 0)
    inside = set(range(0, len(inst.problem.shelters), 3))
    assert m.area_shares([inside]) == [{}]
    ((sub, free, sub_terms),) = _apart(m, values, [inside], terms)
    alone, free_alone, terms_alone = m.area(values, inside, terms)
    assert free == free_alone
    assert sub_terms == terms_alone
    assert str(sub.proto) == str(alone.proto)


def _halves(cap: float) -> tuple[Model, Callable[[], list[Job]]]:
    """Rings 240x36 at level 3, and the jobs of its two halves of shelters searched at once."""
    inst, m, terms, values = _level("rings", 0)
    n = len(inst.problem.shelters)
    sets = [set(range(0, n, 2)), set(range(1, n, 2))]

    def jobs() -> list[Job]:
        subs = _apart(m, values, sets, terms)
        return [(sub, t, [values[j] for j in free], cap) for sub, free, t in subs]

    return m, jobs


def test_searches_at_once_give_what_each_gives_alone_and_spend_their_sum() -> None:
    m, jobs = _halves(0.3)

    together = Search(Budget(60.0), 0, 1)
    answers = together.optimise_together(jobs())
    alone = Search(Budget(60.0), 0, 1)
    each = [alone.optimise(m, t, hint, cap, model=sub) for sub, t, hint, cap in jobs()]
    assert [a[0] for a in answers] == [e[0] for e in each]
    assert [a[1] for a in answers] == [e[1] for e in each]
    assert together.budget == pytest.approx(alone.budget)
    assert together.budget < together.total
    # One check of the clock starts both; both calls are counted with their work.
    one, two = together.clock.work()["phases"]["prepare"], alone.clock.work()["phases"]["prepare"]
    assert (one["checks"], two["checks"]) == (1, 2)
    assert one["cp_sat_calls"] == two["cp_sat_calls"] == 2
    assert one["deterministic_s_used"] == two["deterministic_s_used"]


class _Clock:
    """Reads 0.0 ``reads`` times, then a time past every deadline."""

    def __init__(self, reads: int) -> None:
        self.reads = reads
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.reads -= 1
            return 0.0 if self.reads >= 0 else 1e9


@pytest.mark.parametrize("reads", [2, 3, 4])
def test_a_round_the_clock_cuts_keeps_what_each_search_reported_and_replays_exactly(
    reads: int,
) -> None:
    _, jobs = _halves(5.0)

    built = jobs()
    uncut = Search(Budget(60.0), 0, 1).optimise_together(built)
    # The budget's start and the round's check read the clock, then each solution either
    # search reports: after ``reads`` readings in all, the clock is spent.
    live = Search(Budget(60.0, clock=_Clock(reads=reads)), 0, 1)
    answers = live.optimise_together(jobs())
    work = live.clock.work()
    cut = work["cut"]
    assert (cut["check"], cut["phase"]) == (0, "prepare")
    counts = cut["at"]["solutions"]
    assert len(counts) == 2
    assert all(c >= 1 for c in counts)  # each reported its hint at least, then stopped
    assert live.budget == 0
    for (found, proven, best), (_, t, hint, _), (full, _, _) in zip(
        answers, built, uncut, strict=True
    ):
        assert not proven
        assert best != best  # NaN: a cut search's bound depends on the moment of the cut
        # What a cut search keeps lies between its hint and what it finds uncut.
        assert sum(full[v] * w for v, w in t) <= sum(found[v] * w for v, w in t)
        assert sum(found[v] * w for v, w in t) <= sum(hint[v] * w for v, w in t)
    again = Search(Budget(60.0, replay=work), 0, 1)
    assert again.optimise_together(jobs()) == answers
    assert again.clock.work() == work


def test_a_solve_that_searches_areas_at_once_repeats_and_replays_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = Problem.from_document(generate(1000, 150, seed=0, family="national"))
    rounds: list[int] = []
    together = Search.optimise_together

    def counted(
        self: Search, jobs: Sequence[Job | Callable[[], Job]]
    ) -> list[tuple[Values, bool, float]]:
        rounds.append(len(jobs))
        return together(self, jobs)

    monkeypatch.setattr(Search, "optimise_together", counted)

    def slow() -> float:  # the deterministic budget, never the wall clock, ends this solve
        return time.perf_counter() / 100

    first = solve(problem, time_limit_s=4, clock=slow)
    assert rounds
    assert 2 in rounds  # two pairs at once (a last pair may be alone)
    assert first.work is not None
    assert "cut" not in first.work
    second = solve(problem, time_limit_s=4, clock=slow)
    assert second.result_bytes() == first.result_bytes()
    replayed = solve(problem, time_limit_s=4, clock=slow, replay=first.work)
    assert replayed.result_bytes() == first.result_bytes()
