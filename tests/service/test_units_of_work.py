"""A request's unit of work ends in its endpoint's worker thread, with the same outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import deps
from service.app import iter_api_routes
from service.deps import UnitOfWork, UnitOfWorkRoute, WriteDb
from shelters.errors import InvalidInput
from shelters.identity import Role
from shelters.models import Organization
from tests.conftest import World


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each unit of work ended during the test, in order."""
    seen: list[str] = []
    end = UnitOfWork.end

    def spy(self: UnitOfWork, exc: BaseException | None) -> None:
        if not self.ended:
            seen.append("ok" if exc is None else type(exc).__name__)
        end(self, exc)

    monkeypatch.setattr(UnitOfWork, "end", spy)
    return seen


def test_every_route_is_a_unit_of_work_route(app: FastAPI) -> None:
    # A router made without the route class would commit in a second worker thread.
    for context in iter_api_routes(app):
        route = getattr(context, "original_route", context)
        assert isinstance(route, UnitOfWorkRoute), route.path


def test_a_sync_route_commits_in_its_own_worker_thread(
    client: TestClient, world: World, ends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = deps.run_in_threadpool
    handed: list[Any] = []

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        handed.append(func)
        return await run(func, *args, **kwargs)

    monkeypatch.setattr(deps, "run_in_threadpool", counting)
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=4)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    current = client.get(f"/api/v1/units/{unit.id}", headers=headers)
    changed = client.patch(
        f"/api/v1/units/{unit.id}",
        json={"out_of_service": 1},
        headers=headers | {"If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert ends == ["ok", "ok"]
    assert handed == []  # no unit was handed to a thread of its own
    again = client.get(f"/api/v1/units/{unit.id}", headers=headers)
    assert again.json()["out_of_service"] == 1
    assert again.headers["etag"] == changed.headers["etag"]


def test_a_refused_change_is_rolled_back_in_the_endpoints_thread(
    client: TestClient, world: World, ends: list[str]
) -> None:
    shelter = world.shelter()
    unit = world.unit(shelter, capacity=2)
    headers = world.headers(Role.COORDINATOR, shelters=[shelter])
    etag = client.get(f"/api/v1/units/{unit.id}", headers=headers).headers["etag"]
    refused = client.patch(
        f"/api/v1/units/{unit.id}",
        json={"out_of_service": 5, "name": "renamed by a refused change"},
        headers=headers | {"If-Match": etag},
    )
    assert refused.status_code == 409
    assert ends[-1] == "CapacityExceeded"
    after = client.get(f"/api/v1/units/{unit.id}", headers=headers)
    assert after.headers["etag"] == etag
    assert after.json()["name"] == unit.name


def _probe_app(app: FastAPI, *, sync: bool) -> FastAPI:
    """Adds a route that writes an organisation, then fails with ``?fail=...``."""
    router = APIRouter(route_class=UnitOfWorkRoute)

    def write(db: Session, fail: str | None) -> dict[str, int]:
        db.add(Organization(name=f"Probe {'sync' if sync else 'async'} {fail}", kind="ngo"))
        db.flush()
        if fail == "domain":
            raise InvalidInput("probe refused")
        if fail == "anyway":
            error = InvalidInput("probe refused, its write kept")
            error.commit_anyway = True  # as a failed login's counter is kept
            raise error
        return {"ok": 1}

    if sync:

        @router.post("/probe")
        def probe_sync(db: WriteDb, fail: str | None = None) -> dict[str, int]:
            return write(db, fail)

    else:

        @router.post("/probe")
        async def probe_async(db: WriteDb, fail: str | None = None) -> dict[str, int]:
            return write(db, fail)

    app.include_router(router)
    return app


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_commit_rollback_and_commit_anyway_are_kept_by_sync_and_async_routes(
    app: FastAPI, db: Session, sync: bool, ends: list[str]
) -> None:
    with TestClient(_probe_app(app, sync=sync), raise_server_exceptions=False) as client:
        assert client.post("/probe").status_code == 200
        assert client.post("/probe", params={"fail": "domain"}).status_code == 422
        assert client.post("/probe", params={"fail": "anyway"}).status_code == 422
    kind = "sync" if sync else "async"
    names = set(db.scalars(select(Organization.name).where(Organization.name.like("Probe%"))))
    assert names == {f"Probe {kind} None", f"Probe {kind} anyway"}
    assert ends == ["ok", "InvalidInput", "InvalidInput"]
