"""Free beds, and which shelters could take a group now."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from service.auth import allow
from service.deps import ReadDb, UnitOfWorkRoute
from service.problems import problem_responses
from service.routes import API_PREFIX
from service.schemas import (
    AvailabilityCheckOut,
    BedOut,
    CaseIn,
    CaseProfileIn,
    EligibleOut,
    IneligibleOut,
    PageOut,
    ServiceCode,
    ShelterBedsOut,
    ShelterStatus,
    Slug,
)
from shelters import availability
from shelters.identity import Principal, Role
from shelters.pagination import MAX_LIMIT
from shelters.profiles import CaseProfile, Location, MemberProfile

router = APIRouter(prefix=API_PREFIX, tags=["availability"], route_class=UnitOfWorkRoute)
READERS = (Role.ADMIN, Role.COORDINATOR, Role.CASEWORKER)


def profile_of(body: CaseProfileIn) -> CaseProfile:
    """The domain profile for a validated request body."""
    return CaseProfile(
        members=tuple(
            MemberProfile(
                ref=m.ref,
                sex=m.sex,
                age=m.age,
                guardian_ref=m.guardian_ref,
                comes_of_age=m.comes_of_age,
            )
            for m in body.members
        ),
        required_services=tuple(body.required_services),
        desired_services=tuple(body.desired_services),
        languages=tuple(body.languages),
        wheelchair=body.wheelchair,
        high_risk=body.high_risk,
        excluded_regions=tuple(body.excluded_regions),
        excluded_shelter_ids=tuple(body.excluded_shelter_ids),
        current_region=body.current_region,
        location=Location(body.location.lat, body.location.lon) if body.location else None,
        exploitation_types=tuple(body.exploitation_types),
        referral_source=body.referral_source,
    )


@router.get(
    "/availability",
    response_model=PageOut[ShelterBedsOut],
    responses=problem_responses(401, 403, 422),
)
def list_availability(
    principal: Annotated[Principal, allow(*READERS)],
    db: ReadDb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
    region: Slug | None = None,
    service: ServiceCode | None = None,
    shelter_status: Annotated[ShelterStatus | None, Query(alias="status")] = None,
) -> Response:
    """Free beds per shelter and unit, filterable by region, service and status."""
    page = availability.list_availability(
        db, limit=limit, cursor=cursor, region=region, service=service, status=shelter_status
    )
    # The most frequent read of the service: rendered straight from plain rows, whose shape
    # the declared response model documents (tests/service/test_availability.py checks the
    # body against it).
    return Response(
        orjson.dumps(
            {
                "items": [
                    {
                        "shelter_id": item.id,
                        "name": item.name,
                        "names": orjson.Fragment(item.names_json),
                        "region": item.region_code,
                        "locality": item.locality,
                        "status": item.status,
                        "security_level": item.security_level,
                        "wheelchair_accessible": item.wheelchair_accessible,
                        "services": orjson.Fragment(item.services_json),
                        "languages": orjson.Fragment(item.languages_json),
                        "available": item.available,
                        "units": [
                            {
                                "unit_id": u.id,
                                "name": u.name,
                                "capacity": u.capacity,
                                "available": u.available,
                                "admits": orjson.Fragment(u.admits_json),
                            }
                            for u in item.units
                        ],
                    }
                    for item in page.items
                ],
                "next_cursor": page.next_cursor,
            }
        ),
        media_type="application/json",
    )


@router.post("/availability/check", responses=problem_responses(401, 403, 422))
def check_availability(
    body: CaseIn,
    request: Request,
    principal: Annotated[Principal, allow(*READERS)],
    db: ReadDb,
) -> AvailabilityCheckOut:
    """Which open shelters could take this case body now, and why the others cannot."""
    result = availability.check(
        db,
        profile_of(body),
        majority_age=request.app.state.settings.majority_age,
        separate_from_case_ids=body.separate_from_case_ids,
    )
    return AvailabilityCheckOut(
        eligible=[
            EligibleOut(
                shelter_id=e.shelter_id,
                beds=[BedOut(member_ref=ref, unit_id=unit) for ref, unit in e.beds.items()],
            )
            for e in result.eligible
        ],
        ineligible=[
            IneligibleOut(shelter_id=i.shelter_id, reasons=i.reasons) for i in result.ineligible
        ],
    )
