"""Large problems: a reduced model widened by an LP, its levels, then its neighbourhoods."""

from __future__ import annotations

from placement.greedy import greedy_placement, improve_soft_cost, insert_by_moves
from placement.instance import Instance, Pair, Placement
from placement.levels import solve_levels
from placement.lpbound import widen_pairs
from placement.model import Model, Run, Values, key
from placement.problem import PRIORITIES
from placement.search import Search

NEIGHBOURHOOD_CAP = 0.5
"""Deterministic seconds at most for one neighbourhood of a reduced model's local search."""
NEIGHBOURHOOD_ROUNDS = 1
"""Passes over the neighbourhoods at most (a pass that places nobody more ends the search)."""
NEIGHBOURHOOD_KEEP_SHARE = 0.1
"""The neighbourhood search ends early when fewer than this share of ``time_limit_s`` is left on
the wall clock (a recorded stop): the completion and the local repair after it need time too."""


def solve_reduced(inst: Instance, greedy: Placement, search: Search) -> Run:
    """Levels on a reduced instance (large problems), never lexicographically below greedy.

    First the pairs an LP optimum uses join the kept ones (:func:`placement.lpbound.
    widen_pairs`: the model's relaxation then reaches the bound over every viable pair), then
    the levels as on a full model (:func:`placement.levels.solve_levels`: per level the LP, its
    rounding, the insertion and the search by areas; no search on the whole model, too large
    to pay, and no soft-cost model). Then ``insert_by_moves`` places more requests by moving
    placed ones, the neighbourhood search (:func:`improve_by_neighbourhoods`) re-solves one
    region at a time for more people (no priority falls in either), the greedy baseline fills
    what room is left and ``improve_soft_cost`` lowers the soft cost; the greedy baseline,
    repaired the same way, is the answer if it is lexicographically better. A reduced model
    proves nothing about the problem: the status is always ``feasible`` and the bounds are the
    trivial ones.
    """
    stop = search.clock.stop
    with search.clock.phase_of("widen"):
        widen_pairs(inst, greedy, search.clock)
    placement = solve_levels(inst, greedy, search, soft=False).placement
    with search.clock.phase_of("insert"):
        placement = insert_by_moves(inst, placement, stop=stop)
    with search.clock.phase_of("neighbourhoods"):
        placement = improve_by_neighbourhoods(inst, placement, search)
    with search.clock.phase_of("complete"):
        placement = greedy_placement(inst, placement, stop=stop)
        placement = improve_soft_cost(inst, placement, stop=stop)
        baseline = improve_soft_cost(inst, greedy, stop=stop)
    if key(inst, baseline) > key(inst, placement):
        placement = baseline
    return Run(
        placement=placement,
        proven=False,
        bound=inst.trivial_bound(),
        soft_bound=0,
        safety_net_expired=search.expired,
    )


def improve_by_neighbourhoods(inst: Instance, placement: Placement, search: Search) -> Placement:
    """Place more people by re-solving one neighbourhood at a time (reduced models).

    Each neighbourhood (:func:`placement.neighbourhood.shelter_neighbourhoods`: a region, or a
    slice of a large one) is a small cost-blind model (:func:`placement.neighbourhood.
    neighbourhood`): the requests placed there may move within it or to one of their kept
    shelters with room outside it, and the unplaced requests with a viable shelter there may
    come in. Each priority keeps at least the people it has placed there now, so none can
    fall, but a request may make way for more people of its own priority; CP-SAT maximises the
    people placed, a person of priority ``p`` weighing ``2^(p-1)``, within
    ``NEIGHBOURHOOD_CAP`` deterministic seconds. Only a strictly better answer replaces the
    requests' places (requests of a group that were placed are placed again first, where they
    were if the counts allow; those left over leave), so every step is a lexicographic gain.
    Up to ``NEIGHBOURHOOD_ROUNDS`` passes; one without a gain ends the search.
    Deterministic up to the wall clock: each neighbourhood is a check of the budget, and the
    search ends early (a recorded stop) when fewer than ``NEIGHBOURHOOD_KEEP_SHARE *
    time_limit_s`` seconds are left, for the completion after it. Pairs used beyond the kept
    ones join ``inst.pairs``.
    """
    return _neighbourhood_rounds(inst, placement, search)


