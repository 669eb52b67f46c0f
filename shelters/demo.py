"""Demo data: Kazakhstan's regions and a small synthetic shelter network.

Everything here is synthetic: organisation and shelter names are made up and marked "Demo",
addresses are placeholders, and no person appears. Region centroids are approximate
(rounded to 0.1°), computed for the regions as they stand since the 2022 reform: 17 regions
and 3 cities of republican significance.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shelters import identity, registry
from shelters.catalogue import SERVICES
from shelters.identity import Role
from shelters.models import Organization, Region, Shelter, User, clock_at, utcnow

REGIONS: list[tuple[str, str, float, float]] = [
    ("abai", "Abai Region", 48.9, 79.6),
    ("akmola", "Akmola Region", 51.9, 69.4),
    ("aktobe", "Aktobe Region", 48.6, 58.6),
    ("almaty-region", "Almaty Region", 44.3, 77.4),
    ("atyrau", "Atyrau Region", 47.3, 52.6),
    ("east-kazakhstan", "East Kazakhstan Region", 49.2, 84.4),
    ("jambyl", "Jambyl Region", 44.3, 72.0),
    ("jetisu", "Jetisu Region", 45.3, 79.4),
    ("karaganda", "Karaganda Region", 48.6, 74.8),
    ("kostanay", "Kostanay Region", 51.5, 63.6),
    ("kyzylorda", "Kyzylorda Region", 45.0, 64.0),
    ("mangystau", "Mangystau Region", 44.0, 53.5),
    ("north-kazakhstan", "North Kazakhstan Region", 54.2, 69.4),
    ("pavlodar", "Pavlodar Region", 52.3, 76.5),
    ("turkistan", "Turkistan Region", 42.9, 68.4),
    ("ulytau", "Ulytau Region", 47.5, 66.6),
    ("west-kazakhstan", "West Kazakhstan Region", 50.0, 51.5),
    ("astana", "Astana (city)", 51.2, 71.4),
    ("almaty", "Almaty (city)", 43.2, 76.9),
    ("shymkent", "Shymkent (city)", 42.3, 69.6),
]

# Kazakh and Russian names of the regions and cities, as the state uses them since the 2022
# reform (Abai, Jetisu and Ulytau regions new). The English ``name`` above stays the fallback.
REGION_NAMES: dict[str, dict[str, str]] = {
    "abai": {"kk": "Абай облысы", "ru": "Абайская область"},
    "akmola": {"kk": "Ақмола облысы", "ru": "Акмолинская область"},
    "aktobe": {"kk": "Ақтөбе облысы", "ru": "Актюбинская область"},
    "almaty-region": {"kk": "Алматы облысы", "ru": "Алматинская область"},
    "atyrau": {"kk": "Атырау облысы", "ru": "Атырауская область"},
    "east-kazakhstan": {"kk": "Шығыс Қазақстан облысы", "ru": "Восточно-Казахстанская область"},
    "jambyl": {"kk": "Жамбыл облысы", "ru": "Жамбылская область"},
    "jetisu": {"kk": "Жетісу облысы", "ru": "Жетысуская область"},
    "karaganda": {"kk": "Қарағанды облысы", "ru": "Карагандинская область"},
    "kostanay": {"kk": "Қостанай облысы", "ru": "Костанайская область"},
    "kyzylorda": {"kk": "Қызылорда облысы", "ru": "Кызылординская область"},
    "mangystau": {"kk": "Маңғыстау облысы", "ru": "Мангистауская область"},
    "north-kazakhstan": {"kk": "Солтүстік Қазақстан облысы", "ru": "Северо-Казахстанская область"},
    "pavlodar": {"kk": "Павлодар облысы", "ru": "Павлодарская область"},
    "turkistan": {"kk": "Түркістан облысы", "ru": "Туркестанская область"},
    "ulytau": {"kk": "Ұлытау облысы", "ru": "Улытауская область"},
    "west-kazakhstan": {"kk": "Батыс Қазақстан облысы", "ru": "Западно-Казахстанская область"},
    "astana": {"kk": "Астана қаласы", "ru": "город Астана"},
    "almaty": {"kk": "Алматы қаласы", "ru": "город Алматы"},
    "shymkent": {"kk": "Шымкент қаласы", "ru": "город Шымкент"},
}

ADULT_WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
ADULT_MEN = {"sexes": ["male"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
ACCOMPANIED_CHILDREN = {
    "sexes": ["female", "male", "other"],
    "min_age": 0,
    "max_age": 17,
    "statuses": ["accompanied_child"],
}
UNACCOMPANIED_GIRLS = {
    "sexes": ["female"],
    "min_age": 12,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}
UNACCOMPANIED_CHILDREN = {
    "sexes": ["female", "male", "other"],
    "min_age": 6,
    "max_age": 17,
    "statuses": ["unaccompanied_minor"],
}
# Most centres take children only with their mothers: the gap SPEC §1 names.
WOMEN_AND_CHILDREN = [ADULT_WOMEN, ACCOMPANIED_CHILDREN]

ORGANIZATIONS: list[tuple[str, str]] = [
    ("Demo Crisis Centres Association", "ngo"),
    ("Demo Regional Social Protection Service", "state"),
    ("Demo International Migration Partner", "international"),
    ("Demo Child Protection Fund", "funder"),
]

# (organisation index, name, region, locality, security, wheelchair, services, languages,
#  units as (name, capacity, admits))
SHELTERS: list[tuple[Any, ...]] = [
    (
        0,
        "Demo Crisis Centre Almaty",
        "almaty",
        "Almaty",
        "high",
        True,
        [
            "medical_care",
            "psychological_counselling",
            "legal_aid",
            "interpretation",
            "mother_and_baby_care",
        ],
        ["kk", "ru", "en"],
        [("Women and children", 12, WOMEN_AND_CHILDREN)],
    ),
    (
        0,
        "Demo Crisis Centre Astana",
        "astana",
        "Astana",
        "high",
        True,
        [
            "medical_care",
            "psychological_counselling",
            "child_psychologist",
            "legal_aid",
            "education",
        ],
        ["kk", "ru"],
        [("Women and children", 10, WOMEN_AND_CHILDREN), ("Girls 12-17", 4, [UNACCOMPANIED_GIRLS])],
    ),
    (
        0,
        "Demo Shelter Shymkent",
        "shymkent",
        "Shymkent",
        "standard",
        False,
        ["psychological_counselling", "legal_aid", "vocational_training"],
        ["kk", "ru", "uz"],
        [("Women and children", 8, WOMEN_AND_CHILDREN)],
    ),
    (
        1,
        "Demo State Rehabilitation Centre Karaganda",
        "karaganda",
        "Karaganda",
        "standard",
        True,
        [
            "medical_care",
            "psychological_counselling",
            "substance_use_treatment",
            "disability_support",
        ],
        ["kk", "ru"],
        [("Women and children", 14, WOMEN_AND_CHILDREN), ("Men", 6, [ADULT_MEN])],
    ),
    (
        1,
        "Demo State Children's Centre Pavlodar",
        "pavlodar",
        "Pavlodar",
        "high",
        False,
        ["medical_care", "child_psychologist", "education"],
        ["kk", "ru"],
        [("Children 6-17", 6, [UNACCOMPANIED_CHILDREN])],
    ),
    (
        1,
        "Demo Social Adaptation Centre Aktobe",
        "aktobe",
        "Aktobe",
        "standard",
        False,
        ["psychological_counselling", "vocational_training"],
        ["kk", "ru"],
        [("Women and children", 6, WOMEN_AND_CHILDREN), ("Men", 4, [ADULT_MEN])],
    ),
    (
        2,
        "Demo Transit Shelter Atyrau",
        "atyrau",
        "Atyrau",
        "standard",
        False,
        ["legal_aid", "interpretation", "medical_care"],
        ["kk", "ru", "en"],
        [("Women and children", 5, WOMEN_AND_CHILDREN), ("Men", 5, [ADULT_MEN])],
    ),
    (
        2,
        "Demo Shelter Turkistan",
        "turkistan",
        "Turkistan",
        "standard",
        False,
        ["psychological_counselling", "mother_and_baby_care"],
        ["kk", "uz", "ru"],
        [("Women and children", 8, WOMEN_AND_CHILDREN)],
    ),
]

# The demo shelters' names in Kazakh and Russian (made up, like the English ones).
SHELTER_NAMES: dict[str, dict[str, str]] = {
    "Demo Crisis Centre Almaty": {
        "kk": "Демо дағдарыс орталығы, Алматы",
        "ru": "Демо кризисный центр, Алматы",
    },
    "Demo Crisis Centre Astana": {
        "kk": "Демо дағдарыс орталығы, Астана",
        "ru": "Демо кризисный центр, Астана",
    },
    "Demo Shelter Shymkent": {"kk": "Демо баспана, Шымкент", "ru": "Демо приют, Шымкент"},
    "Demo State Rehabilitation Centre Karaganda": {
        "kk": "Демо мемлекеттік оңалту орталығы, Қарағанды",
        "ru": "Демо государственный реабилитационный центр, Караганда",
    },
    "Demo State Children's Centre Pavlodar": {
        "kk": "Демо мемлекеттік балалар орталығы, Павлодар",
        "ru": "Демо государственный детский центр, Павлодар",
    },
    "Demo Social Adaptation Centre Aktobe": {
        "kk": "Демо әлеуметтік бейімдеу орталығы, Ақтөбе",
        "ru": "Демо центр социальной адаптации, Актобе",
    },
    "Demo Transit Shelter Atyrau": {
        "kk": "Демо транзиттік баспана, Атырау",
        "ru": "Демо транзитный приют, Атырау",
    },
    "Demo Shelter Turkistan": {"kk": "Демо баспана, Түркістан", "ru": "Демо приют, Туркестан"},
}

DEMO_USERS: list[tuple[str, Role, int | None]] = [
    ("demo-admin", Role.ADMIN, None),
    ("demo-coordinator", Role.COORDINATOR, 0),
    ("demo-caseworker", Role.CASEWORKER, 0),
    ("demo-funder", Role.FUNDER, 3),
]


def region_names(code: str, name: str) -> dict[str, str]:
    """A demo region's names: Kazakh and Russian from :data:`REGION_NAMES`, English ``name``."""
    return {**REGION_NAMES[code], "en": name}


