"""The two attacks that broke disclosure control, replayed through the HTTP API as a funder.

1. Tables of the same month by shelter and by organisation: a suppressed shelter was its
   organisation's total minus the organisation's other, published shelters.
2. Overlapping windows: a suppressed day (or month) was one window minus another. Funders now
   get only publication periods, and a quarter never gives away a month hidden in its months.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelters.identity import Role
from shelters.models import Shelter
from tests.conftest import World
from tests.shelters.test_reports import History

ALLOCATION = "/api/v1/reports/allocation"


def propose(history: History, shelter: Shelter, month: int, count: int) -> None:
    for i in range(count):
        when = datetime(2026, month, 1 + i % 27, 12, tzinfo=UTC)
        request = history.request(when, people_adult=1, people_female=1)
        history.placement(request, shelter, "proposed", 1, proposed_at=when)


def cells(body: dict[str, Any], name: str) -> dict[str, int | None]:
    return {row["key"]: row[name] for row in body["rows"]}


@pytest.fixture
def funder(world: World) -> dict[str, str]:
    return world.headers(Role.FUNDER)


def test_a_hidden_shelter_is_not_its_organisation_minus_its_other_shelters(
    client: TestClient, world: World, funder: dict[str, str]
) -> None:
    history = History(world)
    ours, theirs = world.organization(), world.organization()
    big, empty, small = (world.shelter(org=ours) for _ in range(3))
    other = world.shelter(org=theirs)
    propose(history, big, 3, 13)
    propose(history, small, 3, 8)
    propose(history, other, 3, 11)
    month = {"from": "2026-03-01", "to": "2026-03-31"}

    by_shelter = client.get(ALLOCATION, params=month, headers=funder).json()
    by_org = client.get(ALLOCATION, params=month | {"group_by": "organization"}, headers=funder)
    shelters = cells(by_shelter, "placements_proposed")
    organisations = cells(by_org.json(), "placements_proposed")

    assert shelters[str(small.id)] is None  # 8 < 11
    # Before: big=13, empty=0 and the organisation's 21 were published, so small = 8.
    known = [shelters[str(big.id)], shelters[str(empty.id)], organisations[str(ours.id)]]
    assert None in known
    # Every table shows the same value, or null, for the same cell: the totals row agrees.
    assert by_shelter["totals"] == by_org.json()["totals"]
    assert by_shelter["disclosure"]["method"] == "linked-tables"


def test_overlapping_windows_are_refused_and_a_quarter_does_not_give_away_a_month(
    client: TestClient, world: World, funder: dict[str, str]
) -> None:
    history = History(world)
    shelter = world.shelter()
    for month, count in ((1, 12), (2, 12), (3, 5)):
        propose(history, shelter, month, count)

    for window in (("2026-02-28", "2026-03-01"), ("2026-03-01", "2026-03-01")):
        refused = client.get(
            ALLOCATION, params={"from": window[0], "to": window[1]}, headers=funder
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:refuge:problem:period-not-published"
        assert "calendar month, quarter or year" in problem["detail"]

    def proposed(first: str, last: str) -> int | None:
        body = client.get(ALLOCATION, params={"from": first, "to": last}, headers=funder).json()
        value: int | None = cells(body, "placements_proposed")[str(shelter.id)]
        return value

    january = proposed("2026-01-01", "2026-01-31")
    february = proposed("2026-02-01", "2026-02-28")
    march = proposed("2026-03-01", "2026-03-31")
    quarter = proposed("2026-01-01", "2026-03-31")
    assert march is None
    # Before: 12 + 12 + 29 were published, so March = 29 - 12 - 12 = 5.
    assert None in (january, february, quarter)


def test_a_period_that_has_not_ended_is_refused_to_funders_but_not_to_admins(
    client: TestClient, world: World, funder: dict[str, str]
) -> None:
    future = {"from": "2099-01-01", "to": "2099-01-31"}
    refused = client.get(ALLOCATION, params=future, headers=funder)
    assert refused.status_code == 422
    assert "has not been published yet" in refused.json()["detail"]
    window = {"from": "2026-03-02", "to": "2026-03-09"}
    for path in (ALLOCATION, "/api/v1/reports/grants", "/api/v1/reports/unmet-demand"):
        assert client.get(path, params=window, headers=funder).status_code == 422
        admin = client.get(path, params=window, headers=world.headers(Role.ADMIN))
        assert admin.status_code == 200
        assert admin.json()["disclosure"]["period"] == "2026-03-02..2026-03-09"
        assert admin.json()["disclosure"]["method"] in ("single-table", "none")


def test_every_format_says_how_it_was_protected(
    client: TestClient, world: World, funder: dict[str, str]
) -> None:
    history = History(world)
    propose(history, world.shelter(), 3, 4)
    month = {"from": "2026-03-01", "to": "2026-03-31"}
    body = client.get(ALLOCATION, params=month, headers=funder).json()
    assert body["disclosure"]["year"] == 2026
    assert body["disclosure"]["tables"] == ["shelter", "organization", "region", "total"]
    text = client.get(ALLOCATION, params=month, headers=funder | {"Accept": "text/csv"}).text
    assert text.splitlines()[-1].startswith('"# disclosure: linked-tables, period 2026-03.')
    svg = client.get(ALLOCATION + ".svg", params=month, headers=funder).content
    assert b"linked-tables" in svg
    unmet = client.get("/api/v1/reports/unmet-demand", params=month, headers=funder).json()
    assert unmet["disclosure"]["method"] == "linked-tables"
