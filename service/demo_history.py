"""Six months of synthetic history for the demo, made by the same code paths as real work.

A funder who opens the demo should see charts with something in them, and an admin runs and an
audit chain with a past. Nothing here writes a table directly: cases and requests are created,
batch runs are queued, claimed and executed by the worker's own code, placements are accepted,
declined, admitted and discharged through the lifecycle, grants are recorded and units changed
through the registry, each in its own transaction with the clock (``shelters.models.clock_at``)
set to the moment it happened. So every report, run document and audit entry of the demo is one
the service itself could have written.

Everyone in it is synthetic: people are a sex and an age, cases have random codes, and the two
intake caseworker accounts that created them are disabled once the history is written.
"""

from __future__ import annotations

import heapq
import random
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service import jobs
from service.db import Sessions, make_engine
from service.settings import Settings
from shelters import cases, funding, identity, lifecycle, registry, runs
from shelters.audit import AuditRecord, append
from shelters.identity import Principal, Role
from shelters.models import (
    DECLINE_REASONS,
    InboxEntry,
    Organization,
    Placement,
    PlacementRequest,
    Shelter,
    Unit,
    clock_at,
    utcnow,
)
from shelters.profiles import CaseProfile, MemberProfile

MONTHS = 6
RUN_WEEKDAYS = (0, 2, 4)  # batch runs on Monday, Wednesday and Friday mornings
RUN_HOUR = 10
RUN_TIME_LIMIT_S = 2.0
CASES_PER_DAY = 3.0
GIVE_UP_AFTER = timedelta(days=14)
INTAKE_USERS = (
    ("demo-intake-state", "Demo Regional Social Protection Service"),
    ("demo-intake-partner", "Demo International Migration Partner"),
)
FUNDER = "Demo Child Protection Fund"
# (shelter, funded beds, amount in KZT): the fund pays for places for children and their
# mothers. Turkistan's grant pays for more beds than the shelter has: the grants report flags
# it as under-delivery, as a funder should see it.
GRANTS = (
    ("Demo Crisis Centre Astana", 12, Decimal("36000000")),
    ("Demo State Children's Centre Pavlodar", 6, Decimal("24000000")),
    ("Demo Shelter Turkistan", 11, Decimal("30000000")),
)
# Where people are found: the big cities and the south more often, as in the field.
ORIGINS = (
    ("almaty", 5),
    ("astana", 3),
    ("shymkent", 3),
    ("turkistan", 2),
    ("karaganda", 2),
    ("atyrau", 1),
    ("aktobe", 1),
    ("pavlodar", 1),
    ("mangystau", 1),
    ("jambyl", 1),
)


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    act: Callable[[Session], None] = field(compare=False)


@dataclass
class _Timeline:
    """Events in time order; an event may schedule later ones."""

    events: list[_Event] = field(default_factory=list)
    seq: int = 0

    def at(self, when: datetime, act: Callable[[Session], None]) -> None:
        self.seq += 1
        heapq.heappush(self.events, _Event(when, self.seq, act))

    def __iter__(self) -> Iterator[_Event]:
        while self.events:
            yield heapq.heappop(self.events)


def history_start(now: datetime, months: int = MONTHS) -> datetime:
    """Midnight UTC on the first day of the month ``months`` months before ``now``'s month."""
    month = now.year * 12 + now.month - 1 - months
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _profile(rng: random.Random, region: str) -> CaseProfile:
    """A synthetic case: mostly mothers with children, some lone adults and lone minors."""
    kind = rng.choices(
        ("mother", "woman", "man", "girl", "minor", "siblings"), weights=(45, 20, 12, 10, 8, 5)
    )[0]
    members: list[MemberProfile] = []
    if kind == "mother":
        members.append(MemberProfile("m1", "female", rng.randint(19, 44)))
        for i in range(rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]):
            members.append(
                MemberProfile(f"c{i + 1}", rng.choice(("female", "male")), rng.randint(0, 15), "m1")
            )
    elif kind in ("woman", "man"):
        members.append(
            MemberProfile("m1", "female" if kind == "woman" else "male", rng.randint(18, 55))
        )
    elif kind == "girl":
        members.append(MemberProfile("m1", "female", rng.randint(12, 17)))
    elif kind == "minor":
        members.append(MemberProfile("m1", rng.choice(("female", "male")), rng.randint(8, 17)))
    else:
        for i in range(rng.randint(2, 3)):
            members.append(
                MemberProfile(f"m{i + 1}", rng.choice(("female", "male")), rng.randint(7, 16))
            )
    services = ("psychological_counselling",) if rng.random() < 0.3 else ()
    exploitation = rng.choices(
        ("sexual", "labour", "forced_criminality", "begging", "forced_marriage", "other"),
        weights=(35, 40, 5, 8, 7, 5),
        k=2 if rng.random() < 0.15 else 1,
    )
    referral = rng.choices(
        ("police", "ngo", "hotline", "self", "other"), weights=(40, 30, 15, 10, 5)
    )
    return CaseProfile(
        members=tuple(members),
        required_services=services,
        desired_services=("legal_aid",) if rng.random() < 0.4 else (),
        languages=("kk",) if rng.random() < 0.5 else ("ru",),
        high_risk=rng.random() < 0.15,
        current_region=region,
        # One case in ten has no codes recorded, as in the field.
        exploitation_types=tuple(sorted(set(exploitation))) if rng.random() < 0.9 else (),
        referral_source=referral[0] if rng.random() < 0.9 else None,
    )


