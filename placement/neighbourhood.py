"""Neighbourhoods of a placement: the sub-problems a reduced model's local search re-solves.

Internal to the package. A neighbourhood is a set of shelters (one region, or a slice of a
large one). Its free requests are those placed in it and the unplaced ones with a viable
shelter in it; everybody else stays where they are. A request placed in the neighbourhood may
also move out of it, to one of its kept shelters that has room now. The neighbourhood is
handed to the model builder as a *view* of the instance: the same problem, with only the free
requests' pairs and, outside the neighbourhood, only the beds left.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

from placement.eligibility import fit_blocks
from placement.greedy import occupancy
from placement.instance import Instance, Pair, Placement
from placement.problem import Problem

MAX_SHELTERS = 80
"""A region with more shelters is cut into slices of at most this many (by latitude)."""
MIN_SHELTERS = 20
"""Regions with fewer shelters are packed together (each neighbourhood costs a model build)."""


def shelter_neighbourhoods(problem: Problem) -> list[list[int]]:
    """Shelter indices per region, regions in document order; large regions sliced, small packed.

    A region with more than ``MAX_SHELTERS`` shelters is cut into equal slices of consecutive
    shelters by latitude then longitude (the region's centroid for a shelter without a
    location), ties by document order. Regions with fewer than ``MIN_SHELTERS`` come last,
    packed by their centroids' latitude then longitude into neighbourhoods of at least
    ``MIN_SHELTERS`` (the last one may have fewer). Every shelter is in exactly one
    neighbourhood. Deterministic.
    """
    regions = {r.code: r for r in problem.regions}
    members: dict[str, list[int]] = {code: [] for code in regions}
    for si, s in enumerate(problem.shelters):
        members.setdefault(s.region, []).append(si)

    def position(si: int) -> tuple[float, float, int]:
        s = problem.shelters[si]
        at = s.location or regions[s.region]
        return (at.lat, at.lon, si)

    out: list[list[int]] = []
    small: list[str] = []
    for code, shelters in members.items():
        if len(shelters) < MIN_SHELTERS:
            small.append(code)
        elif len(shelters) <= MAX_SHELTERS:
            out.append(shelters)
        else:
            ordered = sorted(shelters, key=position)
            size = math.ceil(len(ordered) / math.ceil(len(ordered) / MAX_SHELTERS))
            out.extend(ordered[i : i + size] for i in range(0, len(ordered), size))
    pack: list[int] = []
    for code in sorted(small, key=lambda c: (regions[c].lat, regions[c].lon, c)):
        pack += members[code]
        if len(pack) >= MIN_SHELTERS:
            out.append(pack)
            pack = []
    if pack:
        out.append(pack)
    return out


class Occupancy:
    """A feasible placement with its free beds per unit and requests per shelter, kept in step."""

    def __init__(self, inst: Instance, placement: Placement) -> None:
        self.inst = inst
        self.left, self.placed_at, self.placement = occupancy(inst, placement)

    def remove(self, requests: Iterable[int]) -> None:
        """Take each of ``requests`` out of its place (each must be placed)."""
        blocks = self.inst.blocks
        for ri in sorted(requests):
            si, choice = self.placement.pop(ri)
            for b, u in enumerate(choice):
                self.left[si][u] += len(blocks[ri][b])
            self.placed_at[si].discard(ri)

    def update(self, changes: Placement) -> None:
        """Put each request of ``changes`` where it says (moving it if it was placed)."""
        blocks = self.inst.blocks
        for ri, (si, choice) in changes.items():
            old = self.placement.get(ri)
            if old is not None:
                for b, u in enumerate(old[1]):
                    self.left[old[0]][u] += len(blocks[ri][b])
                self.placed_at[old[0]].discard(ri)
            for b, u in enumerate(choice):
                self.left[si][u] -= len(blocks[ri][b])
            self.placed_at[si].add(ri)
            self.placement[ri] = (si, choice)


def neighbourhood(
    inst: Instance, occupancy: Occupancy, shelters: Iterable[int]
) -> tuple[Instance, Placement]:
    """The view of ``inst`` for one neighbourhood, and the current placement of its requests.

    In the view (a shallow copy: problem, blocks, separations and caches are shared),
    ``pairs[r]`` is empty for every request that stays put. A free request gets every eligible
    shelter of the neighbourhood it fits when empty (not only the kept ones: the priority
    levels ignore cost), and a request placed in the neighbourhood also each of its kept
    shelters outside it where it fits the beds left now and holds nobody it must be kept apart
    from. ``free`` outside the neighbourhood is the beds left. Pairs of the view carry cost 0:
    the levels ignore cost. Every request placed in the neighbourhood is free (so its beds
    there are the model's to share); an unplaced one without any viable shelter never is.
    """
    inside = set(shelters)
    placement = occupancy.placement
    left, placed_at = occupancy.left, occupancy.placed_at
    view = copy.copy(inst)
    # Only the free requests get pairs; the others share one empty list, never changed.
    none: list[Pair] = []
    pairs = [none] * len(inst.pairs)
    free = list(inst.free)
    current: Placement = {}
    # Requests alike for the rules (same shelter-level fields and member profile, no
    # separation link) have the same shelters here: their pairs are computed once and shared
    # (the model reads only a pair's shelter, cost and candidates).
    alike: dict[tuple[int, int], list[Pair]] = {}
    fits: dict[tuple[int, int], bool] = {}

    def inside_pairs(ri: int) -> list[Pair]:
        key = (inst.request_key(ri), inst.profile[ri])
        hit = None if inst.separated[ri] else alike.get(key)
        if hit is None:
            hit = []
            for si in sorted(inside & inst.eligible_set(ri)):
                cands = inst.viable(ri, si)
                if cands is not None:
                    hit.append(Pair(ri, si, 0, cands))
            if not inst.separated[ri]:
                alike[key] = hit
        return hit

    for ri, kept in enumerate(inst.pairs):
        here = placement.get(ri)
        if here is None:
            if not kept:
                continue
            mine = inside_pairs(ri)
            if mine:
                pairs[ri] = mine
            continue
        if here[0] not in inside:
            continue
        current[ri] = here
        mine = list(inside_pairs(ri))
        sizes = [len(b) for b in inst.blocks[ri]]
        for pair in kept:
            to = pair.shelter
            if to in inside or inst.separated[ri] & placed_at[to]:
                continue
            # The beds left do not change while the view is built: one check per profile.
            key = (inst.profile[ri], to)
            ok = fits.get(key)
            if ok is None:
                ok = fit_blocks(sizes, pair.candidates, left[to]) is not None
                fits[key] = ok
            if ok:
                mine.append(Pair(ri, to, 0, pair.candidates))
                free[to] = tuple(left[to])
        pairs[ri] = mine
    view.pairs = pairs
    view.free = free
    return view, current