def load_regions(session: Session) -> int:
    """Add the Kazakhstan regions that are missing; returns how many were added.

    Regions already there but without names in any language (a database from before names
    existed) get their Kazakh, Russian and English names; names someone set are left alone.
    """
    known = {r.code: r for r in session.scalars(select(Region))}
    added = []
    for code, name, lat, lon in REGIONS:
        region = known.get(code)
        if region is None:
            added.append(
                Region(code=code, name=name, names=region_names(code, name), lat=lat, lon=lon)
            )
        elif not region.names:
            region.names = region_names(code, name)
    session.add_all(added)
    session.flush()
    return len(added)


def _load_network(session: Session) -> list[Organization]:
    orgs = [Organization(name=name, kind=kind) for name, kind in ORGANIZATIONS]
    session.add_all(orgs)
    session.flush()
    for number, row in enumerate(SHELTERS, start=1):
        org, name, region, locality, security, wheelchair, services, languages, units = row
        centroid = session.get(Region, region)
        assert centroid is not None
        shelter = Shelter(
            organization_id=orgs[org].id,
            name=name,
            names={**SHELTER_NAMES[name], "en": name},
            region_code=region,
            locality=locality,
            address=f"Confidential demo address {number}",
            # Synthetic coordinates near the region's centroid, never a real site.
            lat=round(centroid.lat + 0.01 * number, 4),
            lon=round(centroid.lon - 0.01 * number, 4),
            security_level=security,
            wheelchair_accessible=wheelchair,
            services=services,
            languages=languages,
            status="open",
        )
        session.add(shelter)
        session.flush()
        for unit_name, capacity, admits in units:
            registry.create_unit(
                session, shelter.id, actor_id=None, name=unit_name, capacity=capacity, admits=admits
            )
    return orgs


