"""Request and response bodies of the API.

Request bodies refuse unknown fields (422), so a client cannot smuggle in data we do not
define, and are strict: a number is a JSON number (``true`` or ``"30"`` is not one, and an
integer field takes no fraction, not even ``30.0``), a boolean is ``true`` or ``false``. Text
holds no control characters (``Text``), and an id is within the database's integer range
(``Id``) wherever it appears, body, path or query: anything else is a 422 naming the field.
Responses are built explicitly from domain objects, never returned as ORM rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from placement.solution import Reason
from shelters.identity import Role
from shelters.models import MAX_ID

T = TypeVar("T")

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""The id of a stored row, 1 to MAX_ID; outside that range it is malformed on every engine (422)."""
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL_CHARACTERS)]
"""Free text: any character but the control characters (C0, DEL, C1), NUL among them."""
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Label = Annotated[Text, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]
NameLocale = Literal["kk", "ru", "en"]
Names = Annotated[
    dict[NameLocale, Label],
    Field(
        max_length=3,
        description="The name per language: keys `kk`, `ru`, `en`, each a non-empty name of at "
        "most 200 characters; a language without a name is left out. `name` is the fallback "
        "shown when the reader's language has none.",
        examples=[{"kk": "Абай облысы", "ru": "Абайская область"}],
    ),
]


