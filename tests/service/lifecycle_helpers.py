"""Small API helpers for lifecycle tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

ADULT_WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
CHILDREN_WITH_GUARDIAN = {
    "sexes": ["female", "male", "other"],
    "min_age": 0,
    "max_age": 17,
    "statuses": ["accompanied_child"],
}
WOMEN_AND_CHILDREN = [ADULT_WOMEN, CHILDREN_WITH_GUARDIAN]
ONE_WOMAN = [{"ref": "A", "sex": "female", "age": 29}]
MOTHER_AND_CHILD = [
    {"ref": "A", "sex": "female", "age": 30},
    {"ref": "B", "sex": "male", "age": 5, "guardian_ref": "A"},
]


def create_case(
    client: TestClient,
    headers: dict[str, str],
    members: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/cases", json={"members": members or ONE_WOMAN} | extra, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def create_request(
    client: TestClient, headers: dict[str, str], case_id: int, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/placement-requests", json={"case_id": case_id} | extra, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def request_for(
    client: TestClient,
    headers: dict[str, str],
    members: list[dict[str, Any]] | None = None,
    **case: Any,
) -> int:
    case_body = create_case(client, headers, members, **case)
    return int(create_request(client, headers, case_body["id"])["id"])


def match(client: TestClient, headers: dict[str, str], request_id: int) -> dict[str, Any]:
    response = client.post(f"/api/v1/placement-requests/{request_id}/match", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