def has_network(session: Session) -> bool:
    """Whether the demo network was loaded into this database before."""
    return (
        session.scalar(select(Organization.id).where(Organization.name.like("Demo %")).limit(1))
        is not None
    )


def load_demo(session: Session, *, since: datetime | None = None) -> dict[str, str]:
    """Load the demo network once and give every demo user a fresh random password.

    Returns the demo usernames with their new passwords, to be shown once. Idempotent for the
    data: a second call only rotates the passwords. A network loaded now is dated ``since``
    (default now): its units exist from then on, for a history that starts then.
    """
    load_regions(session)
    orgs = list(session.scalars(select(Organization).where(Organization.name.like("Demo %"))))
    if not orgs:
        with clock_at(since or utcnow()):
            orgs = _load_network(session)
    by_name = {o.name: o for o in orgs}
    passwords: dict[str, str] = {}
    for username, role, org_index in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            org_id = by_name[ORGANIZATIONS[org_index][0]].id if org_index is not None else None
            shelter_ids: list[int] = []
            if role is Role.COORDINATOR and org_id is not None:
                shelter_ids = list(
                    session.scalars(
                        select(Shelter.id).where(Shelter.organization_id == org_id).limit(2)
                    )
                )
            with clock_at(since or utcnow()):
                identity.create_user(
                    session,
                    username=username,
                    password=password,
                    role=role,
                    organization_id=org_id,
                    shelter_ids=shelter_ids,
                )
        else:
            identity.set_password(session, user, password)
        passwords[username] = password
    return passwords


