"""The inbox and the webhook outbox: who hears of what, signed deliveries, retries, crashes.

A local receiver (a threaded HTTP server on 127.0.0.1) checks every delivery's signature with
the ``standardwebhooks`` library itself, the way an integration would.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service import webhooks
from shelters import lifecycle, notifications
from shelters.identity import Role
from shelters.models import (
    InboxEntry,
    Placement,
    PlacementRequest,
    Shelter,
    Unit,
    WebhookDelivery,
    utcnow,
)
from tests.conftest import World
from tests.servers import server
from tests.service.lifecycle_helpers import (
    MOTHER_AND_CHILD,
    WOMEN_AND_CHILDREN,
    match,
    request_for,
)
from tests.service.test_run_recovery import admin_headers

PERSONAL = ("sex", "age", "members", "ref", "name", "code", "lat", "lon", "address")


@dataclass
class Receiver:
    """Records what was posted to it; answers ``status`` (a list: one per request, then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def verified(self, secret: str) -> list[Any]:
        """Every body received, each checked against its signature (raises if one is forged)."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.statuses.pop(0) if box.statuses else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/refuge"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield box
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Net:
    shelter: Shelter
    unit: Unit
    coordinator: dict[str, str]
    other_coordinator: dict[str, str]
    caseworker: dict[str, str]
    colleague: dict[str, str]
    other_caseworker: dict[str, str]
    admin: dict[str, str]
    funder: dict[str, str]


@pytest.fixture
def net(world: World) -> Net:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=6, admits=WOMEN_AND_CHILDREN)
    elsewhere = world.shelter()
    org = world.organization()
    return Net(
        shelter=shelter,
        unit=unit,
        coordinator=world.headers(Role.COORDINATOR, shelters=[shelter]),
        other_coordinator=world.headers(Role.COORDINATOR, shelters=[elsewhere]),
        caseworker=world.headers_for(world.user(Role.CASEWORKER, org=org)),
        colleague=world.headers_for(world.user(Role.CASEWORKER, org=org)),
        other_caseworker=world.headers(Role.CASEWORKER),
        admin=world.headers(Role.ADMIN),
        funder=world.headers(Role.FUNDER),
    )


def inbox(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/inbox", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def propose(client: TestClient, net: Net) -> dict[str, Any]:
    result = match(client, net.caseworker, request_for(client, net.caseworker, MOTHER_AND_CHILD))
    assert result["placed"] is True, result
    return result["placement"]  # type: ignore[no-any-return]


def endpoint(client: TestClient, net: Net, url: str, events: list[str] | None = None) -> Any:
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "events": events or []}, headers=net.admin
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_proposal_reaches_the_shelters_coordinators_and_nobody_else(
    client: TestClient, net: Net
) -> None:
    placement = propose(client, net)
    mine = inbox(client, net.coordinator)
    assert mine["unread"] == 1
    [entry] = mine["items"]
    assert (entry["event"], entry["placement_id"], entry["shelter_id"]) == (
        "placement.proposed",
        placement["id"],
        net.shelter.id,
    )
    assert entry["read_at"] is None
    for someone in (net.other_coordinator, net.caseworker, net.other_caseworker, net.funder):
        assert inbox(client, someone)["items"] == []
    # Only its owner may mark it read; to anyone else it does not exist.
    for someone in (net.other_coordinator, net.caseworker, net.admin):
        refused = client.post(f"/api/v1/inbox/{entry['id']}/read", headers=someone)
        assert refused.status_code == 404
    read = client.post(f"/api/v1/inbox/{entry['id']}/read", headers=net.coordinator)
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    assert inbox(client, net.coordinator)["unread"] == 0
    assert inbox(client, net.coordinator, unread="true")["items"] == []


def test_answers_reach_the_requesting_organisations_caseworkers(
    client: TestClient, net: Net
) -> None:
    placement = propose(client, net)
    declined = client.post(
        f"/api/v1/placements/{placement['id']}/decline",
        json={"reason": "staffing"},
        headers=net.coordinator,
    )
    assert declined.status_code == 200, declined.text
    for colleague in (net.caseworker, net.colleague):
        [entry] = inbox(client, colleague)["items"]
        assert (entry["event"], entry["reason"]) == ("placement.declined", "staffing")
    assert inbox(client, net.other_caseworker)["items"] == []
    # The coordinator heard of the proposal only, not of their own answer.
    assert [e["event"] for e in inbox(client, net.coordinator)["items"]] == ["placement.proposed"]


def test_the_sweep_warns_once_of_a_proposal_about_to_expire(
    client: TestClient, net: Net, db: Session
) -> None:
    placement = propose(client, net)
    held = db.get_one(Placement, placement["id"])
    held.expires_at = utcnow() + timedelta(minutes=30)
    db.flush()
    assert notifications.warn_expiring(db) == 1
    assert notifications.warn_expiring(db) == 0  # told once
    events = [e["event"] for e in inbox(client, net.coordinator)["items"]]
    assert events == ["placement.expiring", "placement.proposed"]


def test_an_admitted_17_year_old_is_flagged_once(
    client: TestClient, net: Net, db: Session, settings: Any
) -> None:
    teen = [
        {"ref": "A", "sex": "female", "age": 35},
        {"ref": "B", "sex": "female", "age": settings.majority_age - 1, "guardian_ref": "A"},
    ]
    result = match(client, net.caseworker, request_for(client, net.caseworker, teen))
    placement_id = result["placement"]["id"]
    for action in ("accept", "admit"):
        done = client.post(f"/api/v1/placements/{placement_id}/{action}", headers=net.coordinator)
        assert done.status_code == 200, done.text
    majority = settings.majority_age
    assert notifications.warn_coming_of_age(db, majority_age=majority) == 1
    assert notifications.warn_coming_of_age(db, majority_age=majority) == 0
    assert "member.coming_of_age" in [e["event"] for e in inbox(client, net.coordinator)["items"]]
    assert "member.coming_of_age" in [e["event"] for e in inbox(client, net.caseworker)["items"]]


def _month(months_ahead: int) -> str:
    today = utcnow().date()
    index = today.year * 12 + today.month - 1 + months_ahead
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _admitted(client: TestClient, net: Net, members: list[dict[str, Any]]) -> int:
    result = match(client, net.caseworker, request_for(client, net.caseworker, members))
    placement_id = int(result["placement"]["id"])
    for action in ("accept", "admit"):
        done = client.post(f"/api/v1/placements/{placement_id}/{action}", headers=net.coordinator)
        assert done.status_code == 200, done.text
    return placement_id


def test_a_recorded_coming_of_age_month_is_told_when_it_is_near_and_not_before(
    client: TestClient, net: Net, db: Session, settings: Any
) -> None:
    majority = settings.majority_age
    mother = {"ref": "A", "sex": "female", "age": 35}
    soon = _admitted(
        client,
        net,
        [
            mother,
            {
                "ref": "B",
                "sex": "male",
                "age": majority - 1,
                "guardian_ref": "A",
                "comes_of_age": _month(1),
            },
        ],
    )
    # A 17-year-old whose month is half a year away is not a "may": the month is known.
    later = _admitted(
        client,
        net,
        [
            mother,
            {
                "ref": "B",
                "sex": "female",
                "age": majority - 1,
                "guardian_ref": "A",
                "comes_of_age": _month(6),
            },
        ],
    )
    assert notifications.warn_coming_of_age(db, majority_age=majority) == 1
    told = db.scalars(select(InboxEntry).where(InboxEntry.event == "member.coming_of_age")).all()
    assert {(e.placement_id, e.reason) for e in told} == {(soon, "comes_of_age")}
    # Five months on, the second one's month is next month.
    five_months = utcnow() + timedelta(days=152)
    assert notifications.warn_coming_of_age(db, majority_age=majority, now=five_months) == 1
    told = db.scalars(select(InboxEntry).where(InboxEntry.event == "member.coming_of_age")).all()
    assert {e.placement_id for e in told} == {soon, later}
    placement = client.get(f"/api/v1/placements/{soon}", headers=net.coordinator).json()
    assert [m["comes_of_age"] for m in placement["members"]] == [None, _month(1)]


@pytest.mark.parametrize(
    ("member", "refused"),
    [
        ({"ref": "A", "sex": "female", "age": 30, "comes_of_age": "2030-01"}, "only a minor"),
        ({"ref": "A", "sex": "female", "age": 17, "comes_of_age": "2027-13"}, "comes_of_age"),
        ({"ref": "A", "sex": "female", "age": 10, "comes_of_age": "NEXT"}, "comes_of_age"),
        ({"ref": "A", "sex": "female", "age": 17, "comes_of_age": "PAST"}, "0 to 12 months"),
        ({"ref": "A", "sex": "female", "age": 10, "comes_of_age": "SOON"}, "84 to 96 months"),
    ],
)
def test_a_coming_of_age_month_must_be_a_future_month_of_a_minor_that_fits_their_age(
    client: TestClient, net: Net, member: dict[str, Any], refused: str
) -> None:
    month = {"PAST": _month(-1), "SOON": _month(1), "NEXT": "next month"}
    member = member | {"comes_of_age": month.get(member["comes_of_age"], member["comes_of_age"])}
    response = client.post("/api/v1/cases", json={"members": [member]}, headers=net.caseworker)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert refused in response.text


def test_only_admins_manage_webhooks_and_the_secret_is_shown_once(
    client: TestClient, net: Net, receiver: Receiver
) -> None:
    for someone in (net.coordinator, net.caseworker, net.funder):
        refused = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=someone)
        assert refused.status_code == 403
        assert client.get("/api/v1/webhooks", headers=someone).status_code == 403
    made = endpoint(client, net, receiver.url, ["placement.proposed"])
    assert made["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=net.admin).json()["items"]
    assert made["secret"] not in json.dumps(listed)
    assert "secret" not in listed[0]
    bad = client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["x.y"]}, headers=net.admin
    )
    assert bad.status_code == 422
    bad = client.post("/api/v1/webhooks", json={"url": "ftp://example.invalid"}, headers=net.admin)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_a_proposal_is_delivered_signed_with_ids_only(
    client: TestClient, net: Net, receiver: Receiver
) -> None:
    made = endpoint(client, net, receiver.url)
    placement = propose(client, net)
    done = webhooks.deliver_due(client.app.state.sessions)  # type: ignore[attr-defined]
    assert (done.delivered, done.retrying, done.failed) == (1, 0, 0)
    [body] = receiver.verified(made["secret"])
    assert body["type"] == "placement.proposed"
    assert body["data"] == {
        "placement_id": placement["id"],
        "request_id": placement["request_id"],
        "shelter_id": net.shelter.id,
        "status": "proposed",
    }
    assert set(body["data"]) <= notifications.PAYLOAD_KEYS
    raw = receiver.received[0][1].decode()
    for word in PERSONAL:
        assert f'"{word}"' not in raw
    # A forged or altered body fails the same check.
    headers, _ = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(made["secret"]).verify(raw.replace("proposed", "accepted"), headers)
    history = client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=net.admin).json()
    [row] = history["items"]
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 1, 200)
    assert row["message_id"] == headers["webhook-id"]
    assert webhooks.deliver_due(client.app.state.sessions).delivered == 0  # type: ignore[attr-defined]


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    client: TestClient, net: Net, receiver: Receiver, db: Session
) -> None:
    endpoint(client, net, receiver.url)
    propose(client, net)
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    now = utcnow()
    receiver.statuses = [500] * webhooks.MAX_ATTEMPTS
    clock = [now]

    def tick() -> Any:
        return clock[0]

    for attempt, wait_s in enumerate(webhooks.BACKOFF_S, start=1):
        done = webhooks.deliver_due(sessions, clock=tick)
        assert (done.delivered, done.retrying) == (0, 1), attempt
        row = db.scalars(select(WebhookDelivery)).one()
        db.refresh(row)
        assert row.attempts == attempt
        assert row.next_attempt_at == clock[0] + timedelta(seconds=wait_s)
        # Nothing is due before the wait is over.
        clock[0] += timedelta(seconds=wait_s - 1)
        assert webhooks.deliver_due(sessions, clock=tick).retrying == 0
        clock[0] += timedelta(seconds=1)
    done = webhooks.deliver_due(sessions, clock=tick)
    assert done.failed == 1
    db.refresh(row)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        webhooks.MAX_ATTEMPTS,
        "HTTP 500",
    )
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 1  # the same message each time


def test_a_delivery_leased_by_a_process_that_died_is_sent_after_the_lease(
    client: TestClient, net: Net, receiver: Receiver
) -> None:
    made = endpoint(client, net, receiver.url)
    propose(client, net)
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    now = utcnow()
    assert len(webhooks._lease(sessions, now, 10)) == 1  # taken, then the process "dies"
    assert webhooks.deliver_due(sessions, clock=lambda: now).delivered == 0
    later = now + webhooks.LEASE + timedelta(seconds=1)
    assert webhooks.deliver_due(sessions, clock=lambda: later).delivered == 1
    assert [b["type"] for b in receiver.verified(made["secret"])] == ["placement.proposed"]


def test_a_rolled_back_change_tells_nobody(client: TestClient, net: Net, db: Session) -> None:
    endpoint(client, net, "http://127.0.0.1:9/never")
    request_id = request_for(client, net.caseworker, MOTHER_AND_CHILD)
    request = db.get_one(PlacementRequest, request_id)
    bed = net.unit.id
    seen: list[int] = []

    def hold_then_fail() -> None:
        with db.begin_nested():
            lifecycle.hold_beds(
                db,
                request,
                shelter_id=net.shelter.id,
                beds={"A": bed, "B": bed},
                ttl=timedelta(hours=1),
                actor_id=None,
            )
            seen.append(db.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)
            raise RuntimeError("the transaction fails after the event")

    with pytest.raises(RuntimeError):
        hold_then_fail()
    assert seen == [1]  # the outbox row was written with the change...
    # ...and went with it
    assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert db.scalar(select(func.count()).select_from(InboxEntry)) == 0


def test_a_server_killed_before_delivering_loses_nothing(
    fresh_database: str, tmp_path: Path, receiver: Receiver
) -> None:
    from tests.service.test_no_overbooking import seed

    scarce = seed(fresh_database)
    headers = admin_headers(fresh_database)
    quiet = {"REFUGE_WEBHOOK_POLL_S": "0"}  # this server never delivers: it only records
    with server(fresh_database, tmp_path / "serve.log", env=quiet) as api:
        made = httpx.post(
            f"{api.base}/api/v1/webhooks", json={"url": receiver.url}, headers=headers, timeout=10
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        caseworker = {"Authorization": f"Bearer {scarce.token}"}
        matched = httpx.post(
            f"{api.base}/api/v1/placement-requests/{scarce.request_ids[0]}/match",
            headers=caseworker,
            timeout=60,
        )
        assert matched.status_code == 200, matched.text
        assert matched.json()["placed"] is True
        api.process.send_signal(signal.SIGKILL)  # a crash: no shutdown, nothing flushed
        api.process.wait(timeout=30)
    assert receiver.received == []
    from tests.service.test_backup import refuge

    first = refuge(fresh_database, "webhooks", "deliver")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"delivered": 1, "retrying": 0, "failed": 0}
    again = refuge(fresh_database, "webhooks", "deliver")
    assert json.loads(again.stdout) == {"delivered": 0, "retrying": 0, "failed": 0}
    [body] = receiver.verified(secret)
    assert body["type"] == "placement.proposed"
    assert body["data"]["request_id"] == scarce.request_ids[0]
