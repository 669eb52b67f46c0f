"""Solve a placement problem: lexicographic CP-SAT with the greedy baseline as hint and fallback.

The model (details in docs/solver.md): requests with identical signatures (priority, size,
viable shelters, costs and unit candidates, no separation link) are aggregated into one group
with integer counts ``n[g, s]`` (how many of the group go to shelter ``s``); bed blocks with a
choice of units get counts ``y[g, s, b, u]``. Levels are solved in order — people placed with
priority 5, 4, 3, 2, 1, then soft cost, then a hash tie-break — and each proven optimum is
fixed as a constraint before the next. The search runs on one worker (or interleaved workers)
under a deterministic-time budget, so the answer does not depend on the machine's load; a
wall-clock limit is only a safety net and its expiry is reported.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from placement import __version__ as placement_version
from placement.explain import explain_unplaced
from placement.greedy import greedy_placement, improve_soft_cost
from placement.instance import Instance, Pair, Placement
from placement.lpfix import ReducedCosts, restore
from placement.problem import PRIORITIES, Problem, problem_digest
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo, Unplaced

METHODS = ("cp-sat", "greedy")
SOFT_RADIX_LIMIT = 2**53
"""Soft cost and tie-break share one exact objective when its largest value stays below this."""
DET_PER_SECOND = 0.5
"""Deterministic-time budget per second of ``time_limit_s``.

CP-SAT's deterministic time ran 1.5-7x slower than the wall clock on the 2-core benchmark
machine (presolve and model building count as zero), so half a deterministic second per
requested second is spent; wall time can exceed ``time_limit_s`` on large problems (see
docs/solver.md), but the answer depends only on the input.
"""
GUESS_GAP = 0.02
"""First try of the soft level: keep only solutions within this share above the LP bound."""
TIE_SHARE = 0.1
"""The tie-break search may use at most this share of the budget; it decides nothing else."""
REDUCED_MAX_PAIRS = 60_000
"""A reduced model's level ``p`` is searched only while priorities ``>= p`` have at most this
many viable pairs (see _cp_sat_reduced)."""
SAFETY_FACTOR = 10.0
SAFETY_SLACK_S = 30.0
"""The wall-clock safety net fires after ``SAFETY_FACTOR * time_limit_s + SAFETY_SLACK_S`` s."""


def solve(
    problem: Problem,
    *,
    time_limit_s: float = 10.0,
    seed: int = 0,
    method: str = "cp-sat",
    workers: int = 1,
) -> Solution:
    """Place as many people as possible, most urgent first, then at the least soft cost.

    Args:
        problem: A parsed problem.
        time_limit_s: Intended search time in seconds (> 0). The search itself is budgeted in
            CP-SAT deterministic time, ``DET_PER_SECOND * time_limit_s`` shared by all levels,
            so the answer does not depend on the machine's speed or load. A wall-clock safety
            net of ``10 * time_limit_s + 30`` s also applies; if it fires, ``safety_net_expired``
            is set, the status is ``feasible`` and the result may differ between runs.
        seed: CP-SAT random seed (≥ 0).
        method: ``cp-sat`` or ``greedy`` (baseline for comparison only).
        workers: CP-SAT workers; 1 (default) runs one deterministic worker, more run an
            interleaved (still deterministic) portfolio that includes the ``max_lp`` subsolver.

    Returns:
        A solution that meets every hard constraint. ``status`` is ``optimal`` only when every
        level (priorities 5..1 and soft cost) was proven on the full model; otherwise
        ``feasible``, with ``bound`` holding the proven bounds. Never worse than the greedy
        baseline on the lexicographic objective.

    Raises:
        ValueError: on an unknown method or a non-positive time limit or worker count.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    if not time_limit_s > 0 or not math.isfinite(time_limit_s):
        raise ValueError("time_limit_s must be a positive number")
    if workers < 1 or seed < 0:
        raise ValueError("workers must be ≥ 1 and seed ≥ 0")
    started = time.perf_counter()
    inst = Instance(problem)
    greedy = greedy_placement(inst, extend=True)
    trivial = inst.trivial_bound()
    if method == "greedy":
        run = _Run(placement=greedy, proven=False, bound=trivial, soft_bound=0)
    else:
        run = _cp_sat(inst, greedy, _Search(time_limit_s, seed, workers, started))
    objective = Objective(inst.placed_by_priority(run.placement), _soft(inst, run.placement))
    assignments = _assignments(inst, run.placement)
    unplaced = tuple(
        Unplaced(problem.requests[ri].id, reasons)
        for ri, reasons in sorted(explain_unplaced(inst, run.placement).items())
    )
    return Solution(
        # An expired safety net means the run may not be reproducible: never call it optimal.
        status="optimal" if run.proven and not run.safety_net_expired else "feasible",
        problem_digest=problem_digest(problem),
        solver=SolverInfo(
            name=method,
            version=f"refuge-placement {placement_version}; ortools {_ortools_version()}",
            seed=seed,
            workers=workers,
            time_limit_s=float(time_limit_s),
        ),
        objective=objective,
        bound=Objective(run.bound, min(run.soft_bound, objective.soft_cost)),
        wall_s=round(time.perf_counter() - started, 3),
        assignments=assignments,
        unplaced=unplaced,
        safety_net_expired=run.safety_net_expired,
    )


