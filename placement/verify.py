"""Check a solution against a problem, independently of any solver.

The hard constraints of SPEC §6 are re-checked here from the problem's own fields (only the
soft-cost arithmetic is shared, from :mod:`placement.cost`), so this module can serve as the
oracle for the solver's tests and for ``refuge verify``.
"""

from __future__ import annotations

from collections.abc import Sequence

from placement.cost import soft_cost
from placement.eligibility import assign_beds, member_reasons, shelter_reasons
from placement.problem import PRIORITIES, Member, Problem, Request, Shelter, Unit, problem_digest
from placement.solution import BY_CODES, SOLVER_CODES, Reason, Solution

_FIXED_CODES = frozenset(
    {
        "declined_by_shelter",
        "not_wheelchair_accessible",
        "region_excluded",
        "security_level_too_low",
        "separated_case_housed",
        "shelter_excluded",
        "shelter_not_open",
    }
)
_CODE_PREFIXES = ("guardian_unit_mismatch:", "member_not_admitted:", "missing_service:")


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
    right side of the objective; every unplaced request has reasons, and they hold: see
    :func:`_check_reasons`.

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
    facts = _Facts(problem, solution, where, used)
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
            continue
        out.extend(_check_reasons(p, requests[un.request], un.reasons, facts))
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


def _known(code: str) -> bool:
    return code in SOLVER_CODES or code in _FIXED_CODES or code.startswith(_CODE_PREFIXES)


class _Facts:
    """What the reasons of unplaced requests are checked against."""

    def __init__(
        self, problem: Problem, solution: Solution, where: dict[str, str], used: dict[str, int]
    ) -> None:
        self.problem = problem
        self.solution = solution
        self.where = where
        self.shelters = {s.id: s for s in problem.shelters}
        self.order = {s.id: k for k, s in enumerate(problem.shelters)}
        self.free = {s.id: {u.id: u.free_beds for u in s.units} for s in problem.shelters}
        self.left = {
            s.id: {u.id: u.free_beds - used.get(u.id, 0) for u in s.units} for s in problem.shelters
        }
        self.apart: dict[str, set[str]] = {q.id: set(q.separate_from) for q in problem.requests}
        for q in problem.requests:
            for other in q.separate_from:
                self.apart.setdefault(other, set()).add(q.id)
        self.at: dict[str, list[str]] = {}
        for q in problem.requests:
            if q.id in where:
                self.at.setdefault(where[q.id], []).append(q.id)
        # Admission depends on the members and the units' rules alone, capacity on the members
        # and the shelter: both are cached on those, so that a national check evaluates each
        # rule once per kind of group and unit configuration.
        rules: dict[object, int] = {}
        self._rules = {
            s.id: rules.setdefault(tuple(u.admits for u in s.units), len(rules))
            for s in problem.shelters
        }
        groups: dict[object, int] = {}
        self._group = {q.id: groups.setdefault(q.members, len(groups)) for q in problem.requests}
        self._members: dict[tuple[int, int], list[str]] = {}
        self._fits: dict[tuple[int, str, bool], bool] = {}

    def codes(self, q: Request, sh: Shelter) -> set[str]:
        """The eligibility codes of ``q`` at ``sh`` (rules of :mod:`placement.eligibility`)."""
        key = (self._group[q.id], self._rules[sh.id])
        member = self._members.get(key)
        if member is None:
            member = member_reasons(q, sh.units, self.problem.majority_age)
            self._members[key] = member
        return set(shelter_reasons(q, sh)) | set(member)

    def fits(self, q: Request, sh: Shelter, *, left: bool) -> bool:
        """Whether the group fits ``sh``'s free beds, or what the solution leaves of them."""
        key = (self._group[q.id], sh.id, left)
        hit = self._fits.get(key)
        if hit is None:
            beds = (self.left if left else self.free)[sh.id]
            hit = assign_beds(q, sh, beds, self.problem.majority_age) is not None
            self._fits[key] = hit
        return hit


def _check_not_examined(p: str, reasons: Sequence[Reason], f: _Facts) -> list[str]:
    """``not_examined``: alone, at every shelter in id order, only in a run the clock cut."""
    out: list[str] = []
    work = f.solution.work or {}
    if f.solution.status == "optimal" or "cut" not in work:
        out.append(f"{p}: not_examined in a run the wall clock did not cut")
    if len(reasons) != 1 or reasons[0].by:
        out.append(f"{p}: not_examined stands alone, naming no request")
    elif list(reasons[0].shelters) != sorted(f.order):
        out.append(f"{p}: not_examined names every shelter, in id order, once each")
    return out


