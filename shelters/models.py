"""ORM models of the registry and of identity.

Rows never leave the domain: the service layer builds response schemas from them on purpose.
No table has a column for a name, birth date, document number, phone, e-mail or street address
of a person. ``name`` columns name organisations, shelters, regions and units, never people.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "coordinator", "caseworker", "funder")
ORGANIZATION_KINDS = ("ngo", "state", "international", "funder")
SHELTER_STATUSES = ("open", "suspended", "closed")
SECURITY_LEVELS = ("standard", "high")
LOCALES = ("kk", "ru", "en")  # the languages of service/locale; service/i18n.py says the same


_CLOCK: ContextVar[datetime | None] = ContextVar("refuge_clock", default=None)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, or the time :func:`clock_at` set in this context."""
    return _CLOCK.get() or datetime.now(UTC)


@contextmanager
def clock_at(when: datetime) -> Iterator[None]:
    """Let :func:`utcnow` (so every timestamp written) read ``when`` inside the block.

    For loading synthetic history, whose events happened in the past; never for a request.
    """
    token = _CLOCK.set(when.astimezone(UTC))
    try:
        yield
    finally:
        _CLOCK.reset(token)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_missing(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    """Insert a row unless its primary key exists already, without a unique-violation race.

    Two transactions that both find a key missing and insert it would make one of them fail;
    ``ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite) lets the second simply find the first's
    row, which it then locks with ``SELECT … FOR UPDATE``.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


MAX_ID = 2**31 - 1
"""The largest id a row can have: ids are ``INTEGER`` columns, 32 bits on PostgreSQL."""


class Region(Base):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name per language (shelters/names.py); ``name`` is the fallback.
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("lat >= -90 AND lat <= 90", name="lat_range"),
        CheckConstraint("lon >= -180 AND lon <= 180", name="lon_range"),
    )


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint(_in("kind", ORGANIZATION_KINDS), name="kind_known"),)


user_shelters = Table(
    "user_shelters",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("shelter_id", ForeignKey("shelters.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A member of staff, a funder or the network operator; never a person being placed."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Tokens issued before this (a password change, the user disabled) are refused.
    credentials_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language the user reads Refuge in (kk, ru, en); None: the browser's, else the default.
    locale: Mapped[str | None] = mapped_column(String(8))

    shelters: Mapped[list[Shelter]] = relationship(
        secondary=user_shelters, lazy="raise", order_by="Shelter.id"
    )

    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role_known"),
        CheckConstraint(
            "role = 'admin' OR organization_id IS NOT NULL", name="organization_unless_admin"
        ),
        CheckConstraint(_in("locale", LOCALES), name="locale_known"),
    )


class ApiKey(Base):
    """An API key: only a SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Coarse on purpose: written at most once a minute per key (shelters/identity.py).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A logged-in web-page session: the cookie holds a random id, only its SHA-256 is kept.

    Deleting the row ends the session at once (logout, password change, disabled user).
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Coarse on purpose: written at most once a minute per session.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TotpFactor(Base):
    """A user's TOTP second factor (RFC 6238); usable once ``confirmed_at`` is set.

    ``last_step`` is the time step of the last code accepted, so that a code is used once.
    A row of its own, not columns of ``users``: every login writes ``last_step``, and a write
    to ``users`` would make every process forget the user's cached principal.
    """

    __tablename__ = "totp_factors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """A one-time recovery code of a TOTP factor, stored as an Argon2id hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed logins per username, kept in the database so that every worker sees them."""

    __tablename__ = "login_throttle"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("failures >= 0", name="failures_non_negative"),)


class Shelter(Base):
    __tablename__ = "shelters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    region_code: Mapped[str] = mapped_column(
        ForeignKey("regions.code", ondelete="RESTRICT"), index=True
    )
    locality: Mapped[str] = mapped_column(String(200))
    # Confidential: the shelter's own address and coordinates, never a person's.
    address: Mapped[str | None] = mapped_column(String(500))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    security_level: Mapped[str] = mapped_column(String(20), default="standard")
    wheelchair_accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    units: Mapped[list[Unit]] = relationship(
        back_populates="shelter", lazy="raise", order_by="Unit.id"
    )

    __table_args__ = (
        CheckConstraint(_in("status", SHELTER_STATUSES), name="status_known"),
        CheckConstraint(_in("security_level", SECURITY_LEVELS), name="security_level_known"),
        CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="location_complete"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class Unit(Base):
    """A bed pool inside a shelter.

    ``occupied`` counts admitted placements and ``held`` proposed or accepted ones; both are
    kept by the domain in the same transaction as the placement rows they summarise, and the
    CHECK constraints refuse any write that would leave ``available`` below zero.
    """

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shelter_id: Mapped[int] = mapped_column(
        ForeignKey("shelters.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    out_of_service: Mapped[int] = mapped_column(Integer, default=0)
    external_occupied: Mapped[int] = mapped_column(Integer, default=0)
    occupied: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    admits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a coordinator last said these numbers are true: by changing them or by confirming
    # them unchanged (shelters/freshness.py). Placements moving beds do not count.
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    shelter: Mapped[Shelter] = relationship(back_populates="units", lazy="raise")

    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("out_of_service >= 0", name="out_of_service_non_negative"),
        CheckConstraint("external_occupied >= 0", name="external_occupied_non_negative"),
        CheckConstraint("occupied >= 0", name="occupied_non_negative"),
        CheckConstraint("held >= 0", name="held_non_negative"),
        CheckConstraint(
            "capacity - out_of_service - external_occupied - occupied - held >= 0",
            name="available_non_negative",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        UniqueConstraint("shelter_id", "name", name="uq_units_shelter_name"),
    )

    @hybrid_property
    def available(self) -> int:
        """Free beds: capacity less out-of-service, external, occupied and held beds.

        Also usable in queries (``select(Unit.available)``), with the same arithmetic in SQL.
        """
        return (
            self.capacity - self.out_of_service - self.external_occupied - self.occupied - self.held
        )


class UnitChange(Base):
    """One field of one unit changed: who, when, old and new value.

    Written in the same transaction as the change, from the unit's creation on (old value
    null), so that bed-nights can be recomputed for any past period.
    """

    __tablename__ = "unit_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_unit_changes_unit_id_id", "unit_id", "id"),)


REQUEST_STATUSES = ("pending", "proposed", "placed", "cancelled")
OPEN_REQUEST_SQL = "status IN ('pending', 'proposed')"
PLACEMENT_STATUSES = (
    "proposed",
    "accepted",
    "admitted",
    "discharged",
    "declined",
    "expired",
    "cancelled",
)
DECLINE_REASONS = ("no_capacity", "not_eligible", "safety_concern", "staffing", "other")


class Case(Base):
    """A group to be placed together, pseudonymous (SPEC §4).

    ``code`` is random (65 bits) with a check character. Members are local labels with sex,
    age and guardian label: no name, birth date, document, contact or address. ``members`` is
    emptied by the retention purge; reports use the counts kept on the requests.
    """

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    members: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    required_services: Mapped[list[str]] = mapped_column(JSON, default=list)
    desired_services: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    wheelchair: Mapped[bool] = mapped_column(Boolean, default=False)
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded_regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded_shelter_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    current_region: Mapped[str | None] = mapped_column(
        ForeignKey("regions.code", ondelete="RESTRICT")
    )
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Coded (shelters.catalogue), for the HTCDS export; purged with the members.
    exploitation_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    referral_source: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="location_complete"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class CaseSeparation(Base):
    """Case ``case_id`` must never share a shelter with case ``other_case_id`` (SPEC §4).

    ``other_case_id`` is not a foreign key: it may name a case of another organisation, or
    none at all, and storing it must not tell the caller which.
    """

    __tablename__ = "case_separations"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    other_case_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class PlacementRequest(Base):
    """A caseworker's request for beds for one case.

    The people counts are taken from the case when the request is made (and refreshed while
    it is pending), so that reports stay the same after member data is purged.
    """

    __tablename__ = "placement_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    priority: Mapped[int] = mapped_column(Integer)
    preferred_regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code", ondelete="RESTRICT"))
    people_adult: Mapped[int] = mapped_column(Integer, default=0)
    people_accompanied_child: Mapped[int] = mapped_column(Integer, default=0)
    people_unaccompanied_minor: Mapped[int] = mapped_column(Integer, default=0)
    people_female: Mapped[int] = mapped_column(Integer, default=0)
    people_male: Mapped[int] = mapped_column(Integer, default=0)
    people_other: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the request had waited, pending, past REFUGE_ESCALATE_AFTER_HOURS for its priority.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        CheckConstraint(_in("status", REQUEST_STATUSES), name="status_known"),
        # One open request per case, even if a code path ever skipped the case's row lock.
        Index(
            "uq_placement_requests_open_case",
            "case_id",
            unique=True,
            sqlite_where=text(OPEN_REQUEST_SQL),
            postgresql_where=text(OPEN_REQUEST_SQL),
        ),
        CheckConstraint(
            "people_adult >= 0 AND people_accompanied_child >= 0 AND "
            "people_unaccompanied_minor >= 0 AND people_female >= 0 AND people_male >= 0 AND "
            "people_other >= 0",
            name="people_non_negative",
        ),
    )


class Placement(Base):
    """One proposal of beds in one shelter for one request, and what became of it."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("placement_requests.id", ondelete="RESTRICT"), index=True
    )
    shelter_id: Mapped[int] = mapped_column(
        ForeignKey("shelters.id", ondelete="RESTRICT"), index=True
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="proposed", index=True)
    people: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(String(20))
    # A caseworker may lift a decline: the shelter may then be proposed for the request again.
    decline_lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    matching_run_id: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    beds: Mapped[list[PlacementBed]] = relationship(
        lazy="raise", order_by="PlacementBed.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(_in("status", PLACEMENT_STATUSES), name="status_known"),
        CheckConstraint(
            "decline_reason IS NULL OR " + _in("decline_reason", DECLINE_REASONS),
            name="decline_reason_known",
        ),
        CheckConstraint("people >= 1", name="people_positive"),
    )


