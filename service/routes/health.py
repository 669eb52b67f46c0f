"""Liveness and readiness probes, and the site's root."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from service.auth import PUBLIC
from service.deps import UnitOfWorkRoute
from service.problems import problem_responses
from service.routes import API_PREFIX
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


INDEX = {
    "pages": "/ui",
    "api": API_PREFIX,
    "openapi": f"{API_PREFIX}/openapi.json",
    "health": "/healthz",
}


def _wants_json(accept: str) -> bool:
    """An ``Accept`` that names JSON and not HTML: a program, not a browser."""
    media = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(media & {"application/json", "application/problem+json"}) and not (
        media & {"text/html", "application/xhtml+xml"}
    )


@router.get("/", dependencies=[PUBLIC], include_in_schema=False)
def root(request: Request) -> Response:
    """Browsers go to the web pages (their login when signed out); programs get an index."""
    if _wants_json(request.headers.get("accept", "")):
        return JSONResponse(INDEX)
    return RedirectResponse("/ui", status_code=303)
