"""The demo network: Kazakhstan's regions and the gap the seed report names."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelters import demo, identity
from shelters.identity import ThrottlePolicy
from shelters.models import Region, Shelter, Unit, UnitChange, User

POLICY = ThrottlePolicy(max_failures=5, window_s=60, lockout_s=60)


def test_demo_has_17_regions_and_3_cities_of_republican_significance(db: Session) -> None:
    demo.load_demo(db)
    codes = set(db.scalars(select(Region.code)))
    assert {code for code, *_ in demo.REGIONS} <= codes
    assert len(demo.REGIONS) == 20
    assert sum(1 for _, name, *_ in demo.REGIONS if name.endswith("(city)")) == 3
    for _, _, lat, lon in demo.REGIONS:
        assert 40 < lat < 56
        assert 46 < lon < 88


def test_most_demo_shelters_take_children_only_with_their_mothers(db: Session) -> None:
    demo.load_demo(db)
    shelters = list(db.scalars(select(Shelter).where(Shelter.name.like("Demo %"))))
    units = list(db.scalars(select(Unit).where(Unit.shelter_id.in_([s.id for s in shelters]))))
    takes_unaccompanied = {
        u.shelter_id
        for u in units
        if any("unaccompanied_minor" in rule["statuses"] for rule in u.admits)
    }
    assert len(shelters) >= 6
    assert 0 < len(takes_unaccompanied) < len(shelters) / 2
    # Units are created through the registry, so their history starts at creation.
    recorded = set(db.scalars(select(UnitChange.unit_id).where(UnitChange.field == "capacity")))
    assert {u.id for u in units} <= recorded


def test_loading_twice_adds_nothing_and_rotates_passwords(db: Session) -> None:
    first = demo.load_demo(db)
    count = db.scalar(select(func.count()).select_from(Shelter))
    second = demo.load_demo(db)
    assert db.scalar(select(func.count()).select_from(Shelter)) == count
    assert first.keys() == second.keys() == {u for u, _, _ in demo.DEMO_USERS}
    assert all(first[u] != second[u] for u in first)
    user = identity.authenticate(
        db, username="demo-coordinator", password=second["demo-coordinator"], policy=POLICY
    )
    assert user.role == "coordinator"
    assert (
        db.scalar(select(func.count()).select_from(User).where(User.username.like("demo-%"))) == 4
    )


def test_demo_regions_and_shelters_carry_kazakh_and_russian_names(db: Session) -> None:
    demo.load_demo(db)
    for code, name, *_ in demo.REGIONS:
        region = db.get(Region, code)
        assert region is not None
        assert region.names == {**demo.REGION_NAMES[code], "en": name}
    shelters = list(db.scalars(select(Shelter).where(Shelter.name.like("Demo %"))))
    assert all({"kk", "ru", "en"} <= set(s.names) for s in shelters)


def test_regions_loaded_before_names_existed_get_them_and_set_names_stay(db: Session) -> None:
    db.add(Region(code="abai", name="Abai Region", lat=48.9, lon=79.6))
    db.add(Region(code="ulytau", name="Ulytau Region", names={"kk": "Ұлытау"}, lat=47.5, lon=66.6))
    db.flush()
    demo.load_regions(db)
    abai, ulytau = db.get(Region, "abai"), db.get(Region, "ulytau")
    assert abai is not None
    assert ulytau is not None
    assert abai.names["kk"] == "Абай облысы"
    assert ulytau.names == {"kk": "Ұлытау"}
