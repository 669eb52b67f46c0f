"""One JSON line a request, with the route template and no body; every log line is JSON."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service import logs
from shelters.identity import Role
from tests.conftest import World
from tests.servers import serve


def test_access_log_names_actor_and_route_template_but_no_body(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    user = world.user(Role.ADMIN)
    canary = "CANARY-organisation-3b1f"
    with caplog.at_level("INFO", logger="refuge.access"):
        client.get("/api/v1/organizations/424242", headers=world.headers_for(user))
        client.post(
            "/api/v1/organizations",
            json={"name": canary, "kind": "ngo"},
            headers=world.headers_for(user),
        )
    formatter = logs.Formatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "refuge.access"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/api/v1/organizations/{organization_id}", 404),
        ("/api/v1/organizations", 201),
    ]
    assert all(line["actor_id"] == user.id and line["role"] == "admin" for line in lines)
    assert set(lines[0]) == {*logs.FIELDS, *logs.ACCESS_FIELDS}
    assert lines[0]["message"] == "request"
    assert lines[0]["logger"] == "refuge.access"
    assert canary not in caplog.text


def test_every_line_has_the_documented_fields_and_a_utc_time() -> None:
    formatter = logs.Formatter()
    try:
        raise RuntimeError("a failure for the test")
    except RuntimeError:
        record = logging.getLogger("refuge.jobs").makeRecord(
            "refuge.jobs", logging.ERROR, __file__, 1, "run %s failed", (7,), sys.exc_info()
        )
    line = json.loads(formatter.format(record))
    assert list(line)[: len(logs.FIELDS)] == list(logs.FIELDS)
    assert line["message"] == "run 7 failed"
    assert line["level"] == "ERROR"
    assert line["process"] == os.getpid()
    assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)
    assert "RuntimeError: a failure for the test" in line["exc_info"]


def test_the_server_writes_json_lines_from_every_worker(
    fresh_database: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serve(fresh_database, log, workers=2) as base:
        for _ in range(20):
            with httpx.Client(base_url=base, timeout=10) as once:
                assert once.get("/healthz").status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    text = [line for line in log.read_text().splitlines() if line and not line.startswith("{")]
    assert text == []  # uvicorn's own lines are JSON too
    access = [line for line in lines if line["logger"] == "refuge.access"]
    assert len([line for line in access if line["route"] == "/healthz"]) == 20
    assert {line["logger"] for line in lines} >= {"refuge.access", "uvicorn.error"}
