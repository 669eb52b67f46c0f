"""Bed arithmetic (SPEC §3): pure functions, no database."""

from __future__ import annotations


def available(
    *, capacity: int, out_of_service: int, external_occupied: int, occupied: int, held: int
) -> int:
    """Free beds: capacity less beds out of service, housed outside Refuge, occupied, held."""
    return capacity - out_of_service - external_occupied - occupied - held


def shortfall(
    *, capacity: int, out_of_service: int, external_occupied: int, occupied: int, held: int
) -> int:
    """How many beds a unit would be short with these counts; 0 when the invariant holds.

    Negative counts are a shortfall of their own (a count below zero is never valid).
    """
    free = available(
        capacity=capacity,
        out_of_service=out_of_service,
        external_occupied=external_occupied,
        occupied=occupied,
        held=held,
    )
    return max(0, -free)
