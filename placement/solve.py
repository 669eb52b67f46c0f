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
from placement.greedy import greedy_placement
from placement.instance import Instance, Pair, Placement
from placement.problem import PRIORITIES, Problem, problem_digest
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo, Unplaced

METHODS = ("cp-sat", "greedy")
SAFETY_FACTOR = 3.0
"""The wall-clock safety net is ``SAFETY_FACTOR * time_limit_s + 1`` seconds."""


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
        time_limit_s: Search budget in CP-SAT *deterministic* seconds (> 0), shared by all
            levels. A wall-clock safety net of ``3 * time_limit_s + 1`` s also applies; if it
            fires, ``safety_net_expired`` is set and the result may differ between runs.
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
    greedy = greedy_placement(inst)
    trivial = inst.trivial_bound()
    if method == "greedy":
        run = _Run(placement=greedy, proven=False, bound=trivial, soft_bound=0)
    else:
        run = _CpSat(inst, greedy, time_limit_s, seed, workers, started).run()
    objective = Objective(inst.placed_by_priority(run.placement), _soft(inst, run.placement))
    return Solution(
        status="optimal" if run.proven else "feasible",
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
        assignments=_assignments(inst, run.placement),
        unplaced=tuple(
            Unplaced(problem.requests[ri].id, reasons)
            for ri, reasons in sorted(explain_unplaced(inst, run.placement).items())
        ),
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


def _weighted(terms: list[tuple[cp_model.IntVar, int]]) -> cp_model.LinearExpr:
    return cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [w for _, w in terms])