def _ortools_version() -> str:
    import ortools

    return str(getattr(ortools, "__version__", "unknown"))


def _soft(inst: Instance, placement: Placement) -> int:
    return sum(inst.pair_cost(ri, si) for ri, (si, _) in placement.items())


def _assignments(inst: Instance, placement: Placement) -> tuple[Assignment, ...]:
    out = []
    problem = inst.problem
    for ri in sorted(placement):
        si, choice = placement[ri]
        shelter = problem.shelters[si]
        unit_of = {
            m.ref: shelter.units[u].id
            for block, u in zip(inst.blocks[ri], choice, strict=True)
            for m in block
        }
        q = problem.requests[ri]
        out.append(
            Assignment(
                request=q.id,
                shelter=shelter.id,
                beds=tuple(Bed(m.ref, unit_of[m.ref]) for m in q.members),
            )
        )
    return tuple(out)


@dataclass
class _Run:
    placement: Placement
    proven: bool
    bound: tuple[int, int, int, int, int]
    soft_bound: int
    safety_net_expired: bool = False


@dataclass
class _Group:
    """Interchangeable requests (same signature), in document order."""

    requests: list[int]
    pairs: list[Pair]
    n: list[cp_model.IntVar] = field(default_factory=list)
    # y[k][b] = {unit: var} for pair k and bed blocks with more than one candidate unit
    y: list[dict[int, dict[int, cp_model.IntVar]]] = field(default_factory=list)


Terms = list[tuple[cp_model.IntVar, int]]


def _weighted(terms: Terms) -> cp_model.LinearExpr:
    return cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [w for _, w in terms])


