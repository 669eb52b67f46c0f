"""Report endpoints: formats, suppression on the wire, and who may read them."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from service.report_formats import to_csv
from shelters.funding import Grant
from shelters.identity import Role
from tests.conftest import World
from tests.shelters.test_reports import History, build_crafted

PERIOD = {"from": "2026-03-01", "to": "2026-03-10"}  # admins only: not a publication period
MONTH = {"from": "2026-03-01", "to": "2026-03-31"}
REPORTS = ("/api/v1/reports/allocation", "/api/v1/reports/grants", "/api/v1/reports/unmet-demand")
CHARTS = (
    "/api/v1/reports/allocation.svg",
    "/api/v1/reports/grants.svg",
    "/api/v1/reports/unmet-demand.svg",
)
# A word each chart says, in Russian and in English.
CHART_WORDS = {
    "/api/v1/reports/allocation.svg": ("койко-дн", "bed-nights"),
    "/api/v1/reports/grants.svg": ("койко-дн", "bed-nights"),
    "/api/v1/reports/unmet-demand.svg": ("неразмещённые запросы", "requests left unplaced"),
}


@pytest.fixture
def crafted(world: World) -> History:
    history = History(world)
    a, _ = build_crafted(history)
    admin = world.user(Role.ADMIN)
    history.funder_org = world.organization("funder")  # type: ignore[attr-defined]
    world.db.add(
        Grant(
            funder_organization_id=history.funder_org.id,
            shelter_id=a.id,  # type: ignore[attr-defined]
            start=date(2026, 3, 1),
            end=date(2026, 3, 31),
            amount=Decimal("3100"),
            currency="KZT",
            funded_beds=12,
            created_by=admin.id,
        )
    )
    world.db.flush()
    return history


def test_allocation_answers_json_with_suppressed_cells_null_and_named(
    client: TestClient, world: World, crafted: History
) -> None:
    response = client.get(
        "/api/v1/reports/allocation", params=MONTH, headers=world.headers(Role.FUNDER)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["group_by"], body["k"]) == (
        "2026-03-01",
        "2026-03-31",
        "shelter",
        11,
    )
    rows = [r for r in body["rows"] if r["bed_nights_occupied"]]
    assert len(rows) == 1
    row = rows[0]
    # Unit 1: 10+10+8+8+10 then 26 nights of 10; unit 2: 2 beds on the nights of 8-31 March.
    assert row["bed_nights_available"] == 46 + 260 + 48
    # 7 people x 3 nights, 3 people from the night of 10 March on, 2 people all month.
    assert row["bed_nights_occupied"] == 21 + 3 * 22 + 2 * 31
    assert row["placements_proposed"] is None
    assert "placements_proposed" in row["suppressed"]
    assert body["totals"]["people_adult"] is None
    assert body["totals"]["bed_nights_occupied"] == 149
    assert body["disclosure"]["method"] == "linked-tables"
    assert (body["disclosure"]["k"], body["disclosure"]["period"]) == (11, "2026-03")


def test_allocation_csv_is_rfc4180_and_shows_suppressed_cells_as_below_k(
    client: TestClient, world: World, crafted: History
) -> None:
    response = client.get(
        "/api/v1/reports/allocation",
        params=PERIOD | {"group_by": "region"},
        headers=world.headers(Role.ADMIN) | {"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert "\r\n" in text
    table = list(csv.DictReader(io.StringIO(text)))
    astana = next(r for r in table if r["key"] == "astana")
    assert astana["bed_nights_available"] == "102"
    assert astana["placements_proposed"] == "<11"
    assert astana["people_adult"] == "<11"
    assert table[-2]["key"] == "total"
    assert table[-1]["key"].startswith("# disclosure: single-table, period 2026-03-01..2026-03-10")


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    text = to_csv(
        ("label", "n"),
        [
            {"label": "=HYPERLINK(1)", "n": 3},
            {"label": "@x", "n": 0},
            {"label": '+a,"b"', "n": None, "suppressed": ["n"]},
        ],
        k=11,
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["'=HYPERLINK(1)", "3"]
    assert rows[2] == ["'@x", "0"]
    assert rows[3] == ['\'+a,"b"', "<11"]


def test_grants_report_in_json_and_csv(client: TestClient, world: World, crafted: History) -> None:
    headers = world.headers(Role.FUNDER, org=crafted.funder_org)  # type: ignore[attr-defined]
    body = client.get("/api/v1/reports/grants", params=MONTH, headers=headers).json()
    assert [r["funded_bed_nights"] for r in body["rows"]] == [12 * 31]
    row = body["rows"][0]
    assert row["available_bed_nights"] == 354
    assert row["occupied_bed_nights"] == 149
    assert row["under_delivery"] is False  # 354 >= 0.8 * 372
    assert row["amount_in_period"] == "3100.00"
    assert row["cost_per_occupied_bed_night"] == "20.81"
    assert body["disclosure"]["method"] == "none"
    text = client.get(
        "/api/v1/reports/grants", params=MONTH, headers=headers | {"Accept": "text/csv"}
    ).text
    assert next(iter(csv.DictReader(io.StringIO(text))))["under_delivery"] == "false"
    last = list(csv.reader(io.StringIO(text)))[-1]
    assert last[0].startswith("# disclosure: none, period 2026-03.")


def test_another_funder_sees_no_rows_of_a_grant_not_theirs(
    client: TestClient, world: World, crafted: History
) -> None:
    body = client.get(
        "/api/v1/reports/grants", params=MONTH, headers=world.headers(Role.FUNDER)
    ).json()
    assert body["rows"] == []


def test_unmet_demand_in_json_and_csv(client: TestClient, world: World, crafted: History) -> None:
    headers = world.headers(Role.ADMIN)
    body = client.get("/api/v1/reports/unmet-demand", params=PERIOD, headers=headers).json()
    assert body["rows"] == [
        {
            "region": "astana",
            "reason_code": "declined:no_capacity",
            "requests": None,
            "people_adult": None,
            "people_accompanied_child": 0,
            "people_unaccompanied_minor": 0,
            "suppressed": ["requests", "people_adult"],
        }
    ]
    text = client.get(
        "/api/v1/reports/unmet-demand", params=PERIOD, headers=headers | {"Accept": "text/csv"}
    ).text
    assert text.splitlines()[1] == "astana,declined:no_capacity,<11,<11,0,0"


@pytest.mark.parametrize("path", CHARTS)
def test_charts_are_svg_and_draw_suppressed_cells_as_suppressed(
    client: TestClient, world: World, crafted: History, path: str
) -> None:
    response = client.get(path, params=PERIOD, headers=world.headers(Role.ADMIN))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.content.lstrip().startswith(b"<?xml")
    assert b"<svg" in response.content
    if "grants" not in path:
        assert b"suppressed" in response.content
        # A suppressed cell is drawn as "<11", never as a bar.
        assert b"&lt;11" in response.content


def test_the_disclosure_statement_is_said_in_the_callers_language(
    client: TestClient, world: World, crafted: History
) -> None:
    headers = world.headers(Role.ADMIN)
    path = "/api/v1/reports/unmet-demand"
    english = client.get(path, params=PERIOD, headers=headers | {"Accept-Language": "en"}).json()
    russian = client.get(path, params=PERIOD, headers=headers | {"Accept-Language": "ru"}).json()
    assert english["disclosure"]["statement"].startswith("Counts of people from 1 to 10 are")
    assert russian["disclosure"]["statement"].startswith("Число людей от 1 до 10 скрыто")
    assert {k: v for k, v in russian["disclosure"].items() if k != "statement"} == {
        k: v for k, v in english["disclosure"].items() if k != "statement"
    }
    table = client.get(
        path, params=PERIOD, headers=headers | {"Accept": "text/csv", "Accept-Language": "kk"}
    ).text
    assert "1-ден 10-ге дейінгі адамдар саны жасырылған" in table.splitlines()[-1]


@pytest.mark.parametrize("path", CHARTS)
def test_a_chart_speaks_the_callers_language_and_says_so(
    client: TestClient, world: World, crafted: History, path: str
) -> None:
    headers = world.headers(Role.ADMIN)
    english = client.get(path, params=PERIOD, headers=headers | {"Accept-Language": "en"})
    russian = client.get(path, params=PERIOD, headers=headers | {"Accept-Language": "ru-RU"})
    assert russian.headers["content-language"] == "ru"
    assert english.headers["content-language"] == "en"
    assert "Accept-Language" in russian.headers["vary"]
    in_russian, in_english = CHART_WORDS[path]
    assert in_russian in russian.text
    assert in_russian not in english.text
    assert in_english in english.text.lower()


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CASEWORKER])
@pytest.mark.parametrize("path", REPORTS + CHARTS)
def test_only_admins_and_funders_read_reports(
    client: TestClient, world: World, role: Role, path: str
) -> None:
    assert client.get(path, params=PERIOD, headers=world.headers(role)).status_code == 403


@pytest.mark.parametrize("path", REPORTS)
def test_reports_need_authentication(client: TestClient, path: str) -> None:
    assert client.get(path, params=PERIOD).status_code == 401


def test_a_period_ending_before_it_starts_is_a_problem(client: TestClient, world: World) -> None:
    response = client.get(
        "/api/v1/reports/allocation",
        params={"from": "2026-03-10", "to": "2026-03-01"},
        headers=world.headers(Role.ADMIN),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_grouping_is_refused(client: TestClient, world: World) -> None:
    response = client.get(
        "/api/v1/reports/allocation",
        params=PERIOD | {"group_by": "case"},
        headers=world.headers(Role.ADMIN),
    )
    assert response.status_code == 422


def test_funders_get_403_on_case_level_endpoints(client: TestClient, world: World) -> None:
    headers = world.headers(Role.FUNDER)
    for path in ("/api/v1/cases", "/api/v1/placement-requests", "/api/v1/placements"):
        assert client.get(path, headers=headers).status_code == 403


@pytest.mark.parametrize("path", CHARTS)
def test_a_chart_comes_narrow_for_a_phone_and_refuses_a_layout_it_does_not_know(
    client: TestClient, world: World, crafted: History, path: str
) -> None:
    headers = world.headers(Role.ADMIN)
    wide = client.get(path, params=PERIOD, headers=headers)
    narrow = client.get(path, params={**PERIOD, "layout": "narrow"}, headers=headers)
    assert narrow.status_code == 200
    width = re.compile(rb'<svg[^>]*width="([0-9.]+)pt"')
    narrow_width = width.search(narrow.content)
    wide_width = width.search(wide.content)
    assert narrow_width is not None
    assert wide_width is not None
    assert float(narrow_width.group(1)) < float(wide_width.group(1)) / 2
    wrong = client.get(path, params={**PERIOD, "layout": "tiny"}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