class Strict(BaseModel):
    """The base of every request body: closed (unknown fields are refused) and strict.

    Strict as pydantic validates Python objects, which is what FastAPI hands it: a field whose
    JSON form is a string to convert (an enum, a date, a decimal) says ``strict=False``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")


LocaleCode = Literal["kk", "ru", "en"]


class MeOut(BaseModel):
    id: int
    username: str
    role: Role
    organization_id: int | None
    shelter_ids: list[int]
    locale: LocaleCode | None = Field(
        description="The language chosen for this user's words; null: the Accept-Language "
        "of each request, else the deployment's default."
    )


class ProfileIn(Strict):
    locale: LocaleCode | None = Field(
        description="kk, ru or en; null to follow each request's Accept-Language."
    )


class UserIn(Strict):
    username: Username
    password: Annotated[Text, StringConstraints(min_length=12, max_length=256)] = Field(
        description="Write-only; at least 12 characters."
    )
    role: Role = Field(strict=False)  # given as its value, e.g. "caseworker"
    organization_id: Id | None = None
    shelter_ids: list[Id] = Field(default_factory=list, max_length=500)
    locale: LocaleCode | None = None


UserOut = MeOut


class ApiKeyIn(Strict):
    expires_at: AwareDatetime | None = Field(
        default=None,
        strict=False,  # an ISO 8601 string in JSON
        description="When the key stops working by itself (optional, future).",
    )


class ApiKeyOut(BaseModel):
    token: str = Field(description="Shown once: only its hash is kept.")
    id: int
    expires_at: datetime | None


class ApiKeyInfo(BaseModel):
    """An API key without its secret."""

    id: int
    user_id: int
    prefix: str = Field(description="The `rfg_<prefix>_` start of the token, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute (written once a minute).")


class UserStateOut(BaseModel):
    id: int
    active: bool
    web_sessions_ended: int = Field(description="Web sessions this change ended at once.")


class PasswordChangeIn(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Annotated[str, StringConstraints(min_length=12, max_length=256)]


class TotpEnrolmentOut(BaseModel):
    otpauth_uri: str = Field(description="Shown once: scan it into an authenticator app.")


class TotpCodeIn(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works once.")


class RegionIn(Strict):
    code: Slug
    name: Label
    names: Names = Field(default_factory=dict)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RegionOut(BaseModel):
    code: str
    name: str
    names: dict[str, str] = Field(description="The name per language (`kk`, `ru`, `en`).")
    lat: float
    lon: float


class OrganizationIn(Strict):
    name: Label
    kind: Literal["ngo", "state", "international", "funder"]


class OrganizationOut(BaseModel):
    id: int
    name: str
    kind: str


class ServiceOut(BaseModel):
    code: str
    label: str


class HealthOut(BaseModel):
    status: Literal["ok"]


Sex = Literal["female", "male", "other"]
ExploitationType = Literal[
    "sexual", "labour", "forced_criminality", "begging", "forced_marriage", "other"
]
ReferralSource = Literal["police", "ngo", "self", "hotline", "other"]
EXPLOITATION_DESCRIPTION = (
    "Optional, coded (never free text): the types of exploitation the case was identified with, "
    "as HTCDS and CTDC count them (docs/htcds.md). Purged with the members."
)
REFERRAL_DESCRIPTION = "Optional, coded: who referred the case (docs/htcds.md)."
Status = Literal["adult", "accompanied_child", "unaccompanied_minor"]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
ServiceCode = Annotated[str, StringConstraints(pattern=r"^[a-z_]{2,40}$")]
Age = Annotated[int, Field(ge=0, le=120)]


class LocationIn(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


LocationOut = LocationIn


ShelterStatus = Literal["open", "suspended", "closed"]


class ShelterIn(Strict):
    organization_id: Id
    name: Label
    names: Names = Field(default_factory=dict)
    region: Slug
    locality: Label
    address: Annotated[Text, StringConstraints(max_length=500)] | None = None
    location: LocationIn | None = None
    security_level: Literal["standard", "high"] = "standard"
    wheelchair_accessible: bool = False
    services: list[ServiceCode] = Field(default_factory=list, max_length=20)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    status: ShelterStatus = "open"


class ShelterPatch(Strict):
    name: Label | None = None
    names: Names | None = Field(
        default=None, description="Replaces the whole map; `{}` removes every name."
    )
    region: Slug | None = None
    locality: Label | None = None
    address: Annotated[Text, StringConstraints(max_length=500)] | None = None
    location: LocationIn | None = None
    security_level: Literal["standard", "high"] | None = None
    wheelchair_accessible: bool | None = None
    services: list[ServiceCode] | None = Field(default=None, max_length=20)
    languages: list[LanguageCode] | None = Field(default=None, max_length=20)
    status: ShelterStatus | None = None


class ShelterOut(BaseModel):
    """A shelter as anyone allowed to read it sees it: region and locality, no address."""

    id: int
    organization_id: int
    name: str
    names: dict[str, str] = Field(description="The name per language (`kk`, `ru`, `en`).")
    region: str
    locality: str
    security_level: str
    wheelchair_accessible: bool
    services: list[str]
    languages: list[str]
    status: str
    version: int


class ShelterConfidentialOut(ShelterOut):
    """A shelter with its confidential address and coordinates."""

    address: str | None
    location: LocationOut | None


class AdmissionRuleIn(Strict):
    sexes: list[Sex] = Field(min_length=1, max_length=3)
    min_age: Age
    max_age: Age
    statuses: list[Status] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _ages_ordered(self) -> AdmissionRuleIn:
        if self.min_age > self.max_age:
            raise ValueError("min_age must not exceed max_age")
        return self


AdmissionRuleOut = AdmissionRuleIn
BedCount = Annotated[int, Field(ge=0, le=10_000)]


class UnitIn(Strict):
    name: Label
    capacity: BedCount
    out_of_service: BedCount = 0
    external_occupied: BedCount = 0
    admits: list[AdmissionRuleIn] = Field(min_length=1, max_length=20)


class UnitPatch(Strict):
    name: Label | None = None
    capacity: BedCount | None = None
    out_of_service: BedCount | None = None
    external_occupied: BedCount | None = None
    admits: list[AdmissionRuleIn] | None = Field(default=None, min_length=1, max_length=20)


class UnitOut(BaseModel):
    id: int
    shelter_id: int
    name: str
    capacity: int
    out_of_service: int
    external_occupied: int
    occupied: int
    held: int
    available: int
    admits: list[AdmissionRuleOut]
    version: int
    updated_at: datetime
    confirmed_at: datetime = Field(
        description="When a coordinator last changed these numbers or confirmed them unchanged."
    )
    stale: bool = Field(
        description="Not confirmed within REFUGE_STALE_AFTER_HOURS: the numbers may be old."
    )


class UnitChangeOut(BaseModel):
    id: int
    changed_at: datetime
    actor_user_id: int | None
    field: str
    old: Any
    new: Any


class UnitBedsOut(BaseModel):
    unit_id: int
    name: str
    capacity: int
    available: int
    admits: list[AdmissionRuleOut]


class ShelterBedsOut(BaseModel):
    shelter_id: int
    name: str
    names: dict[str, str] = Field(description="The name per language (`kk`, `ru`, `en`).")
    region: str
    locality: str
    status: str
    security_level: str
    wheelchair_accessible: bool
    services: list[str]
    languages: list[str]
    available: int
    units: list[UnitBedsOut]


RefStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
YearMonth = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class MemberIn(Strict):
    ref: RefStr = Field(description='A local label such as "A"; never a name.')
    sex: Sex
    age: Age
    guardian_ref: RefStr | None = None
    comes_of_age: YearMonth | None = Field(
        default=None,
        description="A minor only, optional: the month (YYYY-MM) in which they come of age, "
        "so that the shelter hears of it before. Never a birth date. A placed minor one year "
        "under majority without it is flagged as one who may come of age during the stay.",
    )


class CaseProfileIn(Strict):
    """The needs of a group, without anything that identifies a person."""

    members: list[MemberIn] = Field(min_length=1, max_length=20)
    required_services: list[ServiceCode] = Field(default_factory=list, max_length=10)
    desired_services: list[ServiceCode] = Field(default_factory=list, max_length=10)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    wheelchair: bool = False
    high_risk: bool = False
    excluded_regions: list[Slug] = Field(default_factory=list, max_length=30)
    excluded_shelter_ids: list[Id] = Field(default_factory=list, max_length=100)
    current_region: Slug | None = None
    location: LocationIn | None = None
    exploitation_types: list[ExploitationType] = Field(
        default_factory=list, max_length=6, description=EXPLOITATION_DESCRIPTION
    )
    referral_source: ReferralSource | None = Field(default=None, description=REFERRAL_DESCRIPTION)


class BedOut(BaseModel):
    member_ref: str
    unit_id: int


class EligibleOut(BaseModel):
    shelter_id: int
    beds: list[BedOut]


class IneligibleOut(BaseModel):
    shelter_id: int
    reasons: list[str]


class AvailabilityCheckOut(BaseModel):
    eligible: list[EligibleOut]
    ineligible: list[IneligibleOut]


class CaseIn(CaseProfileIn):
    separate_from_case_ids: list[Id] = Field(
        default_factory=list,
        max_length=50,
        description="Cases (of any organisation) that must never share a shelter with this one.",
    )


class CasePatch(Strict):
    members: list[MemberIn] | None = Field(default=None, min_length=1, max_length=20)
    required_services: list[ServiceCode] | None = Field(default=None, max_length=10)
    desired_services: list[ServiceCode] | None = Field(default=None, max_length=10)
    languages: list[LanguageCode] | None = Field(default=None, max_length=10)
    wheelchair: bool | None = None
    high_risk: bool | None = None
    excluded_regions: list[Slug] | None = Field(default=None, max_length=30)
    excluded_shelter_ids: list[Id] | None = Field(default=None, max_length=100)
    current_region: Slug | None = None
    location: LocationIn | None = None
    exploitation_types: list[ExploitationType] | None = Field(
        default=None, max_length=6, description=EXPLOITATION_DESCRIPTION
    )
    referral_source: ReferralSource | None = Field(default=None, description=REFERRAL_DESCRIPTION)
    separate_from_case_ids: list[Id] | None = Field(default=None, max_length=50)


class MemberOut(BaseModel):
    ref: str
    sex: str
    age: int
    guardian_ref: str | None
    comes_of_age: str | None
    status: Status


class CaseOut(BaseModel):
    id: int
    code: str = Field(description="Random, with a check character; never a name.")
    organization_id: int
    members: list[MemberOut]
    required_services: list[str]
    desired_services: list[str]
    languages: list[str]
    wheelchair: bool
    high_risk: bool
    excluded_regions: list[str]
    excluded_shelter_ids: list[int]
    separate_from_case_ids: list[int]
    current_region: str | None
    location: LocationOut | None
    exploitation_types: list[str]
    referral_source: str | None
    version: int
    created_at: datetime
    purged: bool


class PlacementRequestIn(Strict):
    case_id: Id
    priority: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="5 most urgent; default 4 with an unaccompanied minor, else 3.",
    )
    preferred_regions: list[Slug] = Field(default_factory=list, max_length=20)


RequestStatus = Literal["pending", "proposed", "placed", "cancelled"]
PlacementStatus = Literal[
    "proposed", "accepted", "admitted", "discharged", "declined", "expired", "cancelled"
]


class PlacementRequestOut(BaseModel):
    id: int
    case_id: int
    organization_id: int
    priority: int
    preferred_regions: list[str]
    status: RequestStatus
    declined_shelter_ids: list[int] = Field(
        description="Shelters that declined this request: not proposed again unless lifted."
    )
    escalated_at: datetime | None = Field(
        description="When the request had waited pending past REFUGE_ESCALATE_AFTER_HOURS for "
        "its priority (its caseworkers and the admins were told); null until then."
    )
    created_at: datetime
    updated_at: datetime


class TransitionOut(BaseModel):
    at: datetime
    actor_user_id: int | None
    from_status: str | None
    to_status: str
    reason: str | None


class PlacedMemberOut(BaseModel):
    """What a shelter needs to know of a member: sex, age, status, and nothing more.

    For a minor whose caseworker recorded it, also the month they come of age.
    """

    member_ref: str
    unit_id: int
    sex: str | None
    age: int | None
    status: Status | None
    comes_of_age: str | None = Field(
        default=None, description="The month (YYYY-MM) the member comes of age, when known."
    )


class NeedsOut(BaseModel):
    required_services: list[str]
    desired_services: list[str]
    languages: list[str]
    wheelchair: bool
    high_risk: bool


class PlacementOut(BaseModel):
    id: int
    request_id: int
    shelter_id: int
    status: PlacementStatus
    beds: list[BedOut]
    members: list[PlacedMemberOut]
    needs: NeedsOut | None
    expires_at: datetime
    proposed_at: datetime
    accepted_at: datetime | None
    admitted_at: datetime | None
    ended_at: datetime | None
    decline_reason: str | None
    transitions: list[TransitionOut]


DeclineReason = Literal["no_capacity", "not_eligible", "safety_concern", "staffing", "other"]


class DeclineIn(Strict):
    # Optional here so that a missing reason is refused by the domain with a problem that
    # names the field and lists the allowed values, not with "body: Field required".
    reason: DeclineReason | None = Field(
        default=None, description="Required: one of the listed values."
    )


class ReasonOut(BaseModel):
    code: str = Field(description="A reason code of SPEC §4 or §6, e.g. member_not_admitted:A.")
    shelter_ids: list[int] = Field(description="The shelters the code applies to.")
    request_ids: list[int] = Field(
        default_factory=list,
        description="capacity_taken and separated_from: the placed requests behind the code.",
    )


def reason_out(reason: Reason) -> ReasonOut:
    """The API shape of one grouped solver reason (ids are the database ids)."""
    return ReasonOut(
        code=reason.code,
        shelter_ids=[int(s) for s in reason.shelters],
        request_ids=[int(r) for r in reason.by],
    )


class MatchIn(Strict):
    shelter_id: Id | None = Field(
        default=None,
        description="Hold beds at this open shelter only, or nowhere; omitted: the best match.",
    )


class MatchOut(BaseModel):
    placed: bool
    placement: PlacementOut | None
    reasons: list[ReasonOut] = Field(
        description="Why nothing was placed: one entry per reason code with its shelters."
    )
    stale_unit_ids: list[int] = Field(
        default_factory=list,
        description="Units of the proposal whose numbers nobody confirmed within "
        "REFUGE_STALE_AFTER_HOURS: the match relied on them; ask the shelter to check.",
    )


class WeightsIn(Strict):
    """Soft-cost weights (integers); unnamed ones keep their defaults (docs/solver.md)."""

    distance_per_metre: int | None = Field(default=None, ge=0, le=1_000)
    missing_desired_service: int | None = Field(default=None, ge=0, le=1_000_000)
    no_shared_language: int | None = Field(default=None, ge=0, le=1_000_000)
    outside_preferred_regions: int | None = Field(default=None, ge=0, le=1_000_000)


class MatchingRunIn(Strict):
    request_ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=20_000, description="Default: every pending request."
    )
    time_limit_s: float = Field(default=10.0, gt=0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    weights: WeightsIn | None = None
    dry_run: bool = False


class MatchingRunOut(BaseModel):
    """A run's summary: what every role that may see the run sees."""

    id: int
    kind: Literal["batch", "single"]
    status: Literal["queued", "running", "done", "failed"]
    dry_run: bool
    started_by: int | None = Field(
        description="The user who started the run; null for funders, who see counts only."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    wall_s: float | None
    attempts: int = Field(
        description="solves of the last claim (a solve that no longer fit "
        "the free beds is solved again)"
    )
    claims: int = Field(
        description="times a process took the run up; more than 1: a process died holding it "
        "and the run was requeued"
    )
    heartbeat_at: datetime | None = Field(
        description="when the process holding the run last said it is alive"
    )
    requests_count: int
    placed_count: int
    parameters: dict[str, Any] = Field(
        description=(
            "As the run was asked. Only admins see the listed `request_ids`; everyone else "
            "sees `request_ids_count` instead (null: every pending request)."
        )
    )
    solver_version: str | None
    problem_digest: str | None
    error: str | None
