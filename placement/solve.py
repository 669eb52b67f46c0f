"""Solve a placement problem: lexicographic CP-SAT with the greedy baseline as hint and fallback.

The model (details in docs/solver.md): requests with identical signatures (priority, size,
viable shelters, costs and unit candidates, no separation link) are aggregated into one group
with integer counts ``n[g, s]`` (how many of the group go to shelter ``s``); bed blocks with a
choice of units get counts ``y[g, s, b, u]``. Levels are solved in order — people placed with
priority 5, 4, 3, 2, 1, then soft cost — and each optimum is fixed as a constraint before the
next. Each level starts from its LP relaxation (GLOP): a valid bound, a rounded solution and a
short search around it often close the level without a full search. The search runs on one
worker (or interleaved workers) under a deterministic-time budget, so the answer does not
depend on the machine's load; a wall-clock limit is only a safety net and its expiry is
reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from placement import __version__ as placement_version
from placement.eligibility import fit_blocks
from placement.explain import explain_unplaced
from placement.greedy import greedy_placement, improve_soft_cost
from placement.instance import Instance, Pair, Placement
from placement.lpfix import INT64_MAX, INT64_MIN, Relaxation, Restore, Row, restore
from placement.problem import PRIORITIES, Problem, problem_digest
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo, Unplaced

METHODS = ("cp-sat", "greedy")
DET_PER_SECOND = 0.5
"""Deterministic-time budget per second of ``time_limit_s``.

CP-SAT's deterministic time ran 1.5-7x slower than the wall clock on the 2-core benchmark
machine (presolve and model building count as zero), so half a deterministic second per
requested second is spent; wall time can exceed ``time_limit_s`` on large problems (see
docs/solver.md), but the answer depends only on the input.
"""
NEIGHBOURHOOD_SHARE = 0.25
"""Share of a level's budget for the first search around the LP solution and the incumbent."""
WIDE_SHARE = 0.75
"""Share of a level's budget for the wider neighbourhood (:meth:`_Model.open_groups`)."""
SOFT_LP_PAIRS = 30
"""The soft cost's LP starts from each group's this many cheapest shelters (plus the
incumbent's); the others join when their reduced cost is negative."""
SOFT_SHARE = 0.2
"""The soft cost's search may spend at most this share of the whole budget; the levels leave it
in reserve."""
LEVEL_SHARE = 0.5
"""Each priority level but the last may spend this share of the levels' budget left."""
SEARCH_DET_PER_VARIABLE = 1e-5
"""The soft cost's window and full searches run only with at least this many deterministic
seconds of budget per model variable (1 s per 100,000 variables)."""
GUESS_GAP = 0.02
"""First try of the soft level: keep only solutions within this share above the LP bound."""
REDUCED_MAX_PAIRS = 60_000
"""A reduced model's level ``p`` is searched only while priorities ``>= p`` have at most this
many viable pairs (see _cp_sat_reduced)."""
NEIGHBOURHOOD_CAP = 0.5
"""Deterministic seconds at most for one neighbourhood of a reduced model's local search."""
NEIGHBOURHOOD_ROUNDS = 1
"""Passes over the neighbourhoods at most (a pass that places nobody more ends the search)."""
NEIGHBOURHOOD_WALL_SHARE = 0.75
"""The neighbourhood search's own wall-clock safety net, as a share of ``time_limit_s`` from the
start of the solve: what follows it (completion, explanations) must fit in the rest."""
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
    elif len(problem.requests) == 1 and not inst.reduced:
        # One request (the API's single match): every viable pair fits on its own, so placing
        # it in its cheapest viable shelter, which greedy does, is the lexicographic optimum,
        # proven by enumeration; a search would only repeat it.
        placed = inst.placed_by_priority(greedy)
        run = _Run(placement=greedy, proven=True, bound=placed, soft_bound=_soft(inst, greedy))
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
    n: list[int] = field(default_factory=list)
    # y[k][b] = {unit: var} for pair k and bed blocks with more than one candidate unit
    y: list[dict[int, dict[int, int]]] = field(default_factory=list)

    def variables(self, pairs: int | None = None) -> list[int]:
        """The count and unit variables (proto indices) of its first ``pairs`` pairs (all)."""
        out: list[int] = []
        for n, ys in zip(self.n[:pairs], self.y[:pairs], strict=True):
            out.append(n)
            out.extend(y for units in ys.values() for y in units.values())
        return out


