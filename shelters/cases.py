"""Cases: pseudonymous groups to be placed together (SPEC §4).

A case belongs to the organisation of the caseworker who made it, taken from the caller and
never from the request body. Other organisations' cases do not exist for the caller (404).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from placement.eligibility import member_status
from placement.problem import Member
from shelters.codes import new_case_code, normalize
from shelters.errors import Conflict, InvalidInput, NotFound, StaleVersion
from shelters.identity import Principal, Role
from shelters.models import Case, CaseSeparation, Placement, PlacementRequest, Region, utcnow
from shelters.pagination import Page, paginate
from shelters.profiles import CaseProfile, Location, MemberProfile, validate_profile

ACTIVE_PLACEMENT = ("proposed", "accepted", "admitted")
PROFILE_FIELDS = (
    "members",
    "required_services",
    "desired_services",
    "languages",
    "wheelchair",
    "high_risk",
    "excluded_regions",
    "excluded_shelter_ids",
    "current_region",
    "location",
    "exploitation_types",
    "referral_source",
)


def profile_of(case: Case) -> CaseProfile:
    """The case's needs as a profile."""
    return CaseProfile(
        members=tuple(
            MemberProfile(
                ref=m["ref"],
                sex=m["sex"],
                age=int(m["age"]),
                guardian_ref=m.get("guardian_ref"),
                comes_of_age=m.get("comes_of_age"),
            )
            for m in case.members
        ),
        required_services=tuple(case.required_services),
        desired_services=tuple(case.desired_services),
        languages=tuple(case.languages),
        wheelchair=case.wheelchair,
        high_risk=case.high_risk,
        excluded_regions=tuple(case.excluded_regions),
        excluded_shelter_ids=tuple(case.excluded_shelter_ids),
        current_region=case.current_region,
        location=Location(case.lat, case.lon)
        if case.lat is not None and case.lon is not None
        else None,
        exploitation_types=tuple(case.exploitation_types or ()),
        referral_source=case.referral_source,
    )


def statuses(profile: CaseProfile, majority_age: int) -> dict[str, str]:
    """Each member's status (SPEC §4), by ref."""
    members = [Member(m.ref, m.sex, m.age, m.guardian_ref) for m in profile.members]
    return {m.ref: member_status(m, members, majority_age) for m in members}


def people_counts(profile: CaseProfile, majority_age: int) -> dict[str, int]:
    """How many members of each status and sex: the only member data reports ever use."""
    by_status = Counter(statuses(profile, majority_age).values())
    by_sex = Counter(m.sex for m in profile.members)
    return {
        "people_adult": by_status["adult"],
        "people_accompanied_child": by_status["accompanied_child"],
        "people_unaccompanied_minor": by_status["unaccompanied_minor"],
        "people_female": by_sex["female"],
        "people_male": by_sex["male"],
        "people_other": by_sex["other"],
    }


def _profile_columns(profile: CaseProfile) -> dict[str, Any]:
    return {
        "members": [
            {"ref": m.ref, "sex": m.sex, "age": m.age, "guardian_ref": m.guardian_ref}
            | ({"comes_of_age": m.comes_of_age} if m.comes_of_age else {})
            for m in profile.members
        ],
        "required_services": sorted(set(profile.required_services)),
        "desired_services": sorted(set(profile.desired_services)),
        "languages": sorted(set(profile.languages)),
        "wheelchair": profile.wheelchair,
        "high_risk": profile.high_risk,
        "excluded_regions": sorted(set(profile.excluded_regions)),
        "excluded_shelter_ids": sorted(set(profile.excluded_shelter_ids)),
        "current_region": profile.current_region,
        "lat": profile.location.lat if profile.location else None,
        "lon": profile.location.lon if profile.location else None,
        "exploitation_types": sorted(set(profile.exploitation_types)),
        "referral_source": profile.referral_source,
    }


def _validate(session: Session, profile: CaseProfile, majority_age: int) -> None:
    validate_profile(
        profile, majority_age=majority_age, known_regions=set(session.scalars(select(Region.code)))
    )


def create_case(
    session: Session,
    principal: Principal,
    profile: CaseProfile,
    *,
    separate_from_case_ids: list[int],
    majority_age: int,
) -> Case:
    """Create a case for the caller's organisation with a fresh random code.

    ``separate_from_case_ids`` may name cases of any organisation; ids that name no case are
    kept too, so the answer never reveals whether another organisation's case exists.
    """
    assert principal.organization_id is not None
    _validate(session, profile, majority_age)
    case = Case(
        code=new_case_code(),
        organization_id=principal.organization_id,
        created_by=principal.user_id,
        **_profile_columns(profile),
    )
    session.add(case)
    session.flush()
    set_separations(session, case, separate_from_case_ids)
    return case


def set_separations(session: Session, case: Case, other_case_ids: list[int]) -> None:
    """Replace the cases this case must be kept apart from (itself excluded)."""
    session.execute(delete(CaseSeparation).where(CaseSeparation.case_id == case.id))
    session.add_all(
        CaseSeparation(case_id=case.id, other_case_id=other)
        for other in sorted(set(other_case_ids) - {case.id})
    )
    session.flush()


