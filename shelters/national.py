"""The national picture: per region, free beds by who they can take, and demand still waiting.

Free beds are counted per region for four groups of people, from the admission rules of the
units of open shelters: unaccompanied minors (the gap the founding report names: centres that
take children only with their mothers), children with a guardian, adult women and adult men. A
unit's free beds count for every group it admits, so the groups do not add up to a total.
Demand is the pending requests by the region a case comes from, and the unaccompanied minors
among their people.

Each region also says how many of its open shelters' units have numbers nobody confirmed within
the stale threshold (``freshness``), so a region's free beds can be read with that caution.

Beds are no one's data; counts of people are. For a caller who sees aggregates only (funders),
counts of people from 1 to k-1 are withheld (``None``), as in every report, and no total across
regions is given that would let a withheld count be worked out by subtraction. Counts of units
(and of stale units) say nothing of people and are shown to every reader alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelters import freshness
from shelters.models import PlacementRequest, Region, Shelter, Unit

GROUPS = ("unaccompanied_minor", "accompanied_child", "adult_female", "adult_male")

# A schematic tile map: each region at its place relative to the others (column, row), north
# at the top. No boundary data is needed, so none is downloaded or shipped.
TILES: dict[str, tuple[int, int]] = {
    "kostanay": (2, 0),
    "north-kazakhstan": (3, 0),
    "pavlodar": (5, 0),
    "west-kazakhstan": (0, 1),
    "aktobe": (1, 1),
    "akmola": (3, 1),
    "astana": (4, 1),
    "east-kazakhstan": (6, 1),
    "atyrau": (0, 2),
    "ulytau": (2, 2),
    "karaganda": (3, 2),
    "abai": (5, 2),
    "mangystau": (0, 3),
    "kyzylorda": (1, 3),
    "turkistan": (2, 3),
    "jambyl": (3, 3),
    "almaty-region": (4, 3),
    "jetisu": (5, 3),
    "shymkent": (2, 4),
    "almaty": (4, 4),
}
COLUMNS = 7


@dataclass
class RegionPicture:
    """One region: its free beds per group, and the demand waiting there."""

    code: str
    region: Region
    tile: tuple[int, int]
    beds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    shelters: int = 0
    units: int = 0  # units of open shelters
    stale_units: int = 0  # of those, not confirmed within the stale threshold
    requests_waiting: int | None = 0  # None: withheld (1 to k-1, aggregate callers)
    minors_waiting: int | None = 0


def groups_admitted(rules: list[dict[str, Any]]) -> set[str]:
    """The groups a unit with these admission rules can take."""
    groups: set[str] = set()
    for rule in rules:
        statuses = set(rule.get("statuses", []))
        sexes = set(rule.get("sexes", []))
        if "unaccompanied_minor" in statuses:
            groups.add("unaccompanied_minor")
        if "accompanied_child" in statuses:
            groups.add("accompanied_child")
        if "adult" in statuses:
            groups |= {f"adult_{sex}" for sex in sexes & {"female", "male"}}
    return groups


def _withheld(count: int, k: int) -> int | None:
    return None if 0 < count < k else count


def picture(
    session: Session, *, aggregate_only: bool, k: int, stale_after_hours: float
) -> list[RegionPicture]:
    """Every region, map order (by row, then column); regions without a tile come last.

    ``stale_after_hours`` is ``REFUGE_STALE_AFTER_HOURS``: units older than that are stale.
    """
    regions = {r.code: r for r in session.scalars(select(Region).order_by(Region.code))}
    spare = iter(range(len(TILES), len(TILES) + len(regions)))
    result: dict[str, RegionPicture] = {}
    for code, region in regions.items():
        tile = TILES.get(code)
        if tile is None:
            n = next(spare)
            tile = (n % COLUMNS, n // COLUMNS)
        result[code] = RegionPicture(code, region, tile)
    units = session.execute(
        select(Shelter.region_code, Shelter.id, Unit.admits, Unit.available)
        .join(Unit, Unit.shelter_id == Shelter.id)
        .where(Shelter.status == "open")
    ).all()
    shelters: dict[str, set[int]] = defaultdict(set)
    for region_code, shelter_id, admits, free in units:
        if region_code not in result:
            continue
        shelters[region_code].add(shelter_id)
        result[region_code].units += 1
        for group in groups_admitted(admits or []):
            result[region_code].beds[group] += max(int(free), 0)
    for code, ids in shelters.items():
        result[code].shelters = len(ids)
    for code, stale in freshness.stale_counts_by_region(
        session, after_hours=stale_after_hours
    ).items():
        if code in result:
            result[code].stale_units = stale
    waiting = session.execute(
        select(
            PlacementRequest.region_code,
            func.count(),
            func.coalesce(func.sum(PlacementRequest.people_unaccompanied_minor), 0),
        )
        .where(PlacementRequest.status == "pending")
        .group_by(PlacementRequest.region_code)
    ).all()
    for waiting_in, requests, minors in waiting:
        if waiting_in in result:
            picture_of = result[waiting_in]
            counted = (int(requests), int(minors))
            if aggregate_only:
                picture_of.requests_waiting = _withheld(counted[0], k)
                picture_of.minors_waiting = _withheld(counted[1], k)
            else:
                picture_of.requests_waiting, picture_of.minors_waiting = counted
    return sorted(result.values(), key=lambda p: (p.tile[1], p.tile[0]))
