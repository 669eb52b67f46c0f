"""Greedy baseline: for comparison, and as the CP-SAT search's hint and fallback.

The three functions share one way of keeping score (:class:`_Room`): free beds per unit, and
per shelter the largest free unit and the free beds in all, so that a shelter that cannot hold
a group is passed over without trying its units. Each takes an optional ``stop`` callable,
asked every :data:`STOP_EVERY` requests (or moves): once it returns True the function returns
the placement it has reached, which is always feasible. Without ``stop`` it runs to the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from placement.eligibility import fit_blocks
from placement.instance import Instance, Pair, Placement

STOP_EVERY = 256
"""Requests (or moves) between two calls of a ``stop`` callable."""

Stop = Callable[[], bool]


def greedy_placement(
    inst: Instance,
    start: Placement | None = None,
    *,
    extend: bool = False,
    stop: Stop | None = None,
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
        stop: Asked before every :data:`STOP_EVERY`-th request; when it returns True, the
            placement reached so far is returned (``start`` plus the requests placed).

    Returns:
        Request index → (shelter index, unit index per bed block).
    """
    check = None if stop is None else (lambda _examined, _placed: stop())
    return _greedy(inst, start or {}, extend, check)[0]


def greedy_baseline(
    inst: Instance, *, check: Callable[[int, int], bool] | None = None
) -> tuple[Placement, tuple[int, ...]]:
    """The greedy baseline of a solve (:func:`greedy_placement` with ``extend``), cut-able.

    ``check(examined, placed)`` is asked before every :data:`STOP_EVERY`-th request with the
    requests examined and placed so far (the caller sizes its reserve by them); when it returns
    True the pass ends. Returns the placement and the requests not examined, in the pass's
    order (priority 5 → 1, then document order): empty when the pass ran to its end.
    """
    placement, examined = _greedy(inst, {}, True, check)
    order = _order(inst)
    return placement, tuple(order[examined:])


def _order(inst: Instance) -> list[int]:
    requests = inst.problem.requests
    return sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))


def _greedy(
    inst: Instance,
    start: Placement,
    extend: bool,
    check: Callable[[int, int], bool] | None,
) -> tuple[Placement, int]:
    """:func:`greedy_placement`; also the number of requests examined (in its order)."""
    room = _Room(inst, start)
    placement = room.placement
    # Every viable shelter of a request is searched unless a reduced model is not extended.
    # Room only shrinks while this runs, so requests alike (same eligible shelters, same bed
    # blocks, nobody to keep apart from) that found no room once will find none later.
    complete = extend or not inst.reduced
    widen = extend and inst.reduced
    full: set[tuple[int, int]] = set()
    order = _order(inst)
    examined = len(order)
    for n, ri in enumerate(order):
        if check is not None and n % STOP_EVERY == 0 and check(n, len(placement)):
            examined = n
            break
        if ri in placement:
            continue
        alike = (inst.request_key(ri), inst.profile[ri])
        if complete and alike in full:
            continue
        found: tuple[Pair, list[int]] | None = None
        for pair in inst.pairs[ri]:
            fitted = room.fit(ri, pair.shelter, pair.candidates)
            if fitted is not None:
                found = (pair, fitted)
                break
        if found is None and widen:
            found = inst.cheapest_more_pair(ri, room.open, functools.partial(room.fit, ri))
        if found is None:
            if complete and not inst.separated[ri]:
                full.add(alike)
            continue
        pair, fitted = found
        si = pair.shelter
        room.put(ri, si, fitted, 1)
        if widen and all(p.shelter != si for p in inst.pairs[ri]):
            inst.pairs[ri].append(pair)
    return placement, examined


def improve_soft_cost(
    inst: Instance, placement: Placement, passes: int = 3, *, stop: Stop | None = None
) -> Placement:
    """Move placed requests to cheaper shelters with room, without unplacing anyone.

    Requests are visited in document order; each moves to its cheapest viable shelter (ties by
    document order) that has room once the request's own beds are released and holds no
    request it must be separated from. Up to ``passes`` rounds, stopping early when nothing
    moves. People placed per priority never change; soft cost never rises. Deterministic.
    ``stop`` is asked before every :data:`STOP_EVERY`-th visit; when it returns True the
    placement reached so far is returned.
    """
    room = _Room(inst, placement)
    left, placed_at, out = room.left, room.placed_at, room.placement
    visits = 0
    for _ in range(passes):
        moved = False
        for ri in sorted(out):
            if stop is not None and visits % STOP_EVERY == 0 and stop():
                return out
            visits += 1
            si, choice = out[ri]
            here = inst.pair_cost(ri, si)
            pairs = inst.pairs[ri]
            if not pairs or pairs[0].cost >= here:
                continue  # no cheaper shelter: the request stays where it is
            sizes = room.sizes[ri]
            separated = inst.separated[ri]
            room.put(ri, si, choice, -1)
            target = (si, choice)
            for pair in pairs:
                if pair.cost >= here:
                    break
                to = pair.shelter
                if separated and separated & placed_at[to]:
                    continue
                new = _fit(sizes, pair.candidates, left[to])
                if new is not None:
                    target = (to, tuple(new))
                    moved = True
                    break
            room.put(ri, target[0], target[1], 1)
        if not moved:
            break
    return out