def separations(session: Session, case_ids: list[int]) -> dict[int, list[int]]:
    """The cases each of these cases names as to be kept apart from, sorted."""
    out: dict[int, list[int]] = {i: [] for i in case_ids}
    stmt = (
        select(CaseSeparation)
        .where(CaseSeparation.case_id.in_(case_ids))
        .order_by(CaseSeparation.case_id, CaseSeparation.other_case_id)
    )
    for row in session.scalars(stmt):
        out[row.case_id].append(row.other_case_id)
    return out


def kept_apart(session: Session, case_ids: Sequence[int]) -> dict[int, set[int]]:
    """The cases each of these cases must be kept apart from, in either direction.

    A separation binds both cases whichever of them recorded it, so matching, the
    availability check of a stored case and the pages all read it from here.
    """
    apart: dict[int, set[int]] = {c: set() for c in case_ids}
    rows = session.scalars(
        select(CaseSeparation).where(
            or_(
                CaseSeparation.case_id.in_(case_ids),
                CaseSeparation.other_case_id.in_(case_ids),
            )
        )
    )
    for row in rows:
        if row.case_id in apart:
            apart[row.case_id].add(row.other_case_id)
        if row.other_case_id in apart:
            apart[row.other_case_id].add(row.case_id)
    return apart


def housed_at(session: Session, case_ids: Iterable[int]) -> dict[int, set[int]]:
    """The shelters where each of these cases is held or housed now (active placements).

    Cases with no active placement are left out.
    """
    ids = sorted(set(case_ids))
    out: dict[int, set[int]] = {}
    if ids:
        rows = session.execute(
            select(PlacementRequest.case_id, Placement.shelter_id)
            .join(Placement, Placement.request_id == PlacementRequest.id)
            .where(PlacementRequest.case_id.in_(ids), Placement.status.in_(ACTIVE_PLACEMENT))
        )
        for case_id, shelter_id in rows:
            out.setdefault(case_id, set()).add(shelter_id)
    return out


def get_case(session: Session, principal: Principal, case_id: int, *, lock: bool = False) -> Case:
    """A case of the caller's organisation (admins: any); ``NotFound`` otherwise."""
    case = session.get(Case, case_id, with_for_update=lock, populate_existing=lock)
    if case is None or (
        principal.role is not Role.ADMIN and case.organization_id != principal.organization_id
    ):
        raise NotFound("case {case_id} not found", case_id=case_id)
    return case


def list_cases(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    code: str | None,
    escalated: bool = False,
) -> Page[Case]:
    """The caller's organisation's cases by id, optionally the one with a given code.

    ``escalated``: only cases with an escalated request still pending.
    """
    stmt = select(Case)
    if principal.role is not Role.ADMIN:
        stmt = stmt.where(Case.organization_id == principal.organization_id)
    if escalated:
        waiting = select(PlacementRequest.case_id).where(
            PlacementRequest.status == "pending", PlacementRequest.escalated_at.is_not(None)
        )
        stmt = stmt.where(Case.id.in_(waiting))
    if code is not None:
        canonical = normalize(code)
        if canonical is None:
            raise InvalidInput("the case code is mistyped: its check character does not match")
        stmt = stmt.where(Case.code == canonical)
    return paginate(session, stmt, Case.id, limit=limit, cursor=cursor)


def update_case(
    session: Session,
    principal: Principal,
    case_id: int,
    *,
    expected_version: int,
    profile_changes: Mapping[str, Any],
    separate_from_case_ids: list[int] | None,
    majority_age: int,
) -> Case:
    """Change a case's needs, if it is still at ``expected_version``.

    Members cannot change while a placement holds or houses them (409): their beds were
    chosen for the group as it was. Pending requests take the new people counts.
    """
    case = get_case(session, principal, case_id, lock=True)
    if case.version != expected_version:
        raise StaleVersion(
            "case {case_id} is at version {version}, not {expected}",
            case_id=case_id,
            version=case.version,
            expected=expected_version,
        )
    if case.purged_at is not None:
        raise Conflict("case {case_id} was purged under the retention rule", case_id=case_id)
    current = profile_of(case)
    values = {name: getattr(current, name) for name in PROFILE_FIELDS}
    values.update(profile_changes)
    profile = CaseProfile(**values)
    _validate(session, profile, majority_age)
    if profile.members != current.members:
        active = session.scalar(
            select(Placement.id)
            .join(PlacementRequest, Placement.request_id == PlacementRequest.id)
            .where(PlacementRequest.case_id == case.id, Placement.status.in_(ACTIVE_PLACEMENT))
            .limit(1)
        )
        if active is not None:
            raise Conflict("members cannot change while a placement holds or houses them")
    for name, value in _profile_columns(profile).items():
        setattr(case, name, value)
    if separate_from_case_ids is not None:
        set_separations(session, case, separate_from_case_ids)
    case.version += 1
    case.updated_at = utcnow()
    counts = people_counts(profile, majority_age)
    for request in session.scalars(
        select(PlacementRequest).where(
            PlacementRequest.case_id == case.id, PlacementRequest.status == "pending"
        )
    ):
        for name, value in counts.items():
            setattr(request, name, value)
        request.region_code = profile.current_region
    session.flush()
    return case
