"""CP-SAT parameters, the deterministic budget and the wall clock shared by every search."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ortools.sat.python import cp_model

from placement.budget import Budget, Step
from placement.model import Model, Terms, Values


class _StopAt(cp_model.CpSolverSolutionCallback):
    """Counts CP-SAT's solutions; stops at the ``limit``-th one or once the clock is spent."""

    def __init__(self, limit: int | None, wall_spent: Callable[[], bool] | None) -> None:
        super().__init__()
        self.limit = limit
        self.wall_spent = wall_spent
        self.solutions = 0
        self.stopped_by_clock = False

    def on_solution_callback(self) -> None:
        self.solutions += 1
        if self.limit is not None and self.solutions >= self.limit:
            self.stop_search()
        elif self.wall_spent is not None and self.wall_spent():
            self.stopped_by_clock = True
            self.stop_search()


Job = tuple[cp_model.CpModel, Terms, Values, float]
"""One search of :meth:`Search.optimise_together`: model, terms, hint, deterministic cap."""


class Search:
    """The deterministic budget, parameters and wall-clock budget of every CP-SAT call of a solve.

    ``budget`` is what is left of CP-SAT's deterministic budget (``total`` at the start); the
    wall clock is the shared :class:`~placement.budget.Budget` ``clock``.
    """

    def __init__(self, clock: Budget, seed: int, workers: int) -> None:
        self.clock = clock
        self.budget = clock.deterministic_s
        self.total = self.budget
        self.seed = seed
        self.workers = workers
        self.on_search: Callable[[], object] | None = None
        """Called before each CP-SAT search (the levels start a build on the second thread)."""

    @property
    def expired(self) -> bool:
        """Whether the wall clock cut the solve."""
        return self.clock.expired

    def out_of_time(self) -> bool:
        """A check of the wall clock (always counted), then of the deterministic budget."""
        if self.clock.spent():
            self.budget = 0.0
            return True
        return self.budget <= 0

    def _solver(self) -> cp_model.CpSolver:
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.random_seed = self.seed
        p.relative_gap_limit = 0.0
        p.absolute_gap_limit = 0.0
        p.max_deterministic_time = max(self.budget, 0.0)
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
        # Every hint here is a complete, feasible solution, which CP-SAT takes as its first
        # solution at once: its hint search after that only found the same one again (rings,
        # 2,000x300, level 3: 0.5 of 1.8 s of wall time for the first neighbourhood).
        p.hint_conflict_limit = 0
        if self.workers == 1:
            p.num_workers = 1
        else:
            p.num_workers = self.workers
            p.interleave_search = True
            p.extra_subsolvers.append("max_lp")
        return solver

    def optimise(
        self,
        m: Model,
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
        _objective(model, terms, values if hint else None)
        limit = self.budget if cap is None else min(self.budget, cap)
        step = self.clock.step()
        if step is None or (step.stop_at is not None and not step.stop_at.get("solutions")):
            # Spent, or (a replay) the recorded run was cut before this call's first solution.
            self.budget = 0.0
            return values, False, math.nan
        if self.on_search is not None:
            self.on_search()
        replay_at = None if step.stop_at is None else int(step.stop_at["solutions"])
        call = self._start(model, limit, step, presolve, replay_at)
        call.run()
        cut = call.cut()
        if cut:
            # Where it was cut depends on the clock: only the solutions it reported so far are
            # kept (a replay stops at the same one), neither its bound nor its time used.
            self.clock.cut_during(step, {"solutions": call.counter.solutions})
            self.budget = 0.0
        else:
            self._count(call, limit)
        return call.result(terms, values, cut=cut)

    def optimise_together(
        self, jobs: Sequence[Job | Callable[[], Job]]
    ) -> list[tuple[Values, bool, float]]:
        """Minimise each job's ``terms`` on its own model at the same time, one thread each.

        Each job is (model, terms, hint, cap in deterministic seconds), or a callable that
        builds one: it is called after the check, once the jobs before it run, so that writing
        a model overlaps the searches already started. The models must not share objects.
        Nothing is built or run when the check finds the time spent (an empty list is
        returned). One check of the budget starts them all, each on its own thread, so an
        uncut round is as deterministic as the calls one after another, and its deterministic
        time is their sum. When the wall clock cuts any of them, each call keeps the solutions
        it reported (one that had ended keeps all of its own) and the round is recorded with
        how many each reported, so that a replay stops each call at the same one. Returns
        :meth:`optimise`'s triple per job.
        """
        step = self.clock.step()
        if step is None:
            self.budget = 0.0
            return []
        recorded = None if step.stop_at is None else step.stop_at.get("solutions")
        replay_at: list[int | None] = (
            [None] * len(jobs)
            if step.stop_at is None
            else [int(n) for n in recorded]
            if isinstance(recorded, list) and len(recorded) == len(jobs)
            else [0] * len(jobs)
        )
        if self.on_search is not None:
            self.on_search()
        budget = self.budget
        built: list[Job] = []
        calls: list[_Call] = []
        with ThreadPoolExecutor(len(jobs), thread_name_prefix="refuge-cp-sat") as ex:
            futures = []
            for job, at in zip(jobs, replay_at, strict=True):
                model, terms, values, cap = job if isinstance(job, tuple) else job()
                built.append((model, terms, values, min(budget, cap)))
                _objective(model, terms, values)
                call = self._start(model, min(budget, cap), step, True, at)
                calls.append(call)
                if at != 0:
                    futures.append(ex.submit(call.run))
            for future in futures:
                future.result()
        if step.stop_at is not None or any(call.cut() for call in calls):
            # Where it was cut depends on the clock: each call keeps the solutions it reported
            # (a replay stops each at the same one), none its bound or its time used.
            self.clock.cut_during(step, {"solutions": [c.counter.solutions for c in calls]})
            self.budget = 0.0
            return [
                (values, False, math.nan) if at == 0 else call.result(terms, values, cut=True)
                for call, at, (_, terms, values, _) in zip(calls, replay_at, built, strict=True)
            ]
        for call, (_, _, _, cap) in zip(calls, built, strict=True):
            self._count(call, cap)
        return [
            call.result(terms, values, cut=False)
            for call, (_, terms, values, _) in zip(calls, built, strict=True)
        ]

    def _start(
        self,
        model: cp_model.CpModel,
        limit: float,
        step: Step,
        presolve: bool,
        replay_at: int | None,
    ) -> _Call:
        solver = self._solver()
        solver.parameters.max_deterministic_time = max(0.0, limit)
        if math.isfinite(step.seconds):
            solver.parameters.max_time_in_seconds = max(step.seconds, 0.001)
        solver.parameters.cp_model_presolve = presolve
        live = None if self.clock.replaying else (lambda: self.clock.wall_left() <= 0)
        return _Call(model, solver, _StopAt(replay_at, live), step)

    def _count(self, call: _Call, limit: float) -> None:
        # Only whole calls are counted: a replay stops the cut one elsewhere, or skips it.
        self.clock.count("cp_sat_calls")
        self.clock.count("deterministic_s_given", limit)
        self.clock.count("deterministic_s_used", call.solver.deterministic_time)
        self.budget -= call.solver.deterministic_time


def _objective(model: cp_model.CpModel, terms: Terms, hint: Values | None) -> None:
    """Set ``model``'s objective to ``terms`` and its hint to ``hint`` (none when None)."""
    model.clear_objective()  # type: ignore[no-untyped-call]
    model.clear_hints()  # type: ignore[no-untyped-call]
    # Written straight into the proto: the expression API costs more than the search on
    # the small models.
    if hint is not None:
        start = model.proto.solution_hint
        start.vars.extend(range(len(hint)))
        start.values.extend(hint)
    objective = model.proto.objective
    objective.vars.extend([v for v, _ in terms])
    objective.coeffs.extend([w for _, w in terms])


class _Call:
    """One CP-SAT call: its model, solver and solution counter, run once."""

    def __init__(
        self, model: cp_model.CpModel, solver: cp_model.CpSolver, counter: _StopAt, step: Step
    ) -> None:
        self.model = model
        self.solver = solver
        self.counter = counter
        self.step = step
        self.status: Any = None

    def run(self) -> None:
        self.status = self.solver.solve(self.model, self.counter)
        if self.status == cp_model.MODEL_INVALID:  # a bug here, never an input problem
            raise RuntimeError(f"invalid CP-SAT model: {self.model.validate()}")

    def cut(self) -> bool:
        """Whether the wall clock (or, in a replay, the recorded cut) stopped the call."""
        done = self.status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
        by_clock = self.counter.stopped_by_clock or (
            math.isfinite(self.step.seconds)
            and self.solver.wall_time >= 0.98 * self.solver.parameters.max_time_in_seconds
        )
        return self.counter.limit is not None or (not done and by_clock)

    def result(self, terms: Terms, values: Values, *, cut: bool) -> tuple[Values, bool, float]:
        current = sum(values[v] * w for v, w in terms)
        found_any = self.status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        proven = self.status == cp_model.OPTIMAL and not cut
        if found_any:
            found = round(self.solver.objective_value)
            if found < current or proven:
                values = list(self.solver.response_proto.solution)
        # CP-SAT reports a placeholder bound when it stops before its search starts.
        best = self.solver.best_objective_bound if found_any and not cut else math.nan
        return values, proven, best
