"""A caseworker's day at phone size (390 x 844) in Chromium: a family of six, a chosen shelter.

With ``REFUGE_README_SCREENSHOTS=1`` the first screen is saved to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import Network, shot
from tests.ui.test_browser import log_in
from tests.ui.test_browser_languages import README_SHOTS

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

# A mother and her five children: more people than the form's first rows.
FAMILY = [
    ("female", "34"),
    ("female", "12"),
    ("male", "9"),
    ("male", "7"),
    ("female", "4"),
    ("male", "1"),
]


@pytest.fixture
def tall_phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    context.set_default_timeout(20_000)
    yield context
    context.close()


def test_caseworker_enters_a_family_of_six_and_asks_for_a_shelter_of_their_choice(
    tall_phone: Any, network: Network
) -> None:
    page = log_in(tall_phone, network, "ui-caseworker")
    page.wait_for_url(f"{network.base}/ui/caseworker")
    page.get_by_role("link", name="New case").click()
    page.wait_for_url(f"{network.base}/ui/cases/new")
    for _ in range(len(FAMILY) - 4):
        page.get_by_role("button", name="Add another person").click()
    for i, (sex, age) in enumerate(FAMILY):
        ref = "ABCDEF"[i]
        page.get_by_label(f"Member {ref}: sex").select_option(sex)
        page.get_by_label(f"Member {ref}: age", exact=True).fill(age)
        if i:
            page.get_by_label(f"Member {ref}: guardian").select_option("A")
    page.get_by_label("Would like: Education").check()
    page.get_by_label("Would like: Child psychologist").check()
    page.get_by_label("Current region").select_option("ui-north")
    page.get_by_label("Request a bed now").check()
    page.get_by_label("Priority").select_option("5")
    page.get_by_label("Preferred: North Region").check()
    shot(page, "case-new-family")
    page.get_by_role("button", name="Create case").click()
    assert page.get_by_role("status").inner_text().startswith("Case created and a bed requested")
    card = page.locator("#" + page.url.rsplit("#", 1)[1])
    assert "F: male, 1, child with a guardian in the group" in card.inner_text()
    assert "Waiting for a match" in card.inner_text()
    assert page.locator("article.case").first.inner_text() == card.inner_text()  # priority 5

    card.get_by_role("button", name="Find a bed").click()
    chosen = page.locator("article.eligible", has_text=network.other_shelter)
    assert "6 free beds" in chosen.locator(".free-beds").inner_text()
    assert "km away" in chosen.locator(".distance").inner_text()
    shot(page, "find-bed-family")
    chosen.get_by_role("button", name="Ask for this shelter").click()
    assert f"Beds held at {network.other_shelter}" in page.get_by_role("status").inner_text()

    page.get_by_role("link", name="Back to cases").click()
    card = page.locator("article.case").first
    assert f"Proposed at {network.other_shelter}, beds held until" in card.inner_text()
    page.goto(f"{network.base}/ui/caseworker")  # the first screen from its top
    shot(page, "caseworker-first-screen")
    if os.environ.get("REFUGE_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / "caseworker-first-screen.png"))
