"""One wall-clock budget for a solve: every phase stops when it is spent, and a cut run replays.

The clock is injected: a fake one that reads 0 s for its first ``reads`` readings and then far
past any deadline, so a test puts the cut exactly where it wants without real time.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest
from ortools.sat.python import cp_model

from placement import Problem, Solution, SolutionError, solve, verify
from placement.budget import RESERVE_CAP_SHARE, Budget
from placement.generator import generate
from placement.greedy import greedy_placement, improve_soft_cost, insert_by_moves
from placement.instance import Instance
from placement.model import Model
from placement.reduced import improve_by_neighbourhoods
from placement.search import Search


class FakeClock:
    """Reads ``now`` until ``reads`` readings are used up, then ``later``."""

    def __init__(self, reads: int, now: float = 0.0, later: float = 1e9) -> None:
        self.reads = reads
        self.now = now
        self.later = later
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now if self.calls <= self.reads else self.later


def _problem(n: int = 60, s: int = 8, seed: int = 1) -> Problem:
    return Problem.from_document(generate(n, s, seed=seed))


def _spent_budget(time_limit_s: float = 10.0) -> Budget:
    """A budget whose clock is past its deadline from the first check on."""
    return Budget(time_limit_s, clock=FakeClock(reads=1))


def test_a_spent_budget_stops_greedy_improvement_and_insertion_at_once() -> None:
    inst = Instance(_problem())
    full = greedy_placement(inst)
    assert full  # something to stop
    assert greedy_placement(inst, stop=_spent_budget().stop) == {}
    assert greedy_placement(inst, full, stop=_spent_budget().stop) == full
    assert improve_soft_cost(inst, full, stop=_spent_budget().stop) == full
    assert insert_by_moves(inst, {}, stop=_spent_budget().stop) == {}


def test_greedy_stopped_part_way_keeps_a_feasible_part_of_the_full_answer() -> None:
    problem = _problem(700, 40)
    inst = Instance(problem)
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 1  # the second question, after 256 requests

    part = greedy_placement(inst, stop=stop)
    full = greedy_placement(inst)
    assert 0 < len(part) < len(full)
    # Requests are taken in the same order: the part is the start of the full answer.
    assert all(full[ri] == place for ri, place in part.items())


def test_a_spent_budget_gives_the_lp_no_bound_and_cp_sat_no_search() -> None:
    inst = Instance(_problem())
    m = Model(inst, cost_aware=False)
    terms = [(v, -w) for v, w in m.level_terms[3]]
    budget = _spent_budget()
    assert m.relaxation().minimise(terms, budget).integer_bound() is None
    hint = m.values_of(greedy_placement(inst))
    values, proven, best = Search(budget, 0, 1).optimise(m, terms, hint, 1.0)
    assert (values, proven) == (hint, False)
    assert best != best  # NaN: no bound from a search that did not run
    # With time left the same LP solves and gives a bound.
    assert m.relaxation().minimise(terms, Budget(10.0)).integer_bound() is not None


def test_an_lp_cut_by_its_time_limit_gives_no_bound_and_a_replay_skips_it() -> None:
    inst = Instance(_problem(700, 40))
    terms = [(v, -w) for v, w in Model(inst, cost_aware=False).level_terms[3]]
    clock = FakeClock(reads=10**9)
    budget = Budget(10.0, clock=clock)
    clock.now = 10.0 - budget.reserve_s - 0.0005  # half a millisecond left: GLOP gets 1 ms
    m = Model(inst, cost_aware=False)
    assert m.relaxation().minimise(terms, budget).integer_bound() is None
    work = budget.work()
    assert work["cut"] == {"check": 0, "phase": "prepare", "at": {"lp": "time_limit"}}
    again = Budget(10.0, replay=work)
    fresh = Model(inst, cost_aware=False)
    assert fresh.relaxation().minimise(terms, again).integer_bound() is None
    assert again.work() == work


def test_a_spent_budget_stops_the_neighbourhood_search_before_its_first_neighbourhood() -> None:
    inst = Instance(_problem(200, 20, seed=0), pair_limit=100)
    start = greedy_placement(inst, extend=True)
    budget = _spent_budget()
    assert improve_by_neighbourhoods(inst, start, Search(budget, 0, 1)) == start
    assert budget.cut is not None


def test_the_reserve_for_explanations_is_kept_back_and_capped() -> None:
    clock = FakeClock(reads=10**9)
    budget = Budget(10.0, clock=clock)
    budget.keep_for_explanations(requests=200, unplaced=100, shelters=50)
    assert 0 < budget.reserve_s < 10.0
    clock.now = 10.0 - budget.reserve_s - 0.01
    assert not budget.spent()
    clock.now = 10.0 - budget.reserve_s + 0.01  # before the deadline, but inside the reserve
    assert budget.spent()
    assert budget.cut == {"check": 1, "phase": "prepare"}
    assert budget.spent()  # every later check too
    huge = Budget(10.0, clock=FakeClock(reads=10**9))
    huge.keep_for_explanations(requests=10**6, unplaced=10**6, shelters=10**4)
    assert huge.reserve_s == RESERVE_CAP_SHARE * 10.0


def test_time_spent_before_the_solve_began_counts_against_the_limit() -> None:
    clock = FakeClock(reads=10**9, now=100.0)
    on_time = Budget(10.0, clock=clock)
    parsed_first = Budget(10.0, clock=clock, started=93.0)  # 7 s spent reading the problem
    assert on_time.wall_left() == pytest.approx(10.0 - on_time.reserve_s)
    assert parsed_first.wall_left() == pytest.approx(3.0 - parsed_first.reserve_s)
    clock.now = 103.0 - parsed_first.reserve_s + 0.01
    assert parsed_first.spent()
    assert not on_time.spent()


def _solve(problem: Problem, reads: int, **kwargs: Any) -> Solution:
    return solve(problem, time_limit_s=10, clock=FakeClock(reads), **kwargs)


def _assert_replays(problem: Problem, solution: Solution) -> None:
    assert solution.work is not None
    again = solve(
        problem,
        time_limit_s=solution.solver.time_limit_s,
        seed=solution.solver.seed,
        replay=solution.work,
    )
    assert again.result_bytes() == solution.result_bytes()
    assert again.safety_net_expired == solution.safety_net_expired


def test_a_budget_spent_before_the_search_returns_the_baseline_explained_and_replayable() -> None:
    problem = _problem(700, 40)
    # The start, greedy's start, its three checks (requests 0, 256, 512) and its end: spent
    # right after greedy.
    solution = _solve(problem, reads=6)
    assert solution.safety_net_expired
    assert solution.status == "feasible"
    assert solution.work is not None
    assert solution.work["cut"]["phase"] == "levels"
    greedy = solve(problem, method="greedy")
    assert solution.assignments == greedy.assignments
    assert verify(problem, solution) == []
    assert len(solution.assignments) + len(solution.unplaced) == len(problem.requests)
    assert all(u.reasons for u in solution.unplaced)
    _assert_replays(problem, solution)


@pytest.mark.parametrize(("reads", "examined"), [(2, 0), (3, 256), (4, 512)])
def test_a_greedy_pass_the_clock_cuts_reports_the_requests_it_did_not_reach(
    reads: int, examined: int
) -> None:
    problem = _problem(700, 40)
    # The start and greedy's start, then one reading per check of greedy (every 256 requests).
    solution = _solve(problem, reads=reads)
    assert solution.work is not None
    assert solution.work["cut"] == {"check": examined // 256, "phase": "greedy"}
    assert solution.safety_net_expired
    assert solution.status == "feasible"
    order = sorted(problem.requests, key=lambda q: -q.priority)  # stable: document order
    reached = {q.id for q in order[:examined]}
    full = {a.request: a for a in solve(problem, method="greedy").assignments}
    # What it placed is what the full pass places, among the requests it reached.
    assert {a.request for a in solution.assignments} <= reached
    assert all(full.get(a.request) == a for a in solution.assignments)
    everywhere = tuple(sorted(s.id for s in problem.shelters))
    skipped = [u for u in solution.unplaced if u.request not in reached]
    assert len(skipped) == len(problem.requests) - examined
    assert all(
        [(r.code, r.shelters, r.by) for r in u.reasons] == [("not_examined", everywhere, ())]
        for u in skipped
    )
    # The ones it reached and left unplaced are explained in full.
    assert all(
        u.reasons[0].code != "not_examined" for u in solution.unplaced if u.request in reached
    )
    assert verify(problem, solution) == []
    _assert_replays(problem, solution)


def test_verify_refuses_not_examined_in_a_run_the_clock_did_not_cut() -> None:
    problem = _problem(700, 40)
    cut = _solve(problem, reads=3)
    uncut = solve(problem, time_limit_s=10, replay={})  # a replay of nothing: never cut
    assert uncut.unplaced
    skipped = next(u for u in cut.unplaced if u.reasons[0].code == "not_examined")
    first = uncut.unplaced[0]
    forged = dataclasses.replace(
        uncut,
        unplaced=(dataclasses.replace(first, reasons=skipped.reasons), *uncut.unplaced[1:]),
    )
    assert any(
        "not_examined in a run the wall clock did not cut" in v for v in verify(problem, forged)
    )
    partial = dataclasses.replace(skipped.reasons[0], shelters=skipped.reasons[0].shelters[1:])
    broken = dataclasses.replace(
        cut,
        unplaced=tuple(
            dataclasses.replace(u, reasons=(partial,)) if u is skipped else u for u in cut.unplaced
        ),
    )
    assert any("names every shelter" in v for v in verify(problem, broken))


@pytest.mark.parametrize("seed", [1, 2])
def test_wherever_the_clock_cuts_the_answer_is_valid_and_replays_byte_for_byte(
    seed: int,
) -> None:
    problem = _problem(60, 8, seed=seed)
    uncut = solve(problem, time_limit_s=10)
    assert uncut.work is not None
    assert "cut" not in uncut.work
    assert "levels" in _cut_at_a_spread(problem, uncut, 12)


def _cut_at_a_spread(problem: Problem, uncut: Solution, points: int) -> set[str]:
    """Cut at a spread of clock readings, from the first to the last one the solve makes.

    Each answer is valid; an uncut one is ``uncut`` byte for byte, a cut one is feasible and
    replays byte for byte. Returns the phases the cuts fell in.
    """
    reads = FakeClock(10**9)
    solve(problem, time_limit_s=10, clock=reads)
    phases: set[str] = set()
    for n in sorted({1, 2, 3, 5, 8, *range(10, reads.calls + 1, max(1, reads.calls // points))}):
        solution = _solve(problem, reads=n)
        assert verify(problem, solution) == []
        assert solution.work is not None
        if "cut" not in solution.work:
            assert solution.result_bytes() == uncut.result_bytes()
            continue
        assert solution.safety_net_expired
        assert solution.status == "feasible"
        phases.add(solution.work["cut"]["phase"])
        _assert_replays(problem, solution)
    return phases


def test_a_reduced_solve_cut_anywhere_is_valid_and_replays_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The widening LP, the levels and the neighbourhoods of a reduced instance, cut anywhere."""
    from placement import instance

    problem = Problem.from_document(generate(300, 30, 0, family="rings"))
    monkeypatch.setattr(instance, "PAIR_LIMIT", 10)
    monkeypatch.setattr(instance, "MIN_KEPT", 1)
    assert Instance(problem).reduced
    uncut = solve(problem, time_limit_s=10)
    assert uncut.work is not None
    assert "cut" not in uncut.work
    assert uncut.work["phases"]["widen"]["lp_solves"] > 0
    _assert_replays(problem, uncut)
    assert {"widen", "levels"} <= _cut_at_a_spread(problem, uncut, 16)