Terms = list[tuple[int, int]]
"""(variable's proto index, coefficient) pairs of a linear expression."""
Values = list[int]
"""A value for every variable of a model, by proto index."""


class _Model:
    """One CP-SAT model over groups of interchangeable requests.

    Variables and constraints are written straight into the model's proto, and the model's
    code refers to variables by proto index: the expression API (``new_int_var``,
    ``add_linear_constraint``) built the same proto in twice the CPU time (500x60: 0.41
    instead of 0.18 s for both models).

    ``cost_aware=False`` groups requests that differ only in soft cost (for the priority
    levels, where cost plays no part): fewer, larger groups and a much smaller model.
    ``cost_aware=True`` keeps costs apart and carries the soft-cost terms.
    """

    def __init__(self, inst: Instance, *, cost_aware: bool, min_priority: int = 1) -> None:
        self.inst = inst
        self.cost_aware = cost_aware
        self.min_priority = min_priority
        self.model = cp_model.CpModel()
        self._variables = self.model.proto.variables
        self._constraints = self.model.proto.constraints
        self.groups = self._groups()
        self.level_max = dict.fromkeys(PRIORITIES, 0)
        self.level_terms: dict[int, Terms] = {p: [] for p in PRIORITIES}
        self.soft_terms: Terms = []
        self.rows: list[Row] = []
        self.bounds: list[tuple[int, int]] = []
        self._build()
        self._relaxation: Relaxation | None = None

    def relaxation(self) -> Relaxation:
        """The model's LP relaxation in GLOP, built on first use and kept in step."""
        if self._relaxation is None:
            self._relaxation = Relaxation(self.model, self.rows, self.bounds)
        return self._relaxation

    def at_least(self, terms: Terms, value: int) -> int:
        """Add ``Σ w·v >= value`` to the model (and to its LP relaxation once built).

        Returns the row's index, for :meth:`raise_floor`.
        """
        self._row(terms, value, math.inf)
        if self._relaxation is not None:
            vs, cs, lo, hi = self.rows[-1]
            self._relaxation.add(vs, cs, lo, hi)
        return len(self.rows) - 1

    def raise_floor(self, row: int, value: int) -> None:
        """Make row ``row`` (from :meth:`at_least`) read ``Σ w·v >= value``, in its LP too."""
        self._constraints[row].linear.domain[0] = value
        vs, cs, _, hi = self.rows[row]
        self.rows[row] = (vs, cs, value, hi)
        if self._relaxation is not None:
            self._relaxation.set_lower(row, value)

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

    def _var(self, count: int, name: str) -> int:
        """A new variable in ``[0, count]``; returns its proto index."""
        var = self._variables.add()
        var.name = name
        var.domain.extend((0, count))
        self.bounds.append((0, count))
        return len(self.bounds) - 1

    def _build(self) -> None:
        inst = self.inst
        unit_terms: dict[tuple[int, int], Terms] = {}
        demand: dict[tuple[int, int], int] = {}
        requests = inst.problem.requests
        for gi, g in enumerate(self.groups):
            first = g.requests[0]
            count = len(g.requests)
            size = inst.size[first]
            sizes = [len(b) for b in inst.blocks[first]]
            priority = requests[first].priority
            self.level_max[priority] += size * count
            for pair in g.pairs:
                si = pair.shelter
                n = self._var(count, f"n{gi}_{si}")
                g.n.append(n)
                self.level_terms[priority].append((n, size))
                if self.cost_aware and pair.cost:
                    self.soft_terms.append((n, pair.cost))
                ys: dict[int, dict[int, int]] = {}
                for b, cands in enumerate(pair.candidates):
                    if len(cands) == 1:
                        key = (si, cands[0])
                        unit_terms.setdefault(key, []).append((n, sizes[b]))
                        demand[key] = demand.get(key, 0) + sizes[b] * count
                        continue
                    ys[b] = {}
                    for u in cands:
                        y = self._var(count, f"y{gi}_{si}_{b}_{u}")
                        ys[b][u] = y
                        unit_terms.setdefault((si, u), []).append((y, sizes[b]))
                        demand[(si, u)] = demand.get((si, u), 0) + sizes[b] * count
                    row = [(y, 1) for y in ys[b].values()]
                    self._row([*row, (n, -1)], 0, 0)
                g.y.append(ys)
            self._row([(n, 1) for n in g.n], -math.inf, count)
        for key, terms in unit_terms.items():
            free = inst.free[key[0]][key[1]]
            if demand[key] > free:
                self._row(terms, -math.inf, free)
        # Separated requests are never aggregated: their n variables are booleans.
        var_of: dict[int, dict[int, int]] = {}
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
                    self._row([(mine[si], 1), (theirs[si], 1)], -math.inf, 1)

    def _row(self, terms: Terms, lo: float, hi: float) -> None:
        """Add ``lo <= Σ w·v <= hi`` to the model and remember it for the LP relaxation.

        Written as ``add_linear_constraint`` writes it: terms of one variable merged, variables
        in index order.
        """
        merged: dict[int, int] = {}
        for v, w in terms:
            merged[v] = merged.get(v, 0) + w
        order = sorted(merged)
        linear = self._constraints.add().linear
        linear.vars.extend(order)
        linear.coeffs.extend([merged[v] for v in order])
        linear.domain.extend(
            (
                INT64_MIN if lo == -math.inf else int(lo),
                INT64_MAX if hi == math.inf else int(hi),
            )
        )
        # Tuples of ints, which the garbage collector stops tracking, rather than lists.
        self.rows.append((tuple([v for v, _ in terms]), tuple([w for _, w in terms]), lo, hi))

    def open_groups(self, x: Sequence[float], values: Values, terms: Terms) -> set[int]:
        """Variables of the groups a wider neighbourhood frees (by proto index).

        A group is opened when one of its variables is fractional in the LP solution ``x``, or
        when ``values`` leave some of its requests unplaced and its counts are in the objective
        ``terms``: all of its shelters and units become free, not only those the LP and the
        incumbent use.
        """
        in_objective = {v for v, _ in terms}
        free: set[int] = set()
        for g in self.groups:
            variables = g.variables()
            fractional = any(abs(x[j] - round(x[j])) > 1e-6 for j in variables)
            unplaced = sum(values[n] for n in g.n) < len(g.requests) and g.n[0] in in_objective
            if fractional or unplaced:
                free.update(variables)
        return free

    def cheapest_columns(self, k: int) -> list[int]:
        """Variables (by proto index) of each group's ``k`` cheapest shelters."""
        return [v for g in self.groups for v in g.variables(k)]

    def values_of(self, placement: Placement) -> Values:
        """Variable values encoding a placement."""
        values = [0] * len(self.bounds)
        for g in self.groups:
            k_of = {p.shelter: k for k, p in enumerate(g.pairs)}
            for ri in g.requests:
                if ri not in placement:
                    continue
                si, choice = placement[ri]
                k = k_of[si]
                values[g.n[k]] += 1
                for b, ys in g.y[k].items():
                    values[ys[choice[b]]] += 1
        return values

    def rounded(self, x: list[float]) -> Placement:
        """A feasible placement near the LP solution ``x`` (values by proto index).

        Groups are taken most urgent first (then in model order); each takes the rounded-down
        LP count of requests at each of its shelters where they still fit, in document order;
        the greedy baseline then completes the result. Deterministic for a given ``x``.
        """
        inst = self.inst
        requests = inst.problem.requests
        left = [list(f) for f in inst.free]
        placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
        placement: Placement = {}
        order = sorted(
            range(len(self.groups)),
            key=lambda gi: (-requests[self.groups[gi].requests[0]].priority, gi),
        )
        queues = [iter(g.requests) for g in self.groups]
        fractions: list[tuple[int, float, int, int]] = []

        def take(gi: int, k: int) -> bool:
            g = self.groups[gi]
            pair = g.pairs[k]
            si = pair.shelter
            ri = next(queues[gi], None)
            if ri is None or inst.separated[ri] & placed_at[si]:
                return False
            sizes = [len(b) for b in inst.blocks[ri]]
            fitted = fit_blocks(sizes, pair.candidates, left[si])
            if fitted is None:
                return False
            for b, u in enumerate(fitted):
                left[si][u] -= sizes[b]
            placed_at[si].add(ri)
            placement[ri] = (si, tuple(fitted))
            return True

        for gi in order:
            g = self.groups[gi]
            priority = requests[g.requests[0]].priority
            for k in range(len(g.pairs)):
                value = x[g.n[k]]
                whole = math.floor(value + 1e-6)
                if value - whole > 1e-6:
                    fractions.append((-priority, -(value - whole), gi, k))
                for _ in range(whole):
                    if not take(gi, k):
                        break
        # Then round up the largest fractions, most urgent first, where they still fit.
        for _, _, gi, k in sorted(fractions):
            take(gi, k)
        placement = greedy_placement(inst, placement)
        return improve_soft_cost(inst, placement) if self.cost_aware else placement

    def placement_from(self, value: Values) -> Placement:
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
        self.started = started
        self.time_limit_s = time_limit_s
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
        values: Values,
        cap: float | None = None,
        *,
        presolve: bool = True,
        model: cp_model.CpModel | None = None,
        hint: bool = True,
    ) -> tuple[Values, bool, float]:
        """Minimise ``terms`` from the hint ``values``; returns (best values, proven, bound).

        The returned values are never worse than the hint, which is feasible by construction.
        ``presolve=False`` skips CP-SAT's presolve, whose deterministic time is not
        interruptible: on the narrowed soft-cost models it overran the budget several times
        over (2,000x300: 1.1 instead of 0.33 s) and slowed the proof (500x60: 0.69 instead of
        0.44 s); it pays off on the neighbourhoods, where most variables are fixed.
        ``model`` replaces ``m.model`` by a copy of it with extra constraints. ``hint=False``
        searches without the hint (the values returned are still never worse than it).
        """
        model = m.model if model is None else model
        model.clear_objective()  # type: ignore[no-untyped-call]
        model.clear_hints()  # type: ignore[no-untyped-call]
        # Written straight into the proto: the expression API costs more than the search on
        # the small models.
        if hint:
            start = model.proto.solution_hint
            start.vars.extend(range(len(values)))
            start.values.extend(values)
        objective = model.proto.objective
        objective.vars.extend([v for v, _ in terms])
        objective.coeffs.extend([w for _, w in terms])
        solver = self._solver()
        limit = self.budget if cap is None else min(self.budget, cap)
        solver.parameters.max_deterministic_time = max(0.0, limit)
        solver.parameters.cp_model_presolve = presolve
        status = solver.solve(model)
        if status == cp_model.MODEL_INVALID:  # a bug here, never an input problem
            raise RuntimeError(f"invalid CP-SAT model: {model.validate()}")
        self.budget -= solver.deterministic_time
        current = sum(values[v] * w for v, w in terms)
        found_any = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if found_any:
            found = round(solver.objective_value)
            if found < current or status == cp_model.OPTIMAL:
                values = list(solver.response_proto.solution)
        proven = status == cp_model.OPTIMAL
        # CP-SAT reports a placeholder bound when it stops before its search starts.
        best = solver.best_objective_bound if found_any else math.nan
        if not proven:
            params = solver.parameters
            out_of_wall = solver.wall_time >= 0.98 * params.max_time_in_seconds
            out_of_det = solver.deterministic_time >= 0.98 * params.max_deterministic_time
            self.expired = self.expired or (out_of_wall and not out_of_det)
        return values, proven, best


