"""Soft cost of placing a request in a shelter (SPEC §6), in exact integers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from placement.problem import Location, Region, Request, Shelter, Weights

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), metres


def haversine_m(a: Location, b: Location) -> int:
    """Great-circle distance between two points in whole metres (rounded half to even)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))


def request_origin(request: Request, regions: Mapping[str, Region]) -> Location | None:
    """The request's location, else its current region's centroid, else None."""
    if request.location is not None:
        return request.location
    if request.current_region is not None and request.current_region in regions:
        r = regions[request.current_region]
        return Location(r.lat, r.lon)
    return None


def shelter_point(shelter: Shelter, regions: Mapping[str, Region]) -> Location | None:
    """The shelter's location, else its region's centroid."""
    if shelter.location is not None:
        return shelter.location
    r = regions.get(shelter.region)
    return None if r is None else Location(r.lat, r.lon)


def soft_cost(
    request: Request, shelter: Shelter, regions: Mapping[str, Region], weights: Weights
) -> int:
    """Integer soft cost of housing ``request`` in ``shelter`` (≥ 0; per request, not per person).

    Sum of: ``distance_per_metre`` * haversine metres from the request's origin (location or
    current-region centroid; no origin → distance 0) to the shelter (location or region
    centroid); ``missing_desired_service`` * desired services the shelter lacks;
    ``no_shared_language`` when the request lists languages, none is spoken at the shelter and
    the shelter offers no ``interpretation``; ``outside_preferred_regions`` when preferred
    regions are listed and the shelter's region is not one of them.
    """
    cost = 0
    origin = request_origin(request, regions)
    point = shelter_point(shelter, regions)
    if origin is not None and point is not None:
        cost += weights.distance_per_metre * haversine_m(origin, point)
    cost += weights.missing_desired_service * sum(
        1 for code in request.desired_services if code not in shelter.services
    )
    if (
        request.languages
        and "interpretation" not in shelter.services
        and not set(request.languages) & set(shelter.languages)
    ):
        cost += weights.no_shared_language
    if request.preferred_regions and shelter.region not in request.preferred_regions:
        cost += weights.outside_preferred_regions
    return cost


class ShelterCosts:
    """Soft costs of one request against many shelters, equal to :func:`soft_cost` pair by pair.

    The shelter-side values (radians, cosines, service and language sets) are computed once;
    the arithmetic of :func:`haversine_m` is repeated operation for operation so that every
    float, and so every rounded metre, is the same.
    """

    def __init__(
        self, shelters: Sequence[Shelter], regions: Mapping[str, Region], weights: Weights
    ) -> None:
        self.weights = weights
        self.regions = regions
        self.points: list[tuple[float, float, float, float] | None] = []
        for s in shelters:
            point = shelter_point(s, regions)
            if point is None:
                self.points.append(None)
            else:
                lat2 = math.radians(point.lat)
                self.points.append((lat2, math.cos(lat2), point.lon, point.lat))
        self.services = [frozenset(s.services) for s in shelters]
        self.languages = [frozenset(s.languages) for s in shelters]
        self.region = [s.region for s in shelters]

    def costs(self, request: Request, indices: Sequence[int]) -> list[int]:
        """``[soft_cost(request, shelters[i], regions, weights) for i in indices]``, faster."""
        w = self.weights
        origin = request_origin(request, self.regions)
        per_metre = w.distance_per_metre
        desired = request.desired_services
        languages = frozenset(request.languages)
        preferred = frozenset(request.preferred_regions)
        out: list[int] = []
        if origin is not None:
            lat1 = math.radians(origin.lat)
            cos1 = math.cos(lat1)
            alon = origin.lon
        for i in indices:
            cost = 0
            pt = self.points[i]
            if origin is not None and pt is not None:
                lat2, cos2, blon, _ = pt
                dlat = lat2 - lat1
                dlon = math.radians(blon - alon)
                h = math.sin(dlat / 2) ** 2 + cos1 * cos2 * math.sin(dlon / 2) ** 2
                cost += per_metre * round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))
            services = self.services[i]
            if desired:
                cost += w.missing_desired_service * sum(1 for c in desired if c not in services)
            if languages and "interpretation" not in services and not languages & self.languages[i]:
                cost += w.no_shared_language
            if preferred and self.region[i] not in preferred:
                cost += w.outside_preferred_regions
            out.append(cost)
        return out
