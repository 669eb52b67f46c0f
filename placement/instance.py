"""Pre-computed view of a problem shared by the solvers and the explanations.

Internal to the package. Enumerating eligible (request, shelter) pairs one by one is quadratic
in Python, so the eligibility rules of :mod:`placement.eligibility` are evaluated once per
distinct member profile and unit configuration, and shelter-level conditions are intersected as
sets. The rules themselves are never re-implemented here.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from placement.cost import EARTH_RADIUS_M, ShelterCosts, request_origin
from placement.eligibility import (
    admission,
    bed_blocks,
    block_members,
    fit_blocks,
    member_level,
    member_status,
    shelter_reasons,
)
from placement.problem import Location, Member, Problem, Request, Unit

PAIR_LIMIT = 250_000
"""Above this many eligible (request, shelter) pairs the model keeps each request's cheapest."""
MIN_KEPT = 30
"""A reduced model keeps at least this many viable shelters per request."""

T = TypeVar("T")
_UNKNOWN = object()

Placement = dict[int, tuple[int, tuple[int, ...]]]
"""Request index → (shelter index, unit index within the shelter for each bed block)."""


@dataclass(frozen=True, slots=True)
class Pair:
    """A viable (request, shelter) pair: eligible, and the group fits the empty shelter.

    ``candidates[b]`` are the indices (within the shelter) of units admitting bed block ``b``.
    """

    request: int
    shelter: int
    cost: int
    candidates: tuple[tuple[int, ...], ...]