def _lp_search(
    search: _Search,
    m: _Model,
    terms: Terms,
    placement: Placement,
    better: Callable[[Placement, Placement], bool],
    cap: float,
) -> tuple[Placement, bool, float]:
    """Minimise ``terms`` from the feasible ``placement`` with the LP relaxation's help; exact.

    1. GLOP solves the LP relaxation once: a valid lower bound, reduced costs and a solution.
    2. The LP solution, rounded and completed (:meth:`_Model.rounded`), replaces the start
       when ``better(rounded, start)`` (it must then be feasible for the model).
    3. Levels: a short search on the neighbourhood of the LP solution and the start (every
       variable both leave at zero stays there) looks for a better incumbent fast.
    4. Every variable is narrowed by its reduced cost so that every solution better than the
       incumbent survives (the incumbent too, as the hint): proving the narrowed model's
       optimum proves the model's. Soft cost, when the incumbent is far above the LP bound: a
       first search, without the hint, keeps only the solutions within ``GUESS_GAP`` of the
       bound: an optimum proven inside that window is the model's, else its best solution
       narrows the model again.

    The search stops at ``cap`` deterministic seconds (of ``search.budget``) in all.
    Returns the best placement, whether it is proven optimal, and a valid lower bound.
    """
    model = m.model
    stop = search.budget - cap

    def cost(values: Values) -> int:
        return sum(values[v] * w for v, w in terms)

    def left() -> float:
        return max(0.0, search.budget - stop)

    values = m.values_of(placement)
    current = cost(values)
    rc = m.relaxation().minimise(terms)
    lp = rc.integer_bound()
    if lp is None:
        values, proven, best = search.optimise(m, terms, values, cap, presolve=not m.cost_aware)
        return m.placement_from(values), proven, best
    if rc.x:
        rounded = m.rounded(rc.x)
        if better(rounded, placement):
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
    thorough = not m.cost_aware or cap >= SEARCH_DET_PER_VARIABLE * len(m.bounds)
    window = m.cost_aware and guess < current - 1 and thorough

    def nearby_search(values: Values, free: set[int] | None = None) -> Values:
        # A search around the LP optimum and the incumbent finds good solutions fast.
        nearby_model = rc.restricted(dict(enumerate(values)), free or ())
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
            # The LP's support and the incumbent's hold no better solution: open every shelter
            # and unit of the groups the LP splits or that still wait for a place (2,000x300,
            # priority 3: 1,524 → 1,526, the LP bound, where the first neighbourhood is stuck).
            values = nearby_search(values, m.open_groups(rc.x, values, terms))
            current = cost(values)
            if current <= lp:
                return m.placement_from(values), True, float(current)
    if not thorough:  # the neighbourhood search above was all
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


