"""An independent lexicographic referee: a MIP of its own, solved by HiGHS level by level.

The referee checks :func:`placement.solve.solve` from outside. It shares neither model nor
pre-filter with it: admission, bed blocks and the shelter-level conditions are re-derived here
from SPEC §4 and §6 in a few plain lines (as :mod:`placement.verify` does), and the
formulation is written from the problem's meaning:

- ``x[r, s]`` binary for each pair where request ``r`` meets shelter ``s``'s conditions and
  each of its bed blocks (a guardian with their accompanied children, or one member alone)
  has a unit admitting the whole block with at least that many free beds;
- ``Σ_s x[r, s] ≤ 1`` (placed whole in one shelter, or not at all);
- a block with several candidate units gets ``y[r, s, b, u]`` binary with
  ``Σ_u y = x[r, s]``; one candidate uses ``x`` itself;
- ``Σ size_b · y ≤ free_beds(u)`` per unit;
- separations: the ``separate_from`` graph (either direction) is covered by cliques, and per
  clique and shelter at most one of its requests is placed there;
- levels 5..1 in order: maximise the people placed at the level, then fix the level at the
  value found (``≥``) before the next.

Each level gets its own time limit. A level is *proven* when HiGHS reports OPTIMAL (relative
MIP gap 0); otherwise it reports the best value found and HiGHS's best bound, and the lower
levels are then optimal or bounded *given* that value. The soft cost is not optimised: the
referee judges people placed, so its solution document says ``feasible``.

Only the explanations of the solution document (``unplaced`` reasons) come from the solver's
package (:func:`placement.explain.explain_unplaced`), so that the document has the same
shape as every other and passes :func:`placement.verify.verify`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ortools
from ortools.linear_solver import pywraplp

from placement.cost import soft_cost
from placement.explain import explain_unplaced
from placement.instance import Instance, Placement
from placement.problem import PRIORITIES, Member, Problem, Request, Shelter, Unit, problem_digest
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo, Unplaced

HARD_FACTOR = 1.5
HARD_GRACE_S = 10.0
"""A level's HiGHS child is killed after ``HARD_FACTOR * limit + HARD_GRACE_S`` seconds."""
DEFAULT_LEVEL_TIME_LIMIT_S = 20.0
"""Seconds per priority level when none is given (``refuge bench --referee-time-limit``)."""

BACKENDS = ("HIGHS", "SCIP")
"""MIP solvers tried in order; SCIP only where this OR-Tools build lacks HiGHS."""


@dataclass(frozen=True)
class Level:
    """The referee's answer at one priority level.

    Attributes:
        priority: 5..1.
        placed: people of this priority placed by the referee's solution.
        bound: an upper bound on that, given the higher levels fixed at their ``placed``.
        proven: ``placed == bound`` (by HiGHS, or by the LP relaxation's bound).
        outcome: ``optimal`` (HiGHS proved it), ``feasible`` (HiGHS's best at its time
            limit) or ``greedy`` (the higher levels' answer completed first-fit with this
            level's requests: it met the LP bound, or HiGHS found nothing better).
        wall_s: seconds this level's solve took (build and extraction included).
    """

    priority: int
    placed: int
    bound: int
    proven: bool
    outcome: str
    wall_s: float


@dataclass(frozen=True)
class RefereeResult:
    """The referee's levels, its solution document, and the MIP solver it used."""

    backend: str
    levels: tuple[Level, ...]
    solution: Solution

    @property
    def placed(self) -> tuple[int, ...]:
        """People placed per priority 5..1."""
        return tuple(level.placed for level in self.levels)

    @property
    def bound(self) -> tuple[int, ...]:
        """Bound per priority 5..1 (each given the levels above at their ``placed``)."""
        return tuple(level.bound for level in self.levels)

    @property
    def proven(self) -> bool:
        """Whether every level is proven: the lexicographic optimum of people placed."""
        return all(level.proven for level in self.levels)


LevelAnswer = tuple[int, dict[int, tuple[int, list[int]]] | None, float]
"""A level solve's outcome (pywraplp status), placement found (or None) and best bound."""


# --- the rules, re-derived (SPEC §4) --------------------------------------------------------


def _status(m: Member, members: Sequence[Member], majority_age: int) -> str:
    if m.age >= majority_age:
        return "adult"
    for g in members:
        if g.ref == m.guardian_ref and g is not m:
            return "accompanied_child" if g.age >= majority_age else "unaccompanied_minor"
    return "unaccompanied_minor"


