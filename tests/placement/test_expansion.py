"""Capacity expansion (placement.expansion) against oracles that share none of its code.

Two oracles: a brute-force enumerator of every way to serve a tiny demand (eligibility from
the tests' own re-implementation in ``strategies``), and a checker that hands the plan to
``placement.verify`` as an ordinary placement (each funded option a shelter with exactly the
beds the plan buys) and re-counts beds, money and people itself.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement import solve, verify
from placement.cost import soft_cost
from placement.expansion import SCHEMA, BedOption, ExpansionPlan, plan_beds
from placement.generator import UNIT_TEMPLATES, generate
from placement.problem import (
    PRIORITIES,
    SERVICES,
    AdmissionRule,
    Member,
    Problem,
    Region,
    Request,
    Shelter,
    Unit,
    problem_digest,
)
from placement.solution import Assignment, Bed, Objective, Solution, SolverInfo
from tests.placement.strategies import RULE_SHAPES, SMALL_SERVICES, _options, problem_docs

TINY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rules(shape: Sequence[dict[str, Any]]) -> tuple[AdmissionRule, ...]:
    return tuple(
        AdmissionRule(tuple(r["sexes"]), r["min_age"], r["max_age"], tuple(r["statuses"]))
        for r in shape
    )


def _shelter(option: BedOption, beds: int) -> Shelter:
    """The shelter an option stands for, built here rather than by the module under test."""
    return Shelter(
        id=option.id,
        region=option.region,
        location=None,
        security_level="high" if option.security_level == "high" else "standard",
        wheelchair_accessible=option.wheelchair_accessible,
        services=tuple(sorted(set(option.services))),
        languages=tuple(sorted(set(option.languages))),
        units=(Unit(id=option.id, free_beds=beds, admits=option.admits),),
    )


def check_plan(
    plan: ExpansionPlan,
    demand: Sequence[Request],
    regions: Sequence[Region],
    options: Sequence[BedOption],
    *,
    max_beds: int,
    budget: int | None,
) -> list[str]:
    """Every way ``plan`` breaks a rule of the brief; empty when it keeps them all."""
    out: list[str] = []
    by_id = {o.id: o for o in options}
    requests = {q.id: q for q in demand}
    for oid, n in plan.beds.items():
        if oid not in by_id:
            out.append(f"beds for unknown option {oid}")
        elif n <= 0:
            out.append(f"option {oid}: {n} beds listed (only > 0 belong in beds)")
        elif by_id[oid].max_beds is not None and n > (by_id[oid].max_beds or 0):
            out.append(f"option {oid}: {n} beds, its max_beds is {by_id[oid].max_beds}")
    total = sum(plan.beds.values())
    money = sum(by_id[o].cost_per_bed * n for o, n in plan.beds.items() if o in by_id)
    if total != plan.total_beds:
        out.append(f"total_beds {plan.total_beds}, beds sum to {total}")
    if total > max_beds:
        out.append(f"{total} beds, max_beds {max_beds}")
    if money != plan.cost:
        out.append(f"cost {plan.cost}, beds cost {money}")
    if budget is not None and money > budget:
        out.append(f"cost {money} over budget {budget}")
    placed = dict.fromkeys(PRIORITIES, 0)
    wanted = dict.fromkeys(PRIORITIES, 0)
    for q in demand:
        wanted[q.priority] += len(q.members)
    for rid, oid in plan.assignments.items():
        if rid in requests and oid in plan.beds:
            placed[requests[rid].priority] += len(requests[rid].members)
    if plan.placed_by_priority != placed:
        out.append(f"placed_by_priority {plan.placed_by_priority}, recounted {placed}")
    if plan.requests_by_priority != wanted:
        out.append(f"requests_by_priority {plan.requests_by_priority}, recounted {wanted}")
    for p in PRIORITIES:
        if plan.bounds[p] < placed[p]:
            out.append(f"bound {plan.bounds[p]} below the {placed[p]} served at priority {p}")
    if plan.status == "optimal" and plan.bounds != placed:
        out.append("optimal, but the bounds differ from the people served")
    # The rest is verify's: each funded option a shelter with exactly the beds bought, the
    # served requests placed there (beds in its one unit), nothing else in the problem.
    served = [q for q in demand if q.id in plan.assignments]
    for q in served:
        if plan.assignments[q.id] not in plan.beds:
            out.append(f"request {q.id} served by {plan.assignments[q.id]}, which gets no beds")
    problem = Problem(
        regions=tuple(regions),
        shelters=tuple(_shelter(by_id[o], n) for o, n in sorted(plan.beds.items()) if o in by_id),
        requests=tuple(served),
    )
    shelters = {s.id: s for s in problem.shelters}
    region_of = {r.code: r for r in regions}
    assignments = tuple(
        Assignment(
            q.id,
            plan.assignments[q.id],
            tuple(Bed(m.ref, plan.assignments[q.id]) for m in q.members),
        )
        for q in served
        if plan.assignments[q.id] in shelters
    )
    people = tuple(placed[p] for p in PRIORITIES)
    cost = sum(
        soft_cost(q, shelters[a.shelter], region_of, problem.weights)
        for q, a in zip(served, assignments, strict=False)
    )
    objective = Objective((people[0], people[1], people[2], people[3], people[4]), cost)
    solution = Solution(
        status="feasible",
        problem_digest=problem_digest(problem),
        solver=SolverInfo("expansion", "test", 0, 1, 1.0),
        objective=objective,
        bound=objective,
        wall_s=0.0,
        assignments=assignments,
        unplaced=(),
    )
    out.extend(verify(problem, solution))
    return out


def brute_force(
    demand: Sequence[Request],
    regions: Sequence[Region],
    options: Sequence[BedOption],
    *,
    max_beds: int,
    budget: int | None,
) -> tuple[tuple[int, ...], int, int]:
    """The lexicographic optimum by enumeration: (people per priority 5..1, cost, beds).

    Every request is served by one of the options it may use (the tests' own eligibility,
    ``strategies._options``) or by none; an option then needs exactly the people it serves.
    """
    problem = Problem(regions=tuple(regions), shelters=tuple(_shelter(o, 0) for o in options))
    by_id = {o.id: o for o in options}
    choices = [[None, *sorted({sid for sid, _ in _options(problem, q)})] for q in demand]
    ids = {q.id for q in demand}
    pairs = {(min(q.id, o), max(q.id, o)) for q in demand for o in q.separate_from if o in ids}
    index = {q.id: i for i, q in enumerate(demand)}
    best: tuple[Any, ...] | None = None
    for pick in itertools.product(*choices):
        if any(pick[index[a]] is not None and pick[index[a]] == pick[index[b]] for a, b in pairs):
            continue
        beds: dict[str, int] = {}
        placed = dict.fromkeys(PRIORITIES, 0)
        for q, oid in zip(demand, pick, strict=True):
            if oid is not None:
                beds[oid] = beds.get(oid, 0) + len(q.members)
                placed[q.priority] += len(q.members)
        if any(
            by_id[o].max_beds is not None and n > (by_id[o].max_beds or 0) for o, n in beds.items()
        ):
            continue
        total = sum(beds.values())
        money = sum(by_id[o].cost_per_bed * n for o, n in beds.items())
        if total > max_beds or (budget is not None and money > budget):
            continue
        key = (*(placed[p] for p in PRIORITIES), -money, -total)
        if best is None or key > best:
            best = key
    assert best is not None  # serving nobody is always allowed
    return tuple(best[:5]), -best[5], -best[6]


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    """A tiny demand (from the solver's own test problems), 1-3 options and a budget."""
    problem = Problem.from_document(draw(problem_docs(max_requests=5, max_shelters=1)))
    options = []
    often = st.sampled_from([True, True, False])
    for i in range(draw(st.integers(1, 4))):
        # Ids s0.. so that the demand's excluded_shelters: ["s0"] applies to an option too.
        # Options lean generous (a union of rule shapes, most services, high security), so
        # that most instances have someone to serve and something to choose.
        shapes = draw(st.lists(st.sampled_from(RULE_SHAPES), min_size=1, max_size=2))
        services = (
            SMALL_SERVICES
            if draw(often)
            else draw(st.lists(st.sampled_from(SMALL_SERVICES), unique=True))
        )
        options.append(
            BedOption(
                id=f"s{i}",
                region=draw(st.sampled_from([r.code for r in problem.regions])),
                admits=_rules([rule for shape in shapes for rule in shape]),
                cost_per_bed=draw(st.integers(0, 4)),
                services=tuple(services),
                languages=tuple(draw(st.lists(st.sampled_from(["kk", "ru"]), unique=True))),
                security_level="high" if draw(often) else "standard",
                wheelchair_accessible=draw(often),
                max_beds=draw(st.none() | st.integers(0, 4)),
            )
        )
    return {
        "demand": problem.requests,
        "regions": problem.regions,
        "options": options,
        "max_beds": draw(st.integers(0, 7)),
        "budget": draw(st.none() | st.integers(0, 25)),
    }


LOOKS = (
    (Member("A", "female", 14, None),),
    (Member("A", "male", 10, None), Member("B", "female", 12, None)),
    (Member("A", "female", 30, None), Member("B", "male", 5, "A")),
)


@st.composite
def lookalikes(draw: st.DrawFn) -> dict[str, Any]:
    """Requests alike in people and priority but not in conditions, and options that tell
    them apart: the case where interchangeable requests must not be lumped together."""
    regions = (Region("g0", 43.0, 70.0), Region("g1", 44.0, 72.0))
    n = draw(st.integers(2, 6))
    ids = [f"r{i}" for i in range(n)]
    sometimes = st.sampled_from([True, False, False, False])
    demand = tuple(
        Request(
            rid,
            draw(st.sampled_from([5, 5, 5, 4])),
            LOOKS[draw(st.sampled_from([0, 0, 0, 1, 2]))],
            required_services=("medical_care",) if draw(sometimes) else (),
            wheelchair=draw(sometimes),
            high_risk=draw(sometimes),
            excluded_regions=("g1",) if draw(sometimes) else (),
            separate_from=(draw(st.sampled_from([i for i in ids if i != rid])),)
            if draw(st.sampled_from([True, False, False, False, False, False]))
            else (),
        )
        for rid in ids
    )
    generous = _rules([rule for shape in RULE_SHAPES for rule in shape])
    options = [
        BedOption(
            id=f"o{i}",
            region=draw(st.sampled_from(["g0", "g1"])),
            admits=generous if draw(st.booleans()) else _rules(RULE_SHAPES[3]),
            cost_per_bed=draw(st.integers(0, 3)),
            services=("medical_care",) if draw(st.booleans()) else (),
            security_level=draw(st.sampled_from(["standard", "high"])),
            wheelchair_accessible=draw(st.booleans()),
            max_beds=draw(st.none() | st.integers(1, 4)),
        )
        for i in range(draw(st.integers(2, 3)))
    ]
    return {
        "demand": demand,
        "regions": regions,
        "options": options,
        "max_beds": draw(st.integers(1, 8)),
        "budget": draw(st.none() | st.integers(0, 15)),
    }


def _assert_brute_force_optimum(inst: dict[str, Any]) -> None:
    plan = plan_beds(
        inst["demand"],
        inst["regions"],
        inst["options"],
        max_beds=inst["max_beds"],
        budget=inst["budget"],
    )
    limits = {"max_beds": inst["max_beds"], "budget": inst["budget"]}
    assert check_plan(plan, inst["demand"], inst["regions"], inst["options"], **limits) == []
    people, cost, beds = brute_force(inst["demand"], inst["regions"], inst["options"], **limits)
    assert plan.status == "optimal"
    assert tuple(plan.placed_by_priority[p] for p in PRIORITIES) == people
    assert (plan.cost, plan.total_beds) == (cost, beds)
    assert tuple(plan.bounds[p] for p in PRIORITIES) == people


@TINY
@given(instances())
def test_plan_is_the_brute_force_lexicographic_optimum(inst: dict[str, Any]) -> None:
    _assert_brute_force_optimum(inst)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lookalikes())
