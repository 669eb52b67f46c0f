"""Coordinators and caseworkers use the pages in a real (headless) Chromium at 360 px wide."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.ui.conftest import PASSWORD, Network, shot

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def log_in(context: Any, network: Network, username: str) -> Any:
    page = context.new_page()
    page.goto(f"{network.base}/ui")
    assert page.url.startswith(f"{network.base}/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def test_login_page_refuses_a_wrong_password(phone: Any, network: Network) -> None:
    page = phone.new_page()
    page.goto(f"{network.base}/ui/login")
    shot(page, "login")
    page.get_by_label("Username").fill("ui-coordinator")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Incorrect username or password."


def test_coordinator_changes_beds_meets_a_stale_edit_and_accepts_a_proposal(
    phone: Any, network: Network
) -> None:
    page = log_in(phone, network, "ui-coordinator")
    page.wait_for_url(f"{network.base}/ui/coordinator")
    assert page.get_by_role("heading", name=network.coordinated_shelter, exact=True).is_visible()
    assert page.get_by_text(network.other_shelter).count() == 0  # not their shelter
    shot(page, "coordinator")

    unit = page.locator(f"#unit-{network.unit_id}")
    assert unit.locator(".available dd").inner_text() == "6"  # 8 beds, 2 held by the proposal
    unit.get_by_role("link", name=re.compile("Edit beds")).click()
    page.get_by_label("External occupied").fill("1")
    shot(page, "unit-edit")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Beds saved."
    assert unit.locator(".available dd").inner_text() == "5"

    # Two open forms of the same unit: the second save must not overwrite the first.
    edit = f"{network.base}/ui/units/{network.unit_id}/edit"
    old_form = phone.new_page()
    old_form.goto(edit)
    page.goto(edit)
    page.get_by_label("Out of service").fill("2")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Beds saved."
    old_form.get_by_label("Capacity (beds)").fill("10")
    old_form.get_by_role("button", name="Save").click()
    alert = old_form.get_by_role("alert")
    assert "Someone changed this unit meanwhile" in alert.inner_text()
    assert old_form.get_by_label("Out of service").input_value() == "2"
    assert old_form.get_by_label("Capacity (beds)").input_value() == "8"
    shot(old_form, "unit-stale")

    page.goto(f"{network.base}/ui/coordinator")
    assert unit.locator(".available dd").inner_text() == "3"  # 8 - 2 out - 1 external - 2 held
    proposal = page.locator(f"#placement-{network.proposal_id}")
    assert "Proposed" in proposal.inner_text()
    proposal.get_by_role("button", name="Accept").click()
    assert page.get_by_role("status").inner_text().startswith("Placement accepted")
    assert "Accepted" in page.locator(f"#placement-{network.proposal_id}").inner_text()
    assert (
        page.locator(f"#placement-{network.proposal_id}")
        .get_by_role("button", name="Admit")
        .is_visible()
    )
    shot(page, "coordinator-accepted")


def test_caseworker_creates_a_case_finds_a_bed_and_gets_a_match(
    phone: Any, network: Network
) -> None:
    page = log_in(phone, network, "ui-caseworker")
    page.wait_for_url(f"{network.base}/ui/caseworker")
    page.get_by_role("link", name="New case").click()
    page.get_by_label("Member A: sex").select_option("female")
    page.get_by_label("Member A: age").fill("15")
    shot(page, "caseworker")
    page.get_by_role("button", name="Create case").click()
    assert page.get_by_role("status").inner_text() == "Case created."
    card = "#" + page.url.rsplit("#", 1)[1]  # the new case's card (the list is most urgent first)
    case = page.locator(card)
    assert "A: female, 15, unaccompanied minor" in case.inner_text()

    case.get_by_role("button", name="Find a bed").click()
    eligible = page.locator("article.eligible")
    assert eligible.count() == 1
    assert network.coordinated_shelter in eligible.inner_text()
    refused = page.locator("article.ineligible", has_text=network.other_shelter)
    assert "No unit there admits member A (female, 15, unaccompanied minor)." in (
        refused.inner_text()
    )
    shot(page, "find-bed")

    page.get_by_role("button", name="Request a bed").click()
    assert page.get_by_role("status").inner_text().startswith("Request created")
    page.locator(card).get_by_role("button", name="Match now").click()
    held = page.get_by_role("status").inner_text()
    assert f"Beds held at {network.coordinated_shelter}" in held
    assert "Member A (female, 15, unaccompanied minor) → Girls" in page.inner_text("main")
    shot(page, "match")


def test_pages_carry_the_strict_content_security_policy(network: Network) -> None:
    page = httpx.get(f"{network.base}/ui/login")
    api = httpx.get(f"{network.base}/healthz")
    assert page.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'"
    )
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_funder_sees_the_report_charts_and_downloads_csv_and_xlsx(
    phone: Any, network: Network
) -> None:
    page = log_in(phone, network, "ui-funder")
    page.wait_for_url(f"{network.base}/ui/reports")
    charts = page.locator("img.chart")
    assert charts.count() == 3
    page.wait_for_load_state("load")
    widths = charts.evaluate_all("images => images.map(i => i.complete && i.naturalWidth)")
    assert all(width and width > 0 for width in widths), widths
    # A phone gets the narrow charts, and nothing on the page scrolls sideways.
    sources = charts.evaluate_all("images => images.map(i => i.currentSrc)")
    assert all("layout=narrow" in source for source in sources), sources
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # One tap for another period: the last ended quarter is shown, the month is a tap away.
    presets = page.get_by_role("navigation", name="Report periods").get_by_role("link")
    assert presets.count() >= 3
    current = page.locator('.presets a[aria-current="page"]')
    assert current.count() == 1
    month = presets.first
    month_href = month.get_attribute("href")
    month.click()
    page.wait_for_url(network.base + month_href)
    assert page.locator('.presets a[aria-current="page"]').inner_text() == month.inner_text()
    period = month_href.split("?", 1)[1]
    assert period in page.locator("img.chart").first.evaluate("i => i.currentSrc")
    link = page.get_by_role("link", name="Download grants (CSV)")
    response = page.request.get(network.base + link.get_attribute("href"))
    assert response.status == 200
    # For a spreadsheet: a BOM, then the headings in words (English here).
    assert response.body().startswith(b"\xef\xbb\xbfGrant number,")
    book = page.get_by_role("link", name="Download grants (Excel)")
    spreadsheet = page.request.get(network.base + book.get_attribute("href"))
    assert spreadsheet.status == 200
    assert spreadsheet.body().startswith(b"PK")  # an .xlsx is a zip archive
    shot(page, "reports")
