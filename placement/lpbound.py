"""LP-relaxation bounds on people placed, over every viable pair of the problem (for the bench).

Internal to the package. The LP relaxation of the placement model (counts per request group
and shelter, beds per unit, each group at most its size) is solved by GLOP on a restricted set
of pairs — at first the pairs of the (possibly reduced) model — and then priced against every
viable pair: with unit prices ``π ≥ 0`` (capacity duals) and level prices ``λ ≥ 0``, a pair
(group ``g``, shelter ``s``) gains ``c_g + λ size_g - Σ_b size_b min_{u admits b} π_u`` per
request, and by weak duality

    bound = Σ_u π_u free_u + Σ_g n_g max(0, best gain of g) - Σ_q λ_q floor_q

holds for any such prices, whatever the restricted set. Pairs that gain are added and the LP
solved again, a few rounds; the bound is always the one recomputed from the last duals, so an
inexact or unconverged LP only makes it weaker, never wrong.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.linear_solver import pywraplp

from placement.budget import Budget
from placement.instance import Instance, Pair, Placement
from placement.lpfix import solve_glop
from placement.problem import PRIORITIES

ROUNDS = 12
"""Pricing rounds at most; the bound stays valid when they run out."""
ADD_PER_GROUP = 8
"""Gaining pairs added per group and round."""
PRICE_CHECK_EVERY = 256
"""Groups priced between two checks of a budget (a pricing round is pure Python)."""
PENALTY = 1e5
"""Objective cost per person of a floor not met by the restricted pairs."""


@dataclass
class _Group:
    priority: int
    rep: int  # a request of the group (all alike for the rules, so for every pair)
    count: int
    requests: list[int]
    sizes: tuple[int, ...]
    shelters: set[int] = field(default_factory=set)


def _groups(inst: Instance, min_priority: int) -> list[_Group]:
    """Requests alike for the LP: same priority, shelter-level fields and member profile."""
    by_key: dict[tuple[int, int, int], _Group] = {}
    requests = inst.problem.requests
    for ri, q in enumerate(requests):
        # A request without pairs has no viable shelter at all (a reduced model keeps the
        # cheapest viable ones).
        if q.priority < min_priority or not inst.pairs[ri]:
            continue
        key = (q.priority, inst.request_key(ri), inst.profile[ri])
        g = by_key.get(key)
        if g is None:
            g = _Group(q.priority, ri, 0, [], tuple(len(b) for b in inst.blocks[ri]))
            by_key[key] = g
        g.count += 1
        g.requests.append(ri)
        g.shelters.update(p.shelter for p in inst.pairs[ri])
    return list(by_key.values())


def people_bound(
    inst: Instance, objective: Sequence[int], floors: dict[int, int] | None = None
) -> float:
    """LP bound on ``Σ_g objective[priority] * people placed`` over every viable pair.

    Args:
        inst: The prepared problem (its pairs are the first restricted set).
        objective: Weight per priority 5..1 (index ``5 - p``), ≥ 0.
        floors: ``{priority: people}`` that must be placed at least (e.g. a solution's counts
            at the higher priorities).

    Returns:
        An upper bound on the objective of every placement meeting the floors (``inf`` when
        GLOP fails).
    """
    return _people_lp(inst, objective, floors)[0]


Support = list[tuple[list[int], int, float]]
"""The LP solution's positive values: (the requests of a group, shelter, requests placed)."""