def insert_by_moves(
    inst: Instance,
    placement: Placement,
    *,
    stop: Stop | None = None,
    beyond: bool = True,
    priority: int | None = None,
) -> Placement:
    """Place more requests by moving one placed request elsewhere to make room.

    Unplaced requests are taken by priority 5 → 1, ties in document order. For each of its
    shelters (cheapest first) a request goes in directly if it fits; otherwise the placed
    requests there are tried in index order: if the request would fit once one of them left,
    and that one fits in one of its other shelters (cheapest first; in a reduced model then any
    other eligible shelter with room, in document order, whose pair joins the model; no
    separation broken), it moves there and the request takes its room. Nobody is ever
    unplaced, so people placed per priority never fall; the soft cost may rise. One pass;
    deterministic. ``stop`` is asked before every :data:`STOP_EVERY`-th request; when it
    returns True the placement reached so far is returned. Without ``beyond``, a move keeps to
    the request's pairs (a model built before must hold the result). With ``priority``, only
    requests of that priority are inserted.
    """
    requests = inst.problem.requests
    room = _Room(inst, placement)
    left, placed_at, out = room.left, room.placed_at, room.placement
    has_room = room.open
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

    def move_of(other: int) -> tuple[int, list[int]] | None:
        if other in moves:
            return moves[other]
        here = out[other][0]
        found = None
        for pair in inst.pairs[other]:
            to = pair.shelter
            if to == here or to not in has_room:
                continue
            fitted = room.fit(other, to, pair.candidates)
            if fitted is not None:
                found = (to, fitted)
                break
        if found is None and inst.reduced and beyond:
            # Beyond the reduced model: any eligible shelter with room, in document order; the
            # pair joins the model's pairs (as in greedy_placement's extension).
            known = {p.shelter for p in inst.pairs[other]}
            for to in sorted(has_room & inst.eligible_set(other)):
                if to in known:
                    continue
                cands = inst.viable(other, to)
                fitted = None if cands is None else room.fit(other, to, cands)
                if cands is not None and fitted is not None:
                    found = (to, fitted)
                    inst.pairs[other].append(Pair(other, to, inst.pair_cost(other, to), cands))
                    break
        moves[other] = found
        return found

    order = sorted(range(len(requests)), key=lambda i: (-requests[i].priority, i))
    for n, ri in enumerate(order):
        if stop is not None and n % STOP_EVERY == 0 and stop():
            break
        if ri in out or not inst.pairs[ri]:
            continue
        if priority is not None and requests[ri].priority != priority:
            continue
        sizes = room.sizes[ri]
        done = False
        for pair in inst.pairs[ri]:
            si = pair.shelter
            if inst.separated[ri] & placed_at[si]:
                continue
            fitted = _fit(sizes, pair.candidates, left[si])
            if fitted is not None:
                room.put(ri, si, fitted, 1)
                forget(si)
                break
            for other in sorted(placed_at[si]):
                target = move_of(other)
                if target is None:
                    continue
                _, choice = out[other]
                free = list(left[si])
                for b, u in enumerate(choice):
                    free[u] += room.sizes[other][b]
                if _fit(sizes, pair.candidates, free) is None:
                    continue
                room.put(other, si, choice, -1)
                room.put(other, target[0], target[1], 1)
                fitted = _fit(sizes, pair.candidates, left[si])
                assert fitted is not None
                room.put(ri, si, fitted, 1)
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
    room = _Room(inst, placement)
    return room.left, room.placed_at, room.placement


class _Room:
    """Free beds per unit under a placement, kept current by :meth:`put`.

    ``most[s]`` is the largest free unit of shelter ``s`` and ``total[s]`` its free beds in
    all: a group whose largest bed block exceeds the one, or whose size exceeds the other, fits
    nowhere there. ``open`` holds the shelters with at least one free bed.
    """

    def __init__(self, inst: Instance, placement: Placement) -> None:
        self.sizes = inst.block_sizes
        self.biggest = inst.biggest_block
        self.people = inst.size
        self.separated = inst.separated
        self.left = [list(f) for f in inst.free]
        self.placed_at: list[set[int]] = [set() for _ in inst.free]
        self.placement: Placement = dict(placement)
        for ri, (si, choice) in self.placement.items():
            sizes = self.sizes[ri]
            for b, u in enumerate(choice):
                self.left[si][u] -= sizes[b]
            self.placed_at[si].add(ri)
        self.most = [max(f, default=0) for f in self.left]
        self.total = [sum(f) for f in self.left]
        self.open = {si for si, m in enumerate(self.most) if m > 0}

    def fit(self, ri: int, si: int, cands: Sequence[Sequence[int]]) -> list[int] | None:
        """Units for request ``ri``'s blocks in shelter ``si`` now (as :func:`fit_blocks`).

        None when the group does not fit or a request it must be kept apart from is there.
        """
        if self.most[si] < self.biggest[ri] or self.total[si] < self.people[ri]:
            return None
        separated = self.separated[ri]
        if separated and separated & self.placed_at[si]:
            return None
        return _fit(self.sizes[ri], cands, self.left[si])

    def put(self, ri: int, si: int, choice: Sequence[int], sign: int) -> None:
        """Place request ``ri`` in shelter ``si`` (``sign`` 1) or take it out (``sign`` -1)."""
        free = self.left[si]
        sizes = self.sizes[ri]
        for b, u in enumerate(choice):
            free[u] -= sign * sizes[b]
        if sign > 0:
            self.placed_at[si].add(ri)
            self.placement[ri] = (si, tuple(choice))
        else:
            self.placed_at[si].discard(ri)
            del self.placement[ri]
        most = self.most[si] = max(free, default=0)
        self.total[si] = sum(free)
        if most > 0:
            self.open.add(si)
        else:
            self.open.discard(si)


def _fit(
    sizes: Sequence[int], cands: Sequence[Sequence[int]], free: Sequence[int]
) -> list[int] | None:
    """:func:`fit_blocks`, with the common one-block case done inline (same answer)."""
    if len(sizes) == 1:
        size = sizes[0]
        for u in cands[0]:
            if free[u] >= size:
                return [u]
        return None
    return fit_blocks(sizes, cands, free)