def _level_key(
    inst: Instance, placement: Placement, fixed: dict[int, int], p: int
) -> tuple[bool, int]:
    """(keeps every fixed higher level, people of priority ``p``): the better start wins."""
    placed = inst.placed_by_priority(placement)
    keeps = all(placed[5 - q] >= value for q, value in fixed.items())
    return (keeps, placed[5 - p])


def _key(inst: Instance, placement: Placement) -> tuple[int, ...]:
    """Lexicographic quality: people per priority 5..1, then lower soft cost."""
    return (*inst.placed_by_priority(placement), -_soft(inst, placement))


def _cp_sat(inst: Instance, greedy: Placement, search: _Search) -> _Run:
    """Priority levels on the cost-blind model, then the soft cost on the cost-aware one."""
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
    # One cost-blind model for every level: each level changes the objective and fixes its
    # optimum (or what it reached) before the next. (A reduced model never gets here: its LP
    # was measured to cost more than it gave, see _cp_sat_reduced.)
    a = _Model(inst, cost_aware=False)
    # The soft level's model and its LP relaxation do not depend on the levels (their results
    # become rows added later), so a second thread builds them while the levels search: the
    # build is pure Python, and CP-SAT and GLOP release the GIL. Same model, same answer.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refuge-soft-model")
    soft_model = pool.submit(_soft_model, inst)
    pool.shutdown(wait=False)
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
        levels_budget = max(0.0, search.budget - SOFT_SHARE * search.total)
        cap = levels_budget * (1.0 if last else LEVEL_SHARE)

        def better(new: Placement, old: Placement, p: int = p) -> bool:
            return _level_key(inst, new, fixed, p) > _level_key(inst, old, fixed, p)

        level = [(v, -w) for v, w in a.level_terms[p]]
        found, proven, low = _lp_search(search, a, level, placement, better, cap)
        best = -low if math.isfinite(low) else math.nan
        # Fill what the level left empty: a better start for the next level, same value here.
        placement = greedy_placement(inst, found)
        fixed[p] = inst.placed_by_priority(placement)[5 - p]
        achieved = fixed[p]
        a.at_least(a.level_terms[p], achieved)
        if proven or achieved >= best:
            bound[5 - p] = achieved
            proven_levels += 1
            continue
        if math.isfinite(best):
            bound[5 - p] = max(achieved, min(bound[5 - p], math.floor(best + 1e-6)))
        # Not proven: keep what was reached and go on; the answer is only "feasible" now.
    placement = improve_soft_cost(inst, placement)
    proven_all = proven_levels == len(PRIORITIES)
    soft_bound = 0
    if not search.out_of_time():
        b, floors = soft_model.result()
        placed = inst.placed_by_priority(placement)
        for p, row in floors.items():
            b.raise_floor(row, placed[5 - p])
        if b.soft_terms:
            placed = inst.placed_by_priority(placement)
            # The incumbent's columns keep the restricted LP feasible.
            b.relaxation().release(v for v, x in enumerate(b.values_of(placement)) if x)

            def keeps_levels(new: Placement, old: Placement) -> bool:
                levels = inst.placed_by_priority(new)
                return all(n >= o for n, o in zip(levels, placed, strict=True)) and _soft(
                    inst, new
                ) < _soft(inst, old)

            # The soft cost gets at most its share of the whole budget: at 2,000x300 its
            # 245,833-variable model runs 3-4 s of wall time per deterministic second.
            cap = min(search.budget, SOFT_SHARE * search.total)
            placement, proven_soft, best = _lp_search(
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
    baseline = None if proven_all else improve_soft_cost(inst, greedy)
    if baseline is not None and _key(inst, baseline) > _key(inst, placement):
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


def _soft_model(inst: Instance) -> tuple[_Model, dict[int, int]]:
    """The cost-aware model of the soft level, with its LP relaxation built.

    Its rows fixing the levels are there already, as ``Σ people_p >= 0`` (row index by
    priority): the levels' results only raise them. Writing those rows, 245,833 coefficients
    at 2,000x300, took 0.4 s of the main thread's time after the levels.
    """
    b = _Model(inst, cost_aware=True)
    floors = {p: b.at_least(b.level_terms[p], 0) for p in PRIORITIES if b.level_terms[p]}
    if b.soft_terms:
        # Its LP is solved on each group's cheapest shelters first, the others priced in as
        # they gain (column generation, exact): at 2,000x300 one round, 0.9 s instead of 3.2-3.4 s.
        b.relaxation().restrict(b.cheapest_columns(SOFT_LP_PAIRS))
    return b, floors


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
    there). Then ``insert_by_moves`` places more requests by moving placed ones, the
    neighbourhood search (:func:`_improve_by_neighbourhoods`) re-solves one region at a time
    for more people (neither unplaces anyone), the greedy baseline fills what room is left and
    ``improve_soft_cost`` lowers the soft cost. The status is always ``feasible`` and the
    bounds are the trivial ones.
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
            m.at_least(m.level_terms[q], value)
        share = 1.0 / (len(levels) - i)
        level = [(v, -w) for v, w in m.level_terms[p]]
        values, _, _ = search.optimise(m, level, m.values_of(placement), search.budget * share)
        # Fill what the level left empty: the same level value, a better start for the next.
        found = greedy_placement(inst, m.placement_from(values))
        counts = inst.placed_by_priority(found)
        if all(c >= f for c, f in zip(counts, floor, strict=True)):
            placement = found
        fixed[p] = inst.placed_by_priority(placement)[5 - p]
    placement = insert_by_moves(inst, placement)
    placement = greedy_placement(inst, _improve_by_neighbourhoods(inst, placement, search))
    placement = improve_soft_cost(inst, placement)
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