def test_lookalike_requests_are_not_lumped_across_their_conditions(inst: dict[str, Any]) -> None:
    # Measured: aggregating by a coarser key (the first eligible option only) fails here in
    # about 1 example of 30; the generic instances above almost never catch it.
    _assert_brute_force_optimum(inst)


def test_the_checker_catches_a_plan_that_breaks_the_rules() -> None:
    """The oracle is only worth something if it can fail: break a good plan four ways."""
    demand, regions, options = _field(120, 20)
    plan = plan_beds(demand, regions, options, max_beds=30, budget=None)
    assert check_plan(plan, demand, regions, options, max_beds=30, budget=None) == []
    oid = next(iter(plan.beds))
    short = dict(plan.beds) | {oid: plan.beds[oid] - 1}
    placed = plan.placed_by_priority
    broken = [
        ExpansionPlan(**{**plan.__dict__, "beds": short}),  # one person without a bed
        ExpansionPlan(**{**plan.__dict__, "cost": plan.cost + 1}),  # money miscounted
        ExpansionPlan(**{**plan.__dict__, "bounds": {**placed, 5: placed[5] - 1}}),
    ]
    # A served child moved, with the beds, to the adult men's option of the same region.
    rid, there = next(
        (r, o)
        for r, o in plan.assignments.items()
        if all(m.age < 18 for m in next(q for q in demand if q.id == r).members)
    )
    size = len(next(q for q in demand if q.id == rid).members)
    target = there.split(".")[0] + ".adult_men"
    moved = dict(plan.beds) | {there: plan.beds[there] - size}
    moved = {o: n for o, n in moved.items() if n} | {target: plan.beds.get(target, 0) + size}
    broken.append(
        ExpansionPlan(
            **{**plan.__dict__, "beds": moved, "assignments": {**plan.assignments, rid: target}}
        )
    )
    for bad in broken:
        assert check_plan(bad, demand, regions, options, max_beds=30, budget=None) != []
    assert check_plan(plan, demand, regions, options, max_beds=plan.total_beds - 1, budget=None)


