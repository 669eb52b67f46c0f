"""Batch matching runs: atomic proposals, stored documents, replay, and who sees what."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import service.jobs
from placement import Problem, Solution, verify
from service.app import create_app
from service.cli import app as cli
from service.jobs import InlineExecutor, RunWorker
from service.settings import Settings
from shelters.audit import AuditEvent
from shelters.identity import Role
from shelters.integrity import overbooked_units
from shelters.models import MatchingRun, Placement, RunOutcome, Unit, utcnow
from shelters.runs import RunParameters, claim_next
from tests.conftest import World
from tests.service.lifecycle_helpers import (
    ADULT_WOMEN,
    MOTHER_AND_CHILD,
    WOMEN_AND_CHILDREN,
    match,
    request_for,
)

GIRL_ALONE = [{"ref": "A", "sex": "female", "age": 15}]


@pytest.fixture
def network(world: World) -> dict[str, Any]:
    first = world.shelter(security_level="high")
    second = world.shelter()
    units = [
        world.unit(first, capacity=3, admits=WOMEN_AND_CHILDREN),
        world.unit(second, capacity=2, admits=[ADULT_WOMEN]),
    ]
    return {
        "units": units,
        "admin": world.headers(Role.ADMIN),
        "ours": world.headers(Role.CASEWORKER),
        "theirs": world.headers(Role.CASEWORKER),
        "stranger": world.headers(Role.CASEWORKER),
        "funder": world.headers(Role.FUNDER),
        "coordinator": world.headers(Role.COORDINATOR, shelters=[first]),
    }


def start(client: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/matching-runs", json=body, headers=admin)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/matching-runs/{response.json()['id']}"
    run = client.get(response.headers["location"], headers=admin).json()
    return run  # type: ignore[no-any-return]


def test_a_batch_proposes_for_everyone_it_can_in_one_go(
    client: TestClient, network: dict[str, Any], connection: Connection
) -> None:
    ours = [request_for(client, network["ours"], MOTHER_AND_CHILD) for _ in range(2)]
    theirs = [request_for(client, network["theirs"]) for _ in range(2)]
    nowhere = request_for(client, network["theirs"], GIRL_ALONE)
    run = start(client, network["admin"], time_limit_s=5, seed=7)
    assert run["status"] == "done"
    assert run["kind"] == "batch"
    assert run["requests_count"] == 5
    problem = client.get(
        f"/api/v1/matching-runs/{run['id']}/problem", headers=network["admin"]
    ).json()
    solution = client.get(
        f"/api/v1/matching-runs/{run['id']}/solution", headers=network["admin"]
    ).json()
    assert verify(Problem.from_document(problem), Solution.from_document(solution)) == []
    placed = {int(a["request"]) for a in solution["assignments"]}
    # 3 women-and-children beds and 2 adult-women beds: one family (2 beds in one unit) and
    # both women fit; the second family cannot share the one bed left; the girl fits nowhere.
    assert run["placed_count"] == len(placed) == 3
    assert set(theirs) <= placed
    assert len(placed & set(ours)) == 1
    assert nowhere not in placed
    for request_id in placed:
        listed = client.get(
            "/api/v1/placements", params={"request_id": request_id}, headers=network["admin"]
        ).json()["items"]
        assert [p["status"] for p in listed] == ["proposed"]
    assert overbooked_units(connection) == []


def test_unplaced_requests_are_recorded_with_reason_codes(
    client: TestClient, network: dict[str, Any], db: Session
) -> None:
    nowhere = request_for(client, network["ours"], GIRL_ALONE)
    run = start(client, network["admin"])
    outcome = db.scalars(
        select(RunOutcome).where(RunOutcome.run_id == run["id"], RunOutcome.request_id == nowhere)
    ).one()
    assert outcome.placed is False
    assert outcome.reason_codes == ["member_not_admitted"]
    assert [r["code"] for r in outcome.reasons] == ["member_not_admitted:A"]
    assert all(r["shelters"] for r in outcome.reasons)


def test_a_dry_run_proposes_nothing(
    client: TestClient, network: dict[str, Any], db: Session
) -> None:
    request_id = request_for(client, network["ours"])
    before = db.scalar(select(func.count()).select_from(Placement))
    run = start(client, network["admin"], dry_run=True)
    assert (run["status"], run["dry_run"], run["placed_count"]) == ("done", True, 1)
    assert db.scalar(select(func.count()).select_from(Placement)) == before
    status = client.get(f"/api/v1/placement-requests/{request_id}", headers=network["ours"]).json()
    assert status["status"] == "pending"


def test_the_stored_problem_replays_to_the_stored_solution(
    client: TestClient, network: dict[str, Any], tmp_path: Path
) -> None:
    for members in (MOTHER_AND_CHILD, MOTHER_AND_CHILD, GIRL_ALONE, None, None, None):
        request_for(client, network["ours"], members)
    run = start(client, network["admin"], time_limit_s=3, seed=11)
    problem = client.get(
        f"/api/v1/matching-runs/{run['id']}/problem", headers=network["admin"]
    ).json()
    stored = client.get(
        f"/api/v1/matching-runs/{run['id']}/solution", headers=network["admin"]
    ).json()
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    params = run["parameters"]
    result = CliRunner().invoke(
        cli,
        [
            "solve",
            str(path),
            "--seed",
            str(params["seed"]),
            "--time-limit",
            str(params["time_limit_s"]),
        ],
    )
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)
    assert replayed["problem_digest"] == stored["problem_digest"] == run["problem_digest"]
    assert replayed["assignments"] == stored["assignments"]
    assert replayed["unplaced"] == stored["unplaced"]
    # With the stored solution's work record the replay redoes exactly that work, even had the
    # wall clock cut the run: the whole reproducible result comes out the same.
    solution_path = tmp_path / "solution.json"
    solution_path.write_text(json.dumps(stored))
    result = CliRunner().invoke(cli, ["solve", str(path), "--replay", str(solution_path)])
    assert result.exit_code == 0, result.output
    exact = Solution.from_document(json.loads(result.stdout))
    assert exact.work == stored["work"]
    assert exact.result_bytes() == Solution.from_document(stored).result_bytes()


def test_each_role_sees_what_the_rules_allow(client: TestClient, network: dict[str, Any]) -> None:
    ours = request_for(client, network["ours"])
    theirs = request_for(client, network["theirs"])
    run = start(client, network["admin"])
    base = f"/api/v1/matching-runs/{run['id']}"
    # Caseworkers: runs that touched their requests; other organisations' requests are opaque.
    problem = client.get(f"{base}/problem", headers=network["ours"]).json()
    ids = {r["id"] for r in problem["requests"]}
    assert str(ours) in ids
    assert str(theirs) not in ids
    assert [r["id"] for r in problem["requests"]] == [str(ours)]
    (opaque,) = problem["redacted"]["requests"]
    assert opaque.startswith("other-")
    solution = client.get(f"{base}/solution", headers=network["ours"]).json()
    named = [a["request"] for a in solution["assignments"]] + [
        u["request"] for u in solution["unplaced"]
    ]
    assert str(ours) in named
    assert str(theirs) not in named
    assert all("beds" not in a for a in solution["assignments"] if a["request"] != str(ours))
    assert client.get(base, headers=network["stranger"]).status_code == 404
    assert client.get(f"{base}/problem", headers=network["stranger"]).status_code == 404
    listed = client.get("/api/v1/matching-runs", headers=network["stranger"]).json()["items"]
    assert run["id"] not in [r["id"] for r in listed]
    # Funders: summaries, never the documents.
    assert client.get(base, headers=network["funder"]).json()["placed_count"] == 2
    assert client.get(f"{base}/problem", headers=network["funder"]).status_code == 403
    assert client.get(f"{base}/solution", headers=network["funder"]).status_code == 403
    # Coordinators have no business with runs; only admins start them.
    assert client.get("/api/v1/matching-runs", headers=network["coordinator"]).status_code == 403
    for role in ("ours", "funder", "coordinator"):
        assert (
            client.post("/api/v1/matching-runs", json={}, headers=network[role]).status_code == 403
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"request_ids": [999_999]}, "unknown requests"),
        ({"time_limit_s": 100_000}, "at most"),
        ({"weights": {"favouritism": 3}}, ""),
        ({"seed": -1}, ""),
    ],
)
def test_bad_run_requests_are_refused(
    client: TestClient, network: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    response = client.post("/api/v1/matching-runs", json=body, headers=network["admin"])
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_listing_a_request_that_is_not_pending_is_refused(
    client: TestClient, network: dict[str, Any]
) -> None:
    request_id = request_for(client, network["ours"])
    match(client, network["ours"], request_id)
    response = client.post(
        "/api/v1/matching-runs", json={"request_ids": [request_id]}, headers=network["admin"]
    )
    assert response.status_code == 422
    assert "not pending" in response.json()["detail"]


def test_too_many_active_runs_get_503_with_retry_after(
    client: TestClient, network: dict[str, Any], world: World, db: Session
) -> None:
    admin = world.user(Role.ADMIN)
    db.add_all(MatchingRun(kind="batch", status="running", started_by=admin.id) for _ in range(4))
    db.flush()
    response = client.post("/api/v1/matching-runs", json={}, headers=network["admin"])
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0


def test_a_single_match_is_stored_as_a_run_of_one(
    client: TestClient, network: dict[str, Any]
) -> None:
    request_id = request_for(client, network["ours"])
    assert match(client, network["ours"], request_id)["placed"] is True
    runs = client.get("/api/v1/matching-runs", headers=network["ours"]).json()["items"]
    single = runs[0]
    assert (single["kind"], single["requests_count"], single["placed_count"]) == ("single", 1, 1)
    problem = client.get(
        f"/api/v1/matching-runs/{single['id']}/problem", headers=network["ours"]
    ).json()
    assert [r["id"] for r in problem["requests"]] == [str(request_id)]


def test_capacity_taken_while_solving_makes_the_run_solve_again(
    client: TestClient,
    network: dict[str, Any],
    db: Session,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        request_for(client, network["ours"])
    real_solve = service.jobs.solve
    calls = {"n": 0}

    def solve_then_lose_beds(*args: Any, **kwargs: Any) -> Any:
        solution = real_solve(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # a coordinator takes every bed out of service meanwhile
            db.execute(update(Unit).values(out_of_service=Unit.capacity))
            db.flush()
        return solution

    monkeypatch.setattr(service.jobs, "solve", solve_then_lose_beds)
    run = start(client, network["admin"])
    assert (run["status"], run["attempts"], run["placed_count"]) == ("done", 2, 0)
    assert overbooked_units(connection) == []


def test_a_run_that_never_fits_fails_cleanly_and_writes_nothing(
    client: TestClient, network: dict[str, Any], db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        request_for(client, network["ours"])
    real_solve = service.jobs.solve

    def solve_on_stale_beds(*args: Any, **kwargs: Any) -> Any:
        solution = real_solve(*args, **kwargs)
        # Each time, beds vanish after the snapshot and come back before the next one.
        db.execute(update(Unit).values(out_of_service=Unit.capacity))
        db.flush()
        return solution

    def restore(*args: Any, **kwargs: Any) -> Any:
        db.execute(update(Unit).values(out_of_service=0))
        db.flush()
        return real_build(*args, **kwargs)

    real_build = service.jobs.build_problem
    monkeypatch.setattr(service.jobs, "solve", solve_on_stale_beds)
    monkeypatch.setattr(service.jobs, "build_problem", restore)
    before = db.scalar(select(func.count()).select_from(Placement))
    run = start(client, network["admin"])
    assert run["status"] == "failed"
    assert run["error"].startswith("conflict")
    assert run["attempts"] == 3
    assert db.scalar(select(func.count()).select_from(Placement)) == before


def test_the_run_itself_is_audited_as_well_as_the_request_that_queued_it(
    client: TestClient, network: dict[str, Any], db: Session
) -> None:
    request_for(client, network["ours"])
    run = start(client, network["admin"])
    entries = db.scalars(
        select(AuditEvent).where(
            AuditEvent.resource_type == "matching_run", AuditEvent.resource_id == str(run["id"])
        )
    ).all()
    assert {(e.action, e.outcome) for e in entries} >= {("create", "ok"), ("execute", "ok")}


def dead_worker_run(admin_id: int, *, beat: timedelta, claims: int = 1) -> MatchingRun:
    """A run held by a process that stopped beating ``beat`` ago."""
    then = utcnow() - beat
    return MatchingRun(
        kind="batch",
        status="running",
        started_by=admin_id,
        parameters=RunParameters(time_limit_s=5, seed=0, dry_run=False).as_json(),
        worker_id="w-dead",
        claims=claims,
        started_at=then,
        heartbeat_at=then,
    )


def test_runs_of_a_process_that_stopped_beating_are_finished_here_and_free_the_limit(
    client: TestClient, network: dict[str, Any], world: World, db: Session, app: FastAPI
) -> None:
    request_for(client, network["ours"])
    admin = world.user(Role.ADMIN)
    dead = [dead_worker_run(admin.id, beat=timedelta(minutes=2)) for _ in range(3)]
    alive = dead_worker_run(admin.id, beat=timedelta(seconds=1))
    db.add_all([*dead, alive])
    db.flush()
    full = client.post("/api/v1/matching-runs", json={}, headers=network["admin"])
    assert full.status_code == 503
    worker: RunWorker = app.state.run_worker
    for _ in dead:  # one idle solver: one run picked up per round
        worker.poll()
    for run in [*dead, alive]:
        db.refresh(run)
    assert [(r.status, r.claims, r.worker_id) for r in dead] == [("done", 2, worker.worker_id)] * 3
    assert (alive.status, alive.worker_id) == ("running", "w-dead")
    # Only the first run that solved found the one pending request; each wrote its own.
    assert sum(r.placed_count for r in dead) == 1
    assert db.scalar(select(func.count()).select_from(Placement)) == 1
    requeued = db.scalars(
        select(AuditEvent.resource_id).where(
            AuditEvent.action == "requeue", AuditEvent.actor_role == "system"
        )
    ).all()
    assert sorted(requeued) == sorted(str(r.id) for r in dead)
    assert (
        client.post("/api/v1/matching-runs", json={}, headers=network["admin"]).status_code == 202
    )


def test_a_run_claimed_too_often_is_failed_not_requeued(
    network: dict[str, Any], world: World, db: Session, app: FastAPI
) -> None:
    admin = world.user(Role.ADMIN)
    run = dead_worker_run(admin.id, beat=timedelta(minutes=2), claims=3)
    db.add(run)
    db.flush()
    recovered = app.state.run_worker.poll()
    db.refresh(run)
    assert recovered.failed == (run.id,)
    assert run.status == "failed"
    assert run.error == "abandoned: its process stopped, 3 times"
    given_up = db.scalars(
        select(AuditEvent).where(
            AuditEvent.resource_type == "matching_run", AuditEvent.resource_id == str(run.id)
        )
    ).all()
    assert [(e.action, e.actor_role) for e in given_up] == [("give_up", "system")]


def test_a_job_whose_run_was_taken_away_while_it_solved_writes_nothing(
    client: TestClient,
    network: dict[str, Any],
    db: Session,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request_for(client, network["ours"])
    real_solve = service.jobs.solve
    worker: RunWorker = app.state.run_worker
    later = utcnow() + timedelta(minutes=5)
    first = {"job": True}

    def solve_while_presumed_dead(*args: Any, **kwargs: Any) -> Any:
        solution = real_solve(*args, **kwargs)
        if first.pop("job", False):
            # This process seemed dead (no beat for 5 minutes): another one requeues the
            # run and claims it, then this job comes back to write.
            other = RunWorker(
                app.state.sessions, app.state.settings, InlineExecutor(), clock=lambda: later
            )
            assert other.recover().requeued
            with app.state.sessions.write() as session, session.begin():
                assert claim_next(session, worker_id=other.worker_id, now=utcnow()) is not None
        return solution

    monkeypatch.setattr(service.jobs, "solve", solve_while_presumed_dead)
    before = db.scalar(select(func.count()).select_from(Placement))
    run = start(client, network["admin"])
    assert (run["status"], run["claims"], run["placed_count"]) == ("running", 2, 0)
    assert db.scalar(select(func.count()).select_from(Placement)) == before
    assert (
        db.scalar(
            select(func.count()).select_from(RunOutcome).where(RunOutcome.run_id == run["id"])
        )
        == 0
    )
    assert worker.held() == set()


def test_a_requeued_run_whose_first_claim_comes_back_is_proposed_once(
    client: TestClient,
    network: dict[str, Any],
    db: Session,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(2):
        request_for(client, network["ours"])
    worker: RunWorker = app.state.run_worker
    real_solve = service.jobs.solve
    first = {"job": True}

    def solve_while_requeued(*args: Any, **kwargs: Any) -> Any:
        solution = real_solve(*args, **kwargs)
        if first.pop("job", False):
            # Requeued meanwhile, and finished by a later claim of this same process.
            late = RunWorker(
                app.state.sessions,
                app.state.settings,
                InlineExecutor(),
                worker_id=worker.worker_id,
                clock=lambda: utcnow() + timedelta(minutes=5),
            )
            assert late.recover().requeued
            assert late.pick_up() == 1
        return solution

    monkeypatch.setattr(service.jobs, "solve", solve_while_requeued)
    run = start(client, network["admin"])
    assert (run["status"], run["claims"], run["placed_count"]) == ("done", 2, 2)
    placements = db.scalars(select(Placement.matching_run_id)).all()
    assert placements == [run["id"]] * 2


def test_a_run_claimed_by_another_process_is_not_started_here(
    world: World, db: Session, app: FastAPI
) -> None:
    admin = world.user(Role.ADMIN)
    run = dead_worker_run(admin.id, beat=timedelta(seconds=0))
    run.worker_id = "w-elsewhere"
    db.add(run)
    db.flush()
    app.state.run_worker.dispatch(run.id)
    db.refresh(run)
    assert (run.status, run.worker_id, run.claims) == ("running", "w-elsewhere", 1)


def test_a_run_queued_by_a_process_that_never_ran_it_is_picked_up(
    network: dict[str, Any], world: World, db: Session, app: FastAPI
) -> None:
    admin = world.user(Role.ADMIN)
    run = MatchingRun(
        kind="batch",
        status="queued",
        started_by=admin.id,
        parameters=RunParameters(time_limit_s=5, seed=0, dry_run=True).as_json(),
    )
    db.add(run)
    db.flush()
    worker: RunWorker = app.state.run_worker
    worker.poll()
    db.refresh(run)
    assert (run.status, run.claims, run.worker_id) == ("done", 1, worker.worker_id)
    assert run.heartbeat_at is not None


def test_a_process_that_only_queues_runs_leaves_them_queued(
    settings: Settings, connection: Connection, network: dict[str, Any]
) -> None:
    app = create_app(settings.model_copy(update={"run_worker": False}), bind=connection)
    with TestClient(app) as client:
        run = start(client, network["admin"], dry_run=True)
        app.state.run_worker.poll()
        after = client.get(f"/api/v1/matching-runs/{run['id']}", headers=network["admin"])
    assert (run["status"], run["claims"], run["heartbeat_at"]) == ("queued", 0, None)
    assert after.json()["status"] == "queued"


def test_a_batch_never_proposes_a_shelter_that_declined_the_request(
    client: TestClient, network: dict[str, Any], db: Session
) -> None:
    request_id = request_for(client, network["ours"], MOTHER_AND_CHILD)
    placement = match(client, network["ours"], request_id)["placement"]
    first = placement["shelter_id"]
    declined = client.post(
        f"/api/v1/placements/{placement['id']}/decline",
        json={"reason": "safety_concern"},
        headers=network["coordinator"],
    )
    assert declined.status_code == 200, declined.text
    run = start(client, network["admin"], request_ids=[request_id])
    assert run["placed_count"] == 0
    outcome = db.scalars(
        select(RunOutcome).where(
            RunOutcome.run_id == run["id"], RunOutcome.request_id == request_id
        )
    ).one()
    assert {"code": "declined_by_shelter", "shelters": [str(first)]} in outcome.reasons
    assert "declined_by_shelter" in outcome.reason_codes
    problem = client.get(
        f"/api/v1/matching-runs/{run['id']}/problem", headers=network["admin"]
    ).json()
    assert problem["requests"][0]["declined_shelters"] == [str(first)]
