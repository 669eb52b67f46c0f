"""The what-if page: the form queues a scenario, its page shows the answer, others are kept out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.settings import Settings
from shelters.identity import Role
from tests.conftest import World, make_settings
from tests.service.lifecycle_helpers import ADULT_WOMEN, ONE_WOMAN, request_for
from tests.ui.test_pages import log_in

TODAY = datetime.now(UTC).date().isoformat()
GIRL = [{"ref": "A", "sex": "female", "age": 15}]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, suppression_k=3)


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def history(client: TestClient, world: World) -> dict[str, Any]:
    shelter = world.shelter()
    world.unit(shelter, capacity=3, admits=[ADULT_WOMEN])
    caseworker = world.headers(Role.CASEWORKER)
    admin = world.headers(Role.ADMIN)
    for members in (ONE_WOMAN, ONE_WOMAN, ONE_WOMAN, GIRL, GIRL, GIRL):
        request_for(client, caseworker, members)
    response = client.post("/api/v1/matching-runs", json={"time_limit_s": 3}, headers=admin)
    assert response.status_code == 202
    return {"shelter": shelter}


def test_an_admin_asks_for_more_girls_beds_and_reads_the_answer(
    browser: TestClient, world: World, history: dict[str, Any]
) -> None:
    admin = world.user(Role.ADMIN)
    csrf = log_in(browser, admin)
    page = browser.get("/ui/scenarios")
    assert page.status_code == 200
    assert 'href="/ui/scenarios"' in page.text  # the nav link
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0] or csrf
    response = browser.post(
        "/ui/scenarios",
        data={
            "csrf_token": csrf,
            "from": TODAY,
            "to": TODAY,
            "kind": "what_if",
            "region_1": "astana",
            "unit_type_1": "unaccompanied_girls",
            "beds_1": "3",
        },
    )
    assert response.status_code == 303, response.text
    answer = browser.get(response.headers["location"])
    assert answer.status_code == 200
    assert 'http-equiv="refresh"' not in answer.text  # done: no more refreshing
    assert "Unaccompanied minors" in answer.text
    assert "3 beds: Unaccompanied girls in Astana" in answer.text
    listed = browser.get("/ui/scenarios").text
    assert "1 of 1 runs" in listed


def test_a_bad_form_says_what_is_wrong(
    browser: TestClient, world: World, history: dict[str, Any]
) -> None:
    admin = world.user(Role.ADMIN)
    log_in(browser, admin)
    page = browser.get("/ui/scenarios")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = browser.post(
        "/ui/scenarios",
        data={
            "csrf_token": csrf,
            "from": "2020-01-01",
            "to": "2020-01-31",
            "kind": "what_if",
            "region_1": "astana",
            "unit_type_1": "women",
            "beds_1": "2",
        },
    )
    assert response.status_code == 422
    assert "no matching runs finished from 2020-01-01 to 2020-01-31" in response.text


def test_caseworkers_and_other_funders_are_kept_out(
    browser: TestClient, world: World, history: dict[str, Any]
) -> None:
    caseworker = world.user(Role.CASEWORKER)
    log_in(browser, caseworker)
    assert browser.get("/ui/scenarios").status_code in (403, 404)
