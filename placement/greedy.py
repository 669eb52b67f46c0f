"""Greedy baseline: for comparison, and as the CP-SAT search's hint and fallback."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from placement.eligibility import fit_blocks
from placement.instance import Instance, Pair, Placement

STOP_EVERY = 256
"""``stop`` is asked once per this many requests visited (the first time before the first)."""


def greedy_placement(
    inst: Instance,
    start: Placement | None = None,
    *,
    extend: bool = False,
    stop: Callable[[], bool] | None = None,
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
        stop: Asked every ``STOP_EVERY`` requests; when it returns True the placement made
            so far (feasible) is returned. Without it, the result is as before.

    Returns:
        Request index → (shelter index, unit index per bed block).
    """
    requests = inst.problem.requests
    left, placed_at, placement = occupancy(inst, start or {})
    order = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    for k, ri in enumerate(order):
        if stop is not None and k % STOP_EVERY == 0 and stop():
            break
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


def improve_soft_cost(
    inst: Instance,
    placement: Placement,
    passes: int = 3,
    *,
    stop: Callable[[], bool] | None = None,
) -> Placement:
    """Move placed requests to cheaper shelters with room, without unplacing anyone.

    Requests are visited in document order; each moves to its cheapest viable shelter (ties by
    document order) that has room once the request's own beds are released and holds no
    request it must be separated from. Up to ``passes`` rounds, stopping early when nothing
    moves. People placed per priority never change; soft cost never rises. Deterministic.
    ``stop`` as for :func:`greedy_placement` (asked every ``STOP_EVERY`` requests visited).
    """
    left, placed_at, out = occupancy(inst, placement)
    visited = 0
    for _ in range(passes):
        moved = False
        for ri in sorted(out):
            if stop is not None and visited % STOP_EVERY == 0 and stop():
                return out
            visited += 1
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


def insert_by_moves(
    inst: Instance, placement: Placement, *, stop: Callable[[], bool] | None = None
) -> Placement:
    """Place more requests by moving one placed request elsewhere to make room.

    Unplaced requests are taken by priority 5 → 1, ties in document order. For each of its
    shelters (cheapest first) a request goes in directly if it fits; otherwise the placed
    requests there are tried in index order: if the request would fit once one of them left,
    and that one fits in one of its other shelters (cheapest first; in a reduced model then any
    other eligible shelter with room, in document order, whose pair joins the model; no
    separation broken), it moves there and the request takes its room. Nobody is ever
    unplaced, so people placed per priority never fall; the soft cost may rise. One pass;
    deterministic. ``stop`` as for :func:`greedy_placement` (asked every ``STOP_EVERY``
    requests visited).
    """
    requests = inst.problem.requests
    left, placed_at, out = occupancy(inst, placement)
    has_room = {si for si, free in enumerate(left) if any(f > 0 for f in free)}
    # Where each placed request could move to now (see forget).
    moves: dict[int, tuple[int, list[int]] | None] = {}

    def forget(worse: int, better: int | None = None) -> None:
        """Drop the entries a change may have made stale; the others stay exact.

        Room or separation got worse at ``worse`` (and at ``better``, which may also have got
        better: an entry whose request is eligible there may now find an earlier shelter).
        """
        for key in list(moves):
            val = moves[key]
            if (val is not None and val[0] in (worse, better)) or (
                better is not None and better in inst.eligible_set(key)
            ):
                del moves[key]

    def put(ri: int, si: int, choice: Sequence[int], sign: int) -> None:
        for b, u in enumerate(choice):
            left[si][u] -= sign * len(inst.blocks[ri][b])
        if sign > 0:
            placed_at[si].add(ri)
            out[ri] = (si, tuple(choice))
        else:
            placed_at[si].discard(ri)
            del out[ri]
        if any(f > 0 for f in left[si]):
            has_room.add(si)
        else:
            has_room.discard(si)

    def move_of(other: int) -> tuple[int, list[int]] | None:
        if other in moves:
            return moves[other]
        here = out[other][0]
        found = None
        sizes = [len(b) for b in inst.blocks[other]]
        for pair in inst.pairs[other]:
            to = pair.shelter
            if to == here or to not in has_room or inst.separated[other] & placed_at[to]:
                continue
            fitted = fit_blocks(sizes, pair.candidates, left[to])
            if fitted is not None:
                found = (to, fitted)
                break
        if found is None and inst.reduced:
            # Beyond the reduced model: any eligible shelter with room, in document order; the
            # pair joins the model's pairs (as in greedy_placement's extension).
            known = {p.shelter for p in inst.pairs[other]}
            for to in sorted(has_room & inst.eligible_set(other)):
                if to in known or inst.separated[other] & placed_at[to]:
                    continue
                cands = inst.viable(other, to)
                fitted = None if cands is None else fit_blocks(sizes, cands, left[to])
                if cands is not None and fitted is not None:
                    found = (to, fitted)
                    inst.pairs[other].append(Pair(other, to, inst.pair_cost(other, to), cands))
                    break
        moves[other] = found
        return found

    order = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    for k, ri in enumerate(order):
        if stop is not None and k % STOP_EVERY == 0 and stop():
            break
        if ri in out or not inst.pairs[ri]:
            continue
        sizes = [len(b) for b in inst.blocks[ri]]
        done = False
        for pair in inst.pairs[ri]:
            si = pair.shelter
            if inst.separated[ri] & placed_at[si]:
                continue
            fitted = fit_blocks(sizes, pair.candidates, left[si])
            if fitted is not None:
                put(ri, si, fitted, 1)
                forget(si)
                break
            for other in sorted(placed_at[si]):
                target = move_of(other)
                if target is None:
                    continue
                _, choice = out[other]
                room = list(left[si])
                for b, u in enumerate(choice):
                    room[u] += len(inst.blocks[other][b])
                if fit_blocks(sizes, pair.candidates, room) is None:
                    continue
                put(other, si, choice, -1)
                put(other, target[0], target[1], 1)
                fitted = fit_blocks(sizes, pair.candidates, left[si])
                assert fitted is not None
                put(ri, si, fitted, 1)
                moves.pop(other, None)
                forget(target[0], si)
                done = True
                break
            if done:
                break
    return out


def occupancy(
    inst: Instance, placement: Placement
) -> tuple[list[list[int]], list[set[int]], Placement]:
    """Free beds left per unit and requests per shelter under ``placement``, and a copy of it."""
    left = [list(f) for f in inst.free]
    placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
    out: Placement = dict(placement)
    for ri, (si, choice) in out.items():
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        placed_at[si].add(ri)
    return left, placed_at, out