class PlacementBed(Base):
    __tablename__ = "placement_beds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement_id: Mapped[int] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), index=True
    )
    member_ref: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)

    __table_args__ = (
        UniqueConstraint("placement_id", "member_ref", name="uq_placement_beds_member"),
    )


class PlacementTransition(Base):
    """Every change of a placement's status, with its time and actor (None: the system)."""

    __tablename__ = "placement_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement_id: Mapped[int] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(20))


class IdempotencyKey(Base):
    """A POST's ``Idempotency-Key``, scoped to the caller and kept 24 hours (SPEC §5)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="running")
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (CheckConstraint("state IN ('running', 'done')", name="state_known"),)


RUN_STATUSES = ("queued", "running", "done", "failed")


class MatchingRun(Base):
    """One solve over a set of requests, kept for audit and replay (SPEC §6, §7).

    ``problem`` and ``solution`` are the documents exactly as solved and answered;
    ``refuge solve`` on the problem with the stored seed and parameters gives the same
    assignments. A single-request match is a run of one (``kind = 'single'``).
    """

    __tablename__ = "matching_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    solver_version: Mapped[str | None] = mapped_column(String(100))
    problem_digest: Mapped[str | None] = mapped_column(String(64))
    problem: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    solution: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    wall_s: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requests_count: Mapped[int] = mapped_column(Integer, default=0)
    placed_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    # A batch run's claim (service/jobs.py): the random token of the process that holds it,
    # when that process last said it is alive, and how many times a process took it up.
    worker_id: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status_known"),
        CheckConstraint("kind IN ('batch', 'single')", name="kind_known"),
        CheckConstraint("claims >= 0", name="claims_not_negative"),
    )


class RunOutcome(Base):
    """What a run decided for one request: placed, or not and why.

    Unplaced outcomes of runs that were not dry runs are the unmet-demand record:
    ``reason_codes`` holds the distinct reason codes without shelter ids
    (e.g. ``member_not_admitted``, ``missing_service:child_psychologist``, ``too_few_beds``),
    ``reasons`` the solver's full explanation, grouped as in the solution document
    (``[{"code", "shelters", "by"?}]``, ids written out; migration 0014).
    """

    __tablename__ = "run_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("matching_runs.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int] = mapped_column(
        ForeignKey("placement_requests.id", ondelete="RESTRICT"), index=True
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    placed: Mapped[bool] = mapped_column(Boolean)
    placement_id: Mapped[int | None] = mapped_column(
        ForeignKey("placements.id", ondelete="RESTRICT")
    )
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# --- word when something needs you (shelters/notifications.py) --------------------------------

NOTICE_EVENTS = (
    "placement.proposed",
    "placement.accepted",
    "placement.declined",
    "placement.admitted",
    "placement.discharged",
    "placement.expired",
    "placement.cancelled",
    "placement.expiring",
    "member.coming_of_age",
    "unit.stale",
    "request.escalated",
)
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class InboxEntry(Base):
    """Something a user should know: an event and the ids it is about, never a person's data."""

    __tablename__ = "inbox_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    placement_id: Mapped[int | None] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(Integer)
    shelter_id: Mapped[int | None] = mapped_column(Integer)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in("event", NOTICE_EVENTS), name="event_known"),
        Index("ix_inbox_entries_user_unread", "user_id", "read_at"),
    )


