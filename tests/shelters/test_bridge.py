"""The registry as the solver sees it: plain-row loading agrees with the per-object translation."""

from __future__ import annotations

from sqlalchemy import select

from shelters.bridge import open_shelters_for_solver, shelter_for_solver
from shelters.models import Shelter, Unit
from tests.conftest import World

WOMEN = {"sexes": ["female"], "min_age": 18, "max_age": 120, "statuses": ["adult"]}
BOYS = {"sexes": ["male"], "min_age": 10, "max_age": 17, "statuses": ["unaccompanied_minor"]}


def test_open_shelters_read_as_rows_equal_their_translation_one_by_one(world: World) -> None:
    plain = world.shelter(services=["medical_care", "legal_aid"], languages=["ru", "kk"])
    secure = world.shelter(security_level="high", wheelchair_accessible=True, lat=None, lon=None)
    world.shelter(status="suspended")
    world.unit(plain, capacity=5, out_of_service=1, held=2, admits=[WOMEN])
    world.unit(plain, capacity=3, admits=[BOYS, WOMEN])
    world.unit(secure, capacity=2, occupied=2, admits=[BOYS])
    db = world.db
    shelters = list(
        db.scalars(select(Shelter).where(Shelter.status == "open").order_by(Shelter.id))
    )
    units = list(db.scalars(select(Unit)))
    expected = tuple(
        shelter_for_solver(s, [u for u in units if u.shelter_id == s.id]) for s in shelters
    )
    loaded = open_shelters_for_solver(db)
    assert loaded == expected
    by_id = {s.id: s for s in loaded}
    assert [u.free_beds for u in by_id[str(plain.id)].units] == [2, 3]
    assert by_id[str(plain.id)].services == ("legal_aid", "medical_care")
    assert by_id[str(secure.id)].location is None
    assert by_id[str(secure.id)].units[0].free_beds == 0
