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

from placement.instance import Instance
from placement.problem import PRIORITIES

ROUNDS = 12
"""Pricing rounds at most; the bound stays valid when they run out."""
ADD_PER_GROUP = 8
"""Gaining pairs added per group and round."""
PENALTY = 1e5
"""Objective cost per person of a floor not met by the restricted pairs."""


@dataclass
class _Group:
    priority: int
    rep: int  # a request of the group (all alike for the rules, so for every pair)
    count: int
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
            g = _Group(q.priority, ri, 0, tuple(len(b) for b in inst.blocks[ri]))
            by_key[key] = g
        g.count += 1
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
    floors = floors or {}
    weights = {p: objective[5 - p] for p in PRIORITIES}
    lowest = min([p for p in PRIORITIES if weights[p] > 0] + list(floors), default=1)
    groups = _groups(inst, lowest)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return math.inf
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
        if solver.Solve() != pywraplp.Solver.OPTIMAL:
            return bound
        pi = {k: max(0.0, c.dual_value()) for k, c in cap.items()}
        lam = {p: max(0.0, -c.dual_value()) for p, c in level.items()}
        value = sum(pi[k] * inst.free[k[0]][k[1]] for k in units)
        value -= sum(lam[p] * floors[p] for p in floors)
        price_cache: dict[tuple[int, int], float] = {}
        gaining: list[tuple[int, list[int]]] = []
        for gi, g in enumerate(groups):
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
    return bound


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
