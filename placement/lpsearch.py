"""One level (or the soft cost) searched with its LP relaxation's help: bound, rounding, search."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from placement.greedy import greedy_placement, insert_by_moves
from placement.instance import Placement
from placement.lpfix import Restore, restore
from placement.model import Model, Terms, Values
from placement.search import Job, Search

NEIGHBOURHOOD_SHARE = 0.25
"""Share of a level's budget for the first search around the LP solution and the incumbent."""
WIDE_SHARE = 0.75
"""Share of a level's budget for the wider neighbourhood (:meth:`Model.open_groups`)."""
AREA_SHARE = 0.75
"""Share of a level's budget for the search by areas (:func:`area_search`). With two pairs at
a time the areas' pass ended at 0.5 on rings, 2,000x300, level 3, before its last pairs
(1,491 people; at 0.75 the whole pass, 1,495; the wide neighbourhood after it found nothing
there in either case)."""
AREA_CAP = 0.25
"""Deterministic seconds at most for one pair of areas of :func:`area_search`, for a model of
up to :data:`AREA_CAP_VARIABLES` variables; a larger model's pairs get proportionally more
(a pair's model grows with it: at 10,000x1,000, 370,000 variables, 0.25 found nothing in any
pair at priority 3, 0.6 +12 on national and +5 on rings, 1.0 +5 and +16)."""
AREA_CAP_VARIABLES = 150_000
"""The size of model :data:`AREA_CAP` was measured on (2,000x300: 90,000-145,000 variables)."""


SEARCH_DET_PER_VARIABLE = 1e-5
"""The soft cost's window and full searches run only with at least this many deterministic
seconds of budget per model variable (1 s per 100,000 variables)."""
LEVEL_DET_PER_VARIABLE = 4e-5
"""A level's narrowed full search runs only with at least this many deterministic seconds of
budget per model variable; below, the neighbourhood searches are the level's search."""
GUESS_GAP = 0.02
"""First try of the soft level: keep only solutions within this share above the LP bound."""