# --- a field-sized instance: the greedy solution's unplaced requests ------------------------


@cache
def _field(
    n_requests: int, n_shelters: int
) -> tuple[tuple[Request, ...], tuple[Region, ...], tuple[BedOption, ...]]:
    """The ``lone-minors`` demand greedy leaves unplaced, and region × unit-type options."""
    problem = Problem.from_document(generate(n_requests, n_shelters, 0, family="lone-minors"))
    left = {u.request for u in solve(problem, method="greedy").unplaced}
    demand = tuple(q for q in problem.requests if q.id in left)
    return demand, problem.regions, tuple(field_options(problem.regions))


def field_options(regions: Sequence[Region]) -> list[BedOption]:
    """One option per region and unit type of the generator, all services, varied costs."""
    minors = {
        "girls_minors": [
            {"sexes": ["female"], "min_age": 12, "max_age": 17, "statuses": ["unaccompanied_minor"]}
        ]
    }
    templates = {**UNIT_TEMPLATES, **minors}
    return [
        BedOption(
            id=f"{r.code}.{name}",
            region=r.code,
            admits=_rules(shape),
            cost_per_bed=100_000 + 7_000 * ri + 20_000 * ti,
            services=SERVICES,
            languages=("kk", "ru"),
            security_level="high" if ti % 2 or ti >= 4 else "standard",
            wheelchair_accessible=ri % 3 == 0,
        )
        for ri, r in enumerate(regions)
        for ti, (name, shape) in enumerate(templates.items())
    ]


