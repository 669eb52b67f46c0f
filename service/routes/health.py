"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from service.auth import PUBLIC
from service.deps import UnitOfWorkRoute
from service.problems import problem_responses
from service.schemas import HealthOut

router = APIRouter(tags=["health"], route_class=UnitOfWorkRoute)


@router.get("/healthz", dependencies=[PUBLIC])
def healthz() -> HealthOut:
    """The process is up."""
    return HealthOut(status="ok")


@router.get("/readyz", dependencies=[PUBLIC], responses=problem_responses(503))
def readyz(request: Request) -> HealthOut:
    """The database answers."""
    with request.app.state.sessions.read() as session:
        session.execute(text("SELECT 1"))
    return HealthOut(status="ok")
