"""The principal cache (PostgreSQL): kept while nothing changes, forgotten as soon as it does.

The rules are tried first on the cache alone, then through a real app on a database of its
own (its writes must really commit: notices are delivered at commit), with every change made
the way an administrator's would be, in another transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from service.app import create_app
from service.db import make_engine
from service.principals import APPLICATION_NAME, PrincipalCache
from shelters.identity import Principal, Role
from tests.conftest import World, make_settings


def principal(user_id: int, role: Role = Role.COORDINATOR) -> Principal:
    return Principal(
        user_id=user_id,
        username=f"user-{user_id}",
        role=role,
        organization_id=1,
        shelter_ids=frozenset({1}),
    )


@pytest.fixture
def listening_cache() -> PrincipalCache:
    cache = PrincipalCache({}, max_age_s=60)
    cache._set_listening(True)  # as the listener does once LISTEN succeeded
    return cache


def test_nothing_is_kept_or_given_while_not_listening() -> None:
    cache = PrincipalCache({}, max_age_s=60)
    cache.put(principal(1), cache.generation)
    assert cache.get(1) is None


def test_a_lookup_is_kept_and_given_back(listening_cache: PrincipalCache) -> None:
    listening_cache.put(principal(1), listening_cache.generation)
    assert listening_cache.get(1) == principal(1)
    assert listening_cache.get(2) is None


def test_a_notice_forgets_its_user_only(listening_cache: PrincipalCache) -> None:
    for user_id in (1, 2):
        listening_cache.put(principal(user_id), listening_cache.generation)
    listening_cache.forget(1)
    assert listening_cache.get(1) is None
    assert listening_cache.get(2) == principal(2)
    listening_cache.forget(None)  # a TRUNCATE: everyone
    assert listening_cache.get(2) is None


def test_a_lookup_that_overlapped_a_notice_is_not_kept(listening_cache: PrincipalCache) -> None:
    before = listening_cache.generation
    listening_cache.forget(7)  # arrives while the lookup of user 1 runs
    listening_cache.put(principal(1), before)
    assert listening_cache.get(1) is None


def test_losing_the_listener_forgets_everything(listening_cache: PrincipalCache) -> None:
    listening_cache.put(principal(1), listening_cache.generation)
    listening_cache._set_listening(False)
    listening_cache._set_listening(True)  # listening again: notices may have been missed
    assert listening_cache.get(1) is None


def test_nothing_is_used_past_its_age() -> None:
    cache = PrincipalCache({}, max_age_s=0)
    cache._set_listening(True)
    cache.put(principal(1), cache.generation)
    time.sleep(0.01)
    assert cache.get(1) is None


def test_sqlite_and_a_zero_age_keep_no_cache(fresh_database: str, is_postgres: bool) -> None:
    app = create_app(make_settings(fresh_database, principal_cache_s=0))
    with TestClient(app):
        assert app.state.principals is None
    if not is_postgres:
        app = create_app(make_settings(fresh_database))
        with TestClient(app):
            assert app.state.principals is None


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    engine: Engine
    cache: PrincipalCache
    user_id: int
    unit_id: int
    headers: dict[str, str]
    lookups: Callable[[], int]


@pytest.fixture
def served(fresh_database: str, is_postgres: bool) -> Iterator[Served]:
    if not is_postgres:
        pytest.skip("the principal cache listens to PostgreSQL's notices; SQLite has none")
    settings = make_settings(fresh_database, principal_cache_s=3600)
    engine = make_engine(fresh_database)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        world = World(session, settings)
        shelter = world.shelter()
        unit = world.unit(shelter)
        user = world.user(Role.COORDINATOR, shelters=[shelter])
        headers = world.headers_for(user)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        cache: PrincipalCache = app.state.principals
        assert cache.wait_listening(10)
        seen: list[str] = []
        event.listen(
            app.state.sessions.bind,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: seen.append(statement),
        )
        yield Served(
            app,
            client,
            engine,
            cache,
            user.id,
            unit.id,
            headers,
            lambda: sum(1 for s in seen if "FROM users" in s),
        )
    engine.dispose()


def eventually(check: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_caller_is_looked_up_once_then_kept(served: Served) -> None:
    for _ in range(3):
        response = served.client.get(f"/api/v1/units/{served.unit_id}", headers=served.headers)
        assert response.status_code == 200, response.text
    assert served.lookups() == 1


def test_a_disabled_user_is_refused_without_waiting_for_the_cache_to_age(
    served: Served,
) -> None:
    read = lambda: served.client.get(f"/api/v1/units/{served.unit_id}", headers=served.headers)  # noqa: E731
    assert read().status_code == 200
    assert served.cache.get(served.user_id) is not None
    with served.engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": served.user_id}
        )
    assert eventually(lambda: served.cache.get(served.user_id) is None)
    assert read().status_code == 401


def test_a_rolled_back_change_forgets_nothing(served: Served) -> None:
    assert served.client.get("/api/v1/me", headers=served.headers).status_code == 200
    with served.engine.connect() as conn, conn.begin() as transaction:
        conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": served.user_id}
        )
        transaction.rollback()
    # A notice of another user's change after it: once that one is heard, ours would have been.
    # The generation is read before that change commits: its notice may be heard at once.
    generation = served.cache.generation
    with Session(served.engine) as session, session.begin():
        other = World(session, make_settings(str(served.engine.url))).user(Role.FUNDER)
        session.flush()
        session.execute(text("UPDATE users SET is_active = true WHERE id = :u"), {"u": other.id})
    assert eventually(lambda: served.cache.generation > generation)
    assert served.cache.get(served.user_id) is not None


def test_a_coordinator_taken_off_a_shelter_loses_its_units_at_once(served: Served) -> None:
    path = f"/api/v1/units/{served.unit_id}"
    assert served.client.get(path, headers=served.headers).status_code == 200
    with served.engine.begin() as conn:
        conn.execute(text("DELETE FROM user_shelters WHERE user_id = :u"), {"u": served.user_id})
    assert eventually(lambda: served.cache.get(served.user_id) is None)
    assert served.client.get(path, headers=served.headers).status_code == 404


def test_a_lost_listener_means_every_caller_is_looked_up_until_it_listens_again(
    served: Served,
) -> None:
    path = f"/api/v1/units/{served.unit_id}"
    assert served.client.get(path, headers=served.headers).status_code == 200
    generation = served.cache.generation
    with served.engine.begin() as conn:
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": APPLICATION_NAME},
        ).all()
    assert ended == [(True,)]
    # Forgotten when lost (and again when it listens anew); looked up meanwhile.
    assert eventually(lambda: served.cache.generation > generation)
    assert served.cache.get(served.user_id) is None
    before = served.lookups()
    assert served.client.get(path, headers=served.headers).status_code == 200
    assert served.lookups() == before + 1
    assert eventually(lambda: served.cache.listening)
    assert served.client.get(path, headers=served.headers).status_code == 200
    assert served.client.get(path, headers=served.headers).status_code == 200
    assert eventually(lambda: served.cache.get(served.user_id) is not None)


def test_api_keys_are_always_looked_up(served: Served) -> None:
    response = served.client.post(
        f"/api/v1/users/{served.user_id}/api-keys", headers=served.headers, json={}
    )
    assert response.status_code == 201, response.text
    key = {"Authorization": f"Bearer {response.json()['token']}"}

    def reads_of_users(headers: dict[str, str]) -> int:
        before = served.lookups()
        assert served.client.get("/api/v1/me", headers=headers).status_code == 200
        return served.lookups() - before

    by_token = reads_of_users(served.headers)  # kept since the POST
    assert reads_of_users(key) == reads_of_users(key) == by_token + 1


def test_disabling_through_the_api_reaches_the_cache_and_stops_token_and_key(
    served: Served,
) -> None:
    key = served.client.post(f"/api/v1/users/{served.user_id}/api-keys", headers=served.headers)
    assert key.status_code == 201, key.text
    key_headers = {"Authorization": f"Bearer {key.json()['token']}"}
    with Session(served.engine, expire_on_commit=False) as session, session.begin():
        world = World(session, make_settings(str(served.engine.url)))
        admin = world.headers(Role.ADMIN)
    path = f"/api/v1/units/{served.unit_id}"
    assert served.client.get(path, headers=served.headers).status_code == 200
    assert served.cache.get(served.user_id) is not None
    disabled = served.client.post(f"/api/v1/users/{served.user_id}/disable", headers=admin)
    assert disabled.status_code == 200, disabled.text
    # The trigger's notice arrives within milliseconds of the commit.
    assert eventually(lambda: served.cache.get(served.user_id) is None)
    assert served.client.get(path, headers=served.headers).status_code == 401
    assert served.client.get(path, headers=key_headers).status_code == 401
    enabled = served.client.post(f"/api/v1/users/{served.user_id}/enable", headers=admin)
    assert enabled.status_code == 200
    assert served.client.get(path, headers=key_headers).status_code == 200
