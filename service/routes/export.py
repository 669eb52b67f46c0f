"""Exports for other systems: Open Referral HSDS 3.1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.auth import ANY_ROLE, allow
from service.deps import ReadDb, UnitOfWorkRoute
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.settings import Settings
from shelters import hsds
from shelters.identity import Principal

router = APIRouter(prefix=API_PREFIX, tags=["export"], route_class=UnitOfWorkRoute)


class HsdsExportOut(BaseModel):
    services: list[dict[str, Any]] = Field(
        description=(
            "One Open Referral HSDS 3.1 `service` per open shelter, valid against the official "
            "schema `compiled/service.json`. Locations carry locality and region only."
        )
    )


@router.get("/export/hsds", responses=problem_responses(401))
def export_hsds(
    request: Request, principal: Annotated[Principal, allow(*ANY_ROLE)], db: ReadDb
) -> HsdsExportOut:
    """Open shelters as Open Referral HSDS 3.1 services."""
    settings: Settings = request.app.state.settings
    return HsdsExportOut(
        services=hsds.export_services(
            db,
            majority_age=settings.majority_age,
            stale_after_hours=settings.stale_after_hours,
        )["services"]
    )
