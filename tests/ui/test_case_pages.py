"""The caseworker's pages: a case form for any number of people, and where each request stands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelters import cases, identity, lifecycle
from shelters.cases import create_case
from shelters.identity import Role
from shelters.models import Case, PlacementRequest, utcnow
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import World
from tests.ui.test_pages import held_bed, log_in, shelter_with_unit


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


# A mother with five children: more than the four rows an empty form starts with.
FAMILY = [("female", "34", "")] + [
    (sex, age, "A")
    for sex, age in (("female", "12"), ("male", "9"), ("male", "7"), ("female", "4"), ("male", "1"))
]


def _rows(page: str) -> int:
    return len(re.findall(r'name="member-\d+-age"', page))


def _family_form(token: str, family: list[tuple[str, str, str]] = FAMILY) -> dict[str, object]:
    data: dict[str, object] = {"csrf_token": token, "member_count": str(len(family))}
    for i, (sex, age, guardian) in enumerate(family):
        data |= {f"member-{i}-sex": sex, f"member-{i}-age": age, f"member-{i}-guardian": guardian}
    return data


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_the_form_grows_a_row_at_a_time_keeping_what_was_typed(
    browser: TestClient, world: World
) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    empty = browser.get("/ui/cases/new")
    assert empty.status_code == 200
    assert _rows(empty.text) == 4
    data = _family_form(token, FAMILY[:4]) | {"languages": "kk", "add_member": "1"}
    grown = browser.post("/ui/cases/new", data=data)
    assert grown.status_code == 200
    assert _rows(grown.text) == 5
    assert 'name="member-3-age" type="number" min="0" max="120" inputmode="numeric" value="7"' in (
        grown.text
    )
    assert 'name="languages" value="kk"' in grown.text
    grown = browser.post(
        "/ui/cases/new", data=_family_form(token, FAMILY[:5]) | {"add_member": "1"}
    )
    assert _rows(grown.text) == 6
    assert 'id="member-5-age"' in grown.text


def test_a_six_person_case_is_created_with_every_field_and_its_request(
    browser: TestClient, world: World, db: Session
) -> None:
    world.region("almaty", 43.2, 76.9)
    world.region("astana")
    user = world.user(Role.CASEWORKER)
    token = log_in(browser, user)
    mine = create_case(
        db,
        identity.principal_of(user),
        CaseProfile(members=(MemberProfile(ref="A", sex="male", age=40),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    data = _family_form(token) | {
        "required_services": ["mother_and_baby_care"],
        "desired_services": ["child_psychologist", "education"],
        "excluded_regions": ["almaty"],
        "current_region": "astana",
        "languages": "kk, ru",
        "separate_from": [str(mine.id)],
        "request_bed": "on",
        "priority": "5",
        "preferred_regions": ["astana"],
    }
    created = browser.post("/ui/cases", data=data)
    assert created.status_code == 303, created.text
    case_id = int(created.headers["location"].rsplit("#case-", 1)[1])
    case = db.get(Case, case_id)
    assert case is not None
    profile = cases.profile_of(case)
    assert [(m.sex, m.age, m.guardian_ref) for m in profile.members] == [
        (sex, int(age), guardian or None) for sex, age, guardian in FAMILY
    ]
    assert profile.desired_services == ("child_psychologist", "education")
    assert profile.required_services == ("mother_and_baby_care",)
    assert profile.excluded_regions == ("almaty",)
    assert profile.languages == ("kk", "ru")
    assert cases.kept_apart(db, [case_id])[case_id] == {mine.id}
    (placement_request,) = db.scalars(
        select(PlacementRequest).where(PlacementRequest.case_id == case_id)
    )
    assert placement_request.priority == 5
    page = browser.get(created.headers["location"]).text
    assert "Case created and a bed requested" in page
    assert "Waiting for a match" in page


@pytest.mark.parametrize(
    ("change", "beside", "words"),
    [
        ({"member-4-guardian": "B"}, "member-E", "member E: the guardian must be an adult member"),
        ({"member-2-age": "130"}, "member-C", "member C: age must be 0-120"),
        ({"languages": "kazakh"}, "languages", "languages are two-letter ISO 639-1 codes"),
        ({"request_bed": "on", "priority": "9"}, "priority", "priority must be a whole number"),
    ],
)
def test_a_refused_form_says_why_beside_the_field_keeps_every_value_and_writes_nothing(
    browser: TestClient,
    world: World,
    db: Session,
    change: dict[str, str],
    beside: str,
    words: str,
) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    before = (_count(db, Case), _count(db, PlacementRequest))
    data = _family_form(token) | {"desired_services": ["education"]} | change
    refused = browser.post("/ui/cases", data=data)
    assert refused.status_code == 422
    assert re.search(
        rf'<p class="field-error" id="{beside}-error">[^<]*{re.escape(words)}', refused.text
    )
    assert _rows(refused.text) == 6
    assert (
        'name="member-5-age" type="number" min="0" max="120" inputmode="numeric" value="1"'
        in refused.text
    )
    assert 'name="desired_services" value="education" checked' in refused.text
    assert (_count(db, Case), _count(db, PlacementRequest)) == before


def test_a_case_is_kept_apart_only_from_my_own_cases_chosen_by_code(
    browser: TestClient, world: World, db: Session
) -> None:
    other = identity.principal_of(world.user(Role.CASEWORKER))
    theirs = create_case(
        db,
        other,
        CaseProfile(members=(MemberProfile(ref="A", sex="male", age=40),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    token = log_in(browser, world.user(Role.CASEWORKER))
    form = browser.get("/ui/cases/new").text
    assert theirs.code not in form
    assert f'name="separate_from" value="{theirs.id}"' not in form
    before = _count(db, Case)
    refused = browser.post(
        "/ui/cases", data=_family_form(token) | {"separate_from": [str(theirs.id)]}
    )
    assert refused.status_code == 422
    assert "must be one of your organisation" in refused.text
    assert _count(db, Case) == before


def test_only_a_caseworker_opens_the_new_case_form(browser: TestClient, world: World) -> None:
    token = log_in(browser, world.user(Role.COORDINATOR))
    assert browser.get("/ui/cases/new").status_code == 403
    assert browser.post("/ui/cases/new", data={"csrf_token": token}).status_code == 403


def test_the_first_screen_says_where_each_request_stands_most_urgent_first(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    caseworker = identity.principal_of(held.caseworker)
    waiting = create_case(
        db,
        caseworker,
        CaseProfile(members=(MemberProfile(ref="A", sex="female", age=16),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    lifecycle.create_request(
        db, caseworker, case_id=waiting.id, priority=5, preferred_regions=[], majority_age=18
    )
    quiet = create_case(
        db,
        caseworker,
        CaseProfile(members=(MemberProfile(ref="A", sex="female", age=50),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    log_in(browser, held.caseworker)
    page = browser.get("/ui/caseworker").text
    assert 'href="/ui/cases/new"' in page.split('id="case-', 1)[0]  # before the list
    order = [int(i) for i in re.findall(r'<article class="card case" id="case-(\d+)"', page)]
    assert order == [waiting.id, held.case.id, quiet.id]
    assert f"Proposed at {held.shelter.name}, beds held until" in page
    assert "Waiting for a match" in page
    assert "No bed requested yet" in page
    lifecycle.transition(db, held.coordinator, held.placement.id, "decline", reason="staffing")
    page = browser.get("/ui/caseworker").text
    assert f"Not placed: {held.shelter.name} declined; waiting for another match" in page


def test_find_bed_takes_any_number_of_people_too(browser: TestClient, world: World) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    data = _family_form(token, FAMILY[:4]) | {"add_member": "1"}
    grown = browser.post("/ui/find-bed", data=data)
    assert grown.status_code == 200
    assert _rows(grown.text) == 5
    assert 'formaction="/ui/find-bed"' in grown.text
    refused = browser.post("/ui/find-bed", data=_family_form(token) | {"member-1-age": "x"})
    assert refused.status_code == 422
    assert '<p class="field-error" id="member-B-error">' in refused.text
    assert _rows(refused.text) == 6


def test_a_refusal_beside_its_field_is_in_the_pages_language(
    browser: TestClient, world: World, db: Session
) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    browser.headers["Accept-Language"] = "ru-RU"
    refused = browser.post("/ui/cases", data=_family_form(token) | {"member-4-guardian": "B"})
    assert refused.status_code == 422
    assert (
        '<p class="field-error" id="member-E-error">'
        "член группы E: опекун должен быть взрослым членом группы</p>"
    ) in refused.text
    assert "Добавить ещё одного человека" in refused.text


def test_another_organisations_requests_are_neither_shown_nor_matched_from_my_pages(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)  # a case and request of another organisation
    token = log_in(browser, world.user(Role.CASEWORKER))
    page = browser.get("/ui/caseworker").text
    assert held.case.code not in page
    assert held.shelter.name not in page
    assert held.case.code not in browser.get("/ui/cases/new").text
    matched = browser.post(f"/ui/requests/{held.request.id}/match", data={"csrf_token": token})
    assert matched.status_code == 404
    assert db.get(PlacementRequest, held.request.id).status == "proposed"


def _next_month() -> str:
    today = utcnow().date()
    index = today.year * 12 + today.month
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def test_a_minors_coming_of_age_month_is_entered_kept_and_refused_for_an_adult(
    browser: TestClient, world: World, db: Session
) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    family = [("female", "40", ""), ("female", "17", "A")]
    month = _next_month()
    refused = browser.post(
        "/ui/cases", data=_family_form(token, family) | {"member-0-comes_of_age": month}
    )
    assert refused.status_code == 422
    assert "member A: only a minor comes of age" in refused.text
    assert f'name="member-0-comes_of_age" type="month" value="{month}"' in refused.text
    created = browser.post(
        "/ui/cases", data=_family_form(token, family) | {"member-1-comes_of_age": month}
    )
    assert created.status_code == 303, created.text
    case = db.get(Case, int(created.headers["location"].rsplit("#case-", 1)[1]))
    assert case is not None
    assert [m.comes_of_age for m in cases.profile_of(case).members] == [None, month]
    assert f"comes of age {month}" in browser.get(created.headers["location"]).text


def test_the_coordinator_sees_which_placed_minor_comes_of_age_and_which_may(
    browser: TestClient, world: World, db: Session
) -> None:
    shelter, unit = shelter_with_unit(world)
    coordinator_user = world.user(Role.COORDINATOR, shelters=[shelter])
    coordinator = identity.principal_of(coordinator_user)
    caseworker = identity.principal_of(world.user(Role.CASEWORKER))
    for teen in (
        MemberProfile(ref="B", sex="female", age=17, guardian_ref="A", comes_of_age=_next_month()),
        MemberProfile(ref="B", sex="male", age=17, guardian_ref="A"),
    ):
        members = (MemberProfile(ref="A", sex="female", age=38), teen)
        case = create_case(
            db, caseworker, CaseProfile(members=members), separate_from_case_ids=[], majority_age=18
        )
        request = lifecycle.create_request(
            db, caseworker, case_id=case.id, priority=None, preferred_regions=[], majority_age=18
        )
        placement = lifecycle.hold_beds(
            db,
            request,
            shelter_id=shelter.id,
            beds={"A": unit.id, "B": unit.id},
            ttl=timedelta(hours=1),
            actor_id=caseworker.user_id,
        )
        for action in ("accept", "admit"):
            lifecycle.transition(db, coordinator, placement.id, action)
    log_in(browser, coordinator_user)
    page = browser.get("/ui/coordinator").text
    assert page.count("comes of age in ") == 1
    assert page.count("may come of age during the stay") == 1


def test_the_case_form_records_exploitation_and_referral_codes_and_find_bed_does_not_ask(
    browser: TestClient, world: World, db: Session
) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    form = browser.get("/ui/cases/new").text
    assert 'name="exploitation_types" value="forced_marriage"' in form
    assert '<option value="hotline">' in form
    assert 'name="exploitation_types"' not in browser.get("/ui/find-bed").text
    data = _family_form(token, [("female", "30", "")]) | {
        "exploitation_types": ["labour", "begging"],
        "referral_source": "police",
    }
    created = browser.post("/ui/cases", data=data)
    assert created.status_code == 303, created.text
    case = db.get(Case, int(created.headers["location"].rsplit("#case-", 1)[1]))
    assert case is not None
    assert (case.exploitation_types, case.referral_source) == (["begging", "labour"], "police")
    refused = browser.post("/ui/cases", data=data | {"referral_source": "rumour"})
    assert refused.status_code == 422
    assert "referral_source must be one of" in refused.text
