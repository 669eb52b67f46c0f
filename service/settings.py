"""Settings, read from the environment with the prefix ``REFUGE_``.

Nothing here is read at import time: ``Settings()`` is built by the CLI or the app factory and
handed down explicitly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./refuge.db"
DEFAULT_ESCALATION: dict[int, float] = {5: 2.0, 4: 8.0, 3: 24.0, 2: 48.0, 1: 72.0}
"""Hours a request of each priority may wait pending before it is escalated (SPEC: 2 h at 5)."""


class SecretKeyMissing(RuntimeError):
    """No signing secret was configured and none may be generated for this database."""


class Settings(BaseSettings):
    """Runtime configuration of one Refuge process."""

    model_config = SettingsConfigDict(env_prefix="REFUGE_", extra="ignore")

    @field_validator("escalate_after_hours")
    @classmethod
    def _escalation(cls, value: dict[int, float]) -> dict[int, float]:
        unknown = sorted(set(value) - set(DEFAULT_ESCALATION))
        if unknown:
            raise ValueError(f"priorities are 1 to 5, not {unknown}")
        if any(not 0 < hours <= 24 * 90 for hours in value.values()):
            raise ValueError("hours must be above 0 and at most 2160 (90 days)")
        return {**DEFAULT_ESCALATION, **value}

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="a SQLite file, or postgresql://user@host/db (driver: psycopg 3)",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="JWT signing secret, at least 32 characters; for a SQLite file, when unset, "
        "a random key is kept beside it (refuge.db.secret); PostgreSQL requires one",
    )
    token_minutes: int = Field(default=30, ge=1, le=60, description="access-token lifetime")
    majority_age: int = Field(
        default=18, ge=14, le=21, description="age from which a member is an adult"
    )
    hold_ttl_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="how long a proposed placement holds its beds"
    )
    expiry_sweep_s: float = Field(
        default=60.0, ge=0, description="seconds between sweeps releasing expired holds; 0: none"
    )
    solver_threads: int = Field(default=1, ge=1, le=16, description="batch runs solved at once")
    max_active_runs: int = Field(default=4, ge=1, description="queued + running before 503")
    max_run_time_limit_s: float = Field(
        default=120.0, gt=0, le=3600, description="the longest time_limit_s a run may ask for"
    )
    max_active_scenarios: int = Field(
        default=2, ge=1, description="what-if scenarios queued + running before 503"
    )
    scenario_max_runs: int = Field(
        default=400, ge=1, le=10_000, description="stored runs one scenario may re-solve"
    )
    scenario_max_changes: int = Field(
        default=20, ge=1, le=200, description="changes (or bed-budget costs) in one scenario"
    )
    run_worker: bool = Field(
        default=True,
        description="this process executes batch runs; false: it only queues them for the "
        "processes that do",
    )
    run_heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="how often a process says it still holds its runs, and looks for queued "
        "runs and for runs of processes that stopped",
    )
    run_heartbeat_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="a running run whose heartbeat is older than this is taken from its "
        "process: requeued, or failed after run_max_claims claims",
    )
    run_max_claims: int = Field(
        default=3, ge=1, le=100, description="claims of one run before it is failed, not requeued"
    )
    stale_after_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 90,
        description="a unit whose numbers nobody changed or confirmed for this long is flagged "
        "stale in the API, the HSDS export, the pages and the matches that use it",
    )
    escalate_after_hours: dict[int, float] = Field(
        default_factory=lambda: dict(DEFAULT_ESCALATION),
        description="per priority (5 most urgent), the hours a request may wait pending before "
        'it is escalated; JSON, e.g. {"5": 2, "4": 8}; a priority left out keeps its default',
    )
    webhook_poll_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="seconds between passes over the webhook outbox in processes that execute "
        "runs (REFUGE_RUN_WORKER) and in `refuge worker`; 0: this process delivers none",
    )
    match_rate_per_minute: int = Field(default=120, ge=1, description="single matches per user")
    run_rate_per_minute: int = Field(default=10, ge=1, description="matching runs per user")
    suppression_k: int = Field(
        default=11, ge=3, description="counts of people from 1 to k-1 are suppressed in reports"
    )
    retention_days: int = Field(
        default=365, ge=1, description="member data of finished cases is purged after this"
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="larger request bodies get 413"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token a scraper sends to GET /metrics; unset, /metrics is off (404)",
    )
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="requests a worker process works on at once, besides slow ones; the rest "
        "queue (see README). Unset: 1, or 2 on PostgreSQL served by one worker process",
    )
    worker_processes: int = Field(
        default=1, ge=1, le=64, description="set by `refuge serve --workers` for its workers"
    )
    slow_request_ms: int = Field(
        default=50,
        ge=1,
        le=60_000,
        description="a request running this long no longer counts against max_in_flight",
    )
    principal_cache_s: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="PostgreSQL: how long a process may reuse a caller's role and shelters "
        "while it hears every change to them (service/principals.py); 0 looks up every caller",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="failed logins per username in the window that lock it"
    )
    login_window_s: int = Field(default=900, ge=1, description="the window of failed logins")
    login_lockout_s: int = Field(
        default=300, ge=1, description="how long a locked username stays locked"
    )
    totp_required_roles: str = Field(
        default="",
        description="comma-separated roles (e.g. admin,caseworker) that must give a one-time "
        "code at login; a user who set up a second factor gives one whatever the role",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="JSON list of allowed origins; CORS is off when empty"
    )
    default_locale: Literal["kk", "ru", "en"] = Field(
        default="en",
        description="the language of callers with no locale of their own and no "
        "Accept-Language Refuge speaks; `refuge serve --demo` sets ru unless this is set",
    )
    timezone: str = Field(
        default="Asia/Almaty",
        description="IANA time zone of the times people read in the pages; the API stays UTC",
    )
    demo: bool = Field(default=False, description="set by `refuge serve --demo`")

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; a bare URL would ask for psycopg2.
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not (value.startswith("sqlite") or value.startswith("postgresql+psycopg://")):
            raise ValueError("REFUGE_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"REFUGE_TIMEZONE {value!r} is not an IANA time zone") from None
        return value

    @field_validator("totp_required_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        known = {"admin", "coordinator", "caseworker", "funder"}
        roles = [r.strip() for r in value.split(",") if r.strip()]
        unknown = sorted(set(roles) - known)
        if unknown:
            raise ValueError(f"REFUGE_TOTP_REQUIRED_ROLES names unknown roles: {unknown}")
        return ",".join(roles)

    @property
    def roles_needing_totp(self) -> frozenset[str]:
        """The roles that must give a one-time code at every login."""
        return frozenset(r for r in self.totp_required_roles.split(",") if r)

    @model_validator(mode="after")
    def _heartbeat_timeout_spans_beats(self) -> Settings:
        # One late beat (a busy database, a long write) must not cost a live process its run.
        if self.run_heartbeat_timeout_s < 2 * self.run_heartbeat_s:
            raise ValueError(
                "REFUGE_RUN_HEARTBEAT_TIMEOUT_S must be at least twice REFUGE_RUN_HEARTBEAT_S"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def in_flight(self) -> int:
        """``max_in_flight``, or its default for this engine and number of worker processes.

        A request spends nearly all its time running Python, so one at a time keeps a process
        busiest (README, "Load"); on PostgreSQL part of it is spent waiting for the database,
        which a second request can use when no other worker process would.
        """
        if self.max_in_flight is not None:
            return self.max_in_flight
        return 2 if not self.is_sqlite and self.worker_processes == 1 else 1

    @property
    def crowded_in_flight(self) -> int | None:
        """How many a worker lets in while a crowd waits at its gate (None: no more).

        PostgreSQL with several workers and the default limit: a worker that holds most of the
        clients' keep-alive connections (the kernel's split, README "Load") works on two at
        once, as a single worker would, while the others idle.
        """
        if self.max_in_flight is not None or self.is_sqlite or self.worker_processes == 1:
            return None
        return 2

    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL and in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        if path in ("", ":memory:"):
            return None
        return Path(path.split("?", 1)[0])

    def resolved_secret_key(self) -> str:
        """The JWT signing secret.

        Order: ``REFUGE_SECRET_KEY``; else, for a SQLite file, a random key kept beside it in a
        file only its owner can read (created on first use); else refuse, because several
        PostgreSQL workers must share one configured secret.
        """
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if len(value) < 32:
                raise SecretKeyMissing("REFUGE_SECRET_KEY must be at least 32 characters")
            return value
        path = self.sqlite_path()
        if path is None:
            raise SecretKeyMissing(
                "REFUGE_SECRET_KEY is not set; it is required for PostgreSQL and in-memory "
                "databases (generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        key_file = path.with_name(path.name + ".secret")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        if key_file.stat().st_mode & 0o077:
            raise SecretKeyMissing(f"{key_file} must be readable by its owner only (chmod 600)")
        return key_file.read_text().strip()


MASK = "********"


@dataclass(frozen=True)
class Described:
    """One setting as ``refuge settings`` shows it: never a secret's value."""

    env: str
    value: str
    default: str
    source: Literal["environment", "default"]
    description: str


def _shown(name: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        return MASK
    if value is None:
        return ""
    if name == "database_url":
        from sqlalchemy.engine import make_url

        return make_url(value).render_as_string(hide_password=True)
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe(settings: Settings, environ: Mapping[str, str]) -> list[Described]:
    """Every ``REFUGE_*`` setting, its value in effect (secrets masked), default and source."""
    rows = []
    for name, field in Settings.model_fields.items():
        env = f"REFUGE_{name.upper()}"
        default = field.get_default(call_default_factory=True)
        rows.append(
            Described(
                env=env,
                value=_shown(name, getattr(settings, name)),
                default=_shown(name, default),
                source="environment" if env in environ else "default",
                description=field.description or "",
            )
        )
    return rows
