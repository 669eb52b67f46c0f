"""Reduced-cost bound tightening from the LP relaxation of a CP-SAT model (exact).

Internal to the package. For a minimisation ``Σ c_j x_j`` over a model whose constraints are
all linear and whose variables are integer intervals, any dual vector ``y`` gives, by weak
duality, the lower bound ``L = Σ_r min(y_r lo_r, y_r hi_r) + Σ_j min(d_j lb_j, d_j ub_j)`` with
reduced costs ``d = c - Aᵀy``. Every solution of cost ``≤ U`` then satisfies
``d_j (x_j - lb_j) ≤ U - L`` for ``d_j > 0`` (and symmetrically at the upper bound), so the
variable's interval can be narrowed without losing any solution of cost ``≤ U``: the optimum,
and every tie among optima, survive. The duals come from GLOP; the bound is recomputed here from
them, so an inexact LP solve only makes the tightening weaker, never wrong (a small margin
covers floating-point rounding of the recomputation itself).

:class:`Relaxation` builds the LP once and re-solves it per objective (warm-started); each solve
gives a :class:`ReducedCosts` with the bound, the reduced costs and GLOP's primal solution (a
guide for rounding and for the neighbourhood of :meth:`ReducedCosts.restricted`, never a proof).
A large LP can be solved by column generation (:meth:`Relaxation.restrict`): the reduced costs
and the bound still cover every column, since they come from the duals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from ortools.linear_solver import linear_solver_pb2, pywraplp
from ortools.sat.python import cp_model

from placement.budget import Abandoned, Budget

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
PRICE_ROUNDS = 50
"""Column-generation rounds at most in one :meth:`Relaxation.minimise` (see ``restrict``)."""
GLOP_PARAMETERS = "use_preprocessing: false"
"""GLOP's parameters (text format). Presolve off: at 2,000x300 the five level LPs took 1.8 s
instead of 11.5 s, with the same bounds (docs/solver.md)."""


def _finite(v: int) -> float:
    if v <= INT64_MIN // 2:
        return -math.inf
    if v >= INT64_MAX // 2:
        return math.inf
    return float(v)


Row = tuple[Sequence[int], Sequence[int], float, float]
"""A row ``lo <= Σ coeffs·x[vars] <= hi`` as (vars, coeffs, lo, hi); bounds may be infinite."""

Restore = list[tuple[int, int, int]]
"""(variable proto index, old lower bound, old upper bound) for :func:`restore`."""


def restore(model: cp_model.CpModel, saved: Restore) -> None:
    """Put back the variable domains saved by :meth:`ReducedCosts.tighten` (latest first)."""
    for j, lo, hi in reversed(saved):
        model.proto.variables[j].domain[0] = lo
        model.proto.variables[j].domain[1] = hi


def solve_glop(solver: pywraplp.Solver, budget: Budget | None) -> int | None:
    """One GLOP solve, a step of ``budget`` if given (the seconds left as GLOP's time limit).

    Returns the solver's status, or None when the budget was spent or its clock cut the solve
    (recorded as a cut at ``{"lp": "time_limit"}``, counted nowhere: a replay skips it).
    """
    if budget is None:
        return int(solver.Solve())
    step = budget.step()
    if step is None or step.stop_at is not None:
        return None
    limit_ms = None
    if math.isfinite(step.seconds):
        limit_ms = max(1, math.ceil(step.seconds * 1000))
        solver.SetTimeLimit(limit_ms)
    began, real_began = budget.clock(), time.perf_counter()
    status = int(solver.Solve())
    # GLOP answers NOT_SOLVED when its time limit stops it, and may answer otherwise (not
    # OPTIMAL) at the limit: the real clock says so then, when the budget's (a test's fake
    # one) does not.
    timed_out = limit_ms is not None and (
        status == pywraplp.Solver.NOT_SOLVED
        or budget.clock() - began >= 0.95 * limit_ms / 1000
        or time.perf_counter() - real_began >= 0.95 * limit_ms / 1000
        or budget.wall_left() <= 0
    )
    if status != pywraplp.Solver.OPTIMAL and timed_out:
        budget.cut_during(step, {"lp": "time_limit"})
        return None
    budget.count("lp_solves")
    budget.count("lp_iterations", int(solver.iterations()))
    return status


class Relaxation:
    """The LP relaxation of a CP-SAT model, built once in GLOP and re-solved per objective.

    Rows added later with :meth:`add` are mirrored here and in the model by the caller;
    re-solving after a change of objective starts from the previous basis. ``ok`` is false
    when the model has another constraint type than plain linear ones or a variable with a
    holed domain: :meth:`minimise` then returns a result that narrows nothing.
    """

    def __init__(
        self,
        model: cp_model.CpModel,
        rows: Sequence[Row] | None = None,
        bounds: Sequence[tuple[int, int]] | None = None,
        *,
        abandon: Callable[[], bool] | None = None,
    ) -> None:
        """Build the LP of ``model``.

        ``rows`` and ``bounds`` (per proto index), when given, are the model's constraints and
        variable domains, known to the caller: reading them back from the proto is slower.
        ``abandon`` is asked every 4,096 rows; when it returns True the build raises
        :class:`~placement.budget.Abandoned`.
        """
        self.model = model
        self.ok = False
        self.rows: list[Row] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.nvars = 0
        self.solver: pywraplp.Solver | None = None
        self._held: set[int] = set()
        proto = model.proto
        lb: list[float] = []
        ub: list[float] = []
        if bounds is None:
            read_bounds: list[tuple[int, int]] = []
            for v in proto.variables:
                domain = list(v.domain)
                if len(domain) != 2:
                    return
                read_bounds.append((domain[0], domain[1]))
            bounds = read_bounds
        for low, high in bounds:
            lb.append(float(low))
            ub.append(float(high))
        if rows is None:
            read: list[Row] = []
            for c in proto.constraints:
                if not c.has_linear() or len(c.enforcement_literal) or len(c.linear.domain) != 2:
                    return
                lin = c.linear
                lo, hi = _finite(lin.domain[0]), _finite(lin.domain[1])
                read.append((list(lin.vars), list(lin.coeffs), lo, hi))
            rows = read
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if solver is None:
            return
        if GLOP_PARAMETERS:
            solver.SetSolverSpecificParametersAsString(GLOP_PARAMETERS)
        # Loaded from one MPModelProto: half the time of NumVar, Constraint and SetCoefficient
        # call by call, for the same model (variables, rows and coefficients in the same order).
        lp = linear_solver_pb2.MPModelProto()
        variables = lp.variable
        for lo, hi in zip(lb, ub, strict=True):
            var = variables.add()
            var.lower_bound, var.upper_bound = lo, hi
        constraints = lp.constraint
        for r, (vs, cs, lo, hi) in enumerate(rows):
            if abandon is not None and r % 4096 == 0 and abandon():
                raise Abandoned
            ct = constraints.add()
            ct.lower_bound, ct.upper_bound = lo, hi
            merged = _merged(vs, cs)
            ct.var_index.extend(merged)
            ct.coefficient.extend([float(a) for a in merged.values()])
            self.rows.append((vs, cs, lo, hi))
        if solver.LoadModelFromProto(lp):
            return
        self.solver = solver
        self.lb, self.ub = lb, ub
        # Variables are looked up by index when a row or an objective needs them: a list of
        # all of them would keep one SWIG proxy per variable alive for the garbage collector
        # to scan (19,520 of its 120,000 tracked objects at 500x60).
        self.nvars = len(lb)
        self.ok = True

    def add(self, vs: Sequence[int], cs: Sequence[int], lo: float, hi: float) -> None:
        """Add the row ``lo <= Σ cs·x[vs] <= hi`` (infinite bounds allowed)."""
        if self.solver is None:
            return
        inf = self.solver.infinity()
        ct = self.solver.Constraint(-inf if lo == -math.inf else lo, inf if hi == math.inf else hi)
        for v, a in _merged(vs, cs).items():
            ct.SetCoefficient(self.solver.variable(v), float(a))
        self.rows.append((vs, cs, lo, hi))

    def set_lower(self, row: int, lo: float) -> None:
        """Change the lower bound of row ``row`` (in the order the rows were given and added)."""
        vs, cs, _, hi = self.rows[row]
        self.rows[row] = (vs, cs, lo, hi)
        if self.solver is not None:
            self.solver.constraint(row).SetLb(lo)

    def restrict(self, columns: Collection[int]) -> None:
        """Solve later LPs on ``columns`` first, every other variable held at its lower bound.

        Only GLOP's copy changes; :meth:`minimise` still answers for the whole LP: it prices
        every held variable with the duals and releases those that could improve the
        objective, re-solving until none can (column generation). The bound it returns is
        recomputed from the duals over every variable, so it is valid even if it stops early.
        """
        if self.solver is None:
            return
        keep = set(columns)
        variable = self.solver.variable
        for j in range(self.nvars):
            if j not in keep and self.lb[j] < self.ub[j] and j not in self._held:
                variable(j).SetBounds(self.lb[j], self.lb[j])
                self._held.add(j)

    def release(self, columns: Iterable[int]) -> None:
        """Let ``columns`` take their whole range again in later solves."""
        if self.solver is None:
            return
        variable = self.solver.variable
        for j in columns:
            if j in self._held:
                self._held.discard(j)
                variable(j).SetBounds(self.lb[j], self.ub[j])

    def minimise(
        self, terms: Sequence[tuple[int, int]], budget: Budget | None = None
    ) -> ReducedCosts:
        """Solve the LP under ``min Σ c·x`` (terms by proto index) and derive reduced costs.

        With variables held by :meth:`restrict`, the LP is solved on the others first and held
        variables whose reduced cost is negative join, up to ``PRICE_ROUNDS`` rounds; if the
        restricted LP is not solved to optimality, every variable is released.

        With a ``budget``, each GLOP solve is a step of it with the seconds left as GLOP's time
        limit; a solve the clock cut (or skipped, once spent) gives a result without bound,
        solution or reduced costs, as an LP that did not solve.
        """
        out = ReducedCosts(self.model)
        if not self.ok or self.solver is None:
            return out
        nvars = self.nvars
        variable = self.solver.variable
        obj = self.solver.Objective()
        obj.Clear()
        cost = [0.0] * nvars
        for v, a in terms:
            cost[v] += float(a)
        held = self._held
        for j in range(nvars):
            if cost[j] and j not in held:
                obj.SetCoefficient(variable(j), cost[j])
        obj.SetMinimization()
        for _ in range(PRICE_ROUNDS):
            status = self._solve(budget)
            if status is None:
                return out
            if status != pywraplp.Solver.OPTIMAL:
                if not held:
                    return out
                self._release_all(cost)
                continue
            bound, d, response = self._reduced(cost)
            # Held variables at their lower bound that would lower the objective join.
            joining = [j for j in held if d[j] < -1e-9 * (1.0 + abs(cost[j]))]
            if not joining:
                break
            for j in sorted(joining):
                held.discard(j)
                variable(j).SetBounds(self.lb[j], self.ub[j])
                if cost[j]:
                    obj.SetCoefficient(variable(j), cost[j])
        else:
            if self._solve(budget) != pywraplp.Solver.OPTIMAL:
                return out
            bound, d, response = self._reduced(cost)
        out.bound, out.lb, out.ub, out.d = bound, self.lb, self.ub, d
        out.x = list(response.variable_value)
        return out

    def _solve(self, budget: Budget | None) -> int | None:
        """One GLOP solve; None when the budget was spent or its clock cut the solve."""
        assert self.solver is not None
        return solve_glop(self.solver, budget)

    def _release_all(self, cost: list[float]) -> None:
        assert self.solver is not None
        variable = self.solver.variable
        obj = self.solver.Objective()
        for j in sorted(self._held):
            variable(j).SetBounds(self.lb[j], self.ub[j])
            if cost[j]:
                obj.SetCoefficient(variable(j), cost[j])
        self._held.clear()

    def _reduced(
        self, cost: list[float]
    ) -> tuple[float, list[float], linear_solver_pb2.MPSolutionResponse]:
        """The bound and reduced costs of the whole LP from the last solve's duals."""
        assert self.solver is not None
        # Primal and dual values in one call each instead of one per variable and row.
        response = linear_solver_pb2.MPSolutionResponse()
        self.solver.FillSolutionResponseProto(response)
        lb, ub = self.lb, self.ub
        # Recompute reduced costs and the bound from the duals (valid for any duals of the
        # right sign; a wrong sign on an unbounded side is clipped to zero), over every
        # variable, held ones included, with their whole ranges.
        d = list(cost)
        bound = 0.0
        for (vs, cs, lo, hi), y in zip(self.rows, response.dual_value, strict=True):
            if (y > 0 and lo == -math.inf) or (y < 0 and hi == math.inf):
                y = 0.0
            if y == 0.0:
                continue
            bound += y * (lo if y > 0 else hi)
            for v, a in zip(vs, cs, strict=True):
                d[v] -= y * a
        for j in range(self.nvars):
            bound += d[j] * (lb[j] if d[j] > 0 else ub[j])
        return bound, d, response


def _merged(vs: Sequence[int], cs: Sequence[int]) -> dict[int, int]:
    """Coefficients by variable, terms of one variable summed, in order of first appearance."""
    merged: dict[int, int] = {}
    for v, a in zip(vs, cs, strict=True):
        merged[v] = merged.get(v, 0) + a
    return merged


class ReducedCosts:
    """One solve of a :class:`Relaxation`, for narrowing the model's domains.

    ``bound`` is the LP lower bound recomputed from GLOP's duals (``-inf`` when the LP could
    not be built or did not solve; :meth:`tighten` then changes nothing). ``x`` is GLOP's
    primal solution by proto index (empty when the LP did not solve), a guide for rounding
    heuristics only.
    """

    def __init__(self, model: cp_model.CpModel) -> None:
        self.model = model
        self.bound = -math.inf
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.d: list[float] = []
        self.x: list[float] = []

    def integer_bound(self) -> int | None:
        """A lower bound on the objective over integer solutions, None when the LP did not solve.

        The objective's coefficients are integers, so the LP bound rounds up; the margin of
        :meth:`tighten` covers the floating-point error of the recomputation first.
        """
        if not math.isfinite(self.bound):
            return None
        return math.ceil(self.bound - 1e-7 * abs(self.bound) - 1e-6)

    def restricted(self, keep: dict[int, int], free: Collection[int] = ()) -> cp_model.CpModel:
        """A copy of the model keeping at zero every variable that the LP and ``keep`` leave there.

        Not exact: a neighbourhood of the LP solution and the incumbent ``keep`` (values by
        proto index) for finding solutions fast, never for proving. Only variables whose domain
        starts at zero are fixed, never those in ``free``; the model itself is not changed.
        """
        zero = [
            j
            for j, xj in enumerate(self.x)
            if self.lb[j] == 0
            and self.ub[j] > 0
            and xj <= 1e-6
            and keep.get(j, 0) == 0
            and j not in free
        ]
        copy = cp_model.CpModel()
        copy.proto.copy_from(self.model.proto)
        variables = copy.proto.variables
        for j in zero:
            variables[j].domain[1] = 0
        return copy

    def tighten(self, upper: float, keep: dict[int, int] | None = None) -> Restore:
        """Narrow the model's domains keeping every solution with ``Σ c x ≤ upper``.

        Args:
            upper: Keep every solution of at most this cost (with an incumbent's cost, the
                narrowed model keeps every optimum and every tie among optima; with a guess
                below the optimum it may keep no solution at all).
            keep: Values (by proto index) the narrowed domains must still contain, e.g. a hint.

        Returns:
            The old domains of the variables changed, for :func:`restore`. Domains are
            narrowed from the ones seen when the LP was built.
        """
        if not math.isfinite(self.bound):
            return []
        keep = keep or {}
        lb, ub, d = self.lb, self.ub, self.d
        slack = upper - self.bound
        slack += 1e-7 * (abs(upper) + abs(self.bound)) + 1e-6
        if slack < 0:
            return []
        variables = self.model.proto.variables
        saved: Restore = []
        for j, dj in enumerate(d):
            if lb[j] == ub[j] or abs(dj) < 1e-9:
                continue
            width = math.floor(slack / abs(dj))
            if width >= ub[j] - lb[j]:
                continue
            lo, hi = int(lb[j]), int(ub[j])
            if dj > 0:
                new_lo, new_hi = lo, lo + width
            else:
                new_lo, new_hi = hi - width, hi
            dom = variables[j].domain
            new_lo, new_hi = max(new_lo, int(dom[0])), min(new_hi, int(dom[1]))
            if j in keep:
                new_lo, new_hi = min(new_lo, keep[j]), max(new_hi, keep[j])
            if (new_lo, new_hi) == (int(dom[0]), int(dom[1])):
                continue
            saved.append((j, int(dom[0]), int(dom[1])))
            dom[0], dom[1] = new_lo, new_hi
        return saved
