"""Greedy baseline: for comparison, and as the CP-SAT search's hint and fallback."""

from __future__ import annotations

import itertools

from placement.eligibility import fit_blocks
from placement.instance import Instance, Placement


def greedy_placement(
    inst: Instance, start: Placement | None = None, *, extend: bool = False
) -> Placement:
    """Place requests one by one, most urgent first, in the cheapest shelter with room.

    Requests are taken by priority 5 → 1, ties in document order; each goes to the first of its
    eligible shelters, by soft cost then document order, that has room for the whole group
    (children with their guardian) and holds no request it must be separated from. Every hard
    constraint holds; nothing is optimised beyond that order. Deterministic.

    Args:
        inst: The prepared problem.
        start: A feasible placement to keep and complete (default: start empty).
        extend: In a reduced instance, also try the shelters left out of the model when the
            kept ones are full, and add the pair used to ``inst.pairs`` (the baseline must see
            every shelter; the model must know the pairs its hint uses).

    Returns:
        Request index → (shelter index, unit index per bed block).
    """
    requests = inst.problem.requests
    left = [list(f) for f in inst.free]
    placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
    placement: Placement = dict(start or {})
    for ri, (si, choice) in placement.items():
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        placed_at[si].add(ri)
    order = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    for ri in order:
        if ri in placement:
            continue
        sizes = [len(b) for b in inst.blocks[ri]]
        extra = inst.more_pairs(ri) if extend and inst.reduced else iter(())
        for pair in itertools.chain(inst.pairs[ri], extra):
            si = pair.shelter
            if inst.separated[ri] & placed_at[si]:
                continue
            fitted = fit_blocks(sizes, pair.candidates, left[si])
            if fitted is None:
                continue
            for b, u in enumerate(fitted):
                left[si][u] -= sizes[b]
            placed_at[si].add(ri)
            placement[ri] = (si, tuple(fitted))
            if extend and inst.reduced and all(p.shelter != si for p in inst.pairs[ri]):
                inst.pairs[ri].append(pair)
            break
    return placement


def improve_soft_cost(inst: Instance, placement: Placement, passes: int = 3) -> Placement:
    """Move placed requests to cheaper shelters with room, without unplacing anyone.

    Requests are visited in document order; each moves to its cheapest viable shelter (ties by
    document order) that has room once the request's own beds are released and holds no
    request it must be separated from. Up to ``passes`` rounds, stopping early when nothing
    moves. People placed per priority never change; soft cost never rises. Deterministic.
    """
    left = [list(f) for f in inst.free]
    placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
    out: Placement = dict(placement)
    for ri, (si, choice) in out.items():
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        placed_at[si].add(ri)
    for _ in range(passes):
        moved = False
        for ri in sorted(out):
            si, choice = out[ri]
            sizes = [len(b) for b in inst.blocks[ri]]
            here = inst.pair_cost(ri, si)
            for b, u in enumerate(choice):
                left[si][u] += sizes[b]
            placed_at[si].discard(ri)
            target = (si, choice)
            for pair in inst.pairs[ri]:
                if pair.cost >= here:
                    break
                if inst.separated[ri] & placed_at[pair.shelter]:
                    continue
                new = fit_blocks(sizes, pair.candidates, left[pair.shelter])
                if new is not None:
                    target = (pair.shelter, tuple(new))
                    moved = True
                    break
            si, choice = target
            for b, u in enumerate(choice):
                left[si][u] -= sizes[b]
            placed_at[si].add(ri)
            out[ri] = target
        if not moved:
            break
    return out
