"""Bed arithmetic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shelters.capacity import available, shortfall

counts = st.integers(0, 50)


@given(counts, counts, counts, counts, counts)
def test_shortfall_is_exactly_the_missing_beds(c: int, o: int, e: int, occ: int, h: int) -> None:
    kwargs = {
        "capacity": c,
        "out_of_service": o,
        "external_occupied": e,
        "occupied": occ,
        "held": h,
    }
    free = available(**kwargs)
    assert free == c - o - e - occ - h
    assert shortfall(**kwargs) == (0 if free >= 0 else -free)
    assert shortfall(**kwargs) >= 0