def _knapsack() -> tuple[cp_model.CpModel, list[tuple[int, int]]]:
    """A small 3-dimensional knapsack on which CP-SAT reports several improving solutions."""
    rng = random.Random(7)
    model = cp_model.CpModel()
    xs = [model.new_int_var(0, 1, f"x{i}") for i in range(60)]
    for _ in range(3):
        weights = [rng.randint(10, 99) for _ in xs]
        model.add(sum(w * x for w, x in zip(weights, xs, strict=True)) <= sum(weights) // 3)
    return model, [(i, -rng.randint(10, 99)) for i in range(len(xs))]


@pytest.mark.parametrize("reads", [2, 3, 4])
def test_a_cp_sat_search_cut_after_some_solutions_replays_to_the_same_solution(
    reads: int,
) -> None:
    model, terms = _knapsack()
    m = Model(Instance(_problem(10, 3)), cost_aware=False)  # only its searches' parameters
    start = [0] * len(terms)
    full = Search(Budget(10.0), 0, 1).optimise(m, terms, start, 1.0, model=model, hint=False)
    assert full[1]  # proven, when nothing cuts it
    # Live: the clock (read at the start and by the step) is spent after reads - 2 solutions.
    live = Search(Budget(10.0, clock=FakeClock(reads)), 0, 1)
    values, proven, best = live.optimise(m, terms, start, 1.0, model=model, hint=False)
    assert not proven
    assert best != best  # NaN: a cut search's bound depends on the moment of the cut
    work = live.clock.work()
    assert work["cut"]["at"] == {"solutions": reads - 1}
    again = Search(Budget(10.0, replay=work), 0, 1)
    assert again.optimise(m, terms, start, 1.0, model=model, hint=False)[0] == values
    assert again.clock.work() == work


def test_an_uncut_run_records_its_work_and_replays_without_reading_the_clock() -> None:
    problem = _problem()
    solution = solve(problem, time_limit_s=10)
    assert solution.work is not None
    assert not solution.safety_net_expired
    assert solution.work["deterministic_s"] == 5
    assert solution.work["checks"] > 0
    never = FakeClock(reads=0)  # past every deadline: a replay must not look at it for cuts
    again = solve(problem, time_limit_s=10, clock=never, replay=solution.work)
    assert again.result_bytes() == solution.result_bytes()
    assert not again.safety_net_expired


def test_the_work_record_goes_through_the_document_and_must_be_an_object() -> None:
    problem = _problem(30, 5)
    solution = _solve(problem, reads=2)
    doc = json.loads(json.dumps(solution.to_document()))
    keys = list(doc)
    assert keys.index("work") == keys.index("bound") + 1
    parsed = Solution.from_document(doc)
    assert parsed.work == solution.work
    assert parsed.result_bytes() == solution.result_bytes()
    doc["work"] = []
    with pytest.raises(SolutionError, match="work"):
        Solution.from_document(doc)
