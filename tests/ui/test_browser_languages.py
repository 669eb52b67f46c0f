"""The coordinator's and caseworker's main flows in Kazakh and in Russian, in Chromium at 360 px.

A coordinator chooses Kazakh on the settings page; a caseworker's browser asks for Russian
(``Accept-Language: ru-RU``). Screenshots go to test-artifacts/; with
``REFUGE_README_SCREENSHOTS=1`` also to docs/screenshots/ for the README (not on every run, so
that a test run leaves the work tree clean).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import PASSWORD, SHELTER_NAMES, Network, shot

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def readme_shot(page: Any, name: str) -> None:
    """A full screenshot in test-artifacts; when asked, the visible 360 by 780 px for the README."""
    shot(page, name)
    if os.environ.get("REFUGE_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"))


@pytest.fixture
def phone_in(browser: Any) -> Any:
    contexts: list[Any] = []

    def make(locale: str) -> Any:
        context = browser.new_context(
            viewport={"width": 360, "height": 780}, device_scale_factor=2, locale=locale
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def test_coordinator_chooses_kazakh_and_accepts_a_proposal(phone_in: Any, network: Network) -> None:
    page = phone_in("en-US").new_page()
    page.goto(f"{network.base}/ui/login")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("Username").fill("ui-coordinator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{network.base}/ui/coordinator")

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Language").select_option("kk")
    page.get_by_role("button", name="Save").click()
    assert page.locator("html").get_attribute("lang") == "kk"
    assert page.get_by_role("status").inner_text() == "Баптаулар сақталды."

    page.get_by_role("link", name="Төсек-орындар").click()
    assert page.get_by_role("heading", name="Менің баспаналарым").is_visible()
    unit = page.locator(f"#unit-{network.unit_id}")
    assert "Сыйымдылық" in unit.inner_text()
    unit.get_by_role("link", name=re.compile("төсек-орындарын өзгерту")).click()
    page.get_by_label("Жүйеден тыс бос емес").fill("1")
    page.get_by_role("button", name="Сақтау").click()
    assert page.get_by_role("status").inner_text() == "Төсек-орындар сақталды."

    page.goto(f"{network.base}/ui/coordinator")  # from the top, for the README
    proposal = page.locator(f"#placement-{network.proposal_id}")
    text = proposal.inner_text()
    assert "Ұсынылған" in text
    assert "дейін брондалған" in text  # the hold's expiry, in Almaty time
    assert "UTC" not in text
    assert "топта қамқоршысы бар бала" in text
    readme_shot(page, "coordinator-kk")
    proposal.get_by_role("button", name="Келісу").click()
    assert page.get_by_role("status").inner_text().startswith("Орналастыруға келісілді")
    assert "Келісілген" in page.locator(f"#placement-{network.proposal_id}").inner_text()


def test_caseworker_in_russian_creates_a_case_finds_a_bed_and_gets_a_match(
    phone_in: Any, network: Network
) -> None:
    page = phone_in("ru-RU").new_page()
    page.goto(f"{network.base}/ui")
    assert page.locator("html").get_attribute("lang") == "ru"
    page.get_by_label("Имя пользователя").fill("ui-caseworker")
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.wait_for_url(f"{network.base}/ui/caseworker")

    page.get_by_role("link", name="Новый случай").click()
    page.get_by_label("Член группы A: пол").select_option("female")
    page.get_by_label("Член группы A: возраст").fill("15")
    page.get_by_role("button", name="Создать случай").click()
    assert page.get_by_role("status").inner_text() == "Случай создан."
    card = "#" + page.url.rsplit("#", 1)[1]  # the new case's card (the list is most urgent first)
    case = page.locator(card)
    assert "A: женский, 15, несопровождаемый несовершеннолетний" in case.inner_text()

    case.get_by_role("button", name="Найти место").click()
    eligible = page.locator("article.eligible")
    assert eligible.count() == 1
    assert SHELTER_NAMES[network.coordinated_shelter]["ru"] in eligible.inner_text()
    refused = page.locator(
        "article.ineligible", has_text=SHELTER_NAMES[network.other_shelter]["ru"]
    )
    assert (
        "Ни одно отделение там не принимает: член группы A (женский, 15, "
        "несопровождаемый несовершеннолетний)." in refused.inner_text()
    )

    page.get_by_role("button", name="Запросить место").click()
    assert page.get_by_role("status").inner_text().startswith("Заявка создана")
    page.locator(card).get_by_role("button", name="Подобрать сейчас").click()
    held = page.get_by_role("status").inner_text()
    assert (
        f"Места зарезервированы в приюте «{SHELTER_NAMES[network.coordinated_shelter]['ru']}»"
        in held
    )
    assert "UTC" not in held
    assert "Член группы A (женский, 15, несопровождаемый несовершеннолетний) → Girls" in (
        page.inner_text("main")
    )
    readme_shot(page, "caseworker-ru")