class Instance:
    """Indices, viable pairs and costs of one problem.

    ``pairs[r]`` lists request ``r``'s viable shelters by soft cost (ties by document order).
    When the problem has more than ``pair_limit`` eligible pairs, only each request's
    ``kept`` cheapest viable shelters are listed (``reduced`` is then true); the others can be
    reached through :meth:`more_pairs`, which the greedy baseline uses as a fallback.
    """

    def __init__(self, problem: Problem, pair_limit: int | None = None) -> None:
        self.problem = problem
        self.regions = {r.code: r for r in problem.regions}
        requests, shelters = problem.requests, problem.shelters
        self.request_index = {q.id: i for i, q in enumerate(requests)}
        self.free: list[tuple[int, ...]] = [tuple(u.free_beds for u in s.units) for s in shelters]
        self.size = [len(q.members) for q in requests]

        # Distinct unit configurations and member profiles share one eligibility evaluation.
        config_of: dict[tuple[tuple[object, ...], ...], int] = {}
        self.config = [
            config_of.setdefault(tuple(u.admits for u in s.units), len(config_of)) for s in shelters
        ]
        config_units: dict[int, tuple[Unit, ...]] = {}
        for s, c in zip(shelters, self.config, strict=True):
            config_units.setdefault(c, s.units)
        # Members enter the rules only through ref, sex, guardian, status and which side of each
        # rule's age bounds they fall on, so groups alike in these share one evaluation.
        ages = sorted(
            {
                a
                for u in config_units.values()
                for x in u
                for r in x.admits
                for a in (r.min_age, r.max_age + 1)
            }
        )
        profile_of: dict[tuple[object, ...], int] = {}
        self.profile = [
            profile_of.setdefault(_profile_key(q, ages, problem.majority_age), len(profile_of))
            for q in requests
        ]
        self._member_cache: dict[
            tuple[int, int], tuple[list[str], tuple[tuple[int, ...], ...]]
        ] = {}
        self._config_units = config_units
        # Units admit by their rules alone, so a group's admission table for a configuration is
        # read from one table per group profile over the few distinct rule sets ("kinds").
        kind_of: dict[tuple[object, ...], int] = {}
        kind_units: list[Unit] = []
        self._config_kinds: dict[int, tuple[int, ...]] = {}
        for c, units in config_units.items():
            for u in units:
                if u.admits not in kind_of:
                    kind_of[u.admits] = len(kind_units)
                    kind_units.append(u)
            self._config_kinds[c] = tuple(kind_of[u.admits] for u in units)
        self._kind_units = tuple(kind_units)
        config_kind_sets = {c: frozenset(k) for c, k in self._config_kinds.items()}
        self._kind_table: dict[int, tuple[list[tuple[bool, ...]], tuple[tuple[int, ...], ...]]] = {}
        shelters_by_config: dict[int, set[int]] = {}
        for si, c in enumerate(self.config):
            shelters_by_config.setdefault(c, set()).add(si)

        self.blocks: list[tuple[tuple[Member, ...], ...]] = []
        self.block_sizes: list[tuple[int, ...]] = []
        """People per bed block of each request, in block order."""
        shelter_sets = _ShelterSets(problem)
        self._shelter_sets = shelter_sets
        allowed_by_profile: dict[int, set[int]] = {}
        key_of: dict[tuple[object, ...], int] = {}
        self._request_key = [
            key_of.setdefault(
                (
                    q.required_services,
                    q.wheelchair,
                    q.high_risk,
                    q.excluded_regions,
                    q.excluded_shelters,
                    q.declined_shelters,
                    q.separated_shelters,
                ),
                len(key_of),
            )
            for q in requests
        ]
        # Requests with the same shelter-level fields and member profile share one list.
        eligible_by_key: dict[tuple[int, int], tuple[list[int], frozenset[int]]] = {}
        same_sets: dict[frozenset[int], tuple[list[int], frozenset[int]]] = {}
        self._eligible: list[list[int]] = []
        self._eligible_set: list[frozenset[int]] = []
        for ri, q in enumerate(requests):
            mi = self.profile[ri]
            blocks = bed_blocks(q, problem.majority_age)
            self.blocks.append(blocks)
            self.block_sizes.append(tuple(len(b) for b in blocks))
            if mi not in allowed_by_profile:
                # The member codes are empty exactly when every bed block has a unit admitting
                # all of it: per block, the rule kinds that do, against each configuration's
                # kinds (the codes themselves are asked only where they are read).
                table = self._kinds_of(ri)
                block_ok = [
                    frozenset(k for k in range(len(kind_units)) if all(table[0][m][k] for m in b))
                    for b in table[1]
                ]
                allowed: set[int] = set()
                for c, members in shelters_by_config.items():
                    present = config_kind_sets[c]
                    if all(not ok.isdisjoint(present) for ok in block_ok):
                        allowed |= members
                allowed_by_profile[mi] = allowed
            ekey = (self._request_key[ri], mi)
            hit = eligible_by_key.get(ekey)
            if hit is None:
                found = frozenset(shelter_sets.eligible(q) & allowed_by_profile[mi])
                # Far fewer distinct sets than keys: requests alike share one copy.
                hit = same_sets.get(found)
                if hit is None:
                    hit = same_sets[found] = (sorted(found), found)
                eligible_by_key[ekey] = hit
            self._eligible.append(hit[0])
            self._eligible_set.append(hit[1])
        self.biggest_block = [max(s, default=0) for s in self.block_sizes]
        """People in each request's largest bed block."""
        total = sum(len(e) for e in self._eligible)
        limit = PAIR_LIMIT if pair_limit is None else pair_limit
        self.reduced = total > limit
        keep = max(MIN_KEPT, limit // max(1, len(requests))) if self.reduced else None
        self._cost_cache: dict[tuple[object, ...], dict[int, int]] = {}
        # Per member profile: shelter index → block candidates, or None when the group does not
        # fit the empty shelter.
        self._viable: list[dict[int, tuple[tuple[int, ...], ...] | None]] = [{} for _ in profile_of]
        self._cost_fn: list[Callable[[int], int]] = []
        self._cost_caches: list[dict[int, int]] = []
        self._last_kept: list[tuple[int, int] | None] = [None] * len(requests)
        self._cost_table = ShelterCosts(shelters, self.regions, problem.weights)
        self._sweep = _CellSweep(self._cost_table, problem.weights.distance_per_metre)
        if keep is not None:
            self._sweep.prepare(request_origin(q, self.regions) for q in requests)
        for q in requests:
            costs, cache = self._costs(q)
            self._cost_fn.append(costs)
            self._cost_caches.append(cache)
        self.kept = keep
        self._has_viable: dict[tuple[int, int], bool] = {}
        self.pairs: Sequence[list[Pair]]
        """Per request, its viable pairs (see the class docstring). A reduced instance finds
        a request's kept pairs when they are first asked for (``_PairLists``): the walk is the
        dear part of a large instance (20,000x2,000: ≈ 7 s of ≈ 8), and a greedy pass the clock
        cuts needs only the requests it reached. The lists are the same whenever asked."""
        if keep is None:
            self.pairs = [
                self._all_pairs(ri, q, self._cost_caches[ri]) for ri, q in enumerate(requests)
            ]
        else:
            self.pairs = _PairLists(self, keep)

        self.separated: list[set[int]] = [set() for _ in requests]
        for ri, q in enumerate(requests):
            for other in q.separate_from:
                oi = self.request_index.get(other)
                if oi is not None and oi != ri:
                    self.separated[ri].add(oi)
                    self.separated[oi].add(ri)

    def _kinds_of(self, ri: int) -> tuple[list[tuple[bool, ...]], tuple[tuple[int, ...], ...]]:
        """Request ``ri``'s admission table over the rule kinds, and its blocks as indices."""
        mi = self.profile[ri]
        kinds = self._kind_table.get(mi)
        if kinds is None:
            q = self.problem.requests[ri]
            table = admission(q, self._kind_units, self.problem.majority_age)
            kinds = self._kind_table[mi] = (table, block_members(q, self.blocks[ri]))
        return kinds

    def _kept_pairs(self, ri: int, keep: int) -> list[Pair]:
        """Request ``ri``'s ``keep`` cheapest viable pairs, and where :meth:`more_pairs` starts."""
        q = self.problem.requests[ri]
        pairs = self._cheapest_pairs(ri, q, self._cost_caches[ri], keep)
        # more_pairs starts after the last kept pair, if ``keep`` pairs were found.
        self._last_kept[ri] = (pairs[-1].cost, pairs[-1].shelter) if len(pairs) >= keep else None
        return pairs

    def has_viable(self, ri: int) -> bool:
        """Whether request ``ri`` has a viable pair (``pairs[ri]`` not empty), without the walk."""
        key = (self.profile[ri], id(self._eligible[ri]))
        hit = self._has_viable.get(key)
        if hit is None:
            hit = self._has_viable[key] = any(
                self.viable(ri, si) is not None for si in self._eligible[ri]
            )
        return hit

    def member_level(self, ri: int, config: int) -> tuple[list[str], tuple[tuple[int, ...], ...]]:
        """Member reason codes and block candidates of request ``ri`` for a unit config."""
        key = (self.profile[ri], config)
        hit = self._member_cache.get(key)
        if hit is None:
            q = self.problem.requests[ri]
            kinds = self._kinds_of(ri)
            of = self._config_kinds[config]
            hit = member_level(q, kinds[1], [tuple(row[k] for k in of) for row in kinds[0]])
            self._member_cache[key] = hit
        return hit

    def _costs(self, q: Request) -> tuple[Callable[[int], int], dict[int, int]]:
        """Cost lookup and cache of a request, shared by requests with the same cost fields."""
        origin = request_origin(q, self.regions)
        key = (
            None if origin is None else (origin.lat, origin.lon),
            q.desired_services,
            q.languages,
            q.preferred_regions,
        )
        cache = self._cost_cache.setdefault(key, {})
        table = self._cost_table

        def cost(si: int) -> int:
            hit = cache.get(si)
            if hit is None:
                hit = table.costs(q, (si,))[0]
                cache[si] = hit
            return hit

        return cost, cache

    def more_pairs(self, ri: int) -> Iterator[Pair]:
        """Viable pairs of request ``ri`` left out of a reduced model, cheapest first."""
        self.pairs[ri]  # the kept pairs first: they say where the rest begins
        last = self._last_kept[ri]
        if last is None:
            return
        q = self.problem.requests[ri]
        elig = self._eligible[ri]
        cache = self._cost_caches[ri]
        self._fill(q, cache, elig)
        for c, si in sorted(zip(map(cache.__getitem__, elig), elig, strict=True)):
            if (c, si) <= last:
                continue
            cands = self.viable(ri, si)
            if cands is not None:
                yield Pair(ri, si, c, cands)

    def cheapest_more_pair(
        self,
        ri: int,
        among: AbstractSet[int],
        accept: Callable[[int, tuple[tuple[int, ...], ...]], T | None],
    ) -> tuple[Pair, T] | None:
        """The first pair of :meth:`more_pairs` at a shelter of ``among`` that ``accept`` takes.

        ``accept(shelter, candidates)`` returns None to refuse. It must not change what it
        answers while this runs; it is asked in a different order than :meth:`more_pairs`
        yields, and before costing: shelters are visited by cells, cheapest floor first, and
        the walk ends once a cell's floor is above the best accepted cost.
        Returns the pair and what ``accept`` said, or None when no pair is accepted.
        """
        self.pairs[ri]  # the kept pairs first: they say where the rest begins
        last = self._last_kept[ri]
        if last is None:
            return None
        q = self.problem.requests[ri]
        # The open eligible shelters, as one set operation: in a saturated network most
        # shelters are full, and this runs for every request whose kept shelters are.
        wanted = self._eligible_set[ri] & among
        if not wanted:
            return None
        cache = self._cost_caches[ri]
        best: tuple[int, int, tuple[tuple[int, ...], ...], T] | None = None
        for lower, chunk in self._sweep.order(request_origin(q, self.regions)):
            if best is not None and lower > best[0]:
                break
            # Costs are the dear part: only shelters ``accept`` takes are costed. A cell's
            # shelters are in document order, and so are the sorted hits.
            taken = []
            for si in sorted(wanted.intersection(chunk)):
                cands = self.viable(ri, si)
                if cands is not None:
                    said = accept(si, cands)
                    if said is not None:
                        taken.append((si, cands, said))
            if not taken:
                continue
            self._fill(q, cache, [si for si, _, _ in taken])
            for si, cands, said in taken:
                key = (cache[si], si)
                if key > last and (best is None or key < (best[0], best[1])):
                    best = (key[0], si, cands, said)
        if best is None:
            return None
        return Pair(ri, best[1], best[0], best[2]), best[3]

    def eligible(self, ri: int) -> list[int]:
        """Indices of the shelters request ``ri`` is eligible for (free beds ignored)."""
        return self._eligible[ri]

    def eligible_set(self, ri: int) -> frozenset[int]:
        """The same shelters as :meth:`eligible`, as a set."""
        return self._eligible_set[ri]

    def viable(self, ri: int, si: int) -> tuple[tuple[int, ...], ...] | None:
        """Block candidates of request ``ri`` at eligible shelter ``si``.

        None when the group does not fit the shelter's free beds even with nobody else placed.
        """
        row = self._viable[self.profile[ri]]
        hit = row.get(si, _UNKNOWN)
        if hit is _UNKNOWN:
            cands = self.member_level(ri, self.config[si])[1]
            hit = cands if _fits(self.block_sizes[ri], cands, self.free[si]) else None
            row[si] = hit
        return hit  # type: ignore[return-value]

    def _fill(self, q: Request, cache: dict[int, int], indices: Sequence[int]) -> None:
        missing = [si for si in indices if si not in cache]
        if missing:
            cache.update(zip(missing, self._cost_table.costs(q, missing), strict=True))

    def _all_pairs(self, ri: int, q: Request, cache: dict[int, int]) -> list[Pair]:
        """Every viable pair of request ``ri``, by soft cost then document order."""
        elig = self._eligible[ri]
        self._fill(q, cache, elig)
        pairs: list[Pair] = []
        for c, si in sorted(zip(map(cache.__getitem__, elig), elig, strict=True)):
            cands = self.viable(ri, si)
            if cands is not None:
                pairs.append(Pair(ri, si, c, cands))
        return pairs

    def _cheapest_pairs(self, ri: int, q: Request, cache: dict[int, int], keep: int) -> list[Pair]:
        """The first ``keep`` of :meth:`_all_pairs`, without costing every shelter.

        Shelters are visited by cells, nearest to the request's origin first; the walk stops
        once the floor of the next cell (see :class:`_CellSweep`) is above the worst kept
        pair's cost. Ties in cost go to document order, as in the sort.
        """
        elig = self._eligible_set[ri]
        viable = self._viable[self.profile[ri]]
        heap: list[tuple[int, int]] = []  # (-cost, -shelter): the worst kept pair on top
        worst = (math.inf, math.inf)  # the worst kept (cost, shelter) once ``keep`` are kept
        for lower, chunk in self._sweep.order(request_origin(q, self.regions)):
            if lower > worst[0]:
                break
            # Sorted: a cell's shelters are in document order, and so are the hits.
            todo = sorted(elig.intersection(chunk))
            self._fill(q, cache, todo)
            for si in todo:
                c = cache[si]
                if (c, si) > worst:
                    continue
                cands = viable.get(si, _UNKNOWN)
                if cands is _UNKNOWN:
                    cands = self.viable(ri, si)
                if cands is None:
                    continue
                if len(heap) < keep:
                    heapq.heappush(heap, (-c, -si))
                else:
                    heapq.heapreplace(heap, (-c, -si))
                if len(heap) >= keep:
                    worst = (-heap[0][0], -heap[0][1])
        pairs = []
        for c, si in sorted((-c, -s) for c, s in heap):
            found = viable[si]
            assert found is not None
            pairs.append(Pair(ri, si, c, found))
        return pairs

    def request_key(self, ri: int) -> int:
        """Index of the request's shelter-level fields (requests alike share it)."""
        return self._request_key[ri]

    def member_codes_by_config(self, ri: int) -> tuple[tuple[str, ...], ...]:
        """Member reason codes of request ``ri`` for every unit configuration, in order."""
        return tuple(tuple(self.member_level(ri, c)[0]) for c in range(len(self._config_units)))

    def eligibility(self, ri: int, si: int) -> list[str]:
        """Eligibility reason codes of request ``ri`` at shelter ``si`` (same as the rules)."""
        # Not cached: the rules are cheap, and a cache per (request fields, shelter) grew to
        # millions of lists at 20,000 x 2,000 while the explanations keep their own per request
        # kind anyway.
        codes = shelter_reasons(self.problem.requests[ri], self.problem.shelters[si])
        return sorted(codes + self.member_level(ri, self.config[si])[0])

    def placed_by_priority(self, placement: Placement) -> tuple[int, int, int, int, int]:
        """People placed per priority 5..1."""
        counts = [0, 0, 0, 0, 0]
        for ri in placement:
            counts[5 - self.problem.requests[ri].priority] += self.size[ri]
        return (counts[0], counts[1], counts[2], counts[3], counts[4])

    def pair_cost(self, ri: int, si: int) -> int:
        """Soft cost of request ``ri`` in shelter ``si``."""
        return self._cost_fn[ri](si)

    def trivial_bound(self) -> tuple[int, int, int, int, int]:
        """Per priority: people in requests with a viable pair, capped by all free beds."""
        total_free = sum(sum(f) for f in self.free)
        counts = [0, 0, 0, 0, 0]
        for ri, q in enumerate(self.problem.requests):
            if self.has_viable(ri):
                counts[5 - q.priority] += self.size[ri]
        c = [min(n, total_free) for n in counts]
        return (c[0], c[1], c[2], c[3], c[4])


class _PairLists(Sequence[list[Pair]]):
    """``Instance.pairs`` of a reduced instance: kept pairs found when first asked for.

    Each list is kept once found; callers may append to it, as with plain lists.
    """

    def __init__(self, inst: Instance, keep: int) -> None:
        self._inst = inst
        self._keep = keep
        self._lists: list[list[Pair] | None] = [None] * len(inst.problem.requests)

    def __len__(self) -> int:
        return len(self._lists)

    @overload
    def __getitem__(self, ri: int) -> list[Pair]: ...

    @overload
    def __getitem__(self, ri: slice) -> Sequence[list[Pair]]: ...

    def __getitem__(self, ri: int | slice) -> list[Pair] | Sequence[list[Pair]]:
        if isinstance(ri, slice):
            return [self[i] for i in range(len(self._lists))[ri]]
        found = self._lists[ri]
        if found is None:
            found = self._lists[ri] = self._inst._kept_pairs(ri, self._keep)
        return found

    def __iter__(self) -> Iterator[list[Pair]]:
        for ri in range(len(self._lists)):
            yield self[ri]


class _ShelterSets:
    """Shelter index sets per shelter-level condition, for fast pre-filtering."""

    def __init__(self, problem: Problem, pair_limit: int | None = None) -> None:
        shelters = problem.shelters
        self.all = {i for i, s in enumerate(shelters) if s.status == "open"}
        self.by_service: dict[str, set[int]] = {}
        self.by_region: dict[str, set[int]] = {}
        self.by_id = {s.id: i for i, s in enumerate(shelters)}
        for i, s in enumerate(shelters):
            for c in s.services:
                self.by_service.setdefault(c, set()).add(i)
            self.by_region.setdefault(s.region, set()).add(i)
        self.wheelchair = {i for i, s in enumerate(shelters) if s.wheelchair_accessible}
        self.high = {i for i, s in enumerate(shelters) if s.security_level == "high"}

    def eligible(self, q: Request) -> set[int]:
        out = set(self.all)
        for c in q.required_services:
            out &= self.by_service.get(c, set())
        if q.wheelchair:
            out &= self.wheelchair
        if q.high_risk:
            out &= self.high
        for code in q.excluded_regions:
            out -= self.by_region.get(code, set())
        for sid in (*q.excluded_shelters, *q.declined_shelters, *q.separated_shelters):
            if sid in self.by_id:
                out.discard(self.by_id[sid])
        return out


def _fits(sizes: Sequence[int], cands: Sequence[Sequence[int]], free: Sequence[int]) -> bool:
    if len(sizes) == 1:
        return any(free[u] >= sizes[0] for u in cands[0])
    return fit_blocks(sizes, cands, free) is not None


def _profile_key(q: Request, ages: Sequence[int], majority_age: int) -> tuple[object, ...]:
    """What the admission rules can see of a group: equal keys, equal member-level results.

    ``ages`` are the sorted rule bounds (``min_age`` and ``max_age + 1``): two ages between
    the same bounds satisfy the same comparisons of every rule.
    """
    return tuple(
        (
            m.ref,
            m.sex,
            bisect.bisect_right(ages, m.age),
            m.guardian_ref,
            member_status(m, q.members, majority_age),
        )
        for m in q.members
    )


class _CellSweep:
    """Shelters grouped in latitude/longitude cells, cells ordered by a floor on the cost.

    The floor of a cell is a lower bound on the haversine distance from an origin to any point
    of the cell's bounding box (each term of the haversine formula at its smallest over the
    box), times the weight per metre, less a margin for floating-point and whole-metre
    rounding. The other soft-cost terms are never negative, so no shelter of a cell costs less
    than its floor.
    """

    CELL_DEG = 1.0

    def __init__(self, table: ShelterCosts, per_metre: int) -> None:
        cells: dict[tuple[int, int], list[int]] = {}
        self.nowhere: list[int] = []
        for si, pt in enumerate(table.points):
            if pt is None:
                self.nowhere.append(si)
                continue
            _, _, lon, lat = pt
            cells.setdefault(
                (math.floor(lat / self.CELL_DEG), math.floor(lon / self.CELL_DEG)), []
            ).append(si)
        self.cells: list[tuple[float, float, float, float, list[int]]] = []
        for members in cells.values():
            lats = [table.points[si][0] for si in members]  # type: ignore[index]
            lons = [table.points[si][2] for si in members]  # type: ignore[index]
            self.cells.append((min(lats), max(lats), min(lons), max(lons), members))
        self.every = list(range(len(table.points)))
        self.per_metre = per_metre
        self._orders: dict[tuple[float, float], list[tuple[int, list[int]]]] = {}
        self._pending: dict[tuple[float, float], tuple[Any, Any]] = {}
        self._members = [c[4] for c in self.cells]

    def prepare(self, origins: Iterable[Location | None]) -> None:
        """Compute the orders of many origins at once, in arrays (:meth:`order` reads them).

        The floors are lower bounds whichever way the last bits of the trigonometry round
        (their margin), and a walk by them finds the same pairs in any order of equal floors,
        so vectorised floors change nothing that comes out.
        """
        if self.per_metre == 0:
            return
        todo = sorted(
            {(o.lat, o.lon) for o in origins if o is not None}
            - self._orders.keys()
            - self._pending.keys()
        )
        head: list[tuple[int, list[int]]] = [(0, self.nowhere)] if self.nowhere else []
        if not todo or not self.cells:
            self._orders.update((key, list(head)) for key in todo)
            return
        import numpy as np

        cells = np.array([c[:4] for c in self.cells], dtype=np.float64)
        lat_lo, lat_hi, lon_lo, lon_hi = (cells[:, i] for i in range(4))
        cos2 = np.maximum(0.0, np.minimum(np.cos(lat_lo), np.cos(lat_hi)))
        for start in range(0, len(todo), 4096):
            chunk = np.array(todo[start : start + 4096], dtype=np.float64)
            lat1 = np.radians(chunk[:, :1])
            lon = chunk[:, 1:]
            dlat = np.maximum(0.0, np.maximum(lat_lo - lat1, lat1 - lat_hi))
            east = np.radians(np.mod(lon_lo - lon, 360.0))
            west = np.radians(np.mod(lon - lon_hi, 360.0))
            s2 = np.minimum(np.sin(east / 2) ** 2, np.sin(west / 2) ** 2)
            s2 = np.where((lon_lo <= lon) & (lon <= lon_hi), 0.0, s2)
            h = np.sin(dlat / 2) ** 2 + np.cos(lat1) * cos2 * s2
            metres = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
            floors = self.per_metre * np.maximum(0, np.floor(metres * (1 - 1e-9)) - 1)
            order = np.argsort(floors, axis=1, kind="stable")
            ranked = np.take_along_axis(floors, order, axis=1).astype(np.int64)
            for key, row, values in zip(todo[start : start + 4096], order, ranked, strict=True):
                # Turned into a list when first walked (many origins are never walked when
                # the clock cuts the greedy pass).
                self._pending[key] = (row, values)

    def order(self, origin: Location | None) -> list[tuple[int, list[int]]]:
        """(floor, shelter indices) covering every shelter once, by floor ascending."""
        if origin is None or self.per_metre == 0:
            return [(0, self.every)]
        key = (origin.lat, origin.lon)
        found = self._orders.get(key)
        if found is None:
            pending = self._pending.pop(key, None)
            if pending is None:
                self.prepare((origin,))
                return self.order(origin)
            head: list[tuple[int, list[int]]] = [(0, self.nowhere)] if self.nowhere else []
            members = self._members
            found = self._orders[key] = head + [
                (f, members[c])
                for c, f in zip(pending[0].tolist(), pending[1].tolist(), strict=True)
            ]
        return found
