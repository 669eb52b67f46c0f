"""Eligibility of a request for a shelter (SPEC §4): the one implementation.

Pure functions over the dataclasses of :mod:`placement.problem`. The solver's pre-filter, its
explanations and the web service's availability check all call these, so a rule changes in
one place only. Eligibility ignores free beds; :func:`assign_beds` adds capacity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from placement.problem import AdmissionRule, Member, Request, Shelter, Unit

MemberStatus = Literal["adult", "accompanied_child", "unaccompanied_minor"]


def member_status(member: Member, members: Sequence[Member], majority_age: int) -> MemberStatus:
    """Classify a member of a group (SPEC §4).

    Args:
        member: The member to classify.
        members: All members of the member's group (including ``member``).
        majority_age: Age in whole years from which a person is an adult.

    Returns:
        ``adult`` when ``age >= majority_age``; ``accompanied_child`` when a minor whose
        ``guardian_ref`` names an *adult* member of the same group; otherwise
        ``unaccompanied_minor`` (no guardian, or a guardian who is a minor or absent).
    """
    if member.age >= majority_age:
        return "adult"
    if member.guardian_ref is not None:
        for other in members:
            if other.ref == member.guardian_ref and other.ref != member.ref:
                if other.age >= majority_age:
                    return "accompanied_child"
                break
    return "unaccompanied_minor"


def rule_admits(rule: AdmissionRule, sex: str, age: int, status: str) -> bool:
    """Whether one admission rule matches a person; ages are inclusive bounds in years."""
    return sex in rule.sexes and rule.min_age <= age <= rule.max_age and status in rule.statuses


def unit_admits(unit: Unit, member: Member, status: str) -> bool:
    """Whether any rule of ``unit`` admits ``member`` with the given status (free beds ignored)."""
    return any(rule_admits(rule, member.sex, member.age, status) for rule in unit.admits)


def bed_blocks(request: Request, majority_age: int) -> tuple[tuple[Member, ...], ...]:
    """Split a group into blocks that must sleep in one unit.

    Returns:
        One block per adult with accompanied children (the adult first, then the children in
        document order) and one single-member block for everyone else. Blocks are ordered by
        the document position of their first member, so the result is deterministic.
    """
    members = request.members
    by_guardian: dict[str, list[Member]] = {}
    for m in members:
        if member_status(m, members, majority_age) == "accompanied_child":
            assert m.guardian_ref is not None
            by_guardian.setdefault(m.guardian_ref, []).append(m)
    blocks: list[tuple[Member, ...]] = []
    for m in members:
        if m.guardian_ref is not None and any(m is c for c in by_guardian.get(m.guardian_ref, ())):
            continue
        blocks.append((m, *by_guardian.get(m.ref, ())))
    return tuple(blocks)


def shelter_reasons(request: Request, shelter: Shelter) -> list[str]:
    """Shelter-level reason codes (everything except the members' admission), sorted.

    Codes: ``shelter_not_open``, ``region_excluded``, ``shelter_excluded``,
    ``declined_by_shelter`` (the shelter declined this request), ``separated_case_housed`` (a
    group this one must be kept apart from is held or housed there),
    ``missing_service:<code>`` (one per missing required service), ``not_wheelchair_accessible``,
    ``security_level_too_low`` (high-risk request, shelter not ``high``).
    """
    reasons: list[str] = []
    if shelter.status != "open":
        reasons.append("shelter_not_open")
    if shelter.region in request.excluded_regions:
        reasons.append("region_excluded")
    if shelter.id in request.excluded_shelters:
        reasons.append("shelter_excluded")
    if shelter.id in request.declined_shelters:
        reasons.append("declined_by_shelter")
    if shelter.id in request.separated_shelters:
        reasons.append("separated_case_housed")
    reasons.extend(
        f"missing_service:{code}"
        for code in request.required_services
        if code not in shelter.services
    )
    if request.wheelchair and not shelter.wheelchair_accessible:
        reasons.append("not_wheelchair_accessible")
    if request.high_risk and shelter.security_level != "high":
        reasons.append("security_level_too_low")
    return sorted(reasons)


def block_candidates(
    request: Request, units: Sequence[Unit], majority_age: int
) -> tuple[tuple[tuple[Member, ...], tuple[int, ...]], ...]:
    """For each bed block (see :func:`bed_blocks`), the indices of units admitting all of it.

    An empty index tuple means the block fits nowhere in ``units``; free beds are ignored.
    """
    blocks = bed_blocks(request, majority_age)
    cands = admitted_blocks(block_members(request, blocks), admission(request, units, majority_age))
    return tuple(zip(blocks, cands, strict=True))


def member_reasons(request: Request, units: Sequence[Unit], majority_age: int) -> list[str]:
    """Member-level reason codes for a shelter with these units, sorted.

    Codes: ``member_not_admitted:<ref>`` when no unit admits that member on their own;
    ``guardian_unit_mismatch:<ref>`` for each accompanied child who is admitted somewhere,
    whose guardian is admitted somewhere, but for whom no single unit admits the guardian
    together with all of the guardian's accompanied children. The result is empty exactly
    when every bed block has at least one unit (free beds ignored).
    """
    blocks = block_members(request, bed_blocks(request, majority_age))
    return member_level(request, blocks, admission(request, units, majority_age))[0]


def admission(request: Request, units: Sequence[Unit], majority_age: int) -> list[tuple[bool, ...]]:
    """``table[m][u]``: whether unit ``u`` admits member ``m`` (document order) on their own."""
    members = request.members
    return [
        tuple(unit_admits(u, m, member_status(m, members, majority_age)) for u in units)
        for m in members
    ]


def block_members(
    request: Request, blocks: Sequence[Sequence[Member]]
) -> tuple[tuple[int, ...], ...]:
    """Bed blocks as indices into ``request.members``."""
    index = {id(m): i for i, m in enumerate(request.members)}
    return tuple(tuple(index[id(m)] for m in block) for block in blocks)


def admitted_blocks(
    blocks: Sequence[Sequence[int]], table: Sequence[Sequence[bool]]
) -> tuple[tuple[int, ...], ...]:
    """Per block (member indices), the units admitting all its members (see :func:`admission`)."""
    n_units = len(table[0]) if table else 0
    return tuple(
        tuple(u for u in range(n_units) if all(table[m][u] for m in block)) for block in blocks
    )


def member_level(
    request: Request, blocks: Sequence[Sequence[int]], table: Sequence[Sequence[bool]]
) -> tuple[list[str], tuple[tuple[int, ...], ...]]:
    """Member reason codes (:func:`member_reasons`) and block candidates from an admission table.

    Args:
        request: The group; only its members' refs are read.
        blocks: Its bed blocks as member indices (:func:`block_members`).
        table: :func:`admission` of the group for the units in question.

    Returns:
        The sorted member reason codes and, per block, the units admitting all of it.
    """
    refs = [m.ref for m in request.members]
    admitted = [any(row) for row in table]
    reasons = [f"member_not_admitted:{refs[i]}" for i, ok in enumerate(admitted) if not ok]
    cands = admitted_blocks(blocks, table)
    for block, found in zip(blocks, cands, strict=True):
        if len(block) > 1 and not found and admitted[block[0]]:
            reasons.extend(
                f"guardian_unit_mismatch:{refs[child]}" for child in block[1:] if admitted[child]
            )
    return sorted(reasons), cands


def eligibility_reasons(request: Request, shelter: Shelter, majority_age: int) -> list[str]:
    """Why ``request`` may not go to ``shelter``: sorted reason codes, empty when eligible.

    Combines :func:`shelter_reasons` and :func:`member_reasons`. Free beds are ignored:
    capacity is a separate question answered by :func:`assign_beds`.
    """
    return sorted(
        shelter_reasons(request, shelter) + member_reasons(request, shelter.units, majority_age)
    )


def fit_blocks(
    sizes: Sequence[int], candidates: Sequence[Sequence[int]], free: Sequence[int]
) -> list[int] | None:
    """Choose one unit per block so that no unit receives more people than it has free.

    Args:
        sizes: People per block.
        candidates: For each block, the unit indices that admit it, in preference order.
        free: Free beds per unit index.

    Returns:
        The chosen unit index per block, or None when no choice fits. Exhaustive and
        deterministic: larger blocks are placed first (ties by block index) and units are tried
        in candidate order, so the first fitting choice in that order is returned.
    """
    order = sorted(range(len(sizes)), key=lambda b: (-sizes[b], b))
    left = list(free)
    chosen = [-1] * len(sizes)

    def place(k: int) -> bool:
        if k == len(order):
            return True
        b = order[k]
        for u in candidates[b]:
            if left[u] >= sizes[b]:
                left[u] -= sizes[b]
                chosen[b] = u
                if place(k + 1):
                    return True
                left[u] += sizes[b]
        return False

    return chosen if place(0) else None


def assign_beds(
    request: Request, shelter: Shelter, free: Mapping[str, int], majority_age: int
) -> dict[str, str] | None:
    """Find beds for every member of ``request`` in ``shelter``'s units.

    Only admission and capacity are checked (children share their guardian's unit); call
    :func:`eligibility_reasons` for the shelter-level conditions.

    Args:
        request: The group to house.
        shelter: The shelter whose units may be used.
        free: Free beds by unit id; a unit missing from the mapping has none.
        majority_age: Age of majority in years.

    Returns:
        ``{member_ref: unit_id}`` in member document order, or None when the group does not
        fit. Deterministic: see :func:`fit_blocks` for the search order.
    """
    blocks = block_candidates(request, shelter.units, majority_age)
    choice = fit_blocks(
        [len(b) for b, _ in blocks],
        [c for _, c in blocks],
        [max(0, free.get(u.id, 0)) for u in shelter.units],
    )
    if choice is None:
        return None
    unit_of = {
        m.ref: shelter.units[u].id
        for (block, _), u in zip(blocks, choice, strict=True)
        for m in block
    }
    return {m.ref: unit_of[m.ref] for m in request.members}
