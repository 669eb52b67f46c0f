"""The fairness report: outcomes per group of people, disparity flags, and what it hides.

The history is made by hand through the API (cases, requests, matches, accepts, admissions,
declines), then backdated as tests/service/test_escalation.py does, so that every median and
share below can be worked out on paper.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from shelters import reports
from shelters.identity import Role
from shelters.models import PlacementRequest, utcnow
from tests.conftest import World
from tests.service.lifecycle_helpers import (
    MOTHER_AND_CHILD,
    ONE_WOMAN,
    WOMEN_AND_CHILDREN,
    create_case,
    create_request,
    match,
)

MINOR_ALONE = [{"ref": "A", "sex": "male", "age": 15}]
UNACCOMPANIED = {
    "sexes": ["male"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}


class History:
    def __init__(self, client: TestClient, world: World, db: Session) -> None:
        org = world.organization()
        world.region("almaty", 43.2, 76.9)
        shelter = world.shelter(org)  # in astana
        world.unit(shelter, capacity=60, admits=[*WOMEN_AND_CHILDREN, UNACCOMPANIED])
        self.client, self.db = client, db
        self.caseworker = world.headers(Role.CASEWORKER, org=org)
        self.coordinator = world.headers(Role.COORDINATOR, shelters=[shelter])

    def request(
        self, members: list[dict[str, Any]], hours_ago: float, preferred: list[str] | None = None
    ) -> int:
        case = create_case(self.client, self.caseworker, members)
        made = create_request(
            self.client, self.caseworker, case["id"], preferred_regions=preferred or []
        )
        self.db.execute(
            update(PlacementRequest)
            .where(PlacementRequest.id == made["id"])
            .values(created_at=utcnow() - timedelta(hours=hours_ago))
        )
        return int(made["id"])

    def _step(self, placement_id: int, verb: str, body: dict[str, str] | None = None) -> None:
        answer = self.client.post(
            f"/api/v1/placements/{placement_id}/{verb}", json=body, headers=self.coordinator
        )
        assert answer.status_code == 200, answer.text

    def admit(self, request_id: int) -> None:
        placement = match(self.client, self.caseworker, request_id)["placement"]
        assert placement is not None
        self._step(placement["id"], "accept")
        self._step(placement["id"], "admit")

    def decline(self, request_id: int, reason: str) -> None:
        placement = match(self.client, self.caseworker, request_id)["placement"]
        assert placement is not None
        self._step(placement["id"], "decline", {"reason": reason})


def _history(client: TestClient, world: World, db: Session) -> None:
    """18 requests; every figure the tests check is worked out here.

    - 6 women alone, admitted 2, 4, ..., 12 h after asking; three preferred almaty (placed
      outside it), three astana (placed inside).
    - 10 mothers with a son of 5: three admitted after 30, 40, 50 h; three declined for
      staffing and one for a safety concern, then left waiting; three never matched.
    - 2 unaccompanied boys of 15: one admitted after 1 h, one waiting.

    All requests: 18, placed 10 (0.556); median hours to admission over
    1, 2, 4, 6, 8, 10, 12, 30, 40, 50 = 9.0. Adults (16: the women and the mothers): placed 9
    (0.562), median 10.0. Accompanied children (10): placed 3 (0.3, below by 0.256 and under
    0.8 x 0.556), median 40.0 (over 1.5 x 9.0). Men and boys (12): placed 4 (0.333).
    """
    h = History(client, world, db)
    for hours in (2, 4, 6, 8, 10, 12):
        preferred = ["almaty"] if hours <= 6 else ["astana"]
        h.admit(h.request(ONE_WOMAN, hours, preferred))
    for hours in (30, 40, 50):
        h.admit(h.request(MOTHER_AND_CHILD, hours))
    for reason in ("staffing", "staffing", "staffing", "safety_concern"):
        h.decline(h.request(MOTHER_AND_CHILD, 20), reason)
    for _ in range(3):
        h.request(MOTHER_AND_CHILD, 20)
    h.admit(h.request(MINOR_ALONE, 1))
    h.request(MINOR_ALONE, 3)


def _window() -> reports.Period:
    today = utcnow().date()
    return reports.period(today - timedelta(days=3), today)


def test_shares_medians_and_declines_are_right_on_a_hand_made_history(
    client: TestClient, world: World, db: Session
) -> None:
    _history(client, world, db)
    report = reports.fairness_report(db, when=_window(), by="status", k=3)
    rows = {r.group: r for r in report.rows}
    total = report.total
    assert (total.requests, total.placed_share, total.median_hours_to_admission) == (18, 0.556, 9.0)
    assert total.outside_preferred_share == 0.5  # 3 of the 6 that named a region
    assert total.declined_staffing == 3
    assert total.declined_safety_concern is None  # one decline: below k
    assert "declined_safety_concern" in total.suppressed

    adult, child = rows["adult"], rows["accompanied_child"]
    assert (adult.requests, adult.placed_share, adult.median_hours_to_admission) == (
        16,
        0.562,
        10.0,
    )
    assert (child.requests, child.placed_share, child.median_hours_to_admission) == (10, 0.3, 40.0)
    assert child.outside_preferred_share is None  # none named a region: nothing to hide
    assert "outside_preferred_share" not in child.suppressed
    # A family counts in every group of its members: the groups overlap.
    assert adult.requests + child.requests > total.requests

    by_age = {
        r.group: r for r in reports.fairness_report(db, when=_window(), by="age_band", k=3).rows
    }
    assert by_age["25-59"].requests == 16
    assert by_age["0-5"].requests == 10
    assert by_age["12-17"].requests is None  # two boys


def test_the_flag_marks_the_group_placed_less_often_and_not_the_others(
    client: TestClient, world: World, db: Session
) -> None:
    _history(client, world, db)
    rows = {r.group: r for r in reports.fairness_report(db, when=_window(), by="status", k=3).rows}
    assert rows["accompanied_child"].flags == ["placed_share_low", "admission_wait_long"]
    assert rows["adult"].flags == []
    assert rows["unaccompanied_minor"].flags == []  # fewer than k requests: never flagged
    by_sex = {r.group: r for r in reports.fairness_report(db, when=_window(), by="sex", k=3).rows}
    assert (by_sex["male"].requests, by_sex["male"].placed_share) == (12, 0.333)
    assert "placed_share_low" in by_sex["male"].flags
    assert by_sex["female"].flags == []


def test_a_group_below_k_shows_no_count_no_share_and_no_median(
    client: TestClient, world: World, db: Session
) -> None:
    _history(client, world, db)
    admin = world.headers(Role.ADMIN)
    window = _window()
    params = {"from": window.first.isoformat(), "to": window.last.isoformat(), "by": "status"}
    answer = client.get("/api/v1/reports/fairness", params=params, headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["k"] == 11
    minors = next(r for r in body["rows"] if r["group"] == "unaccompanied_minor")
    for cell in (
        "requests",
        "placed_share",
        "median_hours_to_proposal",
        "median_hours_to_admission",
    ):
        assert minors[cell] is None
        assert cell in minors["suppressed"]
    assert minors["flags"] == []
    # 10 requests with accompanied children: below 11 too, so not flagged at the default k.
    child = next(r for r in body["rows"] if r["group"] == "accompanied_child")
    assert child["requests"] is None
    assert child["flags"] == []
    assert body["total"]["requests"] == 18
    assert "four-fifths" in body["rule"]

    table = client.get(
        "/api/v1/reports/fairness", params=params, headers=admin | {"Accept": "text/csv"}
    )
    lines = table.text.splitlines()
    assert lines[0].startswith("group,requests,placed_share,median_hours_to_proposal")
    assert lines[3].startswith("unaccompanied_minor,<11,<11,<11,<11")
    assert lines[4].startswith("all,18,")
    sheet = client.get("/api/v1/reports/fairness.xlsx", params=params, headers=admin)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("application/vnd.openxmlformats")


def test_only_admins_and_funders_read_it_and_funders_only_published_periods(
    client: TestClient, world: World
) -> None:
    today = utcnow().date()
    window = {"from": (today - timedelta(days=3)).isoformat(), "to": today.isoformat()}
    for role in (Role.COORDINATOR, Role.CASEWORKER):
        refused = client.get("/api/v1/reports/fairness", params=window, headers=world.headers(role))
        assert refused.status_code == 403
    funder = world.headers(Role.FUNDER)
    refused = client.get("/api/v1/reports/fairness", params=window, headers=funder)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("period-not-published")
    last_year = {
        "from": date(today.year - 1, 1, 1).isoformat(),
        "to": date(today.year - 1, 12, 31).isoformat(),
    }
    for by in reports.FAIRNESS_GROUPINGS:
        allowed = client.get(
            "/api/v1/reports/fairness", params=last_year | {"by": by}, headers=funder
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["disclosure"]["method"] == "linked-tables"
    assert client.get("/api/v1/reports/fairness", params=last_year).status_code == 401


def test_a_month_hidden_in_a_funders_tables_cannot_be_recomputed_from_its_quarter(
    client: TestClient, world: World, db: Session
) -> None:
    """Last year's first quarter: 4 boys alone in January, 12 in February, 12 in March.

    Within each table alone nothing would hide February, March or the quarter, and January's 4
    would be the quarter's 28 less 24. Protected together, one more of them is hidden.
    """
    headers = world.headers(Role.CASEWORKER)
    year = utcnow().year - 1
    for month, count in ((1, 4), (2, 12), (3, 12)):
        for _ in range(count):
            case = create_case(client, headers, MINOR_ALONE)
            made = create_request(client, headers, case["id"])
            db.execute(
                update(PlacementRequest)
                .where(PlacementRequest.id == made["id"])
                .values(created_at=datetime(year, month, 15, 12, tzinfo=UTC))
            )
    funder = world.headers(Role.FUNDER)
    published: dict[str, dict[str, Any]] = {}
    for pid, first, last in (
        ("m01", date(year, 1, 1), date(year, 1, 31)),
        ("m02", date(year, 2, 1), date(year, 2, 28)),
        ("m03", date(year, 3, 1), date(year, 3, 31)),
        ("q1", date(year, 1, 1), date(year, 3, 31)),
        ("y", date(year, 1, 1), date(year, 12, 31)),
    ):
        params = {"from": first.isoformat(), "to": last.isoformat(), "by": "status"}
        answer = client.get("/api/v1/reports/fairness", params=params, headers=funder)
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"] + [answer.json()["total"]]
        published[pid] = {r["group"]: r for r in rows}
    minors = {pid: published[pid]["unaccompanied_minor"]["requests"] for pid in published}
    assert minors["m01"] is None  # 4, below 11
    assert None in (minors["m02"], minors["m03"], minors["q1"])
    for group in published["q1"]:
        cells = [published[pid][group]["requests"] for pid in ("m01", "m02", "m03", "q1")]
        assert cells.count(None) != 1, (group, cells)  # one unknown in a sum is no secret
    assert (
        published["y"]["unaccompanied_minor"]["requests"]
        == published["q1"]["unaccompanied_minor"]["requests"]
    )