def _people_lp(
    inst: Instance,
    objective: Sequence[int],
    floors: dict[int, int] | None = None,
    budget: Budget | None = None,
) -> tuple[float, Support]:
    """:func:`people_bound`, and the last restricted LP's solution (empty when not solved).

    With a ``budget``, each GLOP solve is a step of it (the seconds left as GLOP's limit), and
    the bound so far is returned, without a solution, when the clock cut one or it was spent.
    """
    floors = floors or {}
    weights = {p: objective[5 - p] for p in PRIORITIES}
    lowest = min([p for p in PRIORITIES if weights[p] > 0] + list(floors), default=1)
    groups = _groups(inst, lowest)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return math.inf, []
    columns: list[tuple[int, int, pywraplp.Variable]] = []
    units = [(si, u) for si, free in enumerate(inst.free) for u in range(len(free))]
    cap = {k: solver.Constraint(0.0, float(inst.free[k[0]][k[1]])) for k in units}
    rows = [solver.Constraint(0.0, float(g.count)) for g in groups]
    level = {p: solver.Constraint(float(v), solver.infinity()) for p, v in floors.items()}
    obj = solver.Objective()
    obj.SetMaximization()
    # The restricted pairs may not meet the floors yet: a penalised slack keeps the LP feasible
    # (its duals are still valid prices; only the pricing decides the bound).
    for c in level.values():
        slack = solver.NumVar(0.0, solver.infinity(), "")
        c.SetCoefficient(slack, 1.0)
        obj.SetCoefficient(slack, -PENALTY)

    def add(gi: int, si: int) -> None:
        g = groups[gi]
        cands = inst.viable(g.rep, si)
        assert cands is not None
        x = solver.NumVar(0.0, float(g.count), "")
        columns.append((gi, si, x))
        size = sum(g.sizes)
        obj.SetCoefficient(x, float(weights[g.priority] * size))
        rows[gi].SetCoefficient(x, 1.0)
        if g.priority in level:
            level[g.priority].SetCoefficient(x, float(size))
        for b, units_b in enumerate(cands):
            if len(units_b) == 1:
                c = cap[(si, units_b[0])]
                c.SetCoefficient(x, c.GetCoefficient(x) + g.sizes[b])
                continue
            link = solver.Constraint(0.0, 0.0)
            link.SetCoefficient(x, -1.0)
            for u in units_b:
                y = solver.NumVar(0.0, float(g.count), "")
                link.SetCoefficient(y, 1.0)
                cap[(si, u)].SetCoefficient(y, float(g.sizes[b]))

    for gi, g in enumerate(groups):
        for si in sorted(g.shelters):
            add(gi, si)
    bound = math.inf
    for _ in range(ROUNDS):
        if solve_glop(solver, budget) != pywraplp.Solver.OPTIMAL:
            return bound, []
        pi = {k: max(0.0, c.dual_value()) for k, c in cap.items()}
        lam = {p: max(0.0, -c.dual_value()) for p, c in level.items()}
        value = sum(pi[k] * inst.free[k[0]][k[1]] for k in units)
        value -= sum(lam[p] * floors[p] for p in floors)
        price_cache: dict[tuple[int, int], float] = {}
        gaining: list[tuple[int, list[int]]] = []
        for gi, g in enumerate(groups):
            if budget is not None and gi % PRICE_CHECK_EVERY == 0 and budget.spent():
                return bound, []
            gain_base = (weights[g.priority] + lam.get(g.priority, 0.0)) * sum(g.sizes)
            prices: dict[int, float] = {}
            for si in inst.eligible(g.rep):
                key = (inst.profile[g.rep], si)
                pr = price_cache.get(key)
                if pr is None:
                    cands = inst.viable(g.rep, si)
                    pr = (
                        math.inf
                        if cands is None
                        else sum(
                            s * min(pi[(si, u)] for u in units_b)
                            for s, units_b in zip(g.sizes, cands, strict=True)
                        )
                    )
                    price_cache[key] = pr
                if pr < math.inf:
                    prices[si] = pr
            if not prices:
                continue
            best = min(prices.values())
            gain = gain_base - best
            if gain > 0:
                value += g.count * gain
                new = [
                    si
                    for si in heapq.nsmallest(ADD_PER_GROUP, prices, key=prices.__getitem__)
                    if si not in g.shelters and gain_base - prices[si] > 1e-9 * (1 + gain_base)
                ]
                if new:
                    gaining.append((gi, new))
        bound = min(bound, value)
        if not gaining or bound <= solver.Objective().Value() + 1e-6:
            break
        for gi, new in gaining:
            groups[gi].shelters.update(new)
            for si in new:
                add(gi, si)
    support = [(groups[gi].requests, si, x.solution_value()) for gi, si, x in columns]
    return bound, [(requests, si, v) for requests, si, v in support if v > 1e-6]


def level_bounds(inst: Instance, placed: Sequence[int]) -> tuple[int, ...]:
    """Per priority 5..1, an LP bound on people placed of that priority.

    Over placements that place at least ``placed`` at every higher priority: the reading of a
    solution's ``bound`` (docs/solver.md).
    """
    out = []
    for p in PRIORITIES:
        objective = [1 if q == p else 0 for q in PRIORITIES]
        floors = {q: placed[5 - q] for q in PRIORITIES if q > p}
        out.append(math.floor(people_bound(inst, objective, floors) + 1e-6))
    return tuple(out)


def total_bound(inst: Instance) -> int:
    """LP bound on people placed, all priorities alike."""
    return math.floor(people_bound(inst, [1, 1, 1, 1, 1]) + 1e-6)


def widen_pairs(inst: Instance, placement: Placement, budget: Budget) -> int:
    """Give a reduced instance's requests the pairs an LP optimum of their first open level uses.

    A reduced instance keeps each request's cheapest shelters, and its model's optimum can lie
    well below the problem's (rings, 10,000x1,000, priority 3: LP bound 6,685 on the kept pairs
    against 6,859 on every viable pair). Level by level from priority 5, given ``placement``'s
    counts at the levels above, the LP of :func:`people_bound` is solved over every viable pair;
    at the first level where it leaves room above ``placement``, each group's positive values
    are dealt to its requests (for each shelter, largest value first, ``ceil(value)`` requests:
    those holding that shelter already, then the others in document order), and a request
    dealt a shelter it does not hold gets that pair. The model built after it can then hold the
    LP's solution, so its relaxation reaches the full bound. Returns the pairs added (none when
    every level is at its bound or the budget ran out first). Deterministic.
    """
    placed = inst.placed_by_priority(placement)
    for p in PRIORITIES:
        if budget.spent():
            return 0
        floors = {q: placed[5 - q] for q in PRIORITIES if q > p}
        bound, support = _people_lp(inst, [1 if q == p else 0 for q in PRIORITIES], floors, budget)
        if not support:
            return 0
        if math.floor(bound + 1e-6) > placed[5 - p]:
            return _deal(inst, support)
    return 0


def _deal(inst: Instance, support: Support) -> int:
    by_group: dict[int, tuple[list[int], list[tuple[float, int]]]] = {}
    for requests, si, value in support:
        by_group.setdefault(id(requests), (requests, []))[1].append((value, si))
    added = 0
    for requests, values in by_group.values():
        dealt: set[int] = set()
        for value, si in sorted(values, key=lambda e: (-e[0], e[1])):
            need = math.ceil(value - 1e-6)
            holding = [
                r
                for r in requests
                if r not in dealt and any(pair.shelter == si for pair in inst.pairs[r])
            ]
            took = holding[:need]
            held = set(holding)
            for r in requests:
                if len(took) >= need:
                    break
                if r in dealt or r in held:
                    continue
                cands = inst.viable(r, si)
                if cands is None:
                    continue
                inst.pairs[r].append(Pair(r, si, inst.pair_cost(r, si), cands))
                added += 1
                took.append(r)
            dealt.update(took)
    return added