def _blocks(q: Request, majority_age: int) -> list[list[tuple[Member, str]]]:
    """Members who must share a unit: a guardian with their accompanied children, or one alone."""
    status = {m.ref: _status(m, q.members, majority_age) for m in q.members}
    out: list[list[tuple[Member, str]]] = []
    for m in q.members:
        if status[m.ref] == "accompanied_child":
            continue
        block = [(m, status[m.ref])]
        block += [
            (c, "accompanied_child")
            for c in q.members
            if status[c.ref] == "accompanied_child" and c.guardian_ref == m.ref
        ]
        out.append(block)
    return out


def _shelter_allows(q: Request, s: Shelter) -> bool:
    return (
        s.status == "open"
        and s.region not in q.excluded_regions
        and s.id not in q.excluded_shelters
        and s.id not in q.declined_shelters
        and s.id not in q.separated_shelters
        and all(c in s.services for c in q.required_services)
        and (s.wheelchair_accessible or not q.wheelchair)
        and (s.security_level == "high" or not q.high_risk)
    )


def _clique_cover(n: int, edges: dict[int, set[int]]) -> list[list[int]]:
    """Cliques covering every edge of the separation graph (greedy, deterministic)."""
    covered: set[tuple[int, int]] = set()
    cliques: list[list[int]] = []
    for v in range(n):
        for w in sorted(edges.get(v, ())):
            if w < v or (v, w) in covered:
                continue
            clique = [v, w]
            for z in sorted(edges[v] & edges[w]):
                if z > w and all(z in edges[c] for c in clique):
                    clique.append(z)
            for i, a in enumerate(clique):
                for b in clique[i + 1 :]:
                    covered.add((min(a, b), max(a, b)))
            cliques.append(clique)
    return cliques


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints a banner on file descriptor 1 whatever the log setting: divert it."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


# --- the model --------------------------------------------------------------------------------


def referee(
    problem: Problem,
    *,
    level_time_limit_s: float = DEFAULT_LEVEL_TIME_LIMIT_S,
    backend: str | None = None,
) -> RefereeResult:
    """Solve ``problem`` lexicographically (priorities 5..1) with an independent MIP.

    Args:
        problem: The problem.
        level_time_limit_s: HiGHS time limit per priority level, in seconds.
        backend: ``HIGHS`` or ``SCIP``; None takes the first of :data:`BACKENDS` that this
            OR-Tools build has.

    Returns:
        Per level the people placed, a bound and whether it is proven; and a solution
        document (status ``feasible``: the soft cost is not optimised) that passes
        :func:`placement.verify.verify`.

    Raises:
        RuntimeError: when no MIP backend is available.
    """
    names = (backend,) if backend is not None else BACKENDS
    chosen = next((n for n in names if pywraplp.Solver.CreateSolver(n) is not None), None)
    if chosen is None:
        raise RuntimeError(f"no MIP solver among {', '.join(names)} in this OR-Tools build")
    requests = problem.requests
    blocks = [_blocks(q, problem.majority_age) for q in requests]
    groups, cliques, edges = _groups(problem, blocks)

    # The incumbent, request → (shelter, unit index per block); the empty one is feasible.
    current: dict[int, tuple[int, list[int]]] = {}
    levels: list[Level] = []
    for p in PRIORITIES:
        start = time.perf_counter()
        top = sum(g.people * len(g.requests) for g in groups if g.priority == p and g.options)
        if top == 0:
            levels.append(Level(p, 0, 0, True, "optimal", time.perf_counter() - start))
            continue
        floors = {level.priority: level.placed for level in levels}
        # First the cheap answers: the incumbent completed first-fit, and the LP relaxation
        # of the level's model (GLOP, separation cliques included). When they meet, the
        # level is proven without HiGHS.
        completed = _complete(problem, groups, edges, current, p)
        _, _, lp = _solve_level("GLOP", problem, groups, cliques, p, floors, level_time_limit_s)
        bound = min(top, math.floor(lp + 1e-3)) if math.isfinite(lp) else top
        current, name = completed, "greedy"
        if _people(requests, completed, p) < bound:
            outcome, found, best = _bounded(
                (chosen, problem, groups, cliques, p, floors, level_time_limit_s),
                HARD_FACTOR * level_time_limit_s + HARD_GRACE_S,
            )
            if math.isfinite(best):  # HiGHS's bound, valid whether or not it found a solution
                bound = min(bound, math.floor(best + 1e-3))
            if found is not None and outcome == pywraplp.Solver.OPTIMAL:
                bound = _people(requests, found, p)
            if found is not None and _people(requests, found, p) >= _people(requests, completed, p):
                current = found
                name = "optimal" if outcome == pywraplp.Solver.OPTIMAL else "feasible"
        value = _people(requests, current, p)
        bound = max(bound, value)
        proven = value == bound
        levels.append(Level(p, value, bound, proven, name, time.perf_counter() - start))

    solution = _solution(problem, chosen, level_time_limit_s, levels, current, blocks)
    inst = Instance(problem)
    placement: Placement = {}
    for ri, (si, units) in current.items():
        # The Instance's blocks are the same groups, each named here by its first member.
        by_ref = {block[0][0].ref: ui for block, ui in zip(blocks[ri], units, strict=True)}
        placement[ri] = (si, tuple(by_ref[b[0].ref] for b in inst.blocks[ri]))
    unplaced = tuple(
        Unplaced(requests[ri].id, reasons)
        for ri, reasons in sorted(explain_unplaced(inst, placement).items())
    )
    return RefereeResult(chosen, tuple(levels), replace(solution, unplaced=unplaced))


