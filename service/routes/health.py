"""Liveness and readiness probes, and the site's root."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from service import metrics
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


@router.get("/metrics", dependencies=[PUBLIC], include_in_schema=False)
def metrics_text(request: Request) -> Response:
    """Prometheus text exposition, for a scraper holding ``REFUGE_METRICS_TOKEN``.

    Off (404) without a token set; 401 for a scrape without it or with another. Not a user's
    route: the token is the deployment's, no role goes with it.
    """
    token = request.app.state.settings.metrics_token
    if token is None:
        return Response(status_code=404)
    if not metrics.authorised(request.headers.get("authorization"), token.get_secret_value()):
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    settings = request.app.state.settings
    body, media_type = metrics.exposition(
        request.app.state.sessions.read, stale_after_hours=settings.stale_after_hours
    )
    return Response(body, media_type=media_type)