def _neighbourhood_rounds(inst: Instance, placement: Placement, search: Search) -> Placement:
    from placement.neighbourhood import Occupancy, neighbourhood, shelter_neighbourhoods

    occupancy = Occupancy(inst, placement)
    areas = shelter_neighbourhoods(inst.problem)
    for _ in range(NEIGHBOURHOOD_ROUNDS):
        gained = False
        for shelters in areas:
            keep = NEIGHBOURHOOD_KEEP_SHARE * search.clock.time_limit_s
            if search.clock.spent(keep) or search.budget <= 0:
                return occupancy.placement
            view, current = neighbourhood(inst, occupancy, shelters)
            m = Model(view, cost_aware=False)
            # No priority may fall here: each keeps at least the people it has placed now. A
            # request may make way for more people of its priority (a family for one person),
            # which "each group keeps its count" forbade.
            for p, count in zip(PRIORITIES, inst.placed_by_priority(current), strict=True):
                if count:
                    m.at_least(m.level_terms[p], count)
            terms = [(v, -w * 2 ** (p - 1)) for p in PRIORITIES for v, w in m.level_terms[p]]
            hint = m.values_of(current)
            # Without the hint: the hint phase was the slower half of these small searches
            # (10,000x1,000: 0.70 instead of 1.47 deterministic seconds for all, same answers).
            values, _, _ = search.optimise(
                m, terms, hint, min(NEIGHBOURHOOD_CAP, search.budget), hint=False
            )
            if sum(values[v] * w for v, w in terms) >= sum(hint[v] * w for v, w in terms):
                continue
            changes = _decode_keeping(m, values, current)
            occupancy.remove(current.keys() - changes.keys())
            for ri, (si, _) in changes.items():
                if all(p.shelter != si for p in inst.pairs[ri]):
                    cands = inst.viable(ri, si)
                    assert cands is not None
                    inst.pairs[ri].append(Pair(ri, si, inst.pair_cost(ri, si), cands))
            occupancy.update(changes)
            gained = True
        if not gained:
            break
    return occupancy.placement


def _decode_keeping(m: Model, values: Values, current: Placement) -> Placement:
    """Decode ``values`` like :meth:`Model.placement_from`, moving as few requests as possible.

    Per group and shelter, the requests already there take the places first (their units too
    when the counts allow), then the group's other placed requests, then its unplaced ones in
    document order.
    """
    out: Placement = {}
    for g in m.groups:
        counts = [values[n] for n in g.n]
        takers: list[list[int]] = [[] for _ in g.pairs]
        taken: set[int] = set()
        for k, pair in enumerate(g.pairs):
            for ri in g.requests:
                here = current.get(ri)
                if here is not None and here[0] == pair.shelter and len(takers[k]) < counts[k]:
                    takers[k].append(ri)
                    taken.add(ri)
        placed = [ri for ri in g.requests if ri in current and ri not in taken]
        queue = iter(placed + [ri for ri in g.requests if ri not in current])
        for k in range(len(g.pairs)):
            while len(takers[k]) < counts[k]:
                takers[k].append(next(queue))
        for k, pair in enumerate(g.pairs):
            left = {b: {u: values[y] for u, y in ys.items()} for b, ys in g.y[k].items()}
            dealt: list[tuple[int, list[int]]] = []
            for ri in takers[k]:
                here = current.get(ri)
                if here is not None and here[0] == pair.shelter:
                    same = all(left[b].get(here[1][b], 0) > 0 for b in left)
                    if same:
                        for b in left:
                            left[b][here[1][b]] -= 1
                        out[ri] = here
                        continue
                dealt.append((ri, []))
            for ri, choice in dealt:
                for b, cands in enumerate(pair.candidates):
                    if len(cands) == 1:
                        choice.append(cands[0])
                        continue
                    u = next(u for u, c in left[b].items() if c > 0)
                    left[b][u] -= 1
                    choice.append(u)
                out[ri] = (pair.shelter, tuple(choice))
    return out