def _tie_weight(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return 1 + int.from_bytes(digest[:2], "big")


class _CpSat:
    def __init__(
        self,
        inst: Instance,
        greedy: Placement,
        time_limit_s: float,
        seed: int,
        workers: int,
        started: float,
    ) -> None:
        self.inst = inst
        self.greedy = greedy
        self.budget = float(time_limit_s)
        self.wall_deadline = started + SAFETY_FACTOR * time_limit_s + 1.0
        self.seed = seed
        self.workers = workers
        self.model = cp_model.CpModel()
        self.groups = self._groups()
        self._build()

    # --- model -------------------------------------------------------------------------

    def _groups(self) -> list[_Group]:
        inst = self.inst
        by_sig: dict[tuple[object, ...], _Group] = {}
        groups: list[_Group] = []
        for ri, pairs in enumerate(inst.pairs):
            if not pairs:
                continue
            if inst.separated[ri]:
                groups.append(_Group([ri], pairs))
                continue
            sizes = tuple(len(b) for b in inst.blocks[ri])
            sig = (
                inst.problem.requests[ri].priority,
                sizes,
                tuple((p.shelter, p.cost, p.candidates) for p in pairs),
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
        unit_terms: dict[tuple[int, int], list[tuple[cp_model.IntVar, int]]] = {}
        demand: dict[tuple[int, int], int] = {}
        self.level_terms: dict[int, list[tuple[cp_model.IntVar, int]]] = {p: [] for p in PRIORITIES}
        self.soft_terms: list[tuple[cp_model.IntVar, int]] = []
        self.tie_terms: list[tuple[cp_model.IntVar, int]] = []
        requests = inst.problem.requests
        shelters = inst.problem.shelters
        for gi, g in enumerate(self.groups):
            first = g.requests[0]
            count = len(g.requests)
            size = inst.size[first]
            sizes = [len(b) for b in inst.blocks[first]]
            priority = requests[first].priority
            for pair in g.pairs:
                si = pair.shelter
                n = model.new_int_var(0, count, f"n{gi}_{si}")
                g.n.append(n)
                self.level_terms[priority].append((n, size))
                if pair.cost:
                    self.soft_terms.append((n, pair.cost))
                self.tie_terms.append(
                    (n, _tie_weight(requests[first].id, shelters[si].id, str(count)))
                )
                ys: dict[int, dict[int, cp_model.IntVar]] = {}
                for b, cands in enumerate(pair.candidates):
                    if len(cands) == 1:
                        unit_terms.setdefault((si, cands[0]), []).append((n, sizes[b]))
                        demand[(si, cands[0])] = demand.get((si, cands[0]), 0) + sizes[b] * count
                        continue
                    ys[b] = {}
                    for u in cands:
                        y = model.new_int_var(0, count, f"y{gi}_{si}_{b}_{u}")
                        ys[b][u] = y
                        unit_terms.setdefault((si, u), []).append((y, sizes[b]))
                        demand[(si, u)] = demand.get((si, u), 0) + sizes[b] * count
                        uid = shelters[si].units[u].id
                        self.tie_terms.append((y, _tie_weight(requests[first].id, uid, str(b))))
                    model.add(sum(ys[b].values()) == n)
                g.y.append(ys)
            model.add(sum(g.n) <= count)
        for (si, u), terms in unit_terms.items():
            free = inst.free[si][u]
            if demand[(si, u)] > free:
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

    # --- conversion between placements and variable values -----------------------------

    def _values_of(self, placement: Placement) -> dict[cp_model.IntVar, int]:
        inst = self.inst
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
        del inst
        return values

    def _placement_from(self, value: dict[cp_model.IntVar, int]) -> Placement:
        inst = self.inst
        placement: Placement = {}
        for g in self.groups:
            queue = list(g.requests)
            for k, pair in enumerate(g.pairs):
                n = value[g.n[k]]
                takers, queue = queue[:n], queue[n:]
                # Deal the blocks' unit counts to the takers in document order.
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
        del inst
        return placement

    # --- levels ------------------------------------------------------------------------

    def _solver(self) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.random_seed = self.seed
        p.relative_gap_limit = 0.0
        p.absolute_gap_limit = 0.0
        p.max_deterministic_time = max(self.budget, 0.0)
        p.max_time_in_seconds = max(self.wall_deadline - time.perf_counter(), 0.001)
        p.linearization_level = 2
        p.log_search_progress = False
        if self.workers == 1:
            p.num_workers = 1
        else:
            p.num_workers = self.workers
            p.interleave_search = True
            p.extra_subsolvers.append("max_lp")
        return solver

    def run(self) -> _Run:
        inst, model = self.inst, self.model
        incumbent = self.greedy
        values = self._values_of(incumbent)
        bound = list(inst.trivial_bound())
        levels: list[tuple[str, list[tuple[cp_model.IntVar, int]]]] = [
            (str(p), self.level_terms[p]) for p in PRIORITIES
        ]
        levels += [("soft", self.soft_terms), ("tie", self.tie_terms)]
        soft_bound = 0
        expired = False
        proven_all = True
        for name, terms in levels:
            if not terms:
                continue
            expr = _weighted(terms)
            current = sum(values[v] * w for v, w in terms)
            maximise = name not in ("soft", "tie")
            if self.budget <= 0 or time.perf_counter() >= self.wall_deadline:
                if name != "tie":
                    proven_all = False
                    expired = expired or time.perf_counter() >= self.wall_deadline
                break
            model.clear_objective()  # type: ignore[no-untyped-call]
            model.clear_hints()  # type: ignore[no-untyped-call]
            for var, val in values.items():
                model.add_hint(var, val)
            if maximise:
                model.maximize(expr)
            else:
                model.minimize(expr)
            solver = self._solver()
            status = solver.solve(model)
            self.budget -= solver.deterministic_time
            found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            if found:
                better = (
                    solver.objective_value > current
                    if maximise
                    else solver.objective_value < current
                )
                if better or status == cp_model.OPTIMAL:
                    values = {var: int(solver.value(var)) for var in values}
                    current = sum(values[v] * w for v, w in terms)
            proven = status == cp_model.OPTIMAL
            if not proven and status != cp_model.INFEASIBLE:
                hit_wall = solver.wall_time >= solver.parameters.max_time_in_seconds * 0.98
                expired = expired or (
                    hit_wall
                    and solver.deterministic_time < solver.parameters.max_deterministic_time * 0.98
                )
            if name == "tie":
                break
            if proven:
                if maximise:
                    bound[5 - int(name)] = current
                    model.add(expr >= current)
                else:
                    soft_bound = current
                    model.add(expr <= current)
                continue
            proven_all = False
            best = solver.best_objective_bound
            if maximise:
                idx = 5 - int(name)
                if math.isfinite(best):
                    bound[idx] = min(bound[idx], max(current, math.floor(best + 1e-6)))
            elif math.isfinite(best):
                soft_bound = min(current, math.ceil(best - 1e-6))
            break
        placement = self._placement_from(values)
        return _Run(
            placement=placement,
            proven=proven_all,
            bound=(bound[0], bound[1], bound[2], bound[3], bound[4]),
            soft_bound=soft_bound,
            safety_net_expired=expired,
        )
