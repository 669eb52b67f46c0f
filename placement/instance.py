"""Pre-computed view of a problem shared by the solvers and the explanations.

Internal to the package. Enumerating eligible (request, shelter) pairs one by one is quadratic
in Python, so the eligibility rules of :mod:`placement.eligibility` are evaluated once per
distinct member profile and unit configuration, and shelter-level conditions are intersected as
sets. The rules themselves are never re-implemented here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from placement.cost import ShelterCosts, request_origin
from placement.eligibility import block_candidates, fit_blocks, member_reasons, shelter_reasons
from placement.problem import Member, Problem, Request, Unit

PAIR_LIMIT = 250_000
"""Above this many eligible (request, shelter) pairs the model keeps each request's cheapest."""
MIN_KEPT = 30
"""A reduced model keeps at least this many viable shelters per request."""

Placement = dict[int, tuple[int, tuple[int, ...]]]
"""Request index → (shelter index, unit index within the shelter for each bed block)."""


@dataclass(frozen=True)
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
        profile_of: dict[tuple[Member, ...], int] = {}
        self.profile = [profile_of.setdefault(q.members, len(profile_of)) for q in requests]
        self._member_cache: dict[
            tuple[int, int], tuple[list[str], tuple[tuple[int, ...], ...]]
        ] = {}
        self._config_units = config_units
        shelters_by_config: dict[int, set[int]] = {}
        for si, c in enumerate(self.config):
            shelters_by_config.setdefault(c, set()).add(si)

        self.blocks: list[tuple[tuple[Member, ...], ...]] = []
        self.pairs: list[list[Pair]] = []
        shelter_sets = _ShelterSets(problem)
        self._shelter_sets = shelter_sets
        allowed_by_profile: dict[int, set[int]] = {}
        eligible_of: list[list[int]] = []
        for ri, q in enumerate(requests):
            mi = self.profile[ri]
            blocks = tuple(b for b, _ in block_candidates(q, (), problem.majority_age))
            self.blocks.append(blocks)
            if mi not in allowed_by_profile:
                allowed: set[int] = set()
                for c, members in shelters_by_config.items():
                    if not self.member_level(ri, c)[0]:
                        allowed |= members
                allowed_by_profile[mi] = allowed
            eligible_of.append(list(shelter_sets.eligible(q) & allowed_by_profile[mi]))
        total = sum(len(e) for e in eligible_of)
        limit = PAIR_LIMIT if pair_limit is None else pair_limit
        self.reduced = total > limit
        keep = max(MIN_KEPT, limit // max(1, len(requests))) if self.reduced else None
        self._cost_cache: dict[tuple[object, ...], dict[int, int]] = {}
        self._rest: list[list[int]] = []
        self._cost_fn: list[Callable[[int], int]] = []
        self._cost_table = ShelterCosts(shelters, self.regions, problem.weights)
        for ri, q in enumerate(requests):
            costs, cache = self._costs(q)
            self._cost_fn.append(costs)
            elig = eligible_of[ri]
            missing = [si for si in elig if si not in cache]
            if missing:
                cache.update(zip(missing, self._cost_table.costs(q, missing), strict=True))
            order = [si for _, si in sorted(zip(map(cache.__getitem__, elig), elig, strict=True))]
            pairs: list[Pair] = []
            sizes = [len(b) for b in self.blocks[ri]]
            stop = len(order)
            for pos, si in enumerate(order):
                if keep is not None and len(pairs) >= keep:
                    stop = pos
                    break
                cands = self.member_level(ri, self.config[si])[1]
                if _fits(sizes, cands, self.free[si]):
                    pairs.append(Pair(ri, si, costs(si), cands))
            self.pairs.append(pairs)
            self._rest.append(order[stop:])
        self.kept = keep

        key_of: dict[tuple[object, ...], int] = {}
        self._request_key = [
            key_of.setdefault(
                (
                    q.required_services,
                    q.wheelchair,
                    q.high_risk,
                    q.excluded_regions,
                    q.excluded_shelters,
                ),
                len(key_of),
            )
            for q in requests
        ]
        self._shelter_reason_cache: dict[tuple[int, int], list[str]] = {}
        self.separated: list[set[int]] = [set() for _ in requests]
        for ri, q in enumerate(requests):
            for other in q.separate_from:
                oi = self.request_index.get(other)
                if oi is not None and oi != ri:
                    self.separated[ri].add(oi)
                    self.separated[oi].add(ri)

    def member_level(self, ri: int, config: int) -> tuple[list[str], tuple[tuple[int, ...], ...]]:
        """Member reason codes and block candidates of request ``ri`` for a unit config."""
        key = (self.profile[ri], config)
        hit = self._member_cache.get(key)
        if hit is None:
            q = self.problem.requests[ri]
            units = self._config_units[config]
            age = self.problem.majority_age
            cands = tuple(c for _, c in block_candidates(q, units, age))
            hit = (member_reasons(q, units, age), cands)
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
        costs = self._cost_fn[ri]
        sizes = [len(b) for b in self.blocks[ri]]
        for si in self._rest[ri]:
            cands = self.member_level(ri, self.config[si])[1]
            if _fits(sizes, cands, self.free[si]):
                yield Pair(ri, si, costs(si), cands)

    def request_key(self, ri: int) -> int:
        """Index of the request's shelter-level fields (requests alike share it)."""
        return self._request_key[ri]

    def member_codes_by_config(self, ri: int) -> tuple[tuple[str, ...], ...]:
        """Member reason codes of request ``ri`` for every unit configuration, in order."""
        return tuple(tuple(self.member_level(ri, c)[0]) for c in range(len(self._config_units)))

    def eligibility(self, ri: int, si: int) -> list[str]:
        """Eligibility reason codes of request ``ri`` at shelter ``si`` (same as the rules)."""
        q = self.problem.requests[ri]
        key = (self._request_key[ri], si)
        codes = self._shelter_reason_cache.get(key)
        if codes is None:
            codes = shelter_reasons(q, self.problem.shelters[si])
            self._shelter_reason_cache[key] = codes
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
        for ri, pairs in enumerate(self.pairs):
            if pairs:
                counts[5 - self.problem.requests[ri].priority] += self.size[ri]
        c = [min(n, total_free) for n in counts]
        return (c[0], c[1], c[2], c[3], c[4])


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
        for sid in q.excluded_shelters:
            if sid in self.by_id:
                out.discard(self.by_id[sid])
        return out


def _fits(sizes: Sequence[int], cands: Sequence[Sequence[int]], free: Sequence[int]) -> bool:
    if len(sizes) == 1:
        return any(free[u] >= sizes[0] for u in cands[0])
    return fit_blocks(sizes, cands, free) is not None