def _people(
    requests: Sequence[Request], placement: dict[int, tuple[int, list[int]]], p: int
) -> int:
    return sum(len(requests[ri].members) for ri in placement if requests[ri].priority == p)


@dataclass
class _Group:
    """Requests interchangeable for the referee: same priority, blocks and options.

    ``options`` lists ``(shelter, units per block)`` for every shelter where the group's
    conditions hold and each block has a unit admitting it with room for it. A request with
    separations is always a group of its own.
    """

    priority: int
    sizes: tuple[int, ...]
    options: tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]
    requests: list[int]

    @property
    def people(self) -> int:
        return sum(self.sizes)


def _groups(
    problem: Problem, blocks: Sequence[list[list[tuple[Member, str]]]]
) -> tuple[list[_Group], list[list[int]], dict[int, set[int]]]:
    """Groups of interchangeable requests, separation cliques and the separation graph.

    Cliques are lists of (single-request) group indices; the graph maps a request to the
    requests it must be kept apart from, both directions.
    """
    requests, shelters = problem.requests, problem.shelters
    index = {q.id: i for i, q in enumerate(requests)}
    edges: dict[int, set[int]] = {}
    for ri, q in enumerate(requests):
        for other in q.separate_from:
            oi = index.get(other)
            if oi is not None and oi != ri:
                edges.setdefault(ri, set()).add(oi)
                edges.setdefault(oi, set()).add(ri)
    allowed: dict[tuple[object, ...], list[int]] = {}
    admits: dict[tuple[object, ...], bool] = {}
    groups: list[_Group] = []
    group_of: dict[object, int] = {}
    single: dict[int, int] = {}
    for ri, q in enumerate(requests):
        key = (
            q.required_services,
            q.wheelchair,
            q.high_risk,
            q.excluded_regions,
            q.excluded_shelters,
            q.declined_shelters,
            q.separated_shelters,
        )
        if key not in allowed:
            allowed[key] = [si for si, s in enumerate(shelters) if _shelter_allows(q, s)]
        signatures = [tuple((m.sex, m.age, st) for m, st in b) for b in blocks[ri]]
        options = []
        for si in allowed[key]:
            units = shelters[si].units
            cands = []
            for sig in signatures:
                fit = []
                for ui, u in enumerate(units):
                    if u.free_beds < len(sig):
                        continue
                    hit = admits.get((sig, u.admits))
                    if hit is None:
                        hit = _block_admitted(sig, u)
                        admits[(sig, u.admits)] = hit
                    if hit:
                        fit.append(ui)
                if not fit:
                    break
                cands.append(tuple(fit))
            else:
                if len(q.members) <= sum(u.free_beds for u in units):
                    options.append((si, tuple(cands)))
        sizes = tuple(len(sig) for sig in signatures)
        gkey: object = ("alone", ri) if ri in edges else (q.priority, sizes, tuple(options))
        gi = group_of.get(gkey)
        if gi is None:
            gi = len(groups)
            group_of[gkey] = gi
            groups.append(_Group(q.priority, sizes, tuple(options), []))
        groups[gi].requests.append(ri)
        single[ri] = gi
    cliques = [[single[ri] for ri in c] for c in _clique_cover(len(requests), edges)]
    return groups, cliques, edges


def _block_admitted(sig: tuple[tuple[str, int, str], ...], unit: Unit) -> bool:
    return all(
        any(
            sex in r.sexes and r.min_age <= age <= r.max_age and st in r.statuses
            for r in unit.admits
        )
        for sex, age, st in sig
    )


