"""Test fixtures: a database made by Alembic, one rolled-back transaction per test.

The engine is chosen by ``REFUGE_TEST_DATABASE_URL``: unset, a SQLite file in a temporary
folder; a PostgreSQL URL, a fresh database created on that server for this run and dropped after
it. Tests that only make sense on PostgreSQL are marked ``postgres`` and skip on SQLite.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from migrations import alembic_config
from service.app import create_app
from service.auth import issue_token
from service.db import make_engine
from service.settings import Settings
from shelters import identity
from shelters.identity import Role
from shelters.models import Organization, Region, Shelter, Unit

TEST_SECRET = secrets.token_urlsafe(48)
PASSWORD = "correct horse battery staple"


def _server_url() -> str | None:
    url = os.environ.get("REFUGE_TEST_DATABASE_URL")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url or None


def create_scratch_database(server_url: str) -> str:
    """Create an empty PostgreSQL database beside ``server_url``'s and return its URL."""
    name = f"refuge_t_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(server_url: str, url: str) -> None:
    """Drop a database made by ``create_scratch_database``."""
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str) -> None:
    """Run every Alembic migration against ``url``."""
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    engine.dispose()


# A test reaches the engine under test only through one of these fixtures (directly or through
# another fixture, such as ``db``, ``client`` or ``world``); a test that uses none of them runs
# the same code whatever REFUGE_TEST_DATABASE_URL says (the solver, pure functions, CLI commands
# on their own SQLite files).
ENGINE_FIXTURES = frozenset({"server_url", "database_url", "fresh_database"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite, skip PostgreSQL-only tests, saying how to run them; on PostgreSQL, run only the
    tests that reach the database (the others ran, unchanged, in the SQLite run)."""
    if _server_url() is not None:
        if os.environ.get("REFUGE_TEST_ALL_ON_POSTGRES") == "1":
            return
        engine_free = [item for item in items if not ENGINE_FIXTURES & set(item.fixturenames)]
        if engine_free:
            config.hook.pytest_deselected(items=engine_free)
            kept = set(map(id, engine_free))
            items[:] = [item for item in items if id(item) not in kept]
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL only: set REFUGE_TEST_DATABASE_URL=postgresql://user@host/db "
        "(make test does when a server is reachable)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def server_url() -> str | None:
    """The PostgreSQL server URL under test, or None on a SQLite run."""
    return _server_url()


@pytest.fixture(scope="session")
def is_postgres(server_url: str | None) -> bool:
    return server_url is not None


@pytest.fixture
def fresh_database(server_url: str | None, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own, for tests that must really commit (concurrency)."""
    if server_url is None:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        migrate(url)
        yield url
        return
    url = create_scratch_database(server_url)
    try:
        migrate(url)
        yield url
    finally:
        drop_scratch_database(server_url, url)


@pytest.fixture(scope="session")
def database_url(server_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if server_url is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate(url)
        yield url
        return
    url = create_scratch_database(server_url)
    try:
        migrate(url)
        yield url
    finally:
        drop_scratch_database(server_url, url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session for arranging data; its writes are visible to the app under test."""
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test app."""
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "login_max_failures": 3,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: Settings, connection: Connection) -> FastAPI:
    return create_app(settings, bind=connection)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


class World:
    """Builds organisations, shelters and users for a test and hands out auth headers."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def region(self, code: str = "astana", lat: float = 51.2, lon: float = 71.4) -> Region:
        region = self.db.get(Region, code)
        if region is None:
            region = Region(code=code, name=code.title(), lat=lat, lon=lon)
            self.db.add(region)
            self.db.flush()
        return region

    def organization(self, kind: str = "ngo") -> Organization:
        org = Organization(name=f"Test org {secrets.token_hex(4)}", kind=kind)
        self.db.add(org)
        self.db.flush()
        return org

    def shelter(self, org: Organization | None = None, **fields: object) -> Shelter:
        region = self.region()
        values: dict[str, object] = {
            "organization_id": (org or self.organization()).id,
            "name": f"Test shelter {secrets.token_hex(4)}",
            "region_code": region.code,
            "locality": "Test locality",
            "address": "Confidential test address",
            "lat": region.lat,
            "lon": region.lon,
            "services": [],
            "languages": ["kk", "ru"],
        }
        values.update(fields)
        shelter = Shelter(**values)
        self.db.add(shelter)
        self.db.flush()
        return shelter

    def unit(self, shelter: Shelter, capacity: int = 4, **fields: object) -> Unit:
        unit = Unit(
            shelter_id=shelter.id, name=f"Unit {secrets.token_hex(3)}", capacity=capacity, **fields
        )
        self.db.add(unit)
        self.db.flush()
        return unit

    def user(
        self,
        role: Role,
        org: Organization | None = None,
        shelters: list[Shelter] | None = None,
    ) -> identity.User:
        if org is None and role is not Role.ADMIN:
            org = self.organization("funder" if role is Role.FUNDER else "ngo")
        return identity.create_user(
            self.db,
            username=f"{role.value}-{secrets.token_hex(4)}",
            password=PASSWORD,
            role=role,
            organization_id=org.id if org else None,
            shelter_ids=[s.id for s in shelters or []],
        )

    def headers_for(self, user: identity.User) -> dict[str, str]:
        token, _ = issue_token(self.settings, TEST_SECRET, user)
        return {"Authorization": f"Bearer {token}"}

    def headers(self, role: Role, **kwargs: object) -> dict[str, str]:
        return self.headers_for(self.user(role, **kwargs))  # type: ignore[arg-type]


@pytest.fixture
def world(db: Session, settings: Settings) -> World:
    return World(db, settings)


@pytest.fixture
def as_role(world: World) -> Callable[[Role], dict[str, str]]:
    """Auth headers for a new user of a role."""
    return lambda role: world.headers(role)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/ui/login") -> str:
    """The CSRF token of the web page at ``path``, as a browser would find it."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    found = CSRF.search(response.text)
    assert found is not None
    return found.group(1)