def _improve_by_neighbourhoods(inst: Instance, placement: Placement, search: _Search) -> Placement:
    """Place more people by re-solving one neighbourhood at a time (reduced models).

    Each neighbourhood (:func:`placement.neighbourhood.shelter_neighbourhoods`: a region, or a
    slice of a large one) is a small cost-blind model (:func:`placement.neighbourhood.
    neighbourhood`): the requests placed there may move within it or to one of their kept
    shelters with room outside it, and the unplaced requests with a viable shelter there may
    come in. Every request placed stays placed (each group places at least as many of its
    requests as now), so no priority can fall; CP-SAT maximises the people placed, a person of
    priority ``p`` weighing ``2^(p-1)``, within ``NEIGHBOURHOOD_CAP`` deterministic seconds.
    Only a strictly better answer replaces the requests' places (requests of a group that were
    placed are placed again first, where they were if the counts allow), so every step is a
    lexicographic gain. Up to ``NEIGHBOURHOOD_ROUNDS`` passes; one without a gain ends the search.
    Deterministic, with a wall-clock safety net of its own at ``NEIGHBOURHOOD_WALL_SHARE *
    time_limit_s`` from the start of the solve (reported like the solve's own). Pairs used
    beyond the kept ones join ``inst.pairs``.
    """
    saved = search.wall_deadline
    search.wall_deadline = min(
        saved, search.started + NEIGHBOURHOOD_WALL_SHARE * search.time_limit_s
    )
    try:
        return _neighbourhood_rounds(inst, placement, search)
    finally:
        search.wall_deadline = saved


def _neighbourhood_rounds(inst: Instance, placement: Placement, search: _Search) -> Placement:
    from placement.neighbourhood import Occupancy, neighbourhood, shelter_neighbourhoods

    occupancy = Occupancy(inst, placement)
    areas = shelter_neighbourhoods(inst.problem)
    for _ in range(NEIGHBOURHOOD_ROUNDS):
        gained = False
        for shelters in areas:
            if search.out_of_time():
                return occupancy.placement
            view, current = neighbourhood(inst, occupancy, shelters)
            m = _Model(view, cost_aware=False)
            for g in m.groups:
                placed = sum(1 for ri in g.requests if ri in current)
                if placed:
                    m.at_least([(n, 1) for n in g.n], placed)
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
            assert current.keys() <= changes.keys()
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


def _decode_keeping(m: _Model, values: Values, current: Placement) -> Placement:
    """Decode ``values`` like :meth:`_Model.placement_from`, moving as few requests as possible.

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
