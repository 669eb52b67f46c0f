"""Cases, placement requests, and matching one request."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status
from sqlalchemy.orm import Session

from service import metrics
from service.audit import set_resource_id
from service.auth import allow
from service.deps import UnitOfWorkRoute, WriteDb
from service.etags import expected_version, set_etag
from service.idempotency import IdempotencyDep
from service.problems import problem_responses
from service.ratelimit import MATCH_LIMIT
from service.routes import API_PREFIX
from service.routes.availability import profile_of
from service.routes.placements import placement_out
from service.schemas import (
    CaseIn,
    CaseOut,
    CasePatch,
    Id,
    LocationOut,
    MatchIn,
    MatchOut,
    MemberOut,
    PageOut,
    PlacementRequestIn,
    PlacementRequestOut,
    RequestStatus,
    reason_out,
)
from service.settings import Settings
from shelters import cases, freshness, lifecycle, matching
from shelters.errors import InvalidInput
from shelters.identity import Principal, Role
from shelters.models import Case, PlacementRequest
from shelters.pagination import MAX_LIMIT
from shelters.profiles import Location, MemberProfile

router = APIRouter(prefix=API_PREFIX, tags=["cases"], route_class=UnitOfWorkRoute)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
CASE_ROLES = (Role.ADMIN, Role.CASEWORKER)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def case_out(db: Session, case: Case, majority_age: int) -> CaseOut:
    """A case as its organisation sees it."""
    profile = cases.profile_of(case)
    status_of = cases.statuses(profile, majority_age)
    return CaseOut(
        id=case.id,
        code=case.code,
        organization_id=case.organization_id,
        members=[
            MemberOut(
                ref=m.ref,
                sex=m.sex,
                age=m.age,
                guardian_ref=m.guardian_ref,
                comes_of_age=m.comes_of_age,
                status=status_of[m.ref],
            )
            for m in profile.members
        ],
        required_services=list(case.required_services),
        desired_services=list(case.desired_services),
        languages=list(case.languages),
        wheelchair=case.wheelchair,
        high_risk=case.high_risk,
        excluded_regions=list(case.excluded_regions),
        excluded_shelter_ids=list(case.excluded_shelter_ids),
        separate_from_case_ids=cases.separations(db, [case.id])[case.id],
        current_region=case.current_region,
        exploitation_types=list(case.exploitation_types or []),
        referral_source=case.referral_source,
        location=LocationOut(lat=case.lat, lon=case.lon)
        if case.lat is not None and case.lon is not None
        else None,
        version=case.version,
        created_at=case.created_at,
        purged=case.purged_at is not None,
    )


def requests_out(db: Session, requests: list[PlacementRequest]) -> list[PlacementRequestOut]:
    """Placement requests, each with the shelters that declined it."""
    declined = lifecycle.declined_shelters(db, [r.id for r in requests])
    return [
        PlacementRequestOut(
            id=r.id,
            case_id=r.case_id,
            organization_id=r.organization_id,
            priority=r.priority,
            preferred_regions=list(r.preferred_regions),
            status=r.status,
            declined_shelter_ids=declined[r.id],
            escalated_at=r.escalated_at,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in requests
    ]


def request_out(db: Session, request: PlacementRequest) -> PlacementRequestOut:
    """A placement request."""
    return requests_out(db, [request])[0]


def _case_changes(body: CasePatch) -> tuple[dict[str, Any], list[int] | None]:
    given = body.model_dump(exclude_unset=True)
    separate = given.pop("separate_from_case_ids", None)
    nulls = sorted(
        k
        for k, v in given.items()
        if v is None and k not in {"current_region", "location", "referral_source"}
    )
    if nulls:
        raise InvalidInput("{fields} cannot be null", fields=", ".join(nulls))
    changes: dict[str, Any] = {}
    for name, value in given.items():
        if name == "members":
            changes[name] = tuple(MemberProfile(**m) for m in value)
        elif name == "location":
            changes[name] = Location(value["lat"], value["lon"]) if value else None
        elif isinstance(value, list):
            changes[name] = tuple(value)
        else:
            changes[name] = value
    return changes, separate


@router.post(
    "/cases",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseOut,
    responses=problem_responses(401, 403, 409, 422),
)
def create_case(
    body: CaseIn,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(Role.CASEWORKER)],
    idem: IdempotencyDep,
    db: WriteDb,
) -> Any:
    """Create a case for your organisation; send `Idempotency-Key` to make retries safe."""
    if idem.replay is not None:
        return idem.replay
    majority = _settings(request).majority_age
    case = cases.create_case(
        db,
        principal,
        profile_of(body),
        separate_from_case_ids=body.separate_from_case_ids,
        majority_age=majority,
    )
    set_resource_id(request, case.id)
    set_etag(response, "case", case.id, case.version)
    return idem.remember(db, 201, case_out(db, case, majority))


@router.get("/cases", responses=problem_responses(401, 403, 422))
def list_cases(
    request: Request,
    principal: Annotated[Principal, allow(*CASE_ROLES)],
    db: WriteDb,
    limit: Limit = 50,
    cursor: str | None = None,
    code: str | None = None,
) -> PageOut[CaseOut]:
    """Your organisation's cases; `code` finds one by its code (a mistyped code is 422)."""
    page = cases.list_cases(db, principal, limit=limit, cursor=cursor, code=code)
    majority = _settings(request).majority_age
    return PageOut(
        items=[case_out(db, c, majority) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/cases/{case_id}", responses=problem_responses(401, 403, 404))
def read_case(
    case_id: Id,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(*CASE_ROLES)],
    db: WriteDb,
) -> CaseOut:
    """One case of your organisation."""
    case = cases.get_case(db, principal, case_id)
    set_etag(response, "case", case.id, case.version)
    return case_out(db, case, _settings(request).majority_age)


@router.patch("/cases/{case_id}", responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
def update_case(
    case_id: Id,
    body: CasePatch,
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow(Role.CASEWORKER)],
    db: WriteDb,
) -> CaseOut:
    """Change a case's needs; send `If-Match`."""
    version = expected_version(request, "case", case_id)
    changes, separate = _case_changes(body)
    majority = _settings(request).majority_age
    case = cases.update_case(
        db,
        principal,
        case_id,
        expected_version=version,
        profile_changes=changes,
        separate_from_case_ids=separate,
        majority_age=majority,
    )
    set_etag(response, "case", case.id, case.version)
    return case_out(db, case, majority)


@router.post(
    "/placement-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=PlacementRequestOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def create_request(
    body: PlacementRequestIn,
    request: Request,
    principal: Annotated[Principal, allow(Role.CASEWORKER)],
    idem: IdempotencyDep,
    db: WriteDb,
) -> Any:
    """Ask for beds for one of your cases; send `Idempotency-Key` to make retries safe."""
    if idem.replay is not None:
        return idem.replay
    created = lifecycle.create_request(
        db,
        principal,
        case_id=body.case_id,
        priority=body.priority,
        preferred_regions=body.preferred_regions,
        majority_age=_settings(request).majority_age,
    )
    set_resource_id(request, created.id)
    return idem.remember(db, 201, request_out(db, created))


@router.get("/placement-requests", responses=problem_responses(401, 403, 422))
def list_requests(
    principal: Annotated[Principal, allow(*CASE_ROLES)],
    db: WriteDb,
    limit: Limit = 50,
    cursor: str | None = None,
    request_status: Annotated[RequestStatus | None, Query(alias="status")] = None,
    case_id: Id | None = None,
) -> PageOut[PlacementRequestOut]:
    """Your organisation's placement requests."""
    page = lifecycle.list_requests(
        db, principal, limit=limit, cursor=cursor, status=request_status, case_id=case_id
    )
    return PageOut(items=requests_out(db, page.items), next_cursor=page.next_cursor)


@router.get("/placement-requests/{request_id}", responses=problem_responses(401, 403, 404))
def read_request(
    request_id: Id, principal: Annotated[Principal, allow(*CASE_ROLES)], db: WriteDb
) -> PlacementRequestOut:
    """One placement request of your organisation."""
    return request_out(db, lifecycle.get_request(db, principal, request_id))


@router.post(
    "/placement-requests/{request_id}/cancel", responses=problem_responses(401, 403, 404, 409)
)
def cancel_request(
    request_id: Id, principal: Annotated[Principal, allow(*CASE_ROLES)], db: WriteDb
) -> PlacementRequestOut:
    """Withdraw a pending or proposed request; held beds are freed."""
    return request_out(db, lifecycle.cancel_request(db, principal, request_id))


@router.post(
    "/placement-requests/{request_id}/declined-shelters/{shelter_id}/lift",
    responses=problem_responses(401, 403, 404),
)
def lift_decline(
    request_id: Id,
    shelter_id: Id,
    principal: Annotated[Principal, allow(*CASE_ROLES)],
    db: WriteDb,
) -> PlacementRequestOut:
    """Let a shelter that declined this request be proposed for it again."""
    return request_out(db, lifecycle.lift_decline(db, principal, request_id, shelter_id))


@router.post(
    "/placement-requests/{request_id}/match",
    dependencies=[MATCH_LIMIT],
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
def match_request(
    request_id: Id,
    request: Request,
    principal: Annotated[Principal, allow(*CASE_ROLES)],
    db: WriteDb,
    body: Annotated[MatchIn | None, Body()] = None,
) -> MatchOut:
    """Solve for this request against current free beds; hold the beds found, or say why not.

    With ``shelter_id`` (a shelter the availability check lists as able to take the group),
    beds are held there or nowhere, and the reasons are that shelter's; a shelter that is not
    open is refused (422). Without a body, the best match among every open shelter.
    """
    settings = _settings(request)
    started = time.perf_counter()
    result = matching.match_request(
        db,
        principal,
        request_id,
        snapshot=request.app.state.sessions.read,
        majority_age=settings.majority_age,
        hold_ttl=timedelta(hours=settings.hold_ttl_hours),
        shelter_id=body.shelter_id if body is not None else None,
    )
    metrics.observe_match(
        placed=result.placement is not None, seconds=time.perf_counter() - started
    )
    if result.placement is None:
        return MatchOut(
            placed=False, placement=None, reasons=[reason_out(r) for r in result.reasons]
        )
    out = placement_out(db, principal, result.placement, settings.majority_age)
    return MatchOut(
        placed=True,
        placement=out,
        reasons=[],
        stale_unit_ids=freshness.stale_among(
            db, (bed.unit_id for bed in out.beds), after_hours=settings.stale_after_hours
        ),
    )
