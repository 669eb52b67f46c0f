"""The pages' session, CSRF and permissions, through the app in-process (no browser)."""

from __future__ import annotations

import codecs
import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from service import i18n, report_formats
from service.app import create_app
from service.routes.reports import ALLOCATION_COLUMNS, GRANT_COLUMNS, UNMET_COLUMNS
from service.ui import routes as ui_routes
from shelters import identity, lifecycle, registry, reports
from shelters.cases import create_case, set_separations
from shelters.identity import Principal, Role
from shelters.models import Case, Placement, PlacementRequest, Shelter, Unit, User
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import PASSWORD, TEST_SECRET, World, csrf_of, make_settings
from tests.service.lifecycle_helpers import WOMEN_AND_CHILDREN, request_for


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A cookie-keeping client over https, so that Secure cookies come back."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, user: User, password: str = PASSWORD) -> str:
    token = csrf_of(client)
    response = client.post(
        "/ui/login", data={"username": user.username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_of(client, "/ui/find-bed" if user.role != "funder" else "/ui/reports")


def shelter_with_unit(world: World) -> tuple[Shelter, Unit]:
    shelter = world.shelter()
    unit = registry.create_unit(
        world.db, shelter.id, actor_id=None, name="U", capacity=6, admits=WOMEN_AND_CHILDREN
    )
    return shelter, unit


def test_the_session_cookie_is_httponly_samesite_strict_and_secure(
    browser: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    token = csrf_of(browser)
    response = browser.post(
        "/ui/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    cookie = response.headers["set-cookie"].lower()
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    assert all(part in cookie for part in ("httponly", "samesite=strict", "secure", "path=/ui"))
    assert browser.get("/ui").headers["location"] == "/ui/caseworker"


def test_a_login_starts_a_new_session_with_a_new_csrf_token(
    browser: TestClient, world: World
) -> None:
    before = csrf_of(browser)
    after = log_in(browser, world.user(Role.CASEWORKER))
    assert after != before


def test_pages_send_anonymous_browsers_to_the_login_form(browser: TestClient) -> None:
    response = browser.get("/ui/coordinator")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/coordinator"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: TestClient, world: World, db: Session
) -> None:
    shelter, unit = shelter_with_unit(world)
    log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    form = {"capacity": "9", "out_of_service": "0", "external_occupied": "0", "version": "1"}
    for token in (None, "forged"):
        data = form | ({"csrf_token": token} if token else {})
        response = browser.post(f"/ui/units/{unit.id}", data=data)
        assert response.status_code == 403
    db.refresh(unit)
    assert unit.capacity == 6


def test_login_without_the_form_token_is_refused(browser: TestClient, world: World) -> None:
    user = world.user(Role.CASEWORKER)
    csrf_of(browser)
    response = browser.post("/ui/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "session had expired" in response.text


def test_a_stale_form_does_not_overwrite_a_newer_change(
    browser: TestClient, world: World, db: Session
) -> None:
    shelter, unit = shelter_with_unit(world)
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    form = {"out_of_service": "0", "external_occupied": "0", "version": "1", "csrf_token": token}
    first = browser.post(f"/ui/units/{unit.id}", data=form | {"capacity": "8"})
    assert first.status_code == 303
    stale = browser.post(f"/ui/units/{unit.id}", data=form | {"capacity": "3"})
    assert stale.status_code == 409
    assert "Someone changed this unit meanwhile" in stale.text
    db.refresh(unit)
    assert (unit.capacity, unit.version) == (8, 2)


def test_a_change_that_leaves_too_few_beds_is_refused_with_the_domains_reason(
    browser: TestClient, world: World, db: Session
) -> None:
    shelter, unit = shelter_with_unit(world)
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    form = {"capacity": "6", "out_of_service": "7", "external_occupied": "0", "version": "1"}
    response = browser.post(f"/ui/units/{unit.id}", data=form | {"csrf_token": token})
    assert response.status_code == 409
    assert "1 bed short" in response.text
    db.refresh(unit)
    assert unit.out_of_service == 0


def test_a_coordinator_never_reaches_another_shelters_unit(
    browser: TestClient, world: World, db: Session
) -> None:
    mine, _ = shelter_with_unit(world)
    theirs, unit = shelter_with_unit(world)
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[mine]))
    assert browser.get(f"/ui/units/{unit.id}/edit").status_code == 404
    form = {"capacity": "1", "out_of_service": "0", "external_occupied": "0", "version": "1"}
    assert (
        browser.post(f"/ui/units/{unit.id}", data=form | {"csrf_token": token}).status_code == 404
    )
    page = browser.get("/ui/coordinator").text
    assert mine.name in page
    assert theirs.name not in page
    db.refresh(unit)
    assert unit.capacity == 6


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.CASEWORKER, "/ui/coordinator", 403),
        (Role.FUNDER, "/ui/caseworker", 403),
        (Role.FUNDER, "/ui/find-bed", 403),
        (Role.COORDINATOR, "/ui/reports", 403),
        (Role.FUNDER, "/ui/reports", 200),
    ],
)
def test_each_role_opens_only_its_pages(
    browser: TestClient, world: World, role: Role, path: str, status: int
) -> None:
    token = csrf_of(browser)
    user = world.user(role)
    browser.post(
        "/ui/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    response = browser.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")


