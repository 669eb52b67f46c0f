"""Distances shown to a caseworker: in km, and no more precise than the shelter's region
unless the caller may locate the shelter (issue 20)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from placement.cost import haversine_m
from placement.problem import Location as Point
from shelters.access import LocatedShelters
from shelters.availability import distances_km
from shelters.profiles import CaseProfile, Location, MemberProfile
from tests.conftest import World

ONE = (MemberProfile(ref="A", sex="female", age=30),)


def _km(a: tuple[float, float], b: tuple[float, float]) -> int:
    return round(haversine_m(Point(*a), Point(*b)) / 1000)


def test_a_shelter_the_caller_may_not_locate_is_measured_to_its_regions_centroid(
    world: World, db: Session
) -> None:
    world.region("astana", 51.17, 71.45)
    world.region("almaty", 43.24, 76.89)
    shelter = world.shelter(region_code="almaty", lat=44.5, lon=78.5)
    profile = CaseProfile(members=ONE, current_region="astana")
    hidden = LocatedShelters(every=False, ids=frozenset())
    shown = LocatedShelters(every=False, ids=frozenset({shelter.id}))
    to_region = distances_km(db, hidden, profile, [shelter.id])[shelter.id]
    to_shelter = distances_km(db, shown, profile, [shelter.id])[shelter.id]
    assert to_region == _km((51.17, 71.45), (43.24, 76.89))
    assert to_shelter == _km((51.17, 71.45), (44.5, 78.5))
    assert to_region != to_shelter


def test_the_cases_own_location_is_the_origin_and_no_origin_means_no_distances(
    world: World, db: Session
) -> None:
    world.region("astana", 51.17, 71.45)
    shelter = world.shelter(lat=51.17, lon=71.45)
    everyone = LocatedShelters(every=True, ids=frozenset())
    located = CaseProfile(members=ONE, location=Location(lat=50.0, lon=71.45))
    assert distances_km(db, everyone, located, [shelter.id]) == {
        shelter.id: _km((50.0, 71.45), (51.17, 71.45))
    }
    assert distances_km(db, everyone, CaseProfile(members=ONE), [shelter.id]) == {}
