"""Greedy baseline: for comparison, and as the CP-SAT search's hint and fallback."""

from __future__ import annotations

from placement.eligibility import fit_blocks
from placement.instance import Instance, Placement


def greedy_placement(inst: Instance) -> Placement:
    """Place requests one by one, most urgent first, in the cheapest shelter with room.

    Requests are taken by priority 5 → 1, ties in document order; each goes to the first of its
    eligible shelters, by soft cost then document order, that has room for the whole group
    (children with their guardian) and holds no request it must be separated from. Every hard
    constraint holds; nothing is optimised beyond that order. Deterministic.

    Returns:
        Request index → (shelter index, unit index per bed block).
    """
    requests = inst.problem.requests
    left = [list(f) for f in inst.free]
    placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
    placement: Placement = {}
    order = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    for ri in order:
        sizes = [len(b) for b in inst.blocks[ri]]
        for pair in sorted(inst.pairs[ri], key=lambda p: (p.cost, p.shelter)):
            si = pair.shelter
            if inst.separated[ri] & placed_at[si]:
                continue
            choice = fit_blocks(sizes, pair.candidates, left[si])
            if choice is None:
                continue
            for b, u in enumerate(choice):
                left[si][u] -= sizes[b]
            placed_at[si].add(ri)
            placement[ri] = (si, tuple(choice))
            break
    return placement