@pytest.mark.parametrize(("max_beds", "budget"), [(40, None), (150, None), (120, 9_000_000)])
def test_field_plan_is_valid_and_proven(max_beds: int, budget: int | None) -> None:
    demand, regions, options = _field(300, 40)
    plan = plan_beds(demand, regions, options, max_beds=max_beds, budget=budget)
    assert check_plan(plan, demand, regions, options, max_beds=max_beds, budget=budget) == []
    assert plan.status == "optimal"
    assert plan.total_beds == sum(plan.placed_by_priority.values())  # no bed bought idle


def test_same_inputs_give_the_same_document() -> None:
    demand, regions, options = _field(300, 40)
    first = plan_beds(demand, regions, options, max_beds=80, budget=None, seed=3).to_document()
    again = plan_beds(demand, regions, options, max_beds=80, budget=None, seed=3).to_document()
    assert first == again
    assert first["schema"] == SCHEMA
    assert json.loads(json.dumps(first)) == first
    assert list(first["placed_by_priority"]) == ["5", "4", "3", "2", "1"]
    assert [b["option"] for b in first["beds"]] == sorted(b["option"] for b in first["beds"])


def test_a_spent_clock_still_gives_a_valid_plan_not_claimed_optimal() -> None:
    demand, regions, options = _field(300, 40)
    plan = plan_beds(demand, regions, options, max_beds=80, budget=None, time_limit_s=1e-9)
    assert check_plan(plan, demand, regions, options, max_beds=80, budget=None) == []
    assert plan.status == "feasible"
    assert sum(plan.placed_by_priority.values()) > 0  # the greedy start stands


