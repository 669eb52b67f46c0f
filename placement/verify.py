"""Check a solution against a problem, independently of any solver.

The hard constraints of SPEC §6 are re-checked here from the problem's own fields (only the
soft-cost arithmetic is shared, from :mod:`placement.cost`), so this module can serve as the
oracle for the solver's tests and for ``refuge verify``.
"""

from __future__ import annotations

from placement.cost import soft_cost
from placement.problem import PRIORITIES, Member, Problem, Request, Shelter, Unit, problem_digest
from placement.solution import Solution


def _status(m: Member, members: tuple[Member, ...], majority_age: int) -> str:
    if m.age >= majority_age:
        return "adult"
    guardian = next((g for g in members if g.ref == m.guardian_ref and g is not m), None)
    if guardian is not None and guardian.age >= majority_age:
        return "accompanied_child"
    return "unaccompanied_minor"


def _admits(unit: Unit, m: Member, status: str) -> bool:
    return any(
        m.sex in r.sexes and r.min_age <= m.age <= r.max_age and status in r.statuses
        for r in unit.admits
    )


def verify(problem: Problem, solution: Solution) -> list[str]:
    """List every violated hard constraint and every inconsistency of ``solution``.

    Checks: the problem digest; each request appears exactly once, either assigned or unplaced;
    assigned requests are placed whole in one existing, open shelter, one bed per member, in a
    unit of that shelter that admits the member; accompanied children share their guardian's
    unit; no unit receives more people than its ``free_beds``; required services, wheelchair
    access, security level, excluded regions and shelters; ``separate_from`` both ways; the
    objective equals the recomputed people per priority and soft cost; the bound is on the
    right side of the objective; every unplaced request has at least one reason.

    Returns:
        Human-readable violations, in a stable order; empty when the solution is valid.
    """
    out: list[str] = []
    if solution.problem_digest != problem_digest(problem):
        out.append("problem_digest: does not match the problem")
    requests = {q.id: q for q in problem.requests}
    shelters = {s.id: s for s in problem.shelters}
    seen: dict[str, str] = {}
    used: dict[str, int] = {}
    where: dict[str, str] = {}
    placed = [0, 0, 0, 0, 0]
    cost = 0
    regions = {r.code: r for r in problem.regions}
    for i, a in enumerate(solution.assignments):
        p = f"assignments[{i}] (request {a.request})"
        q = requests.get(a.request)
        if q is None:
            out.append(f"{p}: unknown request")
            continue
        if a.request in seen:
            out.append(f"{p}: request already appears in {seen[a.request]}")
            continue
        seen[a.request] = f"assignments[{i}]"
        s = shelters.get(a.shelter)
        if s is None:
            out.append(f"{p}: unknown shelter {a.shelter}")
            continue
        where[q.id] = s.id
        out.extend(_check_shelter(p, q, s))
        units = {u.id: u for u in s.units}
        bed_of: dict[str, str] = {}
        for b in a.beds:
            if b.member in bed_of:
                out.append(f"{p}: member {b.member} has more than one bed")
            bed_of[b.member] = b.unit
        refs = {m.ref for m in q.members}
        for ref in sorted(bed_of.keys() - refs):
            out.append(f"{p}: {ref} is not a member of the request")
        for m in q.members:
            unit_id = bed_of.get(m.ref)
            if unit_id is None:
                out.append(f"{p}: member {m.ref} has no bed (groups are placed whole)")
                continue
            unit = units.get(unit_id)
            if unit is None:
                out.append(f"{p}: member {m.ref} is in unit {unit_id}, not a unit of {s.id}")
                continue
            used[unit_id] = used.get(unit_id, 0) + 1
            status = _status(m, q.members, problem.majority_age)
            if not _admits(unit, m, status):
                out.append(f"{p}: unit {unit_id} does not admit member {m.ref} ({status})")
            if status == "accompanied_child" and m.guardian_ref is not None:
                g_unit = bed_of.get(m.guardian_ref)
                if g_unit is not None and g_unit != unit_id:
                    out.append(
                        f"{p}: child {m.ref} is in unit {unit_id}, guardian "
                        f"{m.guardian_ref} in unit {g_unit}"
                    )
        placed[5 - q.priority] += len(q.members)
        cost += soft_cost(q, s, regions, problem.weights)
    for s in problem.shelters:
        for u in s.units:
            if used.get(u.id, 0) > u.free_beds:
                out.append(
                    f"unit {u.id} of shelter {s.id}: {used[u.id]} people placed, "
                    f"{u.free_beds} free beds"
                )
    clashes: set[tuple[str, str]] = set()
    for q in problem.requests:
        for other in q.separate_from:
            if q.id in where and where.get(other) == where[q.id]:
                clashes.add((min(q.id, other), max(q.id, other)))
    out.extend(
        f"requests {a} and {b} must be separated but share shelter {where[a]}"
        for a, b in sorted(clashes)
    )
    for i, un in enumerate(solution.unplaced):
        p = f"unplaced[{i}] (request {un.request})"
        if un.request not in requests:
            out.append(f"{p}: unknown request")
            continue
        if un.request in seen:
            out.append(f"{p}: request already appears in {seen[un.request]}")
            continue
        seen[un.request] = f"unplaced[{i}]"
        if not un.reasons:
            out.append(f"{p}: no reason given")
        if list(un.reasons) != sorted(un.reasons):
            out.append(f"{p}: reasons are not sorted")
    for q in problem.requests:
        if q.id not in seen:
            out.append(f"request {q.id}: neither assigned nor listed as unplaced")
    got = solution.objective
    if tuple(placed) != got.placed_by_priority:
        out.append(
            f"objective.placed_by_priority: {list(got.placed_by_priority)} reported, "
            f"{placed} recomputed (priorities {list(PRIORITIES)})"
        )
    if cost != got.soft_cost:
        out.append(f"objective.soft_cost: {got.soft_cost} reported, {cost} recomputed")
    bound = solution.bound
    for p_, level_bound, v in zip(PRIORITIES, bound.placed_by_priority, placed, strict=True):
        if level_bound < v:
            out.append(f"bound.placed_by_priority.{p_}: {level_bound} is below the objective {v}")
    if bound.soft_cost > cost:
        out.append(f"bound.soft_cost: {bound.soft_cost} is above the objective {cost}")
    if solution.status == "optimal" and tuple(placed) != bound.placed_by_priority:
        out.append("status: optimal, but the bound differs from the objective")
    return out


def _check_shelter(p: str, q: Request, s: Shelter) -> list[str]:
    out = []
    if s.status != "open":
        out.append(f"{p}: shelter {s.id} is {s.status}")
    if s.region in q.excluded_regions:
        out.append(f"{p}: shelter {s.id} is in excluded region {s.region}")
    if s.id in q.excluded_shelters:
        out.append(f"{p}: shelter {s.id} is excluded")
    if s.id in q.declined_shelters:
        out.append(f"{p}: shelter {s.id} declined the request")
    if s.id in q.separated_shelters:
        out.append(f"{p}: shelter {s.id} houses a group this one must be kept apart from")
    for code in q.required_services:
        if code not in s.services:
            out.append(f"{p}: shelter {s.id} lacks required service {code}")
    if q.wheelchair and not s.wheelchair_accessible:
        out.append(f"{p}: shelter {s.id} is not wheelchair accessible")
    if q.high_risk and s.security_level != "high":
        out.append(f"{p}: high-risk request in shelter {s.id} of security level {s.security_level}")
    return out
