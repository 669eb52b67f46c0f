"""Random sequences of everything that moves beds; the invariant is checked after each step.

Capacity updates, new requests, matches, accepts, declines, expiries, admissions, discharges
and cancellations run through the API in random order. After every step every unit's active
holds and admissions, counted from the placements, fit its beds, the counters agree, and no
response was a server error.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from service.app import create_app
from service.settings import Settings
from shelters.identity import Role
from shelters.integrity import overbooked_units
from shelters.models import Placement, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import ADULT_WOMEN, WOMEN_AND_CHILDREN

GROUPS = [
    [{"ref": "A", "sex": "female", "age": 30}],
    [
        {"ref": "A", "sex": "female", "age": 34},
        {"ref": "B", "sex": "female", "age": 6, "guardian_ref": "A"},
    ],
    [
        {"ref": "A", "sex": "female", "age": 41},
        {"ref": "B", "sex": "male", "age": 9, "guardian_ref": "A"},
        {"ref": "C", "sex": "female", "age": 3, "guardian_ref": "A"},
    ],
]


class Lifecycle(RuleBasedStateMachine):
    engine: ClassVar[Engine]
    settings: ClassVar[Settings]

    def __init__(self) -> None:
        super().__init__()
        self.conn = self.engine.connect()
        self.outer = self.conn.begin()
        self.db = Session(bind=self.conn, join_transaction_mode="create_savepoint")
        world = World(self.db, self.settings)
        shelters = [world.shelter(), world.shelter()]
        self.units = [
            world.unit(shelters[0], capacity=3, admits=WOMEN_AND_CHILDREN),
            world.unit(shelters[0], capacity=2, admits=[ADULT_WOMEN]),
            world.unit(shelters[1], capacity=2, admits=WOMEN_AND_CHILDREN),
        ]
        self.coordinator = world.headers(Role.COORDINATOR, shelters=shelters)
        self.caseworker = world.headers(Role.CASEWORKER)
        self.client = TestClient(create_app(self.settings, bind=self.conn))
        self.requests: list[int] = []
        self.placements: list[int] = []
        self.statuses: list[int] = []

    def teardown(self) -> None:
        self.client.close()
        self.db.close()
        self.outer.rollback()
        self.conn.close()

    def _call(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = self.client.request(method, url, headers=headers, **kwargs)
        self.statuses.append(response.status_code)
        return response

    @rule(group=st.sampled_from(GROUPS))
    def new_request(self, group: list[dict[str, Any]]) -> None:
        case = self._call("POST", "/api/v1/cases", self.caseworker, json={"members": group})
        request = self._call(
            "POST",
            "/api/v1/placement-requests",
            self.caseworker,
            json={"case_id": case.json()["id"]},
        )
        self.requests.append(request.json()["id"])

    @precondition(lambda self: self.requests)
    @rule(pick=st.integers(0, 10_000))
    def match(self, pick: int) -> None:
        request_id = self.requests[pick % len(self.requests)]
        response = self._call(
            "POST", f"/api/v1/placement-requests/{request_id}/match", self.caseworker
        )
        if response.status_code == 200 and response.json()["placed"]:
            self.placements.append(response.json()["placement"]["id"])

    @precondition(lambda self: self.placements)
    @rule(
        pick=st.integers(0, 10_000),
        action=st.sampled_from(["accept", "decline", "admit", "discharge", "cancel"]),
    )
    def transition(self, pick: int, action: str) -> None:
        placement_id = self.placements[pick % len(self.placements)]
        headers = self.caseworker if action == "cancel" else self.coordinator
        body = {"reason": "staffing"} if action == "decline" else None
        self._call("POST", f"/api/v1/placements/{placement_id}/{action}", headers, json=body)

    @precondition(lambda self: self.requests)
    @rule(pick=st.integers(0, 10_000))
    def cancel_request(self, pick: int) -> None:
        request_id = self.requests[pick % len(self.requests)]
        self._call("POST", f"/api/v1/placement-requests/{request_id}/cancel", self.caseworker)

    @precondition(lambda self: self.placements)
    @rule(pick=st.integers(0, 10_000))
    def time_passes(self, pick: int) -> None:
        placement_id = self.placements[pick % len(self.placements)]
        self.db.execute(
            update(Placement)
            .where(Placement.id == placement_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        self.db.flush()
        self._call("GET", "/api/v1/placements", self.coordinator)

    @rule(
        pick=st.integers(0, 2),
        capacity=st.integers(0, 5),
        out_of_service=st.integers(0, 2),
        external=st.integers(0, 2),
    )
    def change_beds(self, pick: int, capacity: int, out_of_service: int, external: int) -> None:
        url = f"/api/v1/units/{self.units[pick].id}"
        etag = self._call("GET", url, self.coordinator).headers["etag"]
        body = {
            "capacity": capacity,
            "out_of_service": out_of_service,
            "external_occupied": external,
        }
        self._call("PATCH", url, self.coordinator | {"If-Match": etag}, json=body)

    @invariant()
    def no_unit_is_overbooked_and_nothing_failed(self) -> None:
        assert overbooked_units(self.conn) == []
        assert all(status < 500 for status in self.statuses), self.statuses


def test_random_lifecycles_never_overbook(engine: Engine, settings: Settings) -> None:
    Lifecycle.engine = engine
    Lifecycle.settings = settings
    run_state_machine_as_test(
        Lifecycle,
        settings=hypothesis_settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