# --- edges ------------------------------------------------------------------------------------


def _minor(rid: str, priority: int = 5, **kw: Any) -> Request:
    return Request(rid, priority, (Member("A", "female", 14, None),), **kw)


REGIONS = (Region("g0", 43.0, 70.0), Region("g1", 44.0, 72.0))
MINORS = _rules(UNIT_TEMPLATES["unaccompanied_minors"])
WOMEN = _rules(UNIT_TEMPLATES["adult_women"])


def _empty(plan: ExpansionPlan) -> bool:
    return (
        plan.beds == {}
        and plan.assignments == {}
        and plan.cost == 0
        and plan.total_beds == 0
        and plan.status == "optimal"
        and set(plan.bounds.values()) == {0}
    )


def test_no_beds_to_give_serves_nobody_and_says_so_proven() -> None:
    plan = plan_beds([_minor("r1")], REGIONS, [BedOption("o", "g0", MINORS, 5)], max_beds=0)
    assert _empty(plan)
    assert plan.requests_by_priority == {5: 1, 4: 0, 3: 0, 2: 0, 1: 0}


def test_no_eligible_option_serves_nobody() -> None:
    options = [
        BedOption("women", "g0", WOMEN, 5),
        BedOption("minors-excluded-region", "g1", MINORS, 5),
    ]
    plan = plan_beds([_minor("r1", excluded_regions=("g1",))], REGIONS, options, max_beds=10)
    assert _empty(plan)


def test_budget_below_every_cost_serves_nobody() -> None:
    options = [BedOption("a", "g0", MINORS, 500), BedOption("b", "g1", MINORS, 700)]
    plan = plan_beds([_minor("r1"), _minor("r2")], REGIONS, options, max_beds=10, budget=499)
    assert _empty(plan)


def test_separated_requests_never_share_an_option_even_when_it_is_cheapest() -> None:
    options = [BedOption("cheap", "g0", MINORS, 1), BedOption("dear", "g1", MINORS, 9)]
    demand = [_minor("r1", separate_from=("r2",)), _minor("r2"), _minor("r3", 4)]
    plan = plan_beds(demand, REGIONS, options, max_beds=3)
    assert plan.assignments["r1"] != plan.assignments["r2"]
    assert check_plan(plan, demand, REGIONS, options, max_beds=3, budget=None) == []


def test_high_risk_requests_only_get_high_security_beds() -> None:
    options = [
        BedOption("std", "g0", MINORS, 1),
        BedOption("high", "g1", MINORS, 9, security_level="high"),
    ]
    plan = plan_beds([_minor("r1", high_risk=True)], REGIONS, options, max_beds=5)
    assert plan.assignments == {"r1": "high"}
    assert plan.beds == {"high": 1}


@pytest.mark.parametrize(
    ("options", "kwargs", "message"),
    [
        (
            [BedOption("o", "g0", MINORS, 1), BedOption("o", "g1", MINORS, 2)],
            {},
            "duplicate option id 'o'",
        ),
        ([BedOption("o", "nowhere", MINORS, 1)], {}, "unknown region code 'nowhere'"),
        ([BedOption("o", "g0", MINORS, -1)], {}, "cost_per_bed must be an integer ≥ 0"),
        ([BedOption("o", "g0", MINORS, 1, max_beds=-2)], {}, "max_beds must be None or an integer"),
        ([BedOption("o:1", "g0", MINORS, 1)], {}, "option id 'o:1'"),
        ([BedOption("o", "g0", MINORS, 1, security_level="max")], {}, "security_level must be"),
        ([BedOption("o", "g0", MINORS, 1)], {"max_beds": -1}, "max_beds must be an integer ≥ 0"),
        ([BedOption("o", "g0", MINORS, 1)], {"budget": -5}, "budget must be None or an integer"),
        (
            [BedOption("o", "g0", MINORS, 1)],
            {"time_limit_s": 0},
            "time_limit_s must be a positive number",
        ),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(
    options: list[BedOption], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_beds([_minor("r1")], REGIONS, options, **({"max_beds": 3} | kwargs))


def test_a_request_twice_in_the_demand_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate request id 'r1'"):
        plan_beds(
            [_minor("r1"), _minor("r1")], REGIONS, [BedOption("o", "g0", MINORS, 1)], max_beds=3
        )