def lp_search(
    search: Search,
    m: Model,
    terms: Terms,
    placement: Placement,
    better: Callable[[Placement, Placement], bool],
    cap: float,
    *,
    whole: bool = True,
) -> tuple[Placement, bool, float]:
    """Minimise ``terms`` from the feasible ``placement`` with the LP relaxation's help; exact.

    1. GLOP solves the LP relaxation once: a valid lower bound, reduced costs and a solution.
    2. The LP solution, rounded and completed (:meth:`Model.rounded`), replaces the start
       when ``better(rounded, start)`` (it must then be feasible for the model).
    3. Levels: a short search on the neighbourhood of the LP solution and the start (every
       variable both leave at zero stays there) looks for a better incumbent fast.
    4. Every variable is narrowed by its reduced cost so that every solution better than the
       incumbent survives (the incumbent too, as the hint): proving the narrowed model's
       optimum proves the model's. Soft cost, when the incumbent is far above the LP bound: a
       first search, without the hint, keeps only the solutions within ``GUESS_GAP`` of the
       bound: an optimum proven inside that window is the model's, else its best solution
       narrows the model again.

    The search stops at ``cap`` deterministic seconds (of ``search.budget``) in all. Without
    ``whole``, no search runs on the whole model (nor its neighbourhoods of step 3): a level
    then gets the rounding, the insertion and the search by areas only.
    Returns the best placement, whether it is proven optimal, and a valid lower bound.
    """
    model = m.model
    stop = search.budget - cap

    def cost(values: Values) -> int:
        return sum(values[v] * w for v, w in terms)

    def left() -> float:
        return max(0.0, search.budget - stop)

    # Each piece of Python work below costs up to a second at 2,000x300 (building the LP,
    # rounding, copying the model): the clock is asked before each.
    if search.out_of_time():
        return placement, False, math.nan
    values = m.values_of(placement)
    current = cost(values)
    rc = m.relaxation().minimise(terms, search.clock)
    lp = rc.integer_bound()
    if lp is None:
        if not whole:
            return placement, False, math.nan
        values, proven, best = search.optimise(m, terms, values, cap, presolve=not m.cost_aware)
        return m.placement_from(values), proven, best
    if current <= lp:  # nothing to round for (levels 5 and 4 at 2,000x300: greedy meets it)
        return placement, True, float(current)
    # The start's variables stay free in the first neighbourhood when the rounding replaces
    # it: from the rounding alone, whose support is the LP's, that neighbourhood is the
    # rounding's own optimum (rings, 2,000x300, level 3: 1,464 proven there, 1,488 after the
    # areas; with the start's variables free too, 1,477 there and 1,495 after the areas).
    start: set[int] = set()
    if rc.x and not search.out_of_time():
        rounded = m.rounded(rc.x, stop=search.clock.stop)
        if better(rounded, placement):
            start = {j for j, v in enumerate(values) if v}
            placement, values = rounded, m.values_of(rounded)
            current = cost(values)
    if current <= lp:
        return placement, True, float(current)
    # The soft cost's incumbent usually lies far above the LP bound: a window just above the
    # bound is searched first. The levels' LP bounds are tight and a window without the
    # incumbent found nothing there (2,000x300, priority 3): they search around the LP instead.
    guess = lp + GUESS_GAP * abs(lp) + 1
    # A budget far below the model's size pays CP-SAT's loading of the whole model (about 1 s
    # of wall time per search for the 245,833 variables of 2,000x300's soft model, counted as
    # almost no deterministic time) for nothing found: only the neighbourhood search runs then.
    per_variable = SEARCH_DET_PER_VARIABLE if m.cost_aware else LEVEL_DET_PER_VARIABLE
    thorough = cap >= per_variable * len(m.bounds)
    window = m.cost_aware and guess < current - 1 and thorough

    def nearby_search(values: Values, free: set[int] | None = None) -> Values:
        # A search around the LP optimum and the incumbent finds good solutions fast.
        if search.out_of_time() or not whole:
            return values
        nearby_model = rc.restricted(dict(enumerate(values)), start if free is None else free)
        share = NEIGHBOURHOOD_SHARE if free is None else WIDE_SHARE
        nearby, _, _ = search.optimise(
            m, terms, values, min(share * cap, left()), model=nearby_model
        )
        return nearby if cost(nearby) < cost(values) else values

    if not window:
        values = nearby_search(values)
        current = cost(values)
        if current <= lp:
            return m.placement_from(values), True, float(current)
        if not m.cost_aware and not search.out_of_time() and left() > 0:
            # Stuck around the LP: first the greedy module's insertion, which moves a placed
            # request aside where that makes room, then two areas at a time with everything
            # else kept (rings, 2,000x300, level 3: 1,457 -> 1,476 in 0.3 s, then +4..8 per
            # pair of areas in 0.4-0.5 s each, where the wide neighbourhood below found +3
            # in 1.5 deterministic seconds, 2.4 s of wall time).
            inserted = m.values_of(
                greedy_placement(
                    m.inst,
                    insert_by_moves(
                        m.inst, m.placement_from(values), stop=search.clock.stop, beyond=False
                    ),
                )
            )
            if cost(inserted) < cost(values):
                values = inserted
            values = area_search(search, m, terms, values, min(AREA_SHARE * cap, left()), lp)
            current = cost(values)
            if current <= lp:
                return m.placement_from(values), True, float(current)
        if not m.cost_aware and not search.out_of_time() and left() > 0:
            # The LP's support and the incumbent's hold no better solution: open every shelter
            # and unit of the groups the LP splits or that still wait for a place (2,000x300,
            # priority 3: 1,524 → 1,526, the LP bound, where the first neighbourhood is stuck).
            values = nearby_search(values, m.open_groups(rc.x, values, terms))
            current = cost(values)
            if current <= lp:
                return m.placement_from(values), True, float(current)
    if not thorough or not whole:  # the neighbourhood search above was all
        return m.placement_from(values), False, float(lp)
    narrowed: Restore = []
    try:
        keep = dict(enumerate(values))
        narrowed += rc.tighten(current - 1, keep)
        if window and not search.out_of_time():
            # Without the incumbent as hint (it lies outside the window): at 500x60 the
            # window then proved in 0.30 instead of 0.44 deterministic seconds.
            saved = rc.tighten(guess)
            incumbent = values
            values, proven, best = search.optimise(
                m, terms, values, 0.5 * left(), presolve=False, hint=False
            )
            restore(model, saved)
            reached = cost(values)
            if proven and reached <= guess:
                return m.placement_from(values), True, float(reached)
            if reached >= current:
                # The window's own optimum may lie above the guess and the incumbent.
                values, reached = incumbent, current
            # Not proven in the window: the neighbourhood search (skipped before the window,
            # which does not start from the incumbent) improves the incumbent for what follows.
            if not search.out_of_time() and left() > 0:
                values = nearby_search(values)
                reached = cost(values)
            if reached < current:
                current = reached
                narrowed += rc.tighten(current - 1, dict(enumerate(values)))
        if search.out_of_time() or left() <= 0:
            return m.placement_from(values), False, float(lp)
        # Presolve pays on the cost-blind level models (2,000x300: 4.7 instead of 15 s of wall
        # time for the same deterministic second) but not on the narrowed soft-cost model.
        values, proven, best = search.optimise(m, terms, values, left(), presolve=not m.cost_aware)
    finally:
        restore(model, narrowed)
    # Every solution better than the incumbent survived the narrowing, so the optimum is at
    # least min(CP-SAT's bound, incumbent) and at least the LP bound.
    low = float(lp)
    if math.isfinite(best):
        low = max(low, min(best, float(current)))
    return m.placement_from(values), proven, min(low, float(cost(values)))