@contextmanager
def _at(sessions: Sessions, when: datetime) -> Iterator[Session]:
    with clock_at(when), sessions.write() as session, session.begin():
        yield session


class _History:
    def __init__(self, sessions: Sessions, settings: Settings, rng: random.Random, end: datetime):
        self.sessions = sessions
        self.settings = settings
        self.rng = rng
        self.end = end
        self.timeline = _Timeline()
        self.ttl = timedelta(hours=settings.hold_ttl_hours)

    # --- people and principals ---

    def principals(self, session: Session, start: datetime) -> None:
        self.admin = identity.load_principal(session, identity.find_user_id(session, "demo-admin"))
        self.intake: list[Principal] = []
        for username, org_name in INTAKE_USERS:
            org_id = session.scalar(select(Organization.id).where(Organization.name == org_name))
            user = identity.create_user(
                session,
                username=username,
                password=secrets.token_urlsafe(16),
                role=Role.CASEWORKER,
                organization_id=org_id,
            )
            self.intake.append(identity.load_principal(session, user.id))

    # --- events ---

    def arrive(self, session: Session, when: datetime) -> None:
        region = self.rng.choices(*zip(*ORIGINS, strict=True))[0]
        principal = self.rng.choice(self.intake)
        case = cases.create_case(
            session,
            principal,
            _profile(self.rng, region),
            separate_from_case_ids=[],
            majority_age=self.settings.majority_age,
        )
        request = lifecycle.create_request(
            session,
            principal,
            case_id=case.id,
            priority=None,
            preferred_regions=[region] if self.rng.random() < 0.5 else [],
            majority_age=self.settings.majority_age,
        )
        self._audit(session, "create", "placement_request", request.id, principal)
        request_id = request.id
        self.timeline.at(
            when + GIVE_UP_AFTER, partial(self.give_up, request_id=request_id, principal=principal)
        )

    def batch_run(self, when: datetime) -> None:
        with _at(self.sessions, when) as session:
            params = runs.RunParameters(
                time_limit_s=RUN_TIME_LIMIT_S, seed=self.rng.randrange(1 << 16), dry_run=False
            )
            run = runs.create_run(
                session, self.admin, params, max_active=1, max_time_limit_s=RUN_TIME_LIMIT_S
            )
            self._audit(session, "create", "matching_run", run.id, self.admin)
            run_id = run.id
        with _at(self.sessions, when) as session:
            claim = runs.claim(session, run_id, worker_id="demo-history", now=when)
        assert claim is not None
        with clock_at(when + timedelta(seconds=5)):
            jobs.execute_claimed(self.sessions, self.settings, claim)
        with self.sessions.read() as session:
            proposed = session.scalars(
                select(Placement.id).where(Placement.matching_run_id == run_id)
            ).all()
        for placement_id in proposed:
            self.timeline.at(
                when + timedelta(minutes=self.rng.randint(40, 20 * 60)),
                partial(self.answer, placement_id=placement_id),
            )

    def answer(self, session: Session, placement_id: int) -> None:
        placement = session.get(Placement, placement_id)
        assert placement is not None
        if placement.status != "proposed" or self.rng.random() < 0.06:
            return  # expired meanwhile, or nobody answered: the next run expires it
        when = placement.proposed_at
        if self.rng.random() < 0.13:
            reason = self.rng.choice(DECLINE_REASONS)
            self._transition(session, placement_id, "decline", reason=reason)
            return
        self._transition(session, placement_id, "accept")
        self.timeline.at(
            max(when, utcnow()) + timedelta(hours=self.rng.randint(2, 36)),
            partial(self.admit, placement_id=placement_id),
        )

    def admit(self, session: Session, placement_id: int) -> None:
        placement = session.get(Placement, placement_id)
        assert placement is not None
        if placement.status != "accepted":
            return
        self._transition(session, placement_id, "admit")
        stay = timedelta(days=self.rng.randint(7, 70), hours=self.rng.randint(0, 8))
        self.timeline.at(utcnow() + stay, partial(self.discharge, placement_id=placement_id))

    def discharge(self, session: Session, placement_id: int) -> None:
        self._transition(session, placement_id, "discharge")

    def give_up(self, session: Session, request_id: int, principal: Principal) -> None:
        request = session.get(PlacementRequest, request_id)
        assert request is not None
        if request.status == "pending":
            lifecycle.cancel_request(session, principal, request_id)
            self._audit(session, "cancel", "placement_request", request_id, principal)

    def _transition(
        self, session: Session, placement_id: int, action: str, *, reason: str | None = None
    ) -> None:
        lifecycle.transition(session, self.admin, placement_id, action, reason=reason)
        self._audit(session, action, "placement", placement_id, self.admin)

    def _audit(
        self, session: Session, action: str, kind: str, resource_id: int, who: Principal
    ) -> None:
        append(
            session,
            AuditRecord(
                action=action,
                resource_type=kind,
                resource_id=resource_id,
                actor_user_id=who.user_id,
                actor_role=who.role.value,
            ),
        )

    # --- the whole of it ---

    def grants(self, session: Session, start: datetime) -> None:
        funder = session.scalar(select(Organization.id).where(Organization.name == FUNDER))
        assert funder is not None
        for name, beds, amount in GRANTS:
            shelter_id = session.scalar(select(Shelter.id).where(Shelter.name == name))
            assert shelter_id is not None
            grant = funding.create_grant(
                session,
                self.admin,
                funder_organization_id=funder,
                shelter_id=shelter_id,
                start=start.date(),
                end=date(self.end.year, 12, 31),
                amount=amount,
                currency="KZT",
                funded_beds=beds,
            )
            self._audit(session, "create", "grant", grant.id, self.admin)

    def repairs(self, session: Session) -> None:
        """Two beds of the first unit out of service for three weeks, as after a burst pipe."""
        unit = session.scalar(select(Unit).order_by(Unit.id).limit(1))
        assert unit is not None
        unit_id, version, broken = unit.id, unit.version, min(2, unit.available)
        registry.update_unit(
            session,
            self.admin,
            unit_id,
            expected_version=version,
            changes={"out_of_service": broken},
        )
        self._audit(session, "update", "unit", unit_id, self.admin)
        self.timeline.at(utcnow() + timedelta(days=21), partial(self.repaired, unit_id=unit_id))

    def repaired(self, session: Session, unit_id: int) -> None:
        unit = session.get(Unit, unit_id)
        assert unit is not None
        registry.update_unit(
            session,
            self.admin,
            unit_id,
            expected_version=unit.version,
            changes={"out_of_service": 0},
        )
        self._audit(session, "update", "unit", unit_id, self.admin)

    def confirm(self, session: Session, unit_id: int) -> None:
        unit = session.get(Unit, unit_id)
        assert unit is not None
        registry.confirm_unit(session, self.admin, unit_id, expected_version=unit.version)
        self._audit(session, "confirm", "unit", unit_id, self.admin)

    def mornings(self, session: Session) -> None:
        """Coordinators confirm their numbers in the last hours, all but one unit's.

        The last unit's coordinator has not looked for three days: the demo's stale unit.
        """
        unit_ids = session.scalars(select(Unit.id).order_by(Unit.id)).all()
        for index, unit_id in enumerate(unit_ids):
            hours = 72 if index == len(unit_ids) - 1 else self.rng.randint(1, 12)
            self.timeline.at(
                self.end - timedelta(hours=hours, minutes=index),
                partial(self.confirm, unit_id=unit_id),
            )

    def close(self, session: Session) -> None:
        """What the history told people happened long ago: their inboxes start read."""
        session.execute(
            update(InboxEntry).where(InboxEntry.read_at.is_(None)).values(read_at=self.end)
        )
        for principal in self.intake:
            identity.set_active(session, self.admin.user_id, principal.user_id, active=False)
            self._audit(session, "disable", "user", principal.user_id, self.admin)

    def play(self, start: datetime) -> None:
        with _at(self.sessions, start) as session:
            self.principals(session, start)
            self.grants(session, start)
            self.mornings(session)
        self.timeline.at(start + timedelta(days=40, hours=9), self.repairs)
        day = start
        while day < self.end:
            for _ in range(_poisson(self.rng, CASES_PER_DAY)):
                when = day + timedelta(minutes=self.rng.randint(8 * 60, 21 * 60))
                self.timeline.at(when, partial(self.arrive, when=when))
            if day.weekday() in RUN_WEEKDAYS:
                self.timeline.at(day + timedelta(hours=RUN_HOUR), _batch_run)
            day += timedelta(days=1)
        for event in self.timeline:
            if event.at >= self.end:
                break
            if event.act is _batch_run:
                self.batch_run(event.at)
                continue
            with _at(self.sessions, event.at) as session:
                event.act(session)
        with _at(self.sessions, self.end) as session:
            self.close(session)


def load_history(
    settings: Settings, *, start: datetime, end: datetime | None = None, seed: int = 0
) -> None:
    """Play the demo's history from ``start`` (when its network came to be) until ``end``.

    Call it once, right after the demo network was created with its clock at ``start``
    (``shelters.demo.load_demo(session, since=start)``); it adds two disabled intake accounts,
    grants, cases, requests, batch runs and what coordinators did with their proposals.
    """
    engine = make_engine(settings.database_url)
    try:
        history = _History(Sessions(engine), settings, random.Random(seed), end or utcnow())  # noqa: S311
        history.play(start)
    finally:
        engine.dispose()


def _batch_run(_: Session) -> None:
    """Marks a batch run in the timeline; runs take their own transactions."""


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by counting exponential gaps within one unit of time."""
    count, total = 0, rng.expovariate(mean)
    while total < 1:
        count += 1
        total += rng.expovariate(mean)
    return count
