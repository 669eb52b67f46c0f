"""Revision 0014 converts stored solver reasons between the string and the grouped form."""

from __future__ import annotations

from typing import Any

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from migrations import alembic_config
from placement import Problem, Solution, verify
from placement.solution import SCHEMA, SCHEMA_V1, reasons_to_strings
from shelters.identity import Role
from shelters.models import MatchingRun, RunOutcome
from tests.conftest import World
from tests.service.lifecycle_helpers import ADULT_WOMEN, request_for

GIRL_ALONE = [{"ref": "A", "sex": "female", "age": 15}]


def stored(connection: Connection, run_id: int) -> tuple[dict[str, Any], dict[int, Any]]:
    solution = connection.execute(
        select(MatchingRun.solution).where(MatchingRun.id == run_id)
    ).scalar_one()
    reasons = dict(
        connection.execute(
            select(RunOutcome.request_id, RunOutcome.reasons).where(
                RunOutcome.run_id == run_id, RunOutcome.placed.is_(False)
            )
        ).all()
    )
    return solution, reasons


def test_stored_reasons_go_down_to_strings_and_come_back_unchanged(
    client: TestClient, world: World, connection: Connection
) -> None:
    for _ in range(2):
        world.unit(world.shelter(), capacity=1, admits=[ADULT_WOMEN])
    caseworker = world.headers(Role.CASEWORKER)
    for members in (None, None, None, GIRL_ALONE):
        request_for(client, caseworker, members)
    started = client.post(
        "/api/v1/matching-runs", json={"seed": 1}, headers=world.headers(Role.ADMIN)
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    solution, reasons = stored(connection, run_id)
    assert solution["schema"] == SCHEMA
    assert len(reasons) == 2
    parsed = Solution.from_document(solution)
    assert any(r.code == "capacity_taken" and r.by for u in parsed.unplaced for r in u.reasons)
    assigned = {a.request: a.shelter for a in parsed.assignments}

    command.downgrade(alembic_config(connection=connection), "0013")
    old, old_reasons = stored(connection, run_id)
    assert old["schema"] == SCHEMA_V1
    assert "shelter_sets" not in old
    assert old["unplaced"] == [
        {"request": u.request, "reasons": reasons_to_strings(u.reasons, assigned)}
        for u in parsed.unplaced
    ]
    assert any(":capacity_taken:" in r for u in old["unplaced"] for r in u["reasons"])
    assert old_reasons == {
        int(u.request): reasons_to_strings(u.reasons, assigned) for u in parsed.unplaced
    }
    # A /1 document is still read, to the same solution.
    assert Solution.from_document(old) == parsed

    command.upgrade(alembic_config(connection=connection), "head")
    assert stored(connection, run_id) == (solution, reasons)
    problem = connection.execute(
        select(MatchingRun.problem).where(MatchingRun.id == run_id)
    ).scalar_one()
    assert verify(Problem.from_document(problem), Solution.from_document(solution)) == []
