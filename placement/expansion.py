"""Capacity expansion: where a budget of new beds places the most people, most urgent first.

Given the requests a period left unplaced, a budget of beds (and optionally money) and a set of
bed options (a region and a unit type: admission rules plus the conditions of the shelter it
would be in, with a cost per bed), :func:`plan_beds` decides how many beds each option gets and
which requests they serve. Model and guarantees: docs/solver.md, "Capacity expansion".

Each option is treated as a new shelter in its region (at the region's centroid) with one unit
admitting ``admits``; whether a request may be served by it is asked of
:mod:`placement.eligibility`, never re-derived here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ortools.sat.python import cp_model

from placement.eligibility import member_reasons, shelter_reasons
from placement.problem import (
    MAX_FREE_BEDS,
    PRIORITIES,
    SECURITY_LEVELS,
    AdmissionRule,
    Member,
    Region,
    Request,
    Shelter,
    Unit,
)

SCHEMA = "refuge.bed-plan/1"

STEP_SHARE = 0.5
"""Each step of the lexicographic order (a priority level, the cost, the beds) but the last may
spend this share of the wall-clock time still left; the last step may spend all of it. An
unprovable level so cannot starve the ones below it, while the more urgent ones, which come
first, get more."""

_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

_COST = 0
_BEDS = -1
"""Step codes of the cost and the beds, after the priority levels 5..1."""

Terms = list[tuple[cp_model.IntVar, int]]
"""(variable, coefficient) pairs of a linear expression."""


@dataclass(frozen=True)
class BedOption:
    """A kind of bed that could be funded: one unit type in one region.

    Attributes:
        id: the option's id; the rules of problem ids (1-100 of ``A-Z a-z 0-9 . _ -``), and it
            stands for the new shelter's id (and its unit's) in eligibility.
        region: region code; the new shelter lies at the region's centroid.
        admits: the unit's admission rules.
        cost_per_bed: integer cost units per bed (e.g. KZT per bed per period), ≥ 0.
        services: services the new shelter would offer.
        languages: languages spoken there (ISO 639-1).
        security_level: ``standard`` or ``high``.
        wheelchair_accessible: whether the new shelter would be.
        max_beds: at most this many beds of this option (None: only the overall budget).
    """

    id: str
    region: str
    admits: tuple[AdmissionRule, ...]
    cost_per_bed: int
    services: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    security_level: str = "standard"
    wheelchair_accessible: bool = False
    max_beds: int | None = None


@dataclass(frozen=True)
class ExpansionPlan:
    """Where the beds go, whom they serve, and how sure that is.

    Attributes:
        beds: option id -> beds to add; options with no beds are left out.
        placed_by_priority: people served per priority, keys 5..1 (all five present).
        requests_by_priority: people in the demand per priority, keys 5..1 (all five present),
            the same unit as ``placed_by_priority`` ("served 40 of 63 people at priority 5").
        assignments: request id -> option id, for every request served.
        cost: Σ cost_per_bed × beds.
        total_beds: Σ beds.
        status: ``optimal`` when every priority level, the cost and the beds were proven
            optimal in the lexicographic order; ``feasible`` otherwise (a valid plan, not
            proven best: the time limit ran out).
        bounds: per priority (5..1), a proven upper bound on the people the lexicographically
            best plan serves at that priority; equal to ``placed_by_priority`` when optimal.
    """

    beds: dict[str, int]
    placed_by_priority: dict[int, int]
    requests_by_priority: dict[int, int]
    assignments: dict[str, str]
    cost: int
    total_beds: int
    status: str
    bounds: dict[int, int]

    def to_document(self) -> dict[str, Any]:
        """The plan as a ``refuge.bed-plan/1`` document: JSON-able, keys and lists in a fixed order.

        ``beds`` and ``assignments`` are lists sorted by option id and request id; the
        per-priority maps have string keys "5" to "1". The same plan always gives the same
        document, so two runs can be compared with ``==``.
        """
        return {
            "schema": SCHEMA,
            "status": self.status,
            "total_beds": self.total_beds,
            "cost": self.cost,
            "beds": [{"option": o, "beds": self.beds[o]} for o in sorted(self.beds)],
            "placed_by_priority": _by_priority(self.placed_by_priority),
            "requests_by_priority": _by_priority(self.requests_by_priority),
            "bounds": _by_priority(self.bounds),
            "assignments": [
                {"request": r, "option": self.assignments[r]} for r in sorted(self.assignments)
            ],
        }


def _by_priority(values: dict[int, int]) -> dict[str, int]:
    return {str(p): values.get(p, 0) for p in PRIORITIES}


def option_shelter(option: BedOption, free_beds: int = MAX_FREE_BEDS) -> Shelter:
    """The new shelter an option stands for: one open unit with ``free_beds`` beds.

    Shelter and unit both take the option's id; the location is None, i.e. the region's
    centroid. Services and languages are de-duplicated and sorted as in a problem document.
    """
    security: Literal["standard", "high"] = (
        "high" if option.security_level == "high" else "standard"
    )
    return Shelter(
        id=option.id,
        region=option.region,
        location=None,
        security_level=security,
        wheelchair_accessible=option.wheelchair_accessible,
        services=tuple(sorted(set(option.services))),
        languages=tuple(sorted(set(option.languages))),
        units=(Unit(id=option.id, free_beds=free_beds, admits=option.admits),),
    )


def eligible_options(
    demand: Sequence[Request], options: Sequence[BedOption], majority_age: int = 18
) -> list[tuple[int, ...]]:
    """Per request, the indices of the options it could be served by (beds ignored).

    A request is eligible at an option exactly when :mod:`placement.eligibility` gives no
    reason code for it at :func:`option_shelter`: shelter conditions (required services,
    excluded regions, high risk → high security, wheelchair) and every bed block admitted by
    the one unit. The member half is cached per (members, rules), as in the verifier.
    """
    shelters = [option_shelter(o) for o in options]
    cache: dict[tuple[tuple[Member, ...], tuple[AdmissionRule, ...]], bool] = {}
    out: list[tuple[int, ...]] = []
    for q in demand:
        ok: list[int] = []
        for oi, sh in enumerate(shelters):
            if shelter_reasons(q, sh):
                continue
            key = (q.members, sh.units[0].admits)
            admitted = cache.get(key)
            if admitted is None:
                admitted = not member_reasons(q, sh.units, majority_age)
                cache[key] = admitted
            if admitted:
                ok.append(oi)
        out.append(tuple(ok))
    return out


def _check(
    demand: Sequence[Request],
    regions: Sequence[Region],
    options: Sequence[BedOption],
    max_beds: int,
    budget: int | None,
    time_limit_s: float,
) -> None:
    def integer(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not integer(max_beds) or max_beds < 0:
        raise ValueError(f"max_beds must be an integer ≥ 0, not {max_beds!r}")
    if budget is not None and (not integer(budget) or budget < 0):
        raise ValueError(f"budget must be None or an integer ≥ 0, not {budget!r}")
    if not (isinstance(time_limit_s, int | float) and math.isfinite(time_limit_s)) or (
        time_limit_s <= 0
    ):
        raise ValueError(f"time_limit_s must be a positive number of seconds, not {time_limit_s!r}")
    codes = {r.code for r in regions}
    seen: set[str] = set()
    for o in options:
        if not isinstance(o.id, str) or not _ID_RE.fullmatch(o.id):
            raise ValueError(f"option id {o.id!r}: must be 1-100 characters A-Z a-z 0-9 . _ -")
        if o.id in seen:
            raise ValueError(f"duplicate option id {o.id!r}: every option needs its own id")
        seen.add(o.id)
        if o.region not in codes:
            raise ValueError(f"option {o.id!r}: unknown region code {o.region!r}")
        if not integer(o.cost_per_bed) or o.cost_per_bed < 0:
            raise ValueError(f"option {o.id!r}: cost_per_bed must be an integer ≥ 0")
        if o.max_beds is not None and (not integer(o.max_beds) or o.max_beds < 0):
            raise ValueError(f"option {o.id!r}: max_beds must be None or an integer ≥ 0")
        if o.security_level not in SECURITY_LEVELS:
            raise ValueError(
                f"option {o.id!r}: security_level must be one of {', '.join(SECURITY_LEVELS)}"
            )
    ids: set[str] = set()
    for q in demand:
        if q.id in ids:
            raise ValueError(f"duplicate request id {q.id!r} in the demand")
        ids.add(q.id)
        if q.priority not in PRIORITIES:
            raise ValueError(f"request {q.id!r}: priority must be 1-5, not {q.priority!r}")
        if not q.members:
            raise ValueError(f"request {q.id!r} has no members")


@dataclass
class _Class:
    """Interchangeable requests: same priority, size and eligible options, kept apart from none.

    ``n[k]`` is the model variable "how many of them option ``options[k]`` serves".
    """

    priority: int
    size: int
    options: tuple[int, ...]
    requests: list[int] = field(default_factory=list)
    n: list[cp_model.IntVar] = field(default_factory=list)


def plan_beds(
    demand: Sequence[Request],
    regions: Sequence[Region],
    options: Sequence[BedOption],
    *,
    max_beds: int,
    budget: int | None = None,
    majority_age: int = 18,
    time_limit_s: float = 10.0,
    seed: int = 0,
) -> ExpansionPlan:
    """Decide how many beds each option gets to serve the most people, most urgent first.

    Lexicographic: the most people served at priority 5; with that fixed, at 4; … 1; then the
    least cost; then the fewest beds. A request is served whole by one option or not at all,
    only by an option it is eligible for (:func:`eligible_options`); an option's beds hold
    the people it serves; requests to be kept apart (``separate_from``, either direction;
    ids outside the demand are ignored) never share an option.

    Args:
        demand: the requests to serve (typically the ones a period left unplaced).
        regions: the regions the options lie in.
        options: the bed options, ids distinct.
        max_beds: at most this many beds in all (≥ 0).
        budget: at most this much money in all (Σ cost_per_bed × beds), or None.
        majority_age: age of majority for member statuses.
        time_limit_s: wall-clock seconds for all steps together (see :data:`STEP_SHARE`).
        seed: CP-SAT's random seed; with one worker, the same inputs give the same plan
            unless the time limit cut a step.

    Returns:
        The plan; ``optimal`` only when every step was proven. Inputs with nothing to gain
        (no beds, no eligible option, every option dearer than the budget) give the empty
        plan, proven optimal.

    Raises:
        ValueError: on a duplicate option or request id, an option in an unknown region, a
            negative bed count, budget or cost, a priority outside 1-5, a request without
            members, or a time limit that is not positive.
    """
    _check(demand, regions, options, max_beds, budget, time_limit_s)
    deadline = time.perf_counter() + time_limit_s
    wanted = dict.fromkeys(PRIORITIES, 0)
    for q in demand:
        wanted[q.priority] += len(q.members)
    eligible = eligible_options(demand, options, majority_age)
    caps = [_option_cap(o, max_beds, budget) for o in options]
    # Options nobody may use, or that can hold nobody, are left out of the model.
    eligible = [
        tuple(o for o in e if caps[o] >= len(q.members))
        for q, e in zip(demand, eligible, strict=True)
    ]
    index = {q.id: i for i, q in enumerate(demand)}
    apart: list[set[int]] = [set() for _ in demand]
    for i, q in enumerate(demand):
        for other in q.separate_from:
            j = index.get(other)
            if j is not None and j != i and set(eligible[i]) & set(eligible[j]):
                apart[i].add(j)
                apart[j].add(i)

    m = cp_model.CpModel()
    classes: list[_Class] = []
    by_key: dict[tuple[int, int, tuple[int, ...]], _Class] = {}
    for i, q in enumerate(demand):
        if not eligible[i]:
            continue
        key = (q.priority, len(q.members), eligible[i])
        if apart[i]:
            classes.append(_Class(q.priority, len(q.members), eligible[i], [i]))
            continue
        c = by_key.get(key)
        if c is None:
            c = _Class(q.priority, len(q.members), eligible[i])
            by_key[key] = c
            classes.append(c)
        c.requests.append(i)

    used = sorted({o for c in classes for o in c.options})
    demand_at = dict.fromkeys(used, 0)
    for c in classes:
        for o in c.options:
            demand_at[o] += c.size * len(c.requests)
    # b_o: beds of option o, never more than its cap or than the people who could use it.
    upper = {o: min(caps[o], demand_at[o]) for o in used}
    beds = {o: m.new_int_var(0, upper[o], f"b{o}") for o in used}
    served_at: dict[int, Terms] = {o: [] for o in used}
    level: dict[int, Terms] = {p: [] for p in PRIORITIES}
    var_of: dict[tuple[int, int], cp_model.IntVar] = {}  # (request, option), kept-apart ones
    for ci, c in enumerate(classes):
        count = len(c.requests)
        c.n = [m.new_int_var(0, count, f"n{ci}_{o}") for o in c.options]
        if len(c.n) > 1:
            m.add(_expr([(v, 1) for v in c.n]) <= count)
        for o, v in zip(c.options, c.n, strict=True):
            served_at[o].append((v, c.size))
            level[c.priority].append((v, c.size))
            if apart[c.requests[0]]:
                var_of[(c.requests[0], o)] = v
    for o in used:
        m.add(_expr(served_at[o]) <= beds[o])
    m.add(_expr([(beds[o], 1) for o in used]) <= max_beds)
    if budget is not None:
        m.add(_expr([(beds[o], options[o].cost_per_bed) for o in used]) <= budget)
    for i, others in enumerate(apart):
        for j in sorted(others):
            if j > i:
                for o in sorted(set(eligible[i]) & set(eligible[j])):
                    m.add(var_of[(i, o)] + var_of[(j, o)] <= 1)

    all_vars = [v for c in classes for v in c.n] + [beds[o] for o in used]
    fill = _Fill(options, classes, beds, upper, max_beds, budget, apart)
    values = fill(dict.fromkeys((v.index for v in all_vars), 0), below=6)
    # Until a step proves more, a level's bound is the people eligible somewhere, at most
    # max_beds: valid for the lexicographic optimum whatever happens above it.
    bounds = {
        p: min(max_beds, sum(c.size * len(c.requests) for c in classes if c.priority == p))
        for p in PRIORITIES
    }
    # (priority of a level, or COST or BEDS; the terms; 1 to maximise, -1 to minimise)
    steps: list[tuple[int, Terms, int]] = [(p, level[p], 1) for p in PRIORITIES if level[p]]
    if used:
        steps.append((_COST, [(beds[o], options[o].cost_per_bed) for o in used], -1))
        steps.append((_BEDS, [(beds[o], 1) for o in used], -1))
    cheapest = min((options[o].cost_per_bed for o in used), default=0)
    cheapest_at = {
        p: min(
            (options[o].cost_per_bed for c in classes if c.priority == p for o in c.options),
            default=0,
        )
        for p in PRIORITIES
    }
    below_vars = {p: [v for c in classes if c.priority < p for v in c.n] for p in PRIORITIES}
    proven_so_far = True
    above = 0  # people served at the levels already fixed
    for si, (p, terms, sense) in enumerate(steps):
        last = si == len(steps) - 1
        hinted = sum(k * values[v.index] for v, k in terms)
        proven, best_bound = False, math.inf
        # A step whose start is already as good as a cheap bound is proven without a search.
        # A level: its start serves as many as the beds (and money) the levels above leave,
        # each of them taking a bed of at least the cheapest cost. The beds: none is idle.
        if p > 0:
            floor = _left_for(p, bounds[p], above, max_beds, budget, cheapest, cheapest_at[p])
            done = hinted >= floor
        else:
            done = hinted == 0 or (p == _BEDS and hinted == above)
        if done:
            proven = True
        else:
            left = deadline - time.perf_counter()
            got = None
            if left > 0:
                share = left * (1.0 if last else STEP_SHARE)
                # A level is searched with the levels below it held at zero: they only take
                # beds, so its optimum is the same, and the model CP-SAT sees is smaller.
                frozen = below_vars[p] if p > 0 else []
                got = _solve(m, terms, sense, all_vars, values, frozen, share, seed)
            if got is not None:
                values, proven, best_bound = got
            if p > 0:  # the levels below get what is left, greedily: the next step's start
                values = fill(values, below=p)
        achieved = sum(k * values[v.index] for v, k in terms)
        if p > 0:
            above += achieved
            if proven:
                bounds[p] = achieved
            elif proven_so_far and math.isfinite(best_bound):
                bounds[p] = max(achieved, min(bounds[p], math.floor(best_bound + 1e-6)))
            # Below a level not proven, CP-SAT's bound is conditional on the value that level
            # reached: only the trivial bound holds for the lexicographic optimum.
        proven_so_far = proven_so_far and proven
        if not last:
            # Fix what was reached: a maximum as a floor, a minimum as a cap; a proven value
            # exactly, which lets presolve drop what can no longer change.
            expr = _expr(terms)
            if proven:
                m.add(expr == achieved)
            else:
                m.add(expr >= achieved if sense > 0 else expr <= achieved)
    return _plan(demand, options, classes, beds, values, wanted, bounds, proven_so_far)


def _left_for(
    p: int,
    eligible_people: int,
    above: int,
    max_beds: int,
    budget: int | None,
    cheapest: int,
    cheapest_here: int,
) -> int:
    """An upper bound on the people served at level ``p`` once ``above`` are served above it.

    Beds: ``max_beds - above``. Money: each of the ``above`` takes a bed costing at least
    ``cheapest`` (over all options), each served here one costing at least ``cheapest_here``
    (over the options level ``p`` may use). Never more than ``eligible_people``.
    """
    left = min(eligible_people, max_beds - above)
    if budget is not None and cheapest_here > 0:
        left = min(left, (budget - above * cheapest) // cheapest_here)
    return max(0, left)


def _option_cap(option: BedOption, max_beds: int, budget: int | None) -> int:
    """The most beds an option could get on its own."""
    cap = max_beds if option.max_beds is None else min(max_beds, option.max_beds)
    if budget is not None and option.cost_per_bed > 0:
        cap = min(cap, budget // option.cost_per_bed)
    return cap


def _expr(terms: Terms) -> cp_model.LinearExpr:
    return cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [k for _, k in terms])


def _solve(
    m: cp_model.CpModel,
    terms: Terms,
    sense: int,
    all_vars: list[cp_model.IntVar],
    values: dict[int, int],
    frozen: list[cp_model.IntVar],
    seconds: float,
    seed: int,
) -> tuple[dict[int, int], bool, float] | None:
    """One step: optimise ``terms`` (``sense`` 1: maximise, -1: minimise) from hint ``values``.

    ``frozen`` variables are held at 0 for this search only. Returns the new values by
    variable index, whether the step was proven optimal, and CP-SAT's bound on the objective;
    None when CP-SAT found no solution in ``seconds``.
    """
    if sense > 0:
        m.maximize(_expr(terms))
    else:
        m.minimize(_expr(terms))
    held = {v.index for v in frozen}
    domains = m.proto.variables
    saved = [list(domains[i].domain) for i in sorted(held)]
    for i in sorted(held):
        domains[i].domain.clear()
        domains[i].domain.extend((0, 0))
    m.clear_hints()  # type: ignore[no-untyped-call]
    for v in all_vars:
        m.add_hint(v, 0 if v.index in held else values[v.index])
    solver = cp_model.CpSolver()
    params = solver.parameters
    # One worker and a fixed seed: the same model gives the same answer (docs/solver.md).
    params.num_workers = 1
    params.random_seed = seed
    params.max_time_in_seconds = max(0.01, seconds)
    params.linearization_level = 2
    params.relative_gap_limit = 0.0
    params.absolute_gap_limit = 0.0
    try:
        status = solver.solve(m)
    finally:
        for i, domain in zip(sorted(held), saved, strict=True):
            domains[i].domain.clear()
            domains[i].domain.extend(domain)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    new = {v.index: int(solver.value(v)) for v in all_vars}
    return new, status == cp_model.OPTIMAL, float(solver.best_objective_bound)


class _Fill:
    """Greedy completion of a plan: the first start, and the start of each level after it.

    Requests not yet served, at priorities below ``below``, most urgent first (then document
    order), each go to their cheapest eligible option (ties: option order) with room: idle
    beds there first, else new beds within the option's bounds, the beds left and the money
    left, and never where a request it must be kept apart from is. What is served already
    stays, so a start keeps every level fixed above it.
    """

    def __init__(
        self,
        options: Sequence[BedOption],
        classes: list[_Class],
        beds: dict[int, cp_model.IntVar],
        upper: dict[int, int],
        max_beds: int,
        budget: int | None,
        apart: list[set[int]],
    ) -> None:
        self.options = options
        self.classes = classes
        self.beds = beds
        self.max_beds = max_beds
        self.budget = budget
        self.apart = apart
        self.upper = upper  # of each option's beds
        self.order = sorted(
            range(len(classes)), key=lambda ci: (-classes[ci].priority, classes[ci].requests[0])
        )
        self.by_cost = [
            sorted(c.options, key=lambda o: (options[o].cost_per_bed, o)) for c in classes
        ]

    def __call__(self, values: dict[int, int], *, below: int) -> dict[int, int]:
        """``values`` completed (a new dict), every model variable by index."""
        out = dict(values)
        classes, beds, options = self.classes, self.beds, self.options
        bought = {o: out[v.index] for o, v in beds.items()}
        used = dict.fromkeys(beds, 0)
        where: dict[int, int] = {}
        for c in classes:
            for o, v in zip(c.options, c.n, strict=True):
                used[o] += c.size * out[v.index]
                if out[v.index] and self.apart[c.requests[0]]:
                    where[c.requests[0]] = o
        total = sum(bought.values())
        spent = sum(options[o].cost_per_bed * n for o, n in bought.items())
        for ci in self.order:
            c = classes[ci]
            if c.priority >= below:
                continue
            slot = dict(zip(c.options, c.n, strict=True))
            left = len(c.requests) - sum(out[v.index] for v in c.n)
            kept_apart = self.apart[c.requests[0]]
            while left > 0:
                for o in self.by_cost[ci]:
                    need = max(0, used[o] + c.size - bought[o])
                    price = options[o].cost_per_bed * need
                    if (
                        bought[o] + need > self.upper[o]
                        or total + need > self.max_beds
                        or (self.budget is not None and spent + price > self.budget)
                        or any(where.get(j) == o for j in kept_apart)
                    ):
                        continue
                    bought[o] += need
                    total += need
                    spent += price
                    used[o] += c.size
                    out[slot[o].index] += 1
                    if kept_apart:
                        where[c.requests[0]] = o
                    left -= 1
                    break
                else:
                    break  # its twins fit nowhere either
        for o, v in beds.items():
            out[v.index] = bought[o]
        return out


def _plan(
    demand: Sequence[Request],
    options: Sequence[BedOption],
    classes: list[_Class],
    beds: dict[int, cp_model.IntVar],
    values: dict[int, int],
    wanted: dict[int, int],
    bounds: dict[int, int],
    proven: bool,
) -> ExpansionPlan:
    """The plan from the model's values: a class's requests go to its options in order."""
    where: dict[int, int] = {}
    placed = dict.fromkeys(PRIORITIES, 0)
    for c in classes:
        queue = iter(c.requests)
        for o, v in zip(c.options, c.n, strict=True):
            for _ in range(values[v.index]):
                where[next(queue)] = o
                placed[c.priority] += c.size
    added = {options[o].id: values[v.index] for o, v in beds.items() if values[v.index] > 0}
    return ExpansionPlan(
        beds=added,
        placed_by_priority=placed,
        requests_by_priority=dict(wanted),
        assignments={demand[r].id: options[o].id for r, o in sorted(where.items())},
        cost=sum(options[o].cost_per_bed * values[v.index] for o, v in beds.items()),
        total_beds=sum(added.values()),
        status="optimal" if proven else "feasible",
        bounds={p: max(bounds[p], placed[p]) for p in PRIORITIES},
    )