def _check_reasons(p: str, q: Request, reasons: Sequence[Reason], f: _Facts) -> list[str]:
    """Check one unplaced request's reasons against the problem and the solution.

    Shape: codes known, sorted and distinct; shelter ids exist, in id order, once each;
    ``by`` only on ``capacity_taken``/``separated_from``, each request assigned to one of the
    reason's shelters; ``no_shelters`` exactly when the problem has none. Facts: at every
    shelter the eligibility codes stated are exactly those of
    :func:`~placement.eligibility.eligibility_reasons` (its two halves); every eligible
    shelter has a solver reason; ``too_few_beds`` means the group fits none of the free
    beds; ``capacity_taken`` that it does not fit what the solution leaves;
    ``separated_from`` names requests to keep apart placed there, and every such request
    placed at an eligible shelter is named; ``not_chosen`` appears only in a solution not
    proven optimal, not from the greedy baseline, where the group fits what is left.
    """
    out: list[str] = []
    problem = f.problem
    if not problem.shelters:
        if [r.code for r in reasons] != ["no_shelters"] or reasons[0].shelters:
            out.append(f"{p}: a problem without shelters gives exactly no_shelters")
        return out
    codes = [r.code for r in reasons]
    if "not_examined" in codes:
        return _check_not_examined(p, reasons, f)
    if codes != sorted(set(codes)):
        out.append(f"{p}: reasons are not sorted by code, one per code")
    stated: dict[str, set[str]] = {}
    named: dict[str, set[str]] = {}
    for r in reasons:
        rp = f"{p}: {r.code}"
        if not _known(r.code) or r.code == "no_shelters":
            out.append(f"{rp}: unknown reason code")
            continue
        if not r.shelters:
            out.append(f"{rp}: names no shelter")
        missing = sorted(s for s in r.shelters if s not in f.order)
        if missing:
            out.append(f"{rp}: unknown shelter {', '.join(missing)}")
        elif list(r.shelters) != sorted(set(r.shelters)):
            out.append(f"{rp}: shelters are not in id order, once each")
        if list(r.by) != sorted(set(r.by)):
            out.append(f"{rp}: by is not in id order, once each")
        if r.by and r.code not in BY_CODES:
            out.append(f"{rp}: names requests, which only {' and '.join(BY_CODES)} do")
        listed = set(r.shelters)
        for other in r.by:
            if f.where.get(other) not in listed:
                out.append(f"{rp}: {other} is not assigned to any of its shelters")
            elif r.code == "separated_from" and other not in f.apart.get(q.id, ()):
                out.append(f"{rp}: {other} need not be kept apart from {q.id}")
        if r.code == "separated_from":
            for s in r.shelters:
                if not any(f.where.get(o) == s for o in r.by):
                    out.append(f"{rp}: no request of by is placed at {s}")
        for s in r.shelters:
            stated.setdefault(s, set()).add(r.code)
        if r.code in BY_CODES:
            named[r.code] = set(r.by)
    status = f.solution.status
    for sh in problem.shelters:
        here = stated.get(sh.id, set())
        sp = f"{p} at shelter {sh.id}"
        if not here:
            out.append(f"{sp}: no reason given")
            continue
        codes_here = {c for c in here if c not in SOLVER_CODES}
        actual = f.codes(q, sh)
        if codes_here != actual:
            out.append(
                f"{sp}: eligibility codes {sorted(codes_here)} stated, {sorted(actual)} hold"
            )
        solver_here = here - codes_here
        if actual:
            if solver_here:
                out.append(f"{sp}: {sorted(solver_here)} given for an ineligible shelter")
            continue
        if "too_few_beds" in solver_here and f.fits(q, sh, left=False):
            out.append(f"{sp}: too_few_beds, but the group fits the free beds")
        if "capacity_taken" in solver_here and f.fits(q, sh, left=True):
            out.append(f"{sp}: capacity_taken, but the group fits what is left")
        if "not_chosen" in solver_here:
            if status == "optimal" or f.solution.solver.name == "greedy":
                out.append(f"{sp}: not_chosen from {f.solution.solver.name}, status {status}")
            if not f.fits(q, sh, left=True):
                out.append(f"{sp}: not_chosen, but the group does not fit what is left")
        kept_apart = [o for o in f.at.get(sh.id, ()) if o in f.apart.get(q.id, ())]
        if kept_apart and not (
            "separated_from" in solver_here
            and set(kept_apart) <= named.get("separated_from", set())
        ):
            out.append(f"{sp}: {', '.join(kept_apart)} placed there, separated_from not listed")
        if not solver_here & {"too_few_beds", "capacity_taken", "not_chosen"} and not kept_apart:
            out.append(f"{sp}: eligible, but no reason given why not placed there")
    return out
