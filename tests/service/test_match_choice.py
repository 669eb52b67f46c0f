"""A single match may ask for one shelter the caseworker chose (issue 20)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from shelters.identity import Role
from tests.conftest import World
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, request_for


def _match(client: TestClient, headers: dict[str, str], request_id: int, **body: object) -> Any:
    return client.post(
        f"/api/v1/placement-requests/{request_id}/match", json=body or None, headers=headers
    )


def test_a_chosen_shelter_is_where_the_beds_are_held(client: TestClient, world: World) -> None:
    # Two shelters fit; the first one (lower id) is what the solver picks by itself.
    near = world.shelter()
    world.unit(near, capacity=4, admits=WOMEN_AND_CHILDREN)
    far = world.shelter()
    far_unit = world.unit(far, capacity=4, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    request_id = request_for(client, caseworker, MOTHER_AND_CHILD)
    answer = _match(client, caseworker, request_id, shelter_id=far.id)
    assert answer.status_code == 200, answer.text
    placement = answer.json()["placement"]
    assert placement["shelter_id"] == far.id
    assert {b["unit_id"] for b in placement["beds"]} == {far_unit.id}


def test_a_chosen_shelter_that_cannot_take_the_group_holds_nothing_and_says_why(
    client: TestClient, world: World
) -> None:
    fits = world.shelter()
    world.unit(fits, capacity=4, admits=WOMEN_AND_CHILDREN)
    too_small = world.shelter()
    world.unit(too_small, capacity=1, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    request_id = request_for(client, caseworker, MOTHER_AND_CHILD)
    answer = _match(client, caseworker, request_id, shelter_id=too_small.id)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["placed"] is False
    assert body["reasons"]
    assert all(r["shelter_ids"] == [too_small.id] for r in body["reasons"])
    request = client.get(f"/api/v1/placement-requests/{request_id}", headers=caseworker).json()
    assert request["status"] == "pending"


def test_a_shelter_that_is_not_open_is_refused(client: TestClient, world: World) -> None:
    closed = world.shelter(status="closed")
    world.unit(closed, capacity=4, admits=WOMEN_AND_CHILDREN)
    caseworker = world.headers(Role.CASEWORKER)
    request_id = request_for(client, caseworker, MOTHER_AND_CHILD)
    answer = _match(client, caseworker, request_id, shelter_id=closed.id)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_another_organisations_request_stays_out_of_reach_with_a_shelter_chosen(
    client: TestClient, world: World
) -> None:
    shelter = world.shelter()
    world.unit(shelter, capacity=4, admits=WOMEN_AND_CHILDREN)
    theirs = request_for(client, world.headers(Role.CASEWORKER), MOTHER_AND_CHILD)
    mine = world.headers(Role.CASEWORKER)
    assert _match(client, mine, theirs, shelter_id=shelter.id).status_code == 404
