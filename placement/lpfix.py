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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _finite(v: int) -> float:
    if v <= INT64_MIN // 2:
        return -math.inf
    if v >= INT64_MAX // 2:
        return math.inf
    return float(v)


Restore = list[tuple[int, int, int]]
"""(variable proto index, old lower bound, old upper bound) for :func:`restore`."""


def restore(model: cp_model.CpModel, saved: Restore) -> None:
    """Put back the variable domains saved by :meth:`ReducedCosts.tighten` (latest first)."""
    for j, lo, hi in reversed(saved):
        model.proto.variables[j].domain[0] = lo
        model.proto.variables[j].domain[1] = hi


class ReducedCosts:
    """The LP relaxation of a model under a minimisation, solved once, for narrowing domains.

    ``bound`` is the LP lower bound recomputed from GLOP's duals (``-inf`` when the model has
    another constraint type than plain linear ones, a variable with a holed domain, or the LP
    did not solve; :meth:`tighten` then changes nothing). ``x`` is GLOP's primal solution by
    proto index (empty when the LP did not solve), a guide for rounding heuristics only.
    """

    def __init__(self, model: cp_model.CpModel, terms: Sequence[tuple[int, int]]) -> None:
        self.model = model
        self.bound = -math.inf
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.d: list[float] = []
        self.x: list[float] = []
        proto = model.proto
        nvars = len(proto.variables)
        lb = [0.0] * nvars
        ub = [0.0] * nvars
        for j, v in enumerate(proto.variables):
            if len(v.domain) != 2:
                return
            lb[j], ub[j] = float(v.domain[0]), float(v.domain[1])
        rows: list[tuple[list[int], list[int], float, float]] = []
        for c in proto.constraints:
            if not c.has_linear() or len(c.enforcement_literal) or len(c.linear.domain) != 2:
                return
            lin = c.linear
            rows.append(
                (list(lin.vars), list(lin.coeffs), _finite(lin.domain[0]), _finite(lin.domain[1]))
            )
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if solver is None:
            return
        inf = solver.infinity()
        xs = [solver.NumVar(lb[j], ub[j], "") for j in range(nvars)]
        cons = []
        for vs, cs, lo, hi in rows:
            ct = solver.Constraint(-inf if lo == -math.inf else lo, inf if hi == math.inf else hi)
            for v, a in zip(vs, cs, strict=True):
                ct.SetCoefficient(xs[v], float(a))
            cons.append(ct)
        obj = solver.Objective()
        cost = [0.0] * nvars
        for v, a in terms:
            cost[v] += float(a)
        for j in range(nvars):
            if cost[j]:
                obj.SetCoefficient(xs[j], cost[j])
        obj.SetMinimization()
        if solver.Solve() != pywraplp.Solver.OPTIMAL:
            return
        # Recompute reduced costs and the bound from the duals (valid for any duals of the
        # right sign; a wrong sign on an unbounded side is clipped to zero).
        d = list(cost)
        bound = 0.0
        for (vs, cs, lo, hi), ct in zip(rows, cons, strict=True):
            y = ct.dual_value()
            if (y > 0 and lo == -math.inf) or (y < 0 and hi == math.inf):
                y = 0.0
            if y == 0.0:
                continue
            bound += y * (lo if y > 0 else hi)
            for v, a in zip(vs, cs, strict=True):
                d[v] -= y * a
        for j in range(nvars):
            bound += d[j] * (lb[j] if d[j] > 0 else ub[j])
        self.bound, self.lb, self.ub, self.d = bound, lb, ub, d
        self.x = [x.solution_value() for x in xs]

    def integer_bound(self) -> int | None:
        """A lower bound on the objective over integer solutions, None when the LP did not solve.

        The objective's coefficients are integers, so the LP bound rounds up; the margin of
        :meth:`tighten` covers the floating-point error of the recomputation first.
        """
        if not math.isfinite(self.bound):
            return None
        return math.ceil(self.bound - 1e-7 * abs(self.bound) - 1e-6)

    def restrict(self, keep: dict[int, int]) -> Restore:
        """Fix at its lower bound every variable that the LP and ``keep`` both leave there.

        Not exact: a neighbourhood of the LP solution and the incumbent ``keep`` (values by
        proto index) for finding solutions fast, never for proving. Undo with :func:`restore`.
        """
        variables = self.model.proto.variables
        saved: Restore = []
        for j, xj in enumerate(self.x):
            dom = variables[j].domain
            lo, hi = int(dom[0]), int(dom[1])
            if lo == hi or xj > lo + 1e-6 or keep.get(j, lo) != lo:
                continue
            saved.append((j, lo, hi))
            dom[1] = lo
        return saved

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