def test_a_caseworker_never_sees_another_organisations_case(
    browser: TestClient, world: World
) -> None:
    other = identity.principal_of(world.user(Role.CASEWORKER))
    theirs = create_case(
        world.db,
        other,
        CaseProfile(members=(MemberProfile(ref="A", sex="female", age=40),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    token = log_in(browser, world.user(Role.CASEWORKER))
    assert (
        browser.post(f"/ui/cases/{theirs.id}/check", data={"csrf_token": token}).status_code == 404
    )
    assert (
        browser.post(f"/ui/cases/{theirs.id}/requests", data={"csrf_token": token}).status_code
        == 404
    )
    assert theirs.code not in browser.get("/ui/caseworker").text


def test_a_decline_needs_its_tick_and_a_reason_from_the_fixed_list_on_the_server(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    shelter, placement = held.shelter, held.placement
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    path = f"/ui/placements/{placement.id}/decline"
    page = browser.get("/ui/coordinator").text
    form = page[page.index(f'action="{path}"') :]
    form = form[: form.index("</form>")]
    assert '<option value="" selected disabled>' in form
    assert form.count(" selected") == 1  # only the "Choose a reason" prompt: no reason preselected
    sent = {"csrf_token": token, "confirm": "yes"}
    for refused_form, words in (
        (sent | {"reason": "bored"}, "reason must be one of"),
        (sent, "choose a reason for declining from the list"),
        (sent | {"reason": ""}, "choose a reason for declining from the list"),
        ({"csrf_token": token, "reason": "staffing"}, "tick “Yes, decline this placement”"),
        (sent | {"confirm": "on", "reason": "staffing"}, "tick “Yes, decline this placement”"),
    ):
        refused = browser.post(path, data=refused_form)
        assert refused.status_code == 422, refused_form
        assert words in refused.text, refused_form
        assert f'id="placement-{placement.id}"' in refused.text  # the page, its form again
        assert db.get(Placement, placement.id, populate_existing=True).status == "proposed"  # type: ignore[union-attr]
    russian = browser.post(
        path, data={"csrf_token": token, "reason": "staffing"}, headers={"Accept-Language": "ru"}
    )
    assert russian.status_code == 422
    assert 'role="alert">отметьте «Да, отклонить это размещение»' in russian.text
    declined = browser.post(path, data=sent | {"reason": "staffing"})
    assert declined.status_code == 303
    assert db.get(Placement, placement.id, populate_existing=True).status == "declined"  # type: ignore[union-attr]


def test_wrong_passwords_lock_the_login_as_they_lock_the_api(
    browser: TestClient, world: World
) -> None:
    user = world.user(Role.CASEWORKER)
    token = csrf_of(browser)
    for _ in range(3):  # the test settings lock after 3 failures
        wrong = browser.post(
            "/ui/login",
            data={"username": user.username, "password": "not it at all", "csrf_token": token},
        )
        assert wrong.status_code == 401
        assert "Incorrect username or password." in wrong.text
    locked = browser.post(
        "/ui/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    api = browser.post("/api/v1/auth/token", data={"username": user.username, "password": PASSWORD})
    assert api.status_code == 429


def test_matches_from_the_pages_spend_the_users_api_match_budget(
    world: World, database_url: str, connection: Connection
) -> None:
    app = create_app(make_settings(database_url, match_rate_per_minute=2), bind=connection)
    shelter_with_unit(world)
    user = world.user(Role.CASEWORKER)
    api, headers = TestClient(app), world.headers_for(user)
    requests = [request_for(api, headers) for _ in range(3)]
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as browser:
        token = log_in(browser, user)
        first = browser.post(f"/ui/requests/{requests[0]}/match", data={"csrf_token": token})
        assert first.status_code == 200, first.text
        through_api = api.post(f"/api/v1/placement-requests/{requests[1]}/match", headers=headers)
        assert through_api.status_code == 200
        refused = browser.post(f"/ui/requests/{requests[2]}/match", data={"csrf_token": token})
    assert refused.status_code == 429
    assert "retry later" in refused.text
    pending = world.db.get(PlacementRequest, requests[2], populate_existing=True)
    assert pending is not None
    assert pending.status == "pending"


def test_an_idle_session_ends(browser: TestClient, world: World, app: FastAPI) -> None:
    user = world.user(Role.CASEWORKER)
    log_in(browser, user)
    idle = app.state.ui_settings.idle_minutes * 60

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - idle - 5

    old = URLSafeTimedSerializer(TEST_SECRET, salt="refuge.ui.session", signer=Earlier).dumps(
        {"u": user.id, "c": "x", "s": int(time.time()) - idle - 5}
    )
    browser.cookies.clear()
    browser.cookies.set("refuge_session", old, domain="testserver.local", path="/ui")
    response = browser.get("/ui/caseworker")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login")


def test_logout_ends_the_session(browser: TestClient, world: World) -> None:
    token = log_in(browser, world.user(Role.CASEWORKER))
    response = browser.post("/ui/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?notice=logged_out"
    assert browser.get("/ui/caseworker").status_code == 303


def test_a_disabled_user_is_logged_out_at_once(
    browser: TestClient, world: World, db: Session
) -> None:
    user = world.user(Role.CASEWORKER)
    log_in(browser, user)
    user.is_active = False
    db.flush()
    assert browser.get("/ui/caseworker").status_code == 303


@pytest.mark.parametrize(
    "target", ["https://elsewhere.example/", "//elsewhere.example/", "/api/v1/me"]
)
def test_login_only_returns_to_a_page(browser: TestClient, world: World, target: str) -> None:
    user = world.user(Role.CASEWORKER)
    token = csrf_of(browser)
    response = browser.post(
        "/ui/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token, "next": target},
    )
    assert response.headers["location"] == "/ui"


def test_pages_have_the_page_policy_and_the_api_keeps_its_own(browser: TestClient) -> None:
    page = browser.get("/ui/login").headers["content-security-policy"]
    api = browser.get("/healthz").headers["content-security-policy"]
    assert "script-src 'self'" in page
    assert "form-action 'self'" in page
    assert api == "default-src 'none'; frame-ancestors 'none'"


def test_errors_on_pages_are_pages_and_on_the_api_problem_documents(
    browser: TestClient,
) -> None:
    assert browser.get("/ui/nowhere").headers["content-type"].startswith("text/html")
    assert browser.get("/api/v1/nowhere").headers["content-type"] == "application/problem+json"


def test_a_funder_gets_the_report_charts_and_csv_with_the_page_session(
    browser: TestClient, world: World
) -> None:
    log_in(browser, world.user(Role.FUNDER))
    page = browser.get("/ui/reports?from=2026-01-01&to=2026-01-31").text
    assert 'src="/ui/reports/allocation.svg?from=2026-01-01&amp;to=2026-01-31"' in page
    period = "?from=2026-01-01&to=2026-01-31"
    for chart in ("allocation", "grants", "unmet-demand"):
        # A phone takes the narrow chart, anything wider the wide one.
        assert (
            f'srcset="/ui/reports/{chart}.svg?from=2026-01-01&amp;to=2026-01-31&amp;layout=narrow"'
            in page
        )
        for layout in ("wide", "narrow"):
            svg = browser.get(f"/ui/reports/{chart}.svg{period}&layout={layout}")
            assert svg.status_code == 200
            assert svg.headers["content-type"] == "image/svg+xml"
            assert b"<svg" in svg.content
    # For people: a BOM so a spreadsheet reads UTF-8, headings in words in their language.
    reports = (
        ("allocation", ALLOCATION_COLUMNS),
        ("grants", GRANT_COLUMNS),
        ("unmet-demand", UNMET_COLUMNS),
    )
    for report, columns in reports:
        assert f'href="/ui/reports/{report}.xlsx?' in page
        table = browser.get(f"/ui/reports/{report}.csv{period}", headers={"Accept-Language": "ru"})
        assert table.headers["content-type"].startswith("text/csv")
        assert table.content.startswith(codecs.BOM_UTF8)
        words = report_formats.column_headings(columns, i18n.translations("ru").gettext)
        first = next(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))
        assert first == words
        assert first != list(columns)
        book = browser.get(f"/ui/reports/{report}.xlsx{period}")
        assert book.headers["content-type"] == report_formats.XLSX_MEDIA_TYPE
        sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None
        assert [c.value for c in sheet[1]] == report_formats.column_headings(columns)


def test_a_coordinator_gets_no_report_data_through_the_pages(
    browser: TestClient, world: World
) -> None:
    log_in(browser, world.user(Role.COORDINATOR))
    period = "?from=2026-01-01&to=2026-01-31"
    assert browser.get(f"/ui/reports/allocation.svg{period}").status_code == 403
    assert browser.get(f"/ui/reports/grants.csv{period}").status_code == 403
    assert browser.get(f"/ui/reports/unmet-demand.svg{period}").status_code == 403
    assert browser.get(f"/ui/reports/unmet-demand.xlsx{period}").status_code == 403


@pytest.mark.parametrize(
    ("role", "today", "expected"),
    [
        # A funder: published periods only, the last month of the last ended quarter.
        (
            Role.FUNDER,
            date(2026, 12, 4),
            [
                ("2026-09-01", "2026-09-30"),
                ("2026-07-01", "2026-09-30"),
                ("2025-01-01", "2025-12-31"),
            ],
        ),
        # An admin: the last ended month, quarter, the year so far and the last year.
        (
            Role.ADMIN,
            date(2026, 12, 4),
            [
                ("2026-11-01", "2026-11-30"),
                ("2026-07-01", "2026-09-30"),
                ("2026-01-01", "2026-12-03"),
                ("2025-01-01", "2025-12-31"),
            ],
        ),
        # In January the last ended quarter is last year's fourth.
        (
            Role.FUNDER,
            date(2027, 1, 10),
            [
                ("2026-12-01", "2026-12-31"),
                ("2026-10-01", "2026-12-31"),
                ("2026-01-01", "2026-12-31"),
            ],
        ),
    ],
)
def test_report_presets_offer_the_periods_a_reader_may_ask_for(
    world: World, role: Role, today: date, expected: list[tuple[str, str]]
) -> None:
    principal = identity.principal_of(world.user(role))
    presets = ui_routes.report_presets(principal, today, "ru")
    assert [(p.first.isoformat(), p.last.isoformat()) for p in presets] == expected
    when = [
        reports.period(p.first, p.last, as_of=datetime.combine(today, dt_time(12), UTC))
        for p in presets
    ]
    if role is Role.FUNDER:
        assert all(w.published for w in when)
    assert presets[1].label.startswith(("3-й", "4-й"))


def test_the_reports_page_shows_the_presets_and_marks_the_one_shown(
    browser: TestClient, world: World
) -> None:
    log_in(browser, world.user(Role.FUNDER))
    page = browser.get("/ui/reports").text
    # By default the last ended quarter, which is also a preset.
    assert page.count('aria-current="page"') == 1
    current = page[: page.index('aria-current="page"')]
    assert current[current.rindex("<a ") :].count("current") == 1


def _case_card(page: str, case_id: int) -> str:
    start = page.index(f'id="case-{case_id}"')
    return page[start : page.index("</article>", start)]


@dataclass(frozen=True)
class HeldBed:
    caseworker: User
    coordinator: Principal
    shelter: Shelter
    case: Case
    request: PlacementRequest
    placement: Placement


def held_bed(world: World, db: Session) -> HeldBed:
    """A caseworker's one-woman case with a bed proposed for it, and the shelter's coordinator."""
    shelter, unit = shelter_with_unit(world)
    caseworker_user = world.user(Role.CASEWORKER)
    caseworker = identity.principal_of(caseworker_user)
    coordinator = identity.principal_of(world.user(Role.COORDINATOR, shelters=[shelter]))
    case = create_case(
        db,
        caseworker,
        CaseProfile(members=(MemberProfile(ref="A", sex="female", age=30),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    request = lifecycle.create_request(
        db, caseworker, case_id=case.id, priority=None, preferred_regions=[], majority_age=18
    )
    placement = lifecycle.hold_beds(
        db,
        request,
        shelter_id=shelter.id,
        beds={"A": unit.id},
        ttl=timedelta(hours=1),
        actor_id=caseworker.user_id,
    )
    return HeldBed(caseworker_user, coordinator, shelter, case, request, placement)


def test_a_housed_case_is_offered_no_second_bed_and_a_discharge_is_shown(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    caseworker_user, coordinator, shelter = held.caseworker, held.coordinator, held.shelter
    case, placement = held.case, held.placement
    for action in ("accept", "admit"):
        lifecycle.transition(db, coordinator, placement.id, action)
    token = log_in(browser, caseworker_user)
    ask = f'action="/ui/cases/{case.id}/requests"'
    card = _case_card(browser.get("/ui/caseworker").text, case.id)
    assert ask not in card
    assert f"Placement {placement.id} at {shelter.name}: admitted" in card
    checked = browser.post(f"/ui/cases/{case.id}/check", data={"csrf_token": token})
    assert checked.status_code == 200
    assert ask not in checked.text
    refused = browser.post(f"/ui/cases/{case.id}/requests", data={"csrf_token": token})
    assert refused.status_code == 409
    assert f"placement {placement.id}" in refused.text
    lifecycle.transition(db, coordinator, placement.id, "discharge")
    card = _case_card(browser.get("/ui/caseworker").text, case.id)
    assert f"Placement {placement.id} at {shelter.name}: discharged" in card
    assert ask in card
    assert ask in browser.post(f"/ui/cases/{case.id}/check", data={"csrf_token": token}).text


def test_a_caseworker_lifts_a_decline_from_the_page(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    caseworker_user, coordinator, shelter = held.caseworker, held.coordinator, held.shelter
    case, request, placement = held.case, held.request, held.placement
    lifecycle.transition(db, coordinator, placement.id, "decline", reason="staffing")
    token = log_in(browser, caseworker_user)
    lift = f"/ui/requests/{request.id}/declined-shelters/{shelter.id}/lift"
    card = _case_card(browser.get("/ui/caseworker").text, case.id)
    assert f"Placement {placement.id} at {shelter.name}: declined" in card
    assert f'action="{lift}"' in card
    other = world.user(Role.CASEWORKER)
    with TestClient(browser.app, base_url="https://testserver", follow_redirects=False) as theirs:
        their_token = log_in(theirs, other)
        assert theirs.post(lift, data={"csrf_token": their_token}).status_code == 404
    assert lifecycle.declined_shelters(db, [request.id]) == {request.id: [shelter.id]}
    lifted = browser.post(lift, data={"csrf_token": token})
    assert lifted.status_code == 303
    assert lifecycle.declined_shelters(db, [request.id]) == {request.id: []}
    assert f'action="{lift}"' not in _case_card(browser.get("/ui/caseworker").text, case.id)


@pytest.mark.parametrize("path", ["/ui/units/{id}/edit", "/ui/placements/{id}/accept"])
def test_a_page_id_past_the_storable_range_is_refused_not_a_500(
    browser: TestClient, world: World, path: str
) -> None:
    shelter, _ = shelter_with_unit(world)
    token = log_in(browser, world.user(Role.COORDINATOR, shelters=[shelter]))
    url = path.format(id=2**63 - 1)
    answer = (
        browser.get(url) if url.endswith("/edit") else browser.post(url, data={"csrf_token": token})
    )
    assert 400 <= answer.status_code < 500, answer.text


def test_a_case_named_by_another_as_kept_apart_is_checked_as_matching_would(
    browser: TestClient, world: World, db: Session
) -> None:
    held = held_bed(world, db)
    lifecycle.transition(db, held.coordinator, held.placement.id, "accept")
    caseworker = identity.principal_of(held.caseworker)
    named = create_case(
        db,
        caseworker,
        CaseProfile(members=(MemberProfile(ref="A", sex="female", age=31),)),
        separate_from_case_ids=[],
        majority_age=18,
    )
    # The housed case records the separation; the case checked here records none itself.
    set_separations(db, held.case, [named.id])
    token = log_in(browser, held.caseworker)
    page = browser.post(f"/ui/cases/{named.id}/check", data={"csrf_token": token})
    assert page.status_code == 200, page.text
    assert "Someone this case must be kept apart from is held or housed" in page.text


def test_the_reports_page_offers_fairness_to_funders_and_the_admin_tables_to_admins_only(
    browser: TestClient, world: World
) -> None:
    period = "from=2026-01-01&to=2026-03-31"
    log_in(browser, world.user(Role.FUNDER))
    page = browser.get(f"/ui/reports?{period}").text
    assert (
        'href="/ui/reports/fairness.csv?from=2026-01-01&amp;to=2026-03-31&amp;by=age_band"' in page
    )
    assert "time-to-placement.csv" not in page
    table = browser.get(f"/ui/reports/fairness.csv?{period}&by=sex")
    assert table.status_code == 200
    assert table.content.startswith(codecs.BOM_UTF8)
    assert browser.get(f"/ui/reports/time-to-placement.csv?{period}").status_code == 403
    assert browser.get("/ui/reports/htcds.csv?year=2025").status_code == 403
    browser.cookies.clear()
    log_in(browser, world.user(Role.ADMIN))
    page = browser.get(f"/ui/reports?{period}").text
    assert "/ui/reports/htcds.csv?year=2026" in page
    waits = browser.get(f"/ui/reports/time-to-placement.csv?{period}")
    assert waits.status_code == 200
    assert waits.content.decode("utf-8-sig").startswith("Region,Priority,Requests")
    assert browser.get("/ui/reports/htcds.csv?year=2026").status_code == 200