def _tie_weight(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return 1 + int.from_bytes(digest[:2], "big")


class _Model:
    """One CP-SAT model over groups of interchangeable requests.

    ``cost_aware=False`` groups requests that differ only in soft cost (for the priority
    levels, where cost plays no part): fewer, larger groups and a much smaller model.
    ``cost_aware=True`` keeps costs apart and carries the soft-cost and tie-break terms.
    """

    def __init__(self, inst: Instance, *, cost_aware: bool, min_priority: int = 1) -> None:
        self.inst = inst
        self.cost_aware = cost_aware
        self.min_priority = min_priority
        self.model = cp_model.CpModel()
        self.groups = self._groups()
        self.level_max = dict.fromkeys(PRIORITIES, 0)
        self.level_terms: dict[int, Terms] = {p: [] for p in PRIORITIES}
        self.soft_terms: Terms = []
        self.tie_terms: Terms = []
        self.tie_max = 0
        self._build()

    def _groups(self) -> list[_Group]:
        inst = self.inst
        by_sig: dict[tuple[object, ...], _Group] = {}
        groups: list[_Group] = []
        for ri, pairs in enumerate(inst.pairs):
            if not pairs or inst.problem.requests[ri].priority < self.min_priority:
                continue
            if inst.separated[ri]:
                groups.append(_Group([ri], pairs))
                continue
            sig = (
                inst.problem.requests[ri].priority,
                tuple(len(b) for b in inst.blocks[ri]),
                tuple(
                    sorted(
                        (p.shelter, p.cost if self.cost_aware else 0, p.candidates) for p in pairs
                    )
                ),
            )
            group = by_sig.get(sig)
            if group is None:
                group = _Group([ri], pairs)
                by_sig[sig] = group
                groups.append(group)
            else:
                group.requests.append(ri)
        return groups

    def _build(self) -> None:
        inst, model = self.inst, self.model
        unit_terms: dict[tuple[int, int], Terms] = {}
        demand: dict[tuple[int, int], int] = {}
        requests = inst.problem.requests
        shelters = inst.problem.shelters
        for gi, g in enumerate(self.groups):
            first = g.requests[0]
            count = len(g.requests)
            size = inst.size[first]
            sizes = [len(b) for b in inst.blocks[first]]
            priority = requests[first].priority
            self.level_max[priority] += size * count
            for pair in g.pairs:
                si = pair.shelter
                n = model.new_int_var(0, count, f"n{gi}_{si}")
                g.n.append(n)
                self.level_terms[priority].append((n, size))
                if self.cost_aware:
                    if pair.cost:
                        self.soft_terms.append((n, pair.cost))
                    w = _tie_weight(requests[first].id, shelters[si].id)
                    self.tie_terms.append((n, w))
                    self.tie_max += w * count
                ys: dict[int, dict[int, cp_model.IntVar]] = {}
                for b, cands in enumerate(pair.candidates):
                    if len(cands) == 1:
                        key = (si, cands[0])
                        unit_terms.setdefault(key, []).append((n, sizes[b]))
                        demand[key] = demand.get(key, 0) + sizes[b] * count
                        continue
                    ys[b] = {}
                    for u in cands:
                        y = model.new_int_var(0, count, f"y{gi}_{si}_{b}_{u}")
                        ys[b][u] = y
                        unit_terms.setdefault((si, u), []).append((y, sizes[b]))
                        demand[(si, u)] = demand.get((si, u), 0) + sizes[b] * count
                        if self.cost_aware:
                            uid = shelters[si].units[u].id
                            w = _tie_weight(requests[first].id, uid, str(b))
                            self.tie_terms.append((y, w))
                            self.tie_max += w * count
                    model.add(sum(ys[b].values()) == n)
                g.y.append(ys)
            model.add(sum(g.n) <= count)
        for key, terms in unit_terms.items():
            free = inst.free[key[0]][key[1]]
            if demand[key] > free:
                model.add(_weighted(terms) <= free)
        # Separated requests are never aggregated: their n variables are booleans.
        var_of: dict[int, dict[int, cp_model.IntVar]] = {}
        for g in self.groups:
            if len(g.requests) == 1 and inst.separated[g.requests[0]]:
                var_of[g.requests[0]] = {p.shelter: n for p, n in zip(g.pairs, g.n, strict=True)}
        for ri, others in enumerate(inst.separated):
            mine = var_of.get(ri, {})
            for oi in sorted(others):
                if oi <= ri:
                    continue
                theirs = var_of.get(oi, {})
                for si in sorted(mine.keys() & theirs.keys()):
                    model.add(mine[si] + theirs[si] <= 1)

    def values_of(self, placement: Placement) -> dict[cp_model.IntVar, int]:
        """Variable values encoding a placement (every variable gets a value)."""
        values: dict[cp_model.IntVar, int] = {}
        for g in self.groups:
            k_of = {p.shelter: k for k, p in enumerate(g.pairs)}
            for k in range(len(g.pairs)):
                values[g.n[k]] = 0
                for ys in g.y[k].values():
                    for y in ys.values():
                        values[y] = 0
            for ri in g.requests:
                if ri not in placement:
                    continue
                si, choice = placement[ri]
                k = k_of[si]
                values[g.n[k]] += 1
                for b, ys in g.y[k].items():
                    values[ys[choice[b]]] += 1
        return values

    def placement_from(self, value: dict[cp_model.IntVar, int]) -> Placement:
        """Decode values into a placement, deterministically.

        Each group's requests, in document order, fill its shelters in shelter order, and each
        multi-unit block's unit counts are dealt to them in the same order.
        """
        placement: Placement = {}
        for g in self.groups:
            queue = list(g.requests)
            for k, pair in enumerate(g.pairs):
                n = value[g.n[k]]
                takers, queue = queue[:n], queue[n:]
                remaining = {b: [(u, value[y]) for u, y in ys.items()] for b, ys in g.y[k].items()}
                for ri in takers:
                    choice = []
                    for b, cands in enumerate(pair.candidates):
                        if len(cands) == 1:
                            choice.append(cands[0])
                            continue
                        slots = remaining[b]
                        j = next(i for i, (_, c) in enumerate(slots) if c > 0)
                        u, c = slots[j]
                        slots[j] = (u, c - 1)
                        choice.append(u)
                    placement[ri] = (pair.shelter, tuple(choice))
        return placement


class _Search:
    """Budget, parameters and safety net shared by every CP-SAT call of one solve."""

    def __init__(self, time_limit_s: float, seed: int, workers: int, started: float) -> None:
        self.budget = DET_PER_SECOND * time_limit_s
        self.total = self.budget
        self.wall_deadline = started + SAFETY_FACTOR * time_limit_s + SAFETY_SLACK_S
        self.seed = seed
        self.workers = workers
        self.expired = False

    def out_of_time(self) -> bool:
        if time.perf_counter() >= self.wall_deadline:
            self.expired = True
            return True
        return self.budget <= 0

    def _solver(self) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.random_seed = self.seed
        p.relative_gap_limit = 0.0
        p.absolute_gap_limit = 0.0
        p.max_deterministic_time = max(self.budget, 0.0)
        p.max_time_in_seconds = max(self.wall_deadline - time.perf_counter(), 0.001)
        p.linearization_level = 2
        # Measured on the benchmark: symmetry detection and probing in presolve cost seconds of
        # wall time (counted as zero deterministic time) and bought nothing on these models.
        p.symmetry_level = 0
        p.cp_model_probing_level = 0
        p.max_presolve_iterations = 1
        # All linear constraints in the LP from the start: at 500x60 the soft-cost search
        # proved in 0.44 instead of 0.70 deterministic seconds.
        p.add_lp_constraints_lazily = False
        p.log_search_progress = False
        if self.workers == 1:
            p.num_workers = 1
        else:
            p.num_workers = self.workers
            p.interleave_search = True
            p.extra_subsolvers.append("max_lp")
        return solver

    def optimise(
        self,
        m: _Model,
        terms: Terms,
        maximise: bool,
        values: dict[cp_model.IntVar, int],
        cap: float | None = None,
    ) -> tuple[dict[cp_model.IntVar, int], bool, float]:
        """One search from the hint ``values``; returns (best values, proven, best bound).

        The returned values are never worse than the hint, which is feasible by construction.
        """
        model = m.model
        model.clear_objective()  # type: ignore[no-untyped-call]
        model.clear_hints()  # type: ignore[no-untyped-call]
        for var, val in values.items():
            model.add_hint(var, val)
        expr = _weighted(terms)
        if maximise:
            model.maximize(expr)
        else:
            model.minimize(expr)
        solver = self._solver()
        limit = self.budget if cap is None else min(self.budget, cap)
        solver.parameters.max_deterministic_time = max(0.0, limit)
        status = solver.solve(model)
        if status == cp_model.MODEL_INVALID:  # a bug here, never an input problem
            raise RuntimeError(f"invalid CP-SAT model: {model.validate()}")
        self.budget -= solver.deterministic_time
        current = sum(values[v] * w for v, w in terms)
        found_any = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if found_any:
            found = round(solver.objective_value)
            if (found > current if maximise else found < current) or status == cp_model.OPTIMAL:
                values = {var: int(solver.value(var)) for var in values}
        proven = status == cp_model.OPTIMAL
        # CP-SAT reports a placeholder bound when it stops before its search starts.
        best = solver.best_objective_bound if found_any else math.nan
        if not proven:
            params = solver.parameters
            out_of_wall = solver.wall_time >= 0.98 * params.max_time_in_seconds
            out_of_det = solver.deterministic_time >= 0.98 * params.max_deterministic_time
            self.expired = self.expired or (out_of_wall and not out_of_det)
        return values, proven, best


def _minimise_with_lp(
    search: _Search, m: _Model, terms: Terms, values: dict[cp_model.IntVar, int]
) -> tuple[dict[cp_model.IntVar, int], bool, float]:
    """``search.optimise`` (minimising) on a model narrowed by LP reduced costs; still exact.

    First every variable is narrowed so that all solutions no worse than the hint survive
    (permanent: the later searches, e.g. the tie-break, keep every optimum). Then a first
    search keeps only solutions within ``GUESS_GAP`` of the LP bound (and the hint): if it
    proves an optimum inside that window, that optimum is the model's. Otherwise its best
    solution becomes the incumbent, the model is narrowed with it and searched again.
    """
    model = m.model
    idx = [(v.index, w) for v, w in terms]
    current = sum(values[v] * w for v, w in terms)
    rc = ReducedCosts(model, idx)
    lp = rc.bound
    if not math.isfinite(lp):
        return search.optimise(m, terms, False, values)
    rc.tighten(current)
    guess = lp + GUESS_GAP * abs(lp) + 1
    if guess < current:
        keep = {v.index: val for v, val in values.items()}
        saved = rc.tighten(guess, keep)
        values, proven, best = search.optimise(m, terms, False, values, 0.5 * search.budget)
        restore(model, saved)
        found = sum(values[v] * w for v, w in terms)
        if proven and found <= guess:
            rc.tighten(found)
            return values, True, float(found)
        if found < current:
            current = found
            rc.tighten(current)
    values, proven, best = search.optimise(m, terms, False, values)
    return values, proven, best if math.isfinite(best) else lp


def _key(inst: Instance, placement: Placement) -> tuple[int, ...]:
    """Lexicographic quality: people per priority 5..1, then lower soft cost."""
    return (*inst.placed_by_priority(placement), -_soft(inst, placement))


def _cp_sat(inst: Instance, greedy: Placement, search: _Search) -> _Run:
    """Priority levels on the cost-blind model, then soft cost and tie-break on the full one."""
    if inst.reduced:
        return _cp_sat_reduced(inst, greedy, search)
    bound = list(inst.trivial_bound())
    placement = greedy
    proven_levels = 0
    fixed: dict[int, int] = {}
    levels_left = [
        p
        for p in PRIORITIES
        if any(
            inst.problem.requests[r].priority == p for r, pairs in enumerate(inst.pairs) if pairs
        )
    ]
    for p in PRIORITIES:
        if p not in levels_left:
            proven_levels += 1
            continue
        if search.out_of_time():
            break
        # Level p only involves requests of priority p and above: lower ones merely take beds,
        # so they are left out of this level's (much smaller) model.
        a = _Model(inst, cost_aware=False, min_priority=p)
        for q, value in fixed.items():
            a.model.add(_weighted(a.level_terms[q]) >= value)
        terms = a.level_terms[p]
        # Each level may spend its share of what is left, the soft cost counting as one more
        # level, so that an unprovable level cannot starve the ones below it.
        share = 1.0 / (1 + sum(1 for q in levels_left if q <= p))
        values, proven, best = search.optimise(
            a, terms, True, a.values_of(placement), search.budget * share
        )
        # Fill what the level left empty: a better start for the next level, same value here.
        placement = greedy_placement(inst, a.placement_from(values))
        fixed[p] = inst.placed_by_priority(placement)[5 - p]
        achieved = inst.placed_by_priority(placement)[5 - p]
        if proven:
            # A reduced model's optimum is not the problem's: keep the valid trivial bound.
            if not inst.reduced:
                bound[5 - p] = achieved
            proven_levels += 1
            continue
        if math.isfinite(best) and not inst.reduced:
            bound[5 - p] = max(achieved, min(bound[5 - p], math.floor(best + 1e-6)))
        # Not proven: keep what was reached and go on; the answer is only "feasible" now.
    placement = improve_soft_cost(inst, placement)
    proven_all = proven_levels == len(PRIORITIES)
    soft_bound = 0
    if not search.out_of_time():
        b = _Model(inst, cost_aware=True)
        placed = inst.placed_by_priority(placement)
        for p in PRIORITIES:
            if b.level_terms[p]:
                b.model.add(_weighted(b.level_terms[p]) >= placed[5 - p])
        values = b.values_of(placement)
        scale = b.tie_max + 1
        soft_cap = sum(
            max((p.cost for p in g.pairs), default=0) * len(g.requests) for g in b.groups
        )
        if not b.soft_terms:
            proven_soft = True
            if b.tie_terms and not search.out_of_time():
                values, _, _ = search.optimise(
                    b, b.tie_terms, False, values, TIE_SHARE * search.total
                )
        elif (soft_cap + 1) * scale < SOFT_RADIX_LIMIT:
            # Soft cost and tie-break in one exact mixed-radix objective.
            combined = [(v, w * scale) for v, w in b.soft_terms] + b.tie_terms
            values, proven_soft, best = _minimise_with_lp(search, b, combined, values)
            if not proven_soft and math.isfinite(best):
                soft_bound = max(0, math.ceil(best - 1e-6)) // scale
        else:
            values, proven_soft, best = _minimise_with_lp(search, b, b.soft_terms, values)
            if proven_soft:
                soft_value = sum(values[v] * w for v, w in b.soft_terms)
                b.model.add(_weighted(b.soft_terms) <= soft_value)
                if not search.out_of_time():
                    values, _, _ = search.optimise(
                        b, b.tie_terms, False, values, TIE_SHARE * search.total
                    )
            elif math.isfinite(best):
                soft_bound = max(0, math.ceil(best - 1e-6))
        placement = b.placement_from(values)
        if inst.reduced or not proven_all:
            proven_all = False
            soft_bound = 0
        elif proven_soft:
            soft_bound = sum(inst.pair_cost(ri, si) for ri, (si, _) in placement.items())
        else:
            proven_all = False
    else:
        proven_all = False
    baseline = improve_soft_cost(inst, greedy)
    if _key(inst, baseline) > _key(inst, placement):
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
    return _Run(
        placement=placement,
        proven=proven_all,
        bound=(bound[0], bound[1], bound[2], bound[3], bound[4]),
        soft_bound=soft_bound,
        safety_net_expired=search.expired,
    )


def _cp_sat_reduced(inst: Instance, greedy: Placement, search: _Search) -> _Run:
    """Levels on a reduced model (large problems), never below greedy on any priority.

    A reduced model cannot prove anything about the problem, so the pure lexicographic search
    is not kept here (a deviation, documented in docs/solver.md): a level's result is accepted
    only when, once completed greedily, it still places at least the greedy baseline's count at
    every priority; otherwise the best placement so far stays. Levels are searched in order on
    the cost-blind model of priorities ``>= p``, as for a full model, until priorities ``>= p``
    have more than ``REDUCED_MAX_PAIRS`` viable pairs. At 10,000x1,000 that searches level 5
    alone (29,000 pairs): level 4 (98,000 pairs) spent 12-17 s of wall time under load proving
    greedy's count optimal on the reduced model, and levels 3-1 (263,000-299,000 pairs) about
    20 s each, mostly in presolve, finding nothing beyond the hint in 6 deterministic seconds;
    the time limit covers the wall clock there. The soft
    level gets no CP-SAT search (neither the GLOP relaxation nor CP-SAT fitted the time limit
    there). Then ``insert_by_moves`` places more requests by moving placed ones (nobody is
    unplaced) and ``improve_soft_cost`` lowers the soft cost. The status is always
    ``feasible`` and the bounds are the trivial ones.
    """
    from placement.greedy import insert_by_moves  # here: keeps this hunk apart from the rest

    floor = inst.placed_by_priority(greedy)
    placement = greedy
    fixed: dict[int, int] = {}
    levels = [p for p in PRIORITIES if _with_pairs(inst, p)]
    for i, p in enumerate(levels):
        if search.out_of_time():
            break
        pairs = sum(len(inst.pairs[r]) for r in _with_pairs(inst, p, above=True))
        if pairs > REDUCED_MAX_PAIRS:
            break
        m = _Model(inst, cost_aware=False, min_priority=p)
        for q, value in fixed.items():
            m.model.add(_weighted(m.level_terms[q]) >= value)
        share = 1.0 / (len(levels) - i)
        values, _, _ = search.optimise(
            m, m.level_terms[p], True, m.values_of(placement), search.budget * share
        )
        # Fill what the level left empty: the same level value, a better start for the next.
        found = greedy_placement(inst, m.placement_from(values))
        counts = inst.placed_by_priority(found)
        if all(c >= f for c, f in zip(counts, floor, strict=True)):
            placement = found
        fixed[p] = inst.placed_by_priority(placement)[5 - p]
    placement = improve_soft_cost(inst, insert_by_moves(inst, placement))
    baseline = improve_soft_cost(inst, greedy)
    if _key(inst, baseline) > _key(inst, placement):
        placement = baseline
    return _Run(
        placement=placement,
        proven=False,
        bound=inst.trivial_bound(),
        soft_bound=0,
        safety_net_expired=search.expired,
    )


def _with_pairs(inst: Instance, p: int, *, above: bool = False) -> list[int]:
    """Requests of priority ``p`` (or ``>= p`` when ``above``) with a viable pair."""
    requests = inst.problem.requests
    return [
        r
        for r, pairs in enumerate(inst.pairs)
        if pairs and (requests[r].priority >= p if above else requests[r].priority == p)
    ]