def _solve_level(
    backend: str,
    problem: Problem,
    groups: Sequence[_Group],
    cliques: Sequence[list[int]],
    p: int,
    floors: dict[int, int],
    time_limit_s: float,
) -> LevelAnswer:
    """One level's MIP over the groups of priority ≥ ``p`` (lower ones cannot help it).

    Leaving the lower priorities out is exact: every constraint only limits placements, so
    unplacing them never hurts a higher level. Returns HiGHS's outcome, the placement found
    (None without one) and the best bound. With ``backend="GLOP"`` the same model is solved
    as a linear relaxation and the bound is its optimum (NaN when GLOP does not finish).
    """
    solver = pywraplp.Solver.CreateSolver(backend)
    assert solver is not None
    relaxed = backend == "GLOP"
    solver.SuppressOutput()
    if not relaxed:
        solver.SetNumThreads(1)
    solver.SetTimeLimit(max(1, round(time_limit_s * 1000)))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, 0.0)
    unit_rows: dict[tuple[int, int], pywraplp.Constraint] = {}
    level_rows = {
        q: solver.Constraint(float(v), solver.infinity()) for q, v in floors.items() if v > 0
    }
    objective = solver.Objective()
    objective.SetMaximization()
    # The floors are elastic: a person short at a higher level costs more than the whole of
    # this level can gain, so an optimum meets them, yet the empty placement is feasible and
    # HiGHS's heuristics start from there (its hints crash this OR-Tools build).
    penalty = 1.0 + sum(g.people * len(g.requests) for g in groups if g.priority == p)
    for q, row in level_rows.items():
        slack = solver.IntVar(0.0, float(floors[q]), "")
        row.SetCoefficient(slack, 1.0)
        objective.SetCoefficient(slack, -penalty)
    n: dict[int, dict[int, pywraplp.Variable]] = {}
    y: dict[tuple[int, int], list[list[tuple[int, pywraplp.Variable]]]] = {}
    shelters = problem.shelters
    for gi, g in enumerate(groups):
        if g.priority < p or not g.options:
            continue
        count = len(g.requests)
        row = solver.Constraint(0.0, float(count))
        n[gi] = {}
        for si, cands in g.options:
            var = solver.BoolVar("") if count == 1 else solver.IntVar(0.0, float(count), "")
            row.SetCoefficient(var, 1.0)
            n[gi][si] = var
            if g.priority == p:
                objective.SetCoefficient(var, float(g.people))
            elif g.priority in level_rows:
                level_rows[g.priority].SetCoefficient(var, float(g.people))
            per_block: list[list[tuple[int, pywraplp.Variable]]] = []
            for size, units in zip(g.sizes, cands, strict=True):
                if len(units) == 1:
                    options = [(units[0], var)]
                else:
                    link = solver.Constraint(0.0, 0.0)
                    link.SetCoefficient(var, -1.0)
                    options = []
                    for ui in units:
                        v = solver.BoolVar("") if count == 1 else solver.IntVar(0, count, "")
                        link.SetCoefficient(v, 1.0)
                        options.append((ui, v))
                for ui, v in options:
                    cap = unit_rows.get((si, ui))
                    if cap is None:
                        cap = solver.Constraint(0.0, float(shelters[si].units[ui].free_beds))
                        unit_rows[(si, ui)] = cap
                    cap.SetCoefficient(v, cap.GetCoefficient(v) + size)
                per_block.append(options)
            y[(gi, si)] = per_block
    for clique in cliques:
        present = [gi for gi in clique if gi in n]
        for si in sorted({si for gi in present for si in n[gi]}):
            members = [n[gi][si] for gi in present if si in n[gi]]
            if len(members) > 1:
                row = solver.Constraint(0.0, 1.0)
                for v in members:
                    row.SetCoefficient(v, 1.0)
    with _quiet_stdout():
        outcome = solver.Solve(params)
    if relaxed:
        value = objective.Value() if outcome == pywraplp.Solver.OPTIMAL else math.nan
        return outcome, None, value
    if outcome not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return outcome, None, math.nan
    found: dict[int, tuple[int, list[int]]] = {}
    placed = dict.fromkeys(floors, 0)
    for gi, per_shelter in n.items():
        if groups[gi].priority in placed:
            k = sum(round(v.solution_value()) for v in per_shelter.values())
            placed[groups[gi].priority] += groups[gi].people * k
    if any(placed[q] < v for q, v in floors.items()):
        return pywraplp.Solver.NOT_SOLVED, None, objective.BestBound()
    for gi, per_shelter in n.items():
        todo = iter(groups[gi].requests)
        for si, var in per_shelter.items():
            k = round(var.solution_value())
            if k <= 0:
                continue
            # Each block's units, as many of each as the counts say, dealt out in order.
            dealt = [
                [ui for ui, v in options for _ in range(round(v.solution_value()))]
                for options in y[(gi, si)]
            ]
            for j in range(k):
                found[next(todo)] = (si, [units[j] for units in dealt])
    return outcome, found, objective.BestBound()


