"""Pre-computed view of a problem shared by the solvers and the explanations.

Internal to the package. Enumerating eligible (request, shelter) pairs one by one is quadratic
in Python, so the eligibility rules of :mod:`placement.eligibility` are evaluated once per
distinct member profile and unit configuration, and shelter-level conditions are intersected as
sets. The rules themselves are never re-implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass

from placement.cost import haversine_m, request_origin, shelter_point
from placement.eligibility import block_candidates, fit_blocks, member_reasons, shelter_reasons
from placement.problem import Location, Member, Problem, Request, Unit

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
    """Indices, eligible pairs and costs of one problem (read-only after construction)."""

    def __init__(self, problem: Problem) -> None:
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
        allowed_by_profile: dict[int, set[int]] = {}
        distance_cache: dict[tuple[float, float, int], int] = {}
        for ri, q in enumerate(requests):
            mi = self.profile[ri]
            blocks = tuple(b for b, _ in block_candidates(q, (), problem.majority_age))
            self.blocks.append(blocks)
            sizes = [len(b) for b in blocks]
            if mi not in allowed_by_profile:
                allowed: set[int] = set()
                for c, members in shelters_by_config.items():
                    if not self.member_level(ri, c)[0]:
                        allowed |= members
                allowed_by_profile[mi] = allowed
            eligible = shelter_sets.eligible(q) & allowed_by_profile[mi]
            origin = request_origin(q, self.regions)
            pairs: list[Pair] = []
            for si in sorted(eligible):
                cands = self.member_level(ri, self.config[si])[1]
                if fit_blocks(sizes, cands, self.free[si]) is None:
                    continue
                pairs.append(Pair(ri, si, self._cost(q, si, origin, distance_cache), cands))
            self.pairs.append(pairs)

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

    def _cost(
        self,
        q: Request,
        si: int,
        origin: Location | None,
        distance_cache: dict[tuple[float, float, int], int],
    ) -> int:
        s = self.problem.shelters[si]
        w = self.problem.weights
        cost = 0
        point = shelter_point(s, self.regions)
        if origin is not None and point is not None:
            key = (origin.lat, origin.lon, si)
            d = distance_cache.get(key)
            if d is None:
                d = haversine_m(origin, point)
                distance_cache[key] = d
            cost += w.distance_per_metre * d
        services = s.services
        cost += w.missing_desired_service * sum(1 for c in q.desired_services if c not in services)
        if (
            q.languages
            and "interpretation" not in services
            and not set(q.languages) & set(s.languages)
        ):
            cost += w.no_shared_language
        if q.preferred_regions and s.region not in q.preferred_regions:
            cost += w.outside_preferred_regions
        return cost

    def eligibility(self, ri: int, si: int) -> list[str]:
        """Eligibility reason codes of request ``ri`` at shelter ``si`` (same as the rules)."""
        q = self.problem.requests[ri]
        s = self.problem.shelters[si]
        return sorted(shelter_reasons(q, s) + self.member_level(ri, self.config[si])[0])

    def placed_by_priority(self, placement: Placement) -> tuple[int, int, int, int, int]:
        """People placed per priority 5..1."""
        counts = [0, 0, 0, 0, 0]
        for ri in placement:
            counts[5 - self.problem.requests[ri].priority] += self.size[ri]
        return (counts[0], counts[1], counts[2], counts[3], counts[4])

    def pair_cost(self, ri: int, si: int) -> int:
        """Soft cost of a viable pair."""
        for p in self.pairs[ri]:
            if p.shelter == si:
                return p.cost
        raise KeyError((ri, si))

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

    def __init__(self, problem: Problem) -> None:
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
