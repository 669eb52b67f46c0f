"""The national picture: every region on the map, lone minors' places counted, people withheld."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shelters import demo, national
from shelters.identity import Role
from shelters.models import Region, Shelter, Unit, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN, create_case, create_request
from tests.ui.test_pages import log_in

GIRLS_ALONE = {
    "sexes": ["female"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}


def test_every_region_of_the_country_has_a_tile_of_its_own() -> None:
    codes = {code for code, *_ in demo.REGIONS}
    assert codes <= set(national.TILES)
    assert len(set(national.TILES.values())) == len(national.TILES)  # no two on one tile


def test_the_groups_a_unit_takes_follow_its_rules() -> None:
    assert national.groups_admitted([GIRLS_ALONE]) == {"unaccompanied_minor"}
    assert national.groups_admitted(WOMEN_AND_CHILDREN) == {"adult_female", "accompanied_child"}
    assert national.groups_admitted([]) == set()


@pytest.fixture
def country(world: World, db: Session) -> dict[str, Region]:
    north = world.region("north-kazakhstan", 54.2, 69.4)
    south = world.region("turkistan", 42.9, 68.4)
    minors = world.shelter(region_code=north.code, lat=north.lat, lon=north.lon)
    world.unit(minors, capacity=5, occupied=2, admits=[GIRLS_ALONE])
    families = world.shelter(region_code=south.code, lat=south.lat, lon=south.lon)
    world.unit(families, capacity=8, admits=WOMEN_AND_CHILDREN)
    closed = world.shelter(region_code=south.code, status="closed")
    world.unit(closed, capacity=9, admits=[GIRLS_ALONE])
    return {"north": north, "south": south}


def test_free_places_for_lone_minors_and_demand_by_region(
    client: TestClient, world: World, country: dict[str, Region]
) -> None:
    caseworker = world.headers(Role.CASEWORKER)
    for _ in range(3):
        case = create_case(
            client,
            caseworker,
            [{"ref": "A", "sex": "female", "age": 15}],
            current_region=country["south"].code,
        )
        create_request(client, caseworker, case["id"])
    regions = {
        p.code: p
        for p in national.picture(world.db, aggregate_only=False, k=11, stale_after_hours=24)
    }
    north, south = regions["north-kazakhstan"], regions["turkistan"]
    assert north.beds["unaccompanied_minor"] == 3  # 5 less 2 occupied
    assert south.beds["unaccompanied_minor"] == 0  # the closed shelter's beds do not count
    assert south.beds["adult_female"] == south.beds["accompanied_child"] == 8
    assert (south.requests_waiting, south.minors_waiting) == (3, 3)
    funders = {
        p.code: p
        for p in national.picture(world.db, aggregate_only=True, k=11, stale_after_hours=24)
    }
    assert (funders["turkistan"].requests_waiting, funders["turkistan"].minors_waiting) == (
        None,
        None,
    )
    assert funders["north-kazakhstan"].requests_waiting == 0  # zero is not a small count


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as page:
        yield page


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER, Role.FUNDER])
def test_each_role_sees_the_map_and_the_table_without_coordinates(
    browser: TestClient, world: World, country: dict[str, Region], role: Role
) -> None:
    log_in(browser, world.user(role))
    page = browser.get("/ui/national")
    assert page.status_code == 200
    assert "No free place for an unaccompanied minor in" in page.text
    picture = browser.get("/ui/national.svg")
    assert picture.status_code == 200
    assert picture.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(picture.content)  # noqa: S314 - the service under test wrote it
    tiles = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("rx") == "6"]
    assert len(tiles) == world.db.query(Region).count()
    hatched = [t for t in tiles if t.get("fill") == "url(#none)"]
    assert len(hatched) == len(tiles) - 1  # only the north has a place for a lone minor
    for text in (page.text, picture.text):
        assert "54.2" not in text
        assert "69.4" not in text


def test_anonymous_browsers_are_sent_to_the_login(browser: TestClient) -> None:
    for path in ("/ui/national", "/ui/national.svg"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login")


def _age_units(world: World, region_code: str, count: int | None = None) -> None:
    """Give the region's open shelter a second unit, then make ``count`` (default all) of the
    region's units stale: confirmed three days ago."""
    db = world.db
    shelter = (
        db.query(Shelter).filter_by(region_code=region_code, status="open").order_by(Shelter.id)
    ).first()
    assert shelter is not None
    world.unit(shelter, capacity=2, admits=WOMEN_AND_CHILDREN)
    units = (
        db.query(Unit).join(Shelter).filter(Shelter.region_code == region_code).order_by(Unit.id)
    ).all()
    for unit in units[:count]:
        unit.confirmed_at = utcnow() - timedelta(days=3)
    db.flush()


def test_stale_units_are_counted_per_region_for_open_shelters_only(
    world: World, db: Session, country: dict[str, Region]
) -> None:
    _age_units(world, "turkistan")  # both units of the open shelter and the closed one's
    for aggregate_only in (False, True):  # units are no one's data: funders see them too
        regions = {
            p.code: p
            for p in national.picture(db, aggregate_only=aggregate_only, k=11, stale_after_hours=24)
        }
        assert (regions["turkistan"].stale_units, regions["turkistan"].units) == (2, 2)
        assert (regions["north-kazakhstan"].stale_units, regions["north-kazakhstan"].units) == (
            0,
            1,
        )
    later = {
        p.code: p for p in national.picture(db, aggregate_only=False, k=11, stale_after_hours=100)
    }
    assert later["turkistan"].stale_units == 0  # three days is fresh for a 100-hour threshold


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FUNDER])
def test_the_page_and_the_tiles_say_how_many_units_are_not_confirmed(
    browser: TestClient, world: World, db: Session, country: dict[str, Region], role: Role
) -> None:
    _age_units(world, "turkistan", 1)
    log_in(browser, world.user(role))
    page = browser.get("/ui/national").text
    assert "Units not confirmed within 24 hours" in page
    row = page.split('<th scope="row">')[1:]
    south = next(r for r in row if r.startswith(country["south"].name))
    assert 'class="stale">1 of 2</td>' in south
    north = next(r for r in row if r.startswith(country["north"].name))
    assert "<td>0 of 1</td>" in north
    picture = browser.get("/ui/national.svg").text
    assert "not confirmed: 1" in picture
    assert "within 24 hours" in picture
    ru = browser.get("/ui/national", headers={"Accept-Language": "ru"}).text
    assert "1 из 2" in ru