def _bounded(args: tuple[Any, ...], wall_s: float) -> LevelAnswer:
    """:func:`_solve_level` in a forked child, killed after ``wall_s`` seconds.

    HiGHS checks its time limit only between phases: its presolve ran for more than 60 s on
    a level of 82k columns whose limit was 20 s. A killed level has no solution and no
    bound; the caller keeps the LP bound and the first-fit answer.
    """
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_level_child, args=(send, args), daemon=True)
    child.start()
    send.close()
    answer: LevelAnswer = (pywraplp.Solver.NOT_SOLVED, None, math.nan)
    try:
        if receive.poll(wall_s):
            answer = receive.recv()
    except EOFError:  # the child died without an answer
        pass
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    return answer


def _level_child(send: Any, args: tuple[Any, ...]) -> None:
    try:
        send.send(_solve_level(*args))
    finally:
        send.close()


def _complete(
    problem: Problem,
    groups: Sequence[_Group],
    edges: dict[int, set[int]],
    current: dict[int, tuple[int, list[int]]],
    p: int,
) -> dict[int, tuple[int, list[int]]]:
    """``current`` plus requests of priority ``p`` placed first-fit where they still fit."""
    sizes: dict[int, tuple[int, ...]] = {}
    for g in groups:
        for ri in g.requests:
            sizes[ri] = g.sizes
    left = [[u.free_beds for u in s.units] for s in problem.shelters]
    for ri, (si, units) in current.items():
        for size, ui in zip(sizes[ri], units, strict=True):
            left[si][ui] -= size
    out = dict(current)
    for g in groups:
        if g.priority != p:
            continue
        for ri in g.requests:
            for si, cands in g.options:
                if any(out.get(o, (-1,))[0] == si for o in edges.get(ri, ())):
                    continue
                choice = _fit(g.sizes, cands, left[si])
                if choice is not None:
                    for size, ui in zip(g.sizes, choice, strict=True):
                        left[si][ui] -= size
                    out[ri] = (si, choice)
                    break
    return dict(sorted(out.items()))


def _fit(
    sizes: Sequence[int], cands: Sequence[Sequence[int]], left: Sequence[int]
) -> list[int] | None:
    """A unit per block within ``left`` beds (exhaustive, larger blocks first), or None."""
    order = sorted(range(len(sizes)), key=lambda b: -sizes[b])
    room = list(left)
    choice = [-1] * len(sizes)

    def go(k: int) -> bool:
        if k == len(order):
            return True
        b = order[k]
        for ui in cands[b]:
            if room[ui] >= sizes[b]:
                room[ui] -= sizes[b]
                choice[b] = ui
                if go(k + 1):
                    return True
                room[ui] += sizes[b]
        return False

    return choice if go(0) else None


def _solution(
    problem: Problem,
    backend: str,
    level_time_limit_s: float,
    levels: Sequence[Level],
    current: dict[int, tuple[int, list[int]]],
    blocks: Sequence[list[list[tuple[Member, str]]]],
) -> Solution:
    requests, shelters = problem.requests, problem.shelters
    regions = {r.code: r for r in problem.regions}
    assignments = []
    cost = 0
    for ri in sorted(current):
        si, units = current[ri]
        q, s = requests[ri], shelters[si]
        unit = {
            m.ref: s.units[ui].id
            for block, ui in zip(blocks[ri], units, strict=True)
            for m, _ in block
        }
        assignments.append(
            Assignment(q.id, s.id, tuple(Bed(m.ref, unit[m.ref]) for m in q.members))
        )
        cost += soft_cost(q, s, regions, problem.weights)
    placed = tuple(level.placed for level in levels)
    bound = tuple(level.bound for level in levels)
    return Solution(
        status="feasible",
        problem_digest=problem_digest(problem),
        solver=SolverInfo(
            name=f"referee-{backend.lower()}",
            version=f"ortools {getattr(ortools, '__version__', 'unknown')}",
            seed=0,
            workers=1,
            time_limit_s=level_time_limit_s,
        ),
        objective=Objective(placed, cost),  # type: ignore[arg-type]
        bound=Objective(bound, 0),  # type: ignore[arg-type]
        wall_s=sum(level.wall_s for level in levels),
        assignments=tuple(assignments),
        unplaced=(),
    )
