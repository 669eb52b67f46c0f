"""``If-Match`` read as RFC 9110 §13.1.1 says: strong comparison, list syntax, ``*``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelters.identity import Role
from tests.conftest import World
from tests.service.test_problems import assert_problem


@pytest.fixture
def unit_url(world: World) -> tuple[str, dict[str, str], str]:
    """A unit's URL, its coordinator's headers and its current ETag."""
    shelter = world.shelter()
    unit = world.unit(shelter, admits=[])
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    return f"/api/v1/units/{unit.id}", headers, f'"unit-{unit.id}-v{unit.version}"'


def patch(client: TestClient, unit: tuple[str, dict[str, str], str], if_match: str) -> Any:
    url, headers, _ = unit
    return client.patch(url, json={"capacity": 5}, headers=headers | {"If-Match": if_match})


def test_the_current_strong_tag_matches(
    client: TestClient, unit_url: tuple[str, dict[str, str], str]
) -> None:
    _, _, tag = unit_url
    response = patch(client, unit_url, tag)
    assert response.status_code == 200, response.text
    assert response.json()["capacity"] == 5


@pytest.mark.parametrize(
    "template",
    ['"other", {tag}', '{tag}, "unit-1-v99"', " , {tag} ,", "W/{tag}, {tag}", '"a,b", {tag}'],
)
def test_a_list_of_tags_matches_when_one_strong_tag_is_current(
    client: TestClient, unit_url: tuple[str, dict[str, str], str], template: str
) -> None:
    response = patch(client, unit_url, template.format(tag=unit_url[2]))
    assert response.status_code == 200, response.text


def test_a_weak_tag_never_matches_and_says_why(
    client: TestClient, unit_url: tuple[str, dict[str, str], str]
) -> None:
    body = assert_problem(patch(client, unit_url, "W/" + unit_url[2]), 412)
    assert "weak" in body["detail"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "value", ["unit-1-v2", '"unit-1-v2', 'w/"unit-1-v2"', '"a" "b"', '*, "unit-1-v2"', '"a"b']
)
def test_a_malformed_if_match_is_a_400_that_says_what_is_wrong(
    client: TestClient, unit_url: tuple[str, dict[str, str], str], value: str
) -> None:
    body = assert_problem(patch(client, unit_url, value), 400)
    assert body["type"] == "urn:refuge:problem:malformed-header"
    assert "If-Match" in body["detail"]  # type: ignore[operator]


def test_an_unquoted_current_tag_is_malformed_not_stale(
    client: TestClient, unit_url: tuple[str, dict[str, str], str]
) -> None:
    assert_problem(patch(client, unit_url, unit_url[2].strip('"')), 400)


def test_a_wildcard_is_refused_because_it_checks_nothing(
    client: TestClient, unit_url: tuple[str, dict[str, str], str]
) -> None:
    body = assert_problem(patch(client, unit_url, "*"), 428)
    assert "*" in body["detail"]  # type: ignore[operator]


@pytest.mark.parametrize("value", ["", "  ", ",", " , "])
def test_an_empty_if_match_is_a_missing_one(
    client: TestClient, unit_url: tuple[str, dict[str, str], str], value: str
) -> None:
    assert_problem(patch(client, unit_url, value), 428)


def test_a_well_formed_tag_of_another_version_is_stale(
    client: TestClient, unit_url: tuple[str, dict[str, str], str]
) -> None:
    url = unit_url[0]
    body = assert_problem(patch(client, unit_url, f'"unit-{url.rsplit("/", 1)[1]}-v9"'), 412)
    assert body["type"] == "urn:refuge:problem:stale-version"
