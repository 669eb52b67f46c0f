"""Solve a placement problem: lexicographic CP-SAT with the greedy baseline as hint and fallback.

The pipeline is :func:`solve` alone; each phase is its own module and takes the one wall-clock
:class:`~placement.budget.Budget` of the solve: the instance (:mod:`placement.instance`), the
greedy baseline (:mod:`placement.greedy`), the levels and the soft cost on a full model
(:mod:`placement.levels`, each level through :mod:`placement.lpsearch` on the model of
:mod:`placement.model` and the CP-SAT calls of :mod:`placement.search`), or on a reduced model
with its neighbourhood search (:mod:`placement.reduced`), then the explanations
(:mod:`placement.explain`), for which the budget keeps a reserve. Details in docs/solver.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from placement import __version__ as placement_version
from placement.budget import Budget, Clock
from placement.explain import explain_unplaced
from placement.greedy import greedy_baseline, greedy_placement, improve_soft_cost, insert_by_moves
from placement.instance import Instance, Placement
from placement.levels import solve_levels
from placement.model import Run, soft
from placement.problem import Problem, problem_digest
from placement.reduced import solve_reduced
from placement.search import Search
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo, Unplaced

METHODS = ("cp-sat", "greedy")


def solve(
    problem: Problem,
    *,
    time_limit_s: float = 10.0,
    seed: int = 0,
    method: str = "cp-sat",
    workers: int = 1,
    clock: Clock | None = None,
    replay: Mapping[str, Any] | None = None,
    started: float | None = None,
) -> Solution:
    """Place as many people as possible, most urgent first, then at the least soft cost.

    Args:
        problem: A parsed problem.
        time_limit_s: Wall-clock limit of the whole solve in seconds (> 0): every phase draws
            on it, and a reserve for the explanations is kept to the end. Within it the work is
            deterministic (CP-SAT gets ``DET_PER_SECOND * time_limit_s`` deterministic seconds),
            so an uncut run does not depend on the machine's speed or load. When the wall clock
            cuts a phase, ``safety_net_expired`` is set, the status is ``feasible``, and
            ``work`` records where: :func:`solve` with ``replay=work`` reproduces the result.
        seed: CP-SAT random seed (≥ 0).
        method: ``cp-sat`` or ``greedy`` (baseline for comparison only).
        workers: CP-SAT workers; 1 (default) runs one deterministic worker, more run an
            interleaved (still deterministic) portfolio that includes the ``max_lp`` subsolver.
        clock: Seconds, monotonic (``time.perf_counter``); tests inject a fake one.
        replay: The ``work`` record of an earlier solution of the same problem, seed and
            parameters: do exactly the work it records (stopping where the wall clock cut
            that run) instead of reading the clock, so ``result_bytes()`` come out the same.
        started: A reading of ``clock`` from before the caller parsed the problem: the limit
            then covers the parsing too (``refuge solve`` passes it; default: now).

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
    return _solve(problem, time_limit_s, seed, method, workers, clock, replay, started)


def _solve(
    problem: Problem,
    time_limit_s: float,
    seed: int,
    method: str,
    workers: int,
    clock: Clock | None,
    replay: Mapping[str, Any] | None,
    started: float | None,
) -> Solution:
    budget = Budget(time_limit_s, clock=clock or time.perf_counter, replay=replay, started=started)
    with budget.phase_of("prepare"):
        digest = problem_digest(problem)
        inst = Instance(problem)
    with budget.phase_of("greedy"):
        # Cut only by the wall clock itself: the requests it did not reach are reported as not
        # examined (one reason each, no search after it), the others are explained in full,
        # and the reserve grows with them while it runs.
        began = budget.clock()

        def check(examined: int, placed: int) -> bool:
            budget.keep_for_baseline(
                len(problem.requests), examined - placed, len(problem.shelters)
            )
            return budget.spent()

        greedy, unexamined = greedy_baseline(inst, check=check)
        greedy_s = budget.clock() - began
    # Kept back for the explanations and, should the clock cut the search, one more greedy pass.
    budget.keep_for_explanations(
        len(problem.requests),
        len(problem.requests) - len(greedy),
        len(problem.shelters),
        also_s=2 * greedy_s,  # the completion after a cut: greedy and one repair pass
    )
    trivial = inst.trivial_bound()
    search = Search(budget, seed, workers)
    if unexamined:
        # The clock cut the baseline: it is the answer, as it stands (no completion either:
        # that would examine the rest).
        run = Run(placement=greedy, proven=False, bound=trivial, soft_bound=0)
    elif method == "greedy":
        run = Run(placement=greedy, proven=False, bound=trivial, soft_bound=0)
    elif len(problem.requests) == 1 and not inst.reduced:
        # One request (the API's single match): every viable pair fits on its own, so placing
        # it in its cheapest viable shelter, which greedy does, is the lexicographic optimum,
        # proven by enumeration; a search would only repeat it.
        placed = inst.placed_by_priority(greedy)
        run = Run(placement=greedy, proven=True, bound=placed, soft_bound=soft(inst, greedy))
    elif inst.reduced:
        with budget.phase_of("reduced"):
            run = solve_reduced(inst, greedy, search)
    else:
        with budget.phase_of("levels"):
            run = solve_levels(inst, greedy, search)
    if budget.expired and not unexamined:
        # A search cut part-way may leave room that its own completion, cut too, did not fill
        # (2,000x300: priorities 2 and 1 empty after a cut in level 3): the greedy baseline
        # fills it and one pass of the local repair lowers the soft cost (the cost-blind levels
        # leave it high), uncut, as the reserve allows. Deterministic given the placement.
        with budget.phase_of("complete"):
            # The baseline itself is complete already (20,000x2,000 cut before the search: a
            # second greedy pass over 20,000 requests placing nobody, 2 s).
            done = run.placement
            if done != greedy:
                # A full model's placement first makes room by moving placed requests aside
                # (2,000x300 rings cut at priority 3: +10 people there, 0.2 s); a reduced
                # model's search ran that insertion already, under the clock.
                if not inst.reduced:
                    done = insert_by_moves(inst, done)
                done = greedy_placement(inst, done)
            run.placement = improve_soft_cost(inst, done, 1)
    objective = Objective(inst.placed_by_priority(run.placement), soft(inst, run.placement))
    assignments = _assignments(inst, run.placement)
    # Not cut short: every unplaced request needs complete reasons (the budget's reserve).
    unplaced = tuple(
        Unplaced(problem.requests[ri].id, reasons)
        for ri, reasons in sorted(explain_unplaced(inst, run.placement, unexamined).items())
    )
    expired = budget.expired
    return Solution(
        # A run the clock cut proved nothing it did not finish: never call it optimal.
        status="optimal" if run.proven and not expired else "feasible",
        problem_digest=digest,
        solver=SolverInfo(
            name=method,
            version=f"refuge-placement {placement_version}; ortools {_ortools_version()}",
            seed=seed,
            workers=workers,
            time_limit_s=float(time_limit_s),
        ),
        objective=objective,
        bound=Objective(run.bound, min(run.soft_bound, objective.soft_cost)),
        wall_s=round(max(0.0, budget.clock() - budget.started), 3),
        assignments=assignments,
        unplaced=unplaced,
        safety_net_expired=expired,
        work=budget.work(),
    )


def _ortools_version() -> str:
    import ortools

    return str(getattr(ortools, "__version__", "unknown"))


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