class WebhookEndpoint(Base):
    """Where an integration wants events posted, signed with its own secret (Standard Webhooks)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: the outbox row, written in the event's own transaction.

    ``next_attempt_at`` is when a process may (re)try it; a process that takes it moves that
    forward by a lease first, so a crash mid-post means another try after the lease, never a
    lost event. Receivers see the same ``message_id`` on every try (``webhook-id``).
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )


SCENARIO_KINDS = ("what_if", "bed_budget")


class Scenario(Base):
    """A what-if over stored matching runs (shelters/scenarios.py): never a real placement.

    ``parameters`` hold the period, the changes and (bed_budget) the budget and costs;
    ``result`` the aggregate answer only (counts by group, suppressed as in every report; no
    request ids, no shelter coordinates). ``organization_id`` is the starter's organisation at
    the time, so that a funder reads their own organisation's scenarios. The claim columns work
    as ``matching_runs``' do (service/jobs.py).
    """

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    runs_total: Mapped[int] = mapped_column(Integer, default=0)
    runs_done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    solver_version: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(String(500))
    worker_id: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status_known"),
        CheckConstraint(_in("kind", SCENARIO_KINDS), name="kind_known"),
        CheckConstraint("claims >= 0", name="claims_not_negative"),
        CheckConstraint("runs_done >= 0 AND runs_done <= runs_total", name="progress_in_range"),
    )


class ScenarioRun(Base):
    """One base run re-solved under a scenario's changes, kept so that it replays exactly.

    ``problem_digest`` is the digest of the changed problem (rebuilt from the base run's stored
    problem, the changes and the scenario runs before this one); ``solution`` the scenario's
    solution document with its ``work`` record. ``before_replays`` says whether the base run's
    stored solution replayed byte for byte when the scenario ran.
    """

    __tablename__ = "scenario_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(
        ForeignKey("scenarios.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    base_run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id", ondelete="RESTRICT"))
    problem_digest: Mapped[str] = mapped_column(String(64))
    solution: Mapped[dict[str, Any]] = mapped_column(JSON)
    before_replays: Mapped[bool] = mapped_column(Boolean)
    placed_before: Mapped[int] = mapped_column(Integer, default=0)
    placed_after: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("scenario_id", "position", name="uq_scenario_runs_position"),
        UniqueConstraint("scenario_id", "base_run_id", name="uq_scenario_runs_base_run"),
    )
