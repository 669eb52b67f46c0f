"""Soft cost of placing a request in a shelter (SPEC §6), in exact integers."""

from __future__ import annotations

import math
from collections.abc import Mapping

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
