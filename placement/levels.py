"""The lexicographic levels on a full model, then the soft cost."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from placement.budget import Abandoned, Budget
from placement.greedy import greedy_placement, improve_soft_cost, insert_by_moves
from placement.instance import Instance, Placement
from placement.lpsearch import lp_search
from placement.model import Model, Run, key, level_key, soft
from placement.problem import PRIORITIES
from placement.search import Search

SOFT_LP_PAIRS = 30
"""The soft cost's LP starts from each group's this many cheapest shelters (plus the
incumbent's); the others join when their reduced cost is negative."""
SOFT_SHARE = 0.2
"""The soft cost's search may spend at most this share of the whole budget; the levels leave it
in reserve."""
LEVEL_SHARE = 0.5
"""Each priority level but the last may spend this share of the levels' budget left."""


def solve_levels(inst: Instance, greedy: Placement, search: Search, *, soft: bool = True) -> Run:
    """Priority levels on the cost-blind model, then the soft cost on the cost-aware one.

    Every step asks ``search.clock`` first; once the wall clock is spent, what was reached is
    kept (never worse than ``greedy``), the levels not proven are not, and the cost-aware model
    being built on the second thread is abandoned. Without ``soft`` (a reduced instance, whose
    caller repairs the soft cost locally) the levels have the whole budget and the soft cost
    no model: the run is then never proven.
    """
    clock = search.clock
    bound = list(inst.trivial_bound())
    placement = greedy
    levels_left = [
        p
        for p in PRIORITIES
        if any(
            inst.problem.requests[r].priority == p for r, pairs in enumerate(inst.pairs) if pairs
        )
    ]
    # One cost-blind model for every level: each level changes the objective and fixes its
    # optimum (or what it reached) before the next. (A reduced model never gets here: its LP
    # was measured to cost more than it gave, see solve_reduced.)
    try:
        a = Model(inst, cost_aware=False, abandon=clock.spent)
    except Abandoned:  # the clock was spent while building it: greedy's answer stands
        return Run(greedy, False, inst.trivial_bound(), 0, safety_net_expired=True)
    # The soft level's model and its LP relaxation do not depend on the levels (their results
    # become rows added later), so a second thread builds them while the levels search: the
    # build is pure Python, and CP-SAT and GLOP release the GIL. Same model, same answer.
    # It starts with the first CP-SAT search of the last level, not before: until then the
    # main thread is busy in Python between its searches (LPs, rounding, insertion, the area
    # models) and the build would take half its share of the GIL (rings, 2,000x300, cut in
    # level 3: 1,488 people there with the build waiting, 1,479 with it from the first
    # search). When it starts changes nothing in the answer: the main thread waits for it.
    abandon = threading.Event()
    started: list[Future[tuple[Model, dict[int, int]]]] = []

    def soft_model() -> Future[tuple[Model, dict[int, int]]]:
        if not started:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refuge-soft-model")
            started.append(
                pool.submit(_soft_model, inst, lambda: abandon.is_set() or clock.expired)
            )
            pool.shutdown(wait=False)
        return started[0]

    try:
        return _levels_then_soft(
            inst,
            greedy,
            search,
            a,
            soft_model if soft else None,
            bound,
            placement,
            levels_left,
            clock,
        )
    finally:
        # Past the deadline nobody waits for the cost-aware model: stop its build.
        abandon.set()


def _levels_then_soft(
    inst: Instance,
    greedy: Placement,
    search: Search,
    a: Model,
    soft_model: Callable[[], Future[tuple[Model, dict[int, int]]]] | None,
    bound: list[int],
    placement: Placement,
    levels_left: list[int],
    clock: Budget,
) -> Run:
    proven_levels = 0
    fixed: dict[int, int] = {}
    clock.phase = "levels"  # solve() restores the phase
    for p in PRIORITIES:
        if p not in levels_left:
            proven_levels += 1
            continue
        if search.out_of_time():
            break
        # The soft cost's share stays in reserve; each level may spend LEVEL_SHARE of what the
        # levels have left (the last one all of it), so that an unprovable level cannot starve
        # the ones below it, while the more urgent levels, which come first in the
        # lexicographic order, get more. The LP bound is valid for the full problem: lower
        # priorities only take beds.
        last = not any(q < p for q in levels_left)
        search.on_search = soft_model if last else None
        reserve = SOFT_SHARE * search.total if soft_model is not None else 0.0
        levels_budget = max(0.0, search.budget - reserve)
        cap = levels_budget * (1.0 if last else LEVEL_SHARE)

        def better(new: Placement, old: Placement, p: int = p) -> bool:
            return level_key(inst, new, fixed, p) > level_key(inst, old, fixed, p)

        level = [(v, -w) for v, w in a.level_terms[p]]
        # A reduced instance's model is large (10,000x1,000: 370,000 variables): a search on
        # the whole of it costs 3-6 s of wall time per deterministic second, for little.
        found, proven, low = lp_search(
            search, a, level, placement, better, cap, whole=not inst.reduced
        )
        best = -low if math.isfinite(low) else math.nan
        # Fill what the level left empty, moving a placed request aside where that makes room
        # (rings, 2,000x300, priority 3 after a cut: 1,463 -> 1,473 people in 0.2 s): never
        # fewer at any level, a better start for the next. A start returned as it was is
        # complete already: insertion would change nothing.
        if found is not placement:
            found = insert_by_moves(inst, found, stop=clock.stop, beyond=False)
            placement = greedy_placement(inst, found, stop=clock.stop)
        fixed[p] = inst.placed_by_priority(placement)[5 - p]
        achieved = fixed[p]
        if not clock.expired:  # no level follows a cut: spare the LP its row
            a.at_least(a.level_terms[p], achieved)
        if proven or achieved >= best:
            bound[5 - p] = achieved
            proven_levels += 1
            continue
        if math.isfinite(best):
            bound[5 - p] = max(achieved, min(bound[5 - p], math.floor(best + 1e-6)))
        # Not proven: keep what was reached and go on; the answer is only "feasible" now.
    if soft_model is None:
        return Run(placement, False, (bound[0], bound[1], bound[2], bound[3], bound[4]), 0)
    clock.phase = "soft"
    placement = improve_soft_cost(inst, placement, stop=clock.stop)
    proven_all = proven_levels == len(PRIORITIES)
    soft_bound = 0
    built = _wait(clock, soft_model()) if not search.out_of_time() else None
    if built is not None:
        b, floors = built
        placed = inst.placed_by_priority(placement)
        for p, row in floors.items():
            b.raise_floor(row, placed[5 - p])
        if b.soft_terms:
            placed = inst.placed_by_priority(placement)
            # The incumbent's columns keep the restricted LP feasible.
            b.relaxation().release(v for v, x in enumerate(b.values_of(placement)) if x)

            def keeps_levels(new: Placement, old: Placement) -> bool:
                levels = inst.placed_by_priority(new)
                return all(n >= o for n, o in zip(levels, placed, strict=True)) and soft(
                    inst, new
                ) < soft(inst, old)

            # The soft cost gets at most its share of the whole budget: at 2,000x300 its
            # 245,833-variable model runs 3-4 s of wall time per deterministic second.
            cap = min(search.budget, SOFT_SHARE * search.total)
            placement, proven_soft, best = lp_search(
                search, b, b.soft_terms, placement, keeps_levels, cap
            )
            if not proven_soft and math.isfinite(best):
                soft_bound = max(0, math.ceil(best - 1e-6))
        else:
            proven_soft = True
        if not proven_all:
            proven_all = False
            soft_bound = 0
        elif proven_soft:
            soft_bound = sum(inst.pair_cost(ri, si) for ri, (si, _) in placement.items())
        else:
            proven_all = False
    else:
        proven_all = False
    # The baseline (greedy, locally repaired) can only be better when something was not proven.
    clock.phase = "complete"
    baseline = None if proven_all else improve_soft_cost(inst, greedy, stop=clock.stop)
    if baseline is not None and key(inst, baseline) > key(inst, placement):
        # Only when the search fell short. Level bounds stay valid while the baseline places
        # exactly as many people at every higher level; below that, the trivial bounds hold.
        ours, theirs = inst.placed_by_priority(placement), inst.placed_by_priority(baseline)
        trivial = inst.trivial_bound()
        same = 0
        while same < len(PRIORITIES) and ours[same] == theirs[same]:
            same += 1
        bound = [bound[i] if i <= same else trivial[i] for i in range(len(PRIORITIES))]
        bound = [max(b, t) for b, t in zip(bound, theirs, strict=True)]
        placement, soft_bound, proven_all = baseline, 0, False
    return Run(
        placement=placement,
        proven=proven_all,
        bound=(bound[0], bound[1], bound[2], bound[3], bound[4]),
        soft_bound=soft_bound,
        safety_net_expired=search.expired,
    )


def _wait(
    clock: Budget, future: Future[tuple[Model, dict[int, int]]]
) -> tuple[Model, dict[int, int]] | None:
    """The model built on the second thread, waited for while the clock allows; a step."""
    step = clock.step()
    if step is None or step.stop_at is not None:
        return None
    try:
        return future.result(timeout=None if math.isinf(step.seconds) else step.seconds)
    except FutureTimeout:
        clock.cut_during(step, {"waited": "cost-aware model"})
        return None


def _soft_model(inst: Instance, abandon: Callable[[], bool]) -> tuple[Model, dict[int, int]]:
    """The cost-aware model of the soft level, with its LP relaxation built.

    ``abandon`` is asked while building: when it says so the build stops (raising
    :class:`~placement.model.Abandoned`), as nobody will wait for it.

    Its rows fixing the levels are there already, as ``Σ people_p >= 0`` (row index by
    priority): the levels' results only raise them. Writing those rows, 245,833 coefficients
    at 2,000x300, took 0.4 s of the main thread's time after the levels.
    """
    b = Model(inst, cost_aware=True, abandon=abandon)
    floors = {p: b.at_least(b.level_terms[p], 0) for p in PRIORITIES if b.level_terms[p]}
    if b.soft_terms:
        # Its LP is solved on each group's cheapest shelters first, the others priced in as
        # they gain (column generation, exact): at 2,000x300 one round, 0.9 s instead of 3.2-3.4 s.
        b.relaxation(abandon).restrict(b.cheapest_columns(SOFT_LP_PAIRS))
    return b, floors