UNIT_SHAPES: list[tuple[str, list[dict[str, Any]]]] = [
    ("Women and children", WOMEN_AND_CHILDREN),
    ("Women", [ADULT_WOMEN]),
    ("Men", [ADULT_MEN]),
    ("Girls 12-17", [UNACCOMPANIED_GIRLS]),
    ("Children 6-17", [UNACCOMPANIED_CHILDREN]),
]


def load_scaled_network(session: Session, *, shelters: int, seed: int = 0) -> list[int]:
    """Add a synthetic network of ``shelters`` open shelters across the demo regions.

    Mostly women-and-children units, as in the demo; about one shelter in eight also takes
    unaccompanied minors. For load tests and benchmarks. Returns the new shelter ids.
    """
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)
    load_regions(session)
    org = Organization(name=f"Scaled network {seed}", kind="ngo")
    session.add(org)
    session.flush()
    ids = []
    for number in range(shelters):
        code, _, lat, lon = REGIONS[number % len(REGIONS)]
        shelter = Shelter(
            organization_id=org.id,
            name=f"Scaled shelter {number + 1}",
            region_code=code,
            locality=f"Locality {number + 1}",
            lat=round(lat + rng.uniform(-1, 1), 4),
            lon=round(lon + rng.uniform(-1, 1), 4),
            security_level="high" if rng.random() < 0.3 else "standard",
            wheelchair_accessible=rng.random() < 0.4,
            services=sorted(rng.sample(sorted(SERVICES), rng.randint(2, 5))),
            languages=["kk", "ru"],
            status="open",
        )
        session.add(shelter)
        session.flush()
        shapes = [UNIT_SHAPES[0]] + [UNIT_SHAPES[i] for i in (1, 2) if rng.random() < 0.4]
        if rng.random() < 0.125:
            shapes.append(UNIT_SHAPES[rng.choice((3, 4))])
        for name, admits in shapes:
            registry.create_unit(
                session,
                shelter.id,
                actor_id=None,
                name=name,
                capacity=rng.randint(4, 16),
                admits=admits,
            )
        ids.append(shelter.id)
    return ids