def area_search(
    search: Search, m: Model, terms: Terms, values: Values, cap: float, target: int
) -> Values:
    """Improve ``values`` two areas at a time, every other shelter's pairs kept as they are.

    The areas are :func:`placement.neighbourhood.shelter_neighbourhoods` (regions, large ones
    sliced, small ones packed), in their order; area ``i`` is searched with area ``i + 1`` (the
    last with the first), each pair within :data:`AREA_CAP` deterministic seconds (more on a
    model larger than :data:`AREA_CAP_VARIABLES`), on the model
    of their pairs alone (:meth:`Model.area`), every other variable fixed at its value.
    Requests there may leave, move between the two or come in from the unplaced, so a request
    of the level may make way for a larger one; the rows fixing the levels above keep them.
    Two pairs that share no area are searched at the same time, one CP-SAT call on each core
    (:meth:`Search.optimise_together`); a row both read (a group whose requests may go to
    either, a level's floor) is split between them (:meth:`Model.area_shares`), so their
    answers fit together (checked again before the second is taken). One pass, ended early when
    ``terms`` reach ``target`` (the LP bound), when ``cap`` deterministic seconds are spent, or
    after half the pairs in a row without a gain. Exact work, so deterministic; never worse
    than ``values``. Fewer than three areas: nothing to do (the wider neighbourhood of
    :func:`lp_search` covers them).
    """
    from placement.neighbourhood import shelter_neighbourhoods

    areas = shelter_neighbourhoods(m.inst.problem)
    if len(areas) < 3 or search.out_of_time():
        return values
    stop = search.budget - cap

    def cost(vs: Values) -> int:
        return sum(vs[v] * w for v, w in terms)

    current = cost(values)
    area_cap = AREA_CAP * max(1.0, len(m.bounds) / AREA_CAP_VARIABLES)
    idle = 0
    for pairs in area_rounds(len(areas)):
        if search.out_of_time() or search.budget <= stop or current <= target:
            break
        if idle >= len(areas) // 2:
            # Half the pairs in a row found nothing (national, 2,000x300, levels 5 and 4: the
            # optimum, above a loose LP bound): the wider neighbourhood gets the time.
            break
        shelters = [{*areas[i], *areas[(i + 1) % len(areas)]} for i in pairs]
        shares = m.area_shares(shelters)
        each = min(area_cap, (search.budget - stop) / len(shelters))
        subs: list[tuple[list[int], Values]] = []

        # Each pair's model is written while the pair before it is searched.
        answers = search.optimise_together(
            [
                partial(_area_job, m, values, at, terms, share, each, subs)
                for at, share in zip(shelters, shares, strict=True)
            ]
        )
        for k, ((free, hint), (found, _, _)) in enumerate(zip(subs, answers, strict=True)):
            gained = False
            if found is not hint:
                new = list(values)
                for j, v in zip(free, found, strict=True):
                    new[j] = v
                reached = cost(new)
                if reached < current and (k == 0 or m.holds(new, shelters[k])):
                    values, current, gained = new, reached, True
            idle = 0 if gained else idle + 1
    return values


def _area_job(
    m: Model,
    values: Values,
    shelters: set[int],
    terms: Terms,
    share: dict[int, tuple[int, int]],
    cap: float,
    out: list[tuple[list[int], Values]],
) -> Job:
    """The search of one pair of areas (its free variables and hint go to ``out``)."""
    sub, free, sub_terms = m.area(values, shelters, terms, share=share)
    hint = [values[j] for j in free]
    out.append((free, hint))
    return sub, sub_terms, hint, cap


def area_rounds(n: int) -> list[list[int]]:
    """The pairs of areas (pair ``i``: areas ``i`` and ``(i + 1) % n``) grouped two by two.

    In order, each pair not yet placed is joined by the next one that shares no area with it
    (pair ``i`` by pair ``i + 2``), or stays alone; every pair comes once.
    """
    left = list(range(n))
    rounds: list[list[int]] = []
    while left:
        first = left.pop(0)
        areas = {first, (first + 1) % n}
        other = next((j for j in left if not areas & {j, (j + 1) % n}), None)
        if other is None:
            rounds.append([first])
        else:
            left.remove(other)
            rounds.append([first, other])
    return rounds
