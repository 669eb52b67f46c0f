"""'Find a bed' for a case: free beds, distance in km (never coordinates), a chosen shelter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shelters import identity, lifecycle
from shelters.cases import create_case
from shelters.identity import Role
from shelters.models import Case, PlacementRequest, Shelter, User
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import World
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN
from tests.ui.test_pages import log_in


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@dataclass(frozen=True)
class Waiting:
    caseworker: User
    case: Case
    request: PlacementRequest
    near: Shelter
    far: Shelter


def waiting_case(world: World, db: Session) -> Waiting:
    """A mother and child in Astana with a pending request; shelters in Astana and Almaty."""
    world.region("astana", 51.17, 71.45)
    world.region("almaty", 43.24, 76.89)
    near = world.shelter(lat=51.123456, lon=71.654321)
    world.unit(near, capacity=5, admits=WOMEN_AND_CHILDREN)
    far = world.shelter(region_code="almaty", lat=43.345678, lon=76.987654)
    world.unit(far, capacity=3, admits=WOMEN_AND_CHILDREN)
    user = world.user(Role.CASEWORKER)
    caseworker = identity.principal_of(user)
    profile = CaseProfile(
        members=(
            MemberProfile(ref="A", sex="female", age=30),
            MemberProfile(ref="B", sex="male", age=6, guardian_ref="A"),
        ),
        current_region="astana",
    )
    case = create_case(db, caseworker, profile, separate_from_case_ids=[], majority_age=18)
    request = lifecycle.create_request(
        db, caseworker, case_id=case.id, priority=None, preferred_regions=[], majority_age=18
    )
    return Waiting(user, case, request, near, far)


def _card(page: str, name: str) -> str:
    start = page.index(f'aria-label="{name}"')
    return page[start : page.index("</article>", start)]


def test_find_a_bed_shows_free_beds_and_km_nearest_first_and_no_coordinates(
    browser: TestClient, world: World, db: Session
) -> None:
    w = waiting_case(world, db)
    token = log_in(browser, w.caseworker)
    page = browser.post(f"/ui/cases/{w.case.id}/check", data={"csrf_token": token})
    assert page.status_code == 200, page.text
    text = page.text
    assert text.index(w.near.name) < text.index(w.far.name)
    assert "5 free beds" in _card(text, w.near.name)
    assert "3 free beds" in _card(text, w.far.name)
    # Almaty's shelter is measured to its region's centroid: about 972 km from Astana's.
    assert "about 972 km away" in _card(text, w.far.name)
    for secret in ("51.123456", "71.654321", "43.345678", "76.987654", "Confidential"):
        assert secret not in text
    assert f'name="shelter_id" value="{w.far.id}"' in _card(text, w.far.name)


def test_asking_for_a_chosen_shelter_holds_the_beds_there(
    browser: TestClient, world: World, db: Session
) -> None:
    w = waiting_case(world, db)
    token = log_in(browser, w.caseworker)
    answer = browser.post(
        f"/ui/requests/{w.request.id}/match", data={"csrf_token": token, "shelter_id": w.far.id}
    )
    assert answer.status_code == 200, answer.text
    assert f"Beds held at {w.far.name}" in answer.text
    assert "You asked for this shelter." in answer.text
    principal = identity.principal_of(w.caseworker)
    db.expire_all()
    assert lifecycle.get_request(db, principal, w.request.id).status == "proposed"


def test_a_shelter_choice_that_is_not_a_number_is_refused_and_holds_nothing(
    browser: TestClient, world: World, db: Session
) -> None:
    w = waiting_case(world, db)
    token = log_in(browser, w.caseworker)
    answer = browser.post(
        f"/ui/requests/{w.request.id}/match", data={"csrf_token": token, "shelter_id": "x"}
    )
    assert answer.status_code == 422
    principal = identity.principal_of(w.caseworker)
    db.expire_all()
    assert lifecycle.get_request(db, principal, w.request.id).status == "pending"


def test_another_organisations_request_cannot_be_matched_to_a_chosen_shelter(
    browser: TestClient, world: World, db: Session
) -> None:
    w = waiting_case(world, db)
    token = log_in(browser, world.user(Role.CASEWORKER))
    answer = browser.post(
        f"/ui/requests/{w.request.id}/match", data={"csrf_token": token, "shelter_id": w.far.id}
    )
    assert answer.status_code == 404
    assert (
        browser.post(f"/ui/cases/{w.case.id}/check", data={"csrf_token": token}).status_code == 404
    )
    principal = identity.principal_of(w.caseworker)
    db.expire_all()
    assert lifecycle.get_request(db, principal, w.request.id).status == "pending"
