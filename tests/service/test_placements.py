"""Matching one request and the placement lifecycle, with each actor allowed and refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.integrity import overbooked_units
from shelters.models import Placement, Shelter, Unit, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import (
    MOTHER_AND_CHILD,
    WOMEN_AND_CHILDREN,
    create_request,
    match,
    request_for,
)


@dataclass
class Network:
    shelter: Shelter
    unit: Unit
    coordinator: dict[str, str]
    caseworker: dict[str, str]
    other_caseworker: dict[str, str]
    other_coordinator: dict[str, str]
    funder: dict[str, str]
    admin: dict[str, str]


@pytest.fixture
def net(world: World) -> Network:
    shelter = world.shelter(address="Confidential test address", security_level="high")
    unit = world.unit(shelter, capacity=3, admits=WOMEN_AND_CHILDREN)
    elsewhere = world.shelter(status="closed")
    return Network(
        shelter=shelter,
        unit=unit,
        coordinator=world.headers(Role.COORDINATOR, shelters=[shelter]),
        caseworker=world.headers(Role.CASEWORKER),
        other_caseworker=world.headers(Role.CASEWORKER),
        other_coordinator=world.headers(Role.COORDINATOR, shelters=[elsewhere]),
        funder=world.headers(Role.FUNDER),
        admin=world.headers(Role.ADMIN),
    )


def unit_counts(client: TestClient, net: Network) -> tuple[int, int, int]:
    unit = client.get(f"/api/v1/units/{net.unit.id}", headers=net.coordinator).json()
    return unit["held"], unit["occupied"], unit["available"]


def proposed(
    client: TestClient, net: Network, members: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    request_id = request_for(client, net.caseworker, members)
    result = match(client, net.caseworker, request_id)
    assert result["placed"] is True, result
    return result["placement"]  # type: ignore[no-any-return]


def act(
    client: TestClient, headers: dict[str, str], placement_id: int, action: str, **body: Any
) -> Any:
    return client.post(
        f"/api/v1/placements/{placement_id}/{action}", json=body or None, headers=headers
    )


def test_match_holds_beds_and_proposes(
    client: TestClient, net: Network, connection: Connection
) -> None:
    placement = proposed(client, net, MOTHER_AND_CHILD)
    assert placement["status"] == "proposed"
    assert placement["shelter_id"] == net.shelter.id
    assert {b["unit_id"] for b in placement["beds"]} == {net.unit.id}
    assert unit_counts(client, net) == (2, 0, 1)
    request = client.get(
        f"/api/v1/placement-requests/{placement['request_id']}", headers=net.caseworker
    ).json()
    assert request["status"] == "proposed"
    again = client.post(
        f"/api/v1/placement-requests/{placement['request_id']}/match", headers=net.caseworker
    )
    assert again.status_code == 409
    assert overbooked_units(connection) == []


def test_match_explains_why_nothing_fits(client: TestClient, net: Network) -> None:
    girl_alone = [{"ref": "A", "sex": "female", "age": 15}]
    request_id = request_for(client, net.caseworker, girl_alone)
    result = match(client, net.caseworker, request_id)
    assert result == {
        "placed": False,
        "placement": None,
        "reasons": [
            {"code": "member_not_admitted:A", "shelter_ids": [net.shelter.id], "request_ids": []}
        ],
        "stale_unit_ids": [],
    }


def test_full_lifecycle_moves_beds_and_returns_requests(client: TestClient, net: Network) -> None:
    placement = proposed(client, net)
    pid = placement["id"]
    accepted = act(client, net.coordinator, pid, "accept")
    assert accepted.json()["status"] == "accepted"
    assert unit_counts(client, net) == (1, 0, 2)
    admitted = act(client, net.coordinator, pid, "admit")
    assert admitted.json()["status"] == "admitted"
    assert unit_counts(client, net) == (0, 1, 2)
    request = client.get(
        f"/api/v1/placement-requests/{placement['request_id']}", headers=net.caseworker
    )
    assert request.json()["status"] == "placed"
    discharged = act(client, net.coordinator, pid, "discharge")
    body = discharged.json()
    assert body["status"] == "discharged"
    assert unit_counts(client, net) == (0, 0, 3)
    steps = [(t["from_status"], t["to_status"]) for t in body["transitions"]]
    assert steps == [
        (None, "proposed"),
        ("proposed", "accepted"),
        ("accepted", "admitted"),
        ("admitted", "discharged"),
    ]
    assert all(t["actor_user_id"] is not None for t in body["transitions"])


@pytest.mark.parametrize("action", ["accept", "decline", "admit", "discharge"])
def test_shelter_transitions_are_the_coordinators_only(
    client: TestClient, net: Network, action: str
) -> None:
    placement = proposed(client, net)
    pid = placement["id"]
    if action in ("admit", "discharge"):
        assert act(client, net.coordinator, pid, "accept").status_code == 200
    if action == "discharge":
        assert act(client, net.coordinator, pid, "admit").status_code == 200
    body = {"reason": "staffing"} if action == "decline" else {}
    assert act(client, net.other_coordinator, pid, action, **body).status_code == 404
    assert act(client, net.caseworker, pid, action, **body).status_code == 403
    assert act(client, net.funder, pid, action, **body).status_code == 403
    assert act(client, net.coordinator, pid, action, **body).status_code == 200


def test_cancel_is_the_owning_caseworkers_only(client: TestClient, net: Network) -> None:
    pid = proposed(client, net)["id"]
    assert act(client, net.other_caseworker, pid, "cancel").status_code == 404
    assert act(client, net.coordinator, pid, "cancel").status_code == 403
    assert act(client, net.funder, pid, "cancel").status_code == 403
    cancelled = act(client, net.caseworker, pid, "cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert unit_counts(client, net) == (0, 0, 3)


def test_decline_needs_a_listed_reason_and_frees_the_beds(client: TestClient, net: Network) -> None:
    placement = proposed(client, net)
    pid = placement["id"]
    assert (
        act(client, net.coordinator, pid, "decline", reason="no reason at all").status_code == 422
    )
    assert act(client, net.coordinator, pid, "decline").status_code == 422
    declined = act(client, net.coordinator, pid, "decline", reason="safety_concern")
    assert declined.json()["decline_reason"] == "safety_concern"
    assert unit_counts(client, net) == (0, 0, 3)
    request = client.get(
        f"/api/v1/placement-requests/{placement['request_id']}", headers=net.caseworker
    )
    assert request.json()["status"] == "pending"
    assert request.json()["declined_shelter_ids"] == [net.shelter.id]


@pytest.mark.parametrize(
    ("path", "action", "detail"),
    [
        ([], "admit", "This placement is proposed: it must be accepted before it is admitted."),
        ([], "discharge", "This placement is proposed: only an admitted placement is discharged."),
        (["accept"], "accept", "This placement is already accepted."),
        (["accept", "admit"], "accept", "This placement is already admitted."),
        (["decline"], "accept", "This placement was declined: it can no longer be accepted."),
    ],
)
def test_transitions_from_the_wrong_status_conflict(
    client: TestClient, net: Network, path: list[str], action: str, detail: str
) -> None:
    pid = proposed(client, net)["id"]
    for step in path:
        body = {"reason": "other"} if step == "decline" else {}
        assert act(client, net.coordinator, pid, step, **body).status_code == 200
    refused = act(client, net.coordinator, pid, action)
    assert refused.status_code == 409
    assert refused.json()["detail"] == detail


def test_overdue_holds_expire_when_read(
    client: TestClient, net: Network, db: Session, connection: Connection
) -> None:
    placement = proposed(client, net)
    row = db.get(Placement, placement["id"])
    assert row is not None
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    seen = client.get(f"/api/v1/placements/{placement['id']}", headers=net.coordinator).json()
    assert seen["status"] == "expired"
    assert seen["transitions"][-1]["actor_user_id"] is None
    assert unit_counts(client, net) == (0, 0, 3)
    assert overbooked_units(connection) == []
    # The audit log says the system released the beds, after the read that noticed it.
    entries = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    system = [e for e in entries if e.actor_role == "system"]
    assert [(e.action, e.resource_type, e.resource_id, e.actor_user_id) for e in system] == [
        ("expire", "placement", str(placement["id"]), None)
    ]
    read = next(e for e in entries if e.action == "read" and e.resource_type == "placement")
    assert read.seq < system[0].seq


def test_listing_expires_overdue_holds_too(client: TestClient, net: Network, db: Session) -> None:
    placement = proposed(client, net)
    row = db.get(Placement, placement["id"])
    assert row is not None
    row.expires_at = utcnow() - timedelta(minutes=5)
    db.flush()
    listed = client.get(
        "/api/v1/placements", params={"status": "expired"}, headers=net.caseworker
    ).json()
    assert [p["id"] for p in listed["items"]] == [placement["id"]]


def test_coordinators_see_sex_age_status_and_a_coming_of_age_month_and_nothing_more(
    client: TestClient, net: Network
) -> None:
    placement = proposed(client, net, MOTHER_AND_CHILD)
    seen = client.get(f"/api/v1/placements/{placement['id']}", headers=net.coordinator).json()
    # The month a minor comes of age, when recorded, so that the shelter can act before.
    assert [set(m) for m in seen["members"]] == [
        {"member_ref", "unit_id", "sex", "age", "status", "comes_of_age"}
    ] * 2
    assert [m["status"] for m in seen["members"]] == ["adult", "accompanied_child"]
    assert "case_id" not in seen
    assert "code" not in str(seen)


def test_placement_lists_are_scoped(client: TestClient, net: Network) -> None:
    pid = proposed(client, net)["id"]

    def ids(headers: dict[str, str]) -> list[int]:
        return [p["id"] for p in client.get("/api/v1/placements", headers=headers).json()["items"]]

    assert pid in ids(net.coordinator)
    assert pid in ids(net.caseworker)
    assert pid not in ids(net.other_caseworker)
    assert pid not in ids(net.other_coordinator)
    assert client.get("/api/v1/placements", headers=net.funder).status_code == 403
    assert client.get(f"/api/v1/placements/{pid}", headers=net.other_caseworker).status_code == 404


def test_caseworkers_see_the_location_once_a_placement_is_accepted(
    client: TestClient, net: Network
) -> None:
    url = f"/api/v1/shelters/{net.shelter.id}"
    pid = proposed(client, net)["id"]
    assert "address" not in client.get(url, headers=net.caseworker).json()
    act(client, net.coordinator, pid, "accept")
    assert client.get(url, headers=net.caseworker).json()["address"] == "Confidential test address"
    assert "address" not in client.get(url, headers=net.other_caseworker).json()


def test_cancelling_a_request_frees_its_held_beds(client: TestClient, net: Network) -> None:
    placement = proposed(client, net, MOTHER_AND_CHILD)
    cancelled = client.post(
        f"/api/v1/placement-requests/{placement['request_id']}/cancel", headers=net.caseworker
    )
    assert cancelled.json()["status"] == "cancelled"
    assert unit_counts(client, net) == (0, 0, 3)
    seen = client.get(f"/api/v1/placements/{placement['id']}", headers=net.caseworker).json()
    assert seen["status"] == "cancelled"


def test_a_placed_request_cannot_be_cancelled(client: TestClient, net: Network) -> None:
    placement = proposed(client, net)
    act(client, net.coordinator, placement["id"], "accept")
    act(client, net.coordinator, placement["id"], "admit")
    response = client.post(
        f"/api/v1/placement-requests/{placement['request_id']}/cancel", headers=net.caseworker
    )
    assert response.status_code == 409


def test_capacity_cannot_be_cut_below_what_is_held(client: TestClient, net: Network) -> None:
    proposed(client, net, MOTHER_AND_CHILD)
    url = f"/api/v1/units/{net.unit.id}"
    etag = client.get(url, headers=net.coordinator).headers["etag"]
    refused = client.patch(url, json={"capacity": 1}, headers=net.coordinator | {"If-Match": etag})
    assert refused.status_code == 409
    assert "1 bed short" in refused.json()["detail"]


def test_separated_cases_never_share_a_shelter(
    client: TestClient, world: World, net: Network
) -> None:
    second = world.shelter(security_level="high")
    world.unit(second, capacity=3, admits=WOMEN_AND_CHILDREN)
    first_request = request_for(client, net.caseworker)
    first = match(client, net.caseworker, first_request)["placement"]
    case_of_first = client.get(
        f"/api/v1/placement-requests/{first_request}", headers=net.caseworker
    ).json()["case_id"]
    # The abuser's case is held by another organisation and names the first case.
    other_request = request_for(
        client, net.other_caseworker, separate_from_case_ids=[case_of_first]
    )
    other = match(client, net.other_caseworker, other_request)
    assert other["placed"] is True
    assert other["placement"]["shelter_id"] != first["shelter_id"]


def test_separation_leaves_a_case_unplaced_rather_than_beside_the_other(
    client: TestClient, net: Network
) -> None:
    first_request = request_for(client, net.caseworker)
    assert match(client, net.caseworker, first_request)["placed"] is True
    case_of_first = client.get(
        f"/api/v1/placement-requests/{first_request}", headers=net.caseworker
    ).json()["case_id"]
    # Separation named from either side counts: here the first case is named by the second.
    other_request = request_for(
        client, net.other_caseworker, separate_from_case_ids=[case_of_first]
    )
    other = match(client, net.other_caseworker, other_request)
    assert other["placed"] is False
    assert other["reasons"] == [
        {"code": "separated_case_housed", "shelter_ids": [net.shelter.id], "request_ids": []}
    ]


def test_a_decline_without_a_body_names_the_field_and_its_values(
    client: TestClient, net: Network
) -> None:
    pid = proposed(client, net)["id"]
    for body in (None, {}):
        refused = client.post(
            f"/api/v1/placements/{pid}/decline", json=body, headers=net.coordinator
        )
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert "reason" in detail
        assert "no_capacity, not_eligible, safety_concern, staffing, other" in detail
    assert unit_counts(client, net) == (1, 0, 2)


def case_of(client: TestClient, headers: dict[str, str], request_id: int) -> int:
    body = client.get(f"/api/v1/placement-requests/{request_id}", headers=headers).json()
    return int(body["case_id"])


def test_a_housed_case_cannot_ask_for_a_second_bed(client: TestClient, net: Network) -> None:
    placement = proposed(client, net)
    pid = placement["id"]
    case_id = case_of(client, net.caseworker, placement["request_id"])
    for step in ("accept", "admit"):
        assert act(client, net.coordinator, pid, step).status_code == 200
    again = client.post(
        "/api/v1/placement-requests", json={"case_id": case_id}, headers=net.caseworker
    )
    assert again.status_code == 409
    assert f"placement {pid}" in again.json()["detail"]
    assert unit_counts(client, net) == (0, 1, 2)
    # Once discharged, the person may need a bed again.
    assert act(client, net.coordinator, pid, "discharge").status_code == 200
    assert create_request(client, net.caseworker, case_id)["status"] == "pending"


def test_a_case_with_an_open_request_is_told_which_one(client: TestClient, net: Network) -> None:
    request_id = request_for(client, net.caseworker)
    case_id = case_of(client, net.caseworker, request_id)
    again = client.post(
        "/api/v1/placement-requests", json={"case_id": case_id}, headers=net.caseworker
    )
    assert again.status_code == 409
    assert f"request {request_id}" in again.json()["detail"]


def test_a_shelter_that_declined_is_not_proposed_again_until_lifted(
    client: TestClient, net: Network, db: Session
) -> None:
    placement = proposed(client, net)
    rid, sid = placement["request_id"], net.shelter.id
    act(client, net.coordinator, placement["id"], "decline", reason="staffing")
    assert match(client, net.caseworker, rid) == {
        "placed": False,
        "placement": None,
        "reasons": [{"code": "declined_by_shelter", "shelter_ids": [sid], "request_ids": []}],
        "stale_unit_ids": [],
    }
    lift = f"/api/v1/placement-requests/{rid}/declined-shelters/{sid}/lift"
    assert client.post(lift, headers=net.other_caseworker).status_code == 404
    assert client.post(lift, headers=net.coordinator).status_code == 403
    assert client.post(lift, headers=net.funder).status_code == 403
    lifted = client.post(lift, headers=net.caseworker)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["declined_shelter_ids"] == []
    assert client.post(lift, headers=net.caseworker).status_code == 404
    entries = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "lift_decline").order_by(AuditEvent.seq)
    ).all()
    assert [(e.resource_type, e.resource_id, e.outcome) for e in entries] == [
        ("placement_request", str(rid), "denied"),
        ("placement_request", str(rid), "denied"),
        ("placement_request", str(rid), "denied"),
        ("placement_request", str(rid), "ok"),
        ("placement_request", str(rid), "denied"),
    ]
    again = match(client, net.caseworker, rid)
    assert again["placed"] is True
    assert again["placement"]["shelter_id"] == sid


def test_after_a_decline_the_next_match_proposes_another_shelter(
    client: TestClient, world: World, net: Network
) -> None:
    placement = proposed(client, net)
    second = world.shelter(security_level="high")
    world.unit(second, capacity=3, admits=WOMEN_AND_CHILDREN)
    act(client, net.coordinator, placement["id"], "decline", reason="no_capacity")
    again = match(client, net.caseworker, placement["request_id"])
    assert again["placed"] is True
    assert again["placement"]["shelter_id"] == second.id
