"""An admin's day at phone size (390 x 844) in Chromium: a run, a user, a key, webhooks, the map.

With ``REFUGE_README_SCREENSHOTS=1`` the first screen is saved to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import Network, shot
from tests.ui.test_browser import log_in
from tests.ui.test_browser_languages import README_SHOTS

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def tall_phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    context.set_default_timeout(20_000)
    yield context
    context.close()


def _fits_the_width(page: Any) -> None:
    """Nothing on the page is wider than the phone (no sideways scrolling of the page)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"
    )
    assert width <= 390, (width, wide[:5])


def test_admin_runs_a_match_creates_a_user_revokes_a_key_and_reads_webhooks_and_the_map(
    tall_phone: Any, network: Network
) -> None:
    page = log_in(tall_phone, network, "ui-admin")
    page.wait_for_url(f"{network.base}/ui/admin")
    assert page.get_by_role("heading", name="Administration").is_visible()
    _fits_the_width(page)
    shot(page, "admin-first-screen")
    if os.environ.get("REFUGE_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / "admin-first-screen.png"))

    # A run over every pending request, followed on its page until it ends.
    page.get_by_label("Time limit (seconds)").fill("5")
    page.get_by_role("button", name="Match every pending request").click()
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    run_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_role("heading", name=f"Run {run_id}").is_visible()
    page.get_by_text("requests were placed.").wait_for(timeout=30_000)  # after its refreshes
    page.get_by_role("link", name="Back to administration").click()
    assert page.get_by_role("link", name=f"Run {run_id}").is_visible()

    # A new caseworker: the first password is shown once.
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_label("Username", exact=True).fill("ui-new-caseworker")
    page.get_by_label("Role", exact=True).select_option("caseworker")
    page.get_by_label("Organisation (every role but admin)").select_option(label="Case agency")
    page.get_by_role("button", name="Create user").click()
    created = page.locator("#created")
    assert "User ui-new-caseworker created" in created.inner_text()
    password = created.locator(".code").inner_text().strip()
    assert len(password) >= 12
    _fits_the_width(page)
    shot(page, "admin-user-created")
    page.reload()  # shown once: not again
    assert page.locator("#created").count() == 0
    assert password not in page.content()

    # The caseworker's API key: listed without its secret, then revoked.
    user = page.locator("li.card", has_text="ui-caseworker").filter(
        has_not_text="ui-new-caseworker"
    )
    user.get_by_role("link", name="API keys").click()
    key = page.locator(f"#key-{network.key_id}")
    assert "never used" in key.inner_text()
    key.get_by_role("button", name="Revoke this key").click()
    assert page.get_by_role("status").inner_text() == "API key revoked: it no longer works."
    assert "Revoked" in page.locator(f"#key-{network.key_id}").inner_text()
    assert page.locator(f"#key-{network.key_id}").get_by_role("button").count() == 0
    _fits_the_width(page)

    # The webhooks, from the first screen, and the network page.
    page.goto(f"{network.base}/ui/admin")
    page.get_by_role("link", name="Webhook deliveries").click()
    page.wait_for_url(f"{network.base}/ui/webhooks")
    assert page.get_by_role("heading", name="Webhook deliveries").is_visible()
    assert "No webhook endpoints." in page.inner_text("main")
    _fits_the_width(page)
    page.goto(f"{network.base}/ui/admin")
    page.get_by_role("link", name="Across Kazakhstan").last.click()
    page.wait_for_url(f"{network.base}/ui/national")
    row = page.locator("table.national tr", has_text="North Region")
    assert "0 of 3" in row.inner_text()  # the seeded units were all confirmed just now
    shot(page, "admin-national")
