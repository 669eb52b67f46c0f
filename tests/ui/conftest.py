"""A real ``refuge serve`` on a free loopback port, a fresh migrated database, and Chromium.

The browser is the system's Chromium (Debian package), driven by Playwright without ever
downloading one. Without Chromium the browser tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from service.db import make_engine
from shelters import identity, lifecycle, registry
from shelters.cases import create_case
from shelters.identity import Role
from shelters.models import Organization, Region, Shelter
from shelters.profiles import CaseProfile, MemberProfile
from tests.conftest import (
    create_scratch_database,
    drop_scratch_database,
    migrate,
)
from tests.servers import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "a long enough password"
ADULT_WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
WITH_GUARDIAN = {
    "sexes": ["female", "male", "other"],
    "min_age": 0,
    "max_age": 17,
    "statuses": ["accompanied_child"],
}
GIRLS_ALONE = {
    "sexes": ["female"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}


@dataclass(frozen=True)
class Network:
    """What the seed made: ids the scenarios look for."""

    base: str
    coordinated_shelter: str
    other_shelter: str
    unit_id: int
    proposal_id: int
    key_id: int  # an API key of ui-caseworker's, for the admin to revoke


SHELTER_NAMES = {
    "Steppe House": {"kk": "Дала үйі", "ru": "Степной дом"},
    "River House": {"kk": "Өзен үйі", "ru": "Речной дом"},
}
"""The seeded shelters' own names in Kazakh and Russian (English pages show ``name``)."""


def seed(url: str) -> dict[str, Any]:
    """Two shelters of one NGO, a coordinator of the first, a caseworker with an API key, a
    funder, an admin, a proposal."""
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(
            Region(
                code="ui-north",
                name="North Region",
                names={"kk": "Солтүстік өңір", "ru": "Северный регион"},
                lat=53.0,
                lon=70.0,
            )
        )
        ngo = Organization(name="Shelter NGO", kind="ngo")
        agency = Organization(name="Case agency", kind="state")
        funder = Organization(name="Fund", kind="funder")
        session.add_all([ngo, agency, funder])
        session.flush()
        first = Shelter(
            organization_id=ngo.id,
            name="Steppe House",
            names=dict(SHELTER_NAMES["Steppe House"]),
            region_code="ui-north",
            locality="Town A",
        )
        second = Shelter(
            organization_id=ngo.id,
            name="River House",
            names=dict(SHELTER_NAMES["River House"]),
            region_code="ui-north",
            locality="Town B",
        )
        session.add_all([first, second])
        session.flush()
        mothers = registry.create_unit(
            session,
            first.id,
            actor_id=None,
            name="Mothers and children",
            capacity=8,
            admits=[ADULT_WOMEN, WITH_GUARDIAN],
        )
        registry.create_unit(
            session, first.id, actor_id=None, name="Girls", capacity=4, admits=[GIRLS_ALONE]
        )
        registry.create_unit(
            session,
            second.id,
            actor_id=None,
            name="Women with children",
            capacity=6,
            admits=[ADULT_WOMEN, WITH_GUARDIAN],
        )
        identity.create_user(
            session,
            username="ui-coordinator",
            password=PASSWORD,
            role=Role.COORDINATOR,
            organization_id=ngo.id,
            shelter_ids=[first.id],
        )
        caseworker = identity.create_user(
            session,
            username="ui-caseworker",
            password=PASSWORD,
            role=Role.CASEWORKER,
            organization_id=agency.id,
        )
        identity.create_user(
            session,
            username="ui-funder",
            password=PASSWORD,
            role=Role.FUNDER,
            organization_id=funder.id,
        )
        identity.create_user(
            session,
            username="ui-admin",
            password=PASSWORD,
            role=Role.ADMIN,
            organization_id=None,
        )
        key, _ = identity.issue_api_key(session, caseworker.id)
        principal = identity.principal_of(caseworker)
        case = create_case(
            session,
            principal,
            CaseProfile(
                members=(
                    MemberProfile(ref="A", sex="female", age=31),
                    MemberProfile(ref="B", sex="male", age=6, guardian_ref="A"),
                )
            ),
            separate_from_case_ids=[],
            majority_age=18,
        )
        request = lifecycle.create_request(
            session,
            principal,
            case_id=case.id,
            priority=None,
            preferred_regions=[],
            majority_age=18,
        )
        proposal = lifecycle.hold_beds(
            session,
            request,
            shelter_id=first.id,
            beds={"A": mothers.id, "B": mothers.id},
            ttl=timedelta(hours=24),
            actor_id=caseworker.id,
        )
        ids = {"unit_id": mothers.id, "proposal_id": proposal.id, "key_id": key.id}
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def network(server_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A served, seeded database of its own for this module's browser scenarios."""
    tmp = tmp_path_factory.mktemp("ui")
    url = create_scratch_database(server_url) if server_url else f"sqlite:///{tmp / 'ui.db'}"
    try:
        migrate(url)
        ids = seed(url)
        with serve(url, tmp / "serve.log") as base:
            yield Network(
                base=base,
                coordinated_shelter="Steppe House",
                other_shelter="River House",
                **ids,
            )
    finally:
        if server_url:
            drop_scratch_database(server_url, url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless system Chromium; skipped without it unless CI=true."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        message = "Chromium is not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": the browser tests are mandatory under CI=true")
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh 360-px-wide browser context (its own cookies)."""
    context = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2)
    context.set_default_timeout(20_000)
    yield context
    context.close()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
