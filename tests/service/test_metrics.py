"""``GET /metrics``: off without a token, refused without the right one, and what a scraper reads.

Every scrape is parsed by prometheus-client's own text parser, so a malformed exposition fails
here as it would in Prometheus. Counters are process-wide and other tests add to them: the
assertions compare a scrape before and after.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from service.app import create_app
from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.models import Placement, Unit, utcnow
from tests.conftest import TEST_SECRET, World, make_settings
from tests.servers import serve
from tests.service.lifecycle_helpers import MOTHER_AND_CHILD, WOMEN_AND_CHILDREN, match, request_for

TOKEN = "a-scraper-token-for-tests-only"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def app(database_url: str, connection: Connection) -> FastAPI:
    return create_app(make_settings(database_url, metrics_token=TOKEN), bind=connection)


def scrape(client: TestClient | httpx.Client, path: str = "/metrics") -> Samples:
    response = client.get(path, headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_without_a_token(db: Session, database_url: str) -> None:
    with TestClient(create_app(make_settings(database_url), bind=db.connection())) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers=SCRAPER).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
def test_a_scrape_without_the_token_is_refused(
    client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert "refuge_" not in response.text


def test_a_users_token_does_not_open_the_metrics(client: TestClient, world: World) -> None:
    admin = world.headers(Role.ADMIN)
    assert client.get("/metrics", headers=admin).status_code == 401


def test_requests_are_counted_by_route_template_never_by_id(
    client: TestClient, world: World
) -> None:
    admin = world.headers(Role.ADMIN)
    shelter = world.shelter()
    route = "/api/v1/shelters/{shelter_id}"
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/api/v1/shelters/{shelter.id}", headers=admin).status_code == 200
    assert client.get("/api/v1/shelters/999999", headers=admin).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("refuge_http_requests_total", method="GET", route=route, status="200") == 3
    assert delta("refuge_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("refuge_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert delta("refuge_http_request_duration_seconds_count", method="GET", route=route) == 4
    # No label anywhere holds a path with an id, or anything but a short code.
    for _name, labels in after:
        for key, label in labels:
            if key == "route":
                assert label == "<unmatched>" or not re.search(r"/\d+(/|$)", label), label
            elif key not in ("le", "quantile"):
                assert len(label) <= 40, (key, label)


def test_matches_are_counted_by_outcome_with_their_solve_time(
    client: TestClient, world: World
) -> None:
    caseworker = world.headers(Role.CASEWORKER)
    world.unit(world.shelter(), capacity=2, admits=WOMEN_AND_CHILDREN)
    before = scrape(client)
    placed = match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))
    girl_alone = [{"ref": "A", "sex": "female", "age": 15}]
    unplaced = match(client, caseworker, request_for(client, caseworker, girl_alone))
    after = scrape(client)
    assert placed["placed"] is True
    assert unplaced["placed"] is False
    for outcome in ("placed", "unplaced"):
        grew = value(after, "refuge_matches_total", outcome=outcome) - value(
            before, "refuge_matches_total", outcome=outcome
        )
        assert grew == 1, outcome
    timed = value(after, "refuge_match_duration_seconds_count") - value(
        before, "refuge_match_duration_seconds_count"
    )
    assert timed == 2


def test_the_database_gauges_say_what_the_tables_hold(
    client: TestClient, world: World, db: Session
) -> None:
    caseworker = world.headers(Role.CASEWORKER)
    world.unit(world.shelter(), capacity=4, admits=WOMEN_AND_CHILDREN)
    for _ in range(2):
        assert match(client, caseworker, request_for(client, caseworker, MOTHER_AND_CHILD))[
            "placed"
        ]
    held = db.scalars(select(Placement).where(Placement.status == "proposed")).all()
    assert len(held) >= 2
    held[0].expires_at = utcnow() + timedelta(minutes=20)  # soon: inside the hour
    held[1].expires_at = utcnow() + timedelta(hours=5)  # later
    db.flush()
    samples = scrape(client)
    soon = db.scalar(
        select(func.count())
        .select_from(Placement)
        .where(
            Placement.status.in_(("proposed", "accepted")),
            Placement.expires_at <= utcnow() + timedelta(hours=1),
        )
    )
    assert soon is not None
    assert soon >= 1
    assert value(samples, "refuge_holds_expiring_soon") == soon
    assert value(samples, "refuge_units") == db.scalar(select(func.count()).select_from(Unit))
    one = db.scalars(select(Unit).order_by(Unit.id)).first()
    assert one is not None
    one.confirmed_at = utcnow() - timedelta(days=3)
    db.flush()
    assert value(scrape(client), "refuge_units_stale") == value(samples, "refuge_units_stale") + 1
    chain = db.scalar(select(func.max(AuditEvent.seq)))
    assert chain is not None
    assert chain > 0
    assert value(samples, "refuge_audit_chain_length") == chain
    assert value(samples, "refuge_runs_in_queue", status="queued") >= 0
    assert ("refuge_runs_in_queue", (("status", "running"),)) in samples
    for status in ("pending", "delivered", "failed"):  # no endpoint here: all zero, but there
        assert samples[("refuge_webhook_deliveries", (("status", status),))] == 0


def test_runs_are_counted_by_outcome(client: TestClient, world: World) -> None:
    admin = world.headers(Role.ADMIN)
    caseworker = world.headers(Role.CASEWORKER)
    world.unit(world.shelter(), capacity=2, admits=WOMEN_AND_CHILDREN)
    request_for(client, caseworker, MOTHER_AND_CHILD)
    before = scrape(client)
    response = client.post("/api/v1/matching-runs", json={"time_limit_s": 2}, headers=admin)
    assert response.status_code == 202, response.text
    run = client.get(response.headers["location"], headers=admin).json()
    assert run["status"] == "done", run
    after = scrape(client)
    solution = client.get(f"/api/v1/matching-runs/{run['id']}/solution", headers=admin).json()
    outcome = solution["status"]
    counted = {
        labels: after[(name, labels)] - before.get((name, labels), 0.0)
        for (name, labels) in after
        if name == "refuge_runs_total"
    }
    assert sum(counted.values()) == 1
    assert counted[(("outcome", outcome),)] == 1
    solved = value(after, "refuge_run_solve_seconds_count") - value(
        before, "refuge_run_solve_seconds_count"
    )
    assert solved == 1


def test_several_worker_processes_are_summed_in_one_scrape(
    fresh_database: str, tmp_path: Path
) -> None:
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = {"REFUGE_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    with (
        serve(fresh_database, tmp_path / "serve.log", workers=2, env=env) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        for _ in range(40):  # new connections: the kernel spreads them over both workers
            with httpx.Client(base_url=base, timeout=10) as once:
                assert once.get("/healthz").status_code == 200
        samples = scrape(http)
        written = {p.stem.rsplit("_", 1)[-1] for p in multiproc.glob("*.db")}
    assert len(written) == 2, written  # each worker process counted into a file of its own
    healthz = value(
        samples, "refuge_http_requests_total", method="GET", route="/healthz", status="200"
    )
    assert healthz >= 40  # the readiness probes of `serve` may add a few /readyz, not /healthz
    assert TEST_SECRET not in str(samples)


def test_the_pool_gauges_follow_checkouts_and_checkins(fresh_database: str) -> None:
    app = create_app(make_settings(fresh_database, metrics_token=TOKEN))
    with TestClient(app) as client:
        for _ in range(5):
            assert client.get("/readyz").status_code == 200
        samples = scrape(client)
        size = getattr(app.state.sessions.bind.pool, "size", lambda: 0)()
    assert value(samples, "refuge_db_pool_size") == size
    # Every request gave its connections back; only the scrape's own read may hold one now.
    assert value(samples, "refuge_db_pool_connections_in_use") in (0, 1)
