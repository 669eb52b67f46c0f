"""Small-cell suppression with complementary (secondary) suppression. Pure: no database.

A published table is a set of count cells plus linear relations among them that any reader
knows: a totals row equals the sum of its column, or, within a row, people counted by status
add up to the same number as people counted by sex. Each relation is written as a list of
``(cell, coefficient)`` whose weighted sum is zero.

Rules (SPEC §8):

1. **Primary**: a cell whose value is from 1 to k-1 is suppressed. Zero is not suppressed.
2. **Complementary**: after that, no suppressed cell may be *determined* by the published
   cells and the relations, i.e. every suppressed cell must take part in some change of the
   suppressed cells that keeps every relation true. While a suppressed cell is determined,
   one more cell that shares a relation with it is suppressed: the one with the smallest
   positive value (zeros only when no positive cell is left, because a suppressed zero lets a
   reader bound its partners), body cells before total cells, then in the table's order.

Determination is decided exactly: a suppressed cell is free iff the kernel of the relation
matrix restricted to the suppressed cells has a vector that is non-zero at that cell. The
kernel is computed by Gaussian elimination modulo the prime 2^61-1 with exact integers:
relation coefficients are small integers, so the result equals the rational one unless some
minor of the matrix is a multiple of that prime, which the tests' rational attacker checks
never happens for the tables reports build.

What this does not promise: that no *range* can be narrowed (a reader knows counts are not
negative), nor protection across different tables of the same data (e.g. by shelter and by
region); see the report module for how reports limit the latter.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

C = TypeVar("C", bound=Hashable)
PRIME = (1 << 61) - 1
MIN_K = 3


@dataclass(frozen=True)
class Relation:
    """``sum(coefficient * value(cell)) == 0`` for every table the report can publish."""

    terms: tuple[tuple[Hashable, int], ...]


def primary(values: Mapping[C, int], k: int) -> set[C]:
    """Cells whose value is from 1 to ``k``-1. ``ValueError`` if ``k`` is below 3."""
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}")
    return {cell for cell, value in values.items() if 1 <= value < k}


def determined(
    values: Mapping[C, int], relations: Sequence[Relation], suppressed: Iterable[C]
) -> set[C]:
    """The suppressed cells a reader can recompute exactly from the rest.

    ``relations`` may only name cells of ``values``. Cells not in ``suppressed`` are known to
    the reader; a suppressed cell is determined iff every solution of the relations, with the
    known cells fixed, gives it the same value.
    """
    secret = set(suppressed)
    hidden = [c for c in values if c in secret]
    index = {c: i for i, c in enumerate(hidden)}
    rows: list[dict[int, int]] = []
    for relation in relations:
        row: dict[int, int] = {}
        for cell, coefficient in relation.terms:
            if cell in index:
                j = index[cell]
                row[j] = (row.get(j, 0) + coefficient) % PRIME
        row = {j: v for j, v in row.items() if v}
        if row:
            rows.append(row)
    pivots = _reduce(rows)
    # In reduced row echelon form, a pivot variable is fixed iff its row has no free variable.
    fixed: set[C] = set()
    for pivot, row in pivots.items():
        if len(row) == 1:
            fixed.add(hidden[pivot])
    return fixed


def _reduce(rows: list[dict[int, int]]) -> dict[int, dict[int, int]]:
    """Reduced row echelon form modulo PRIME, as {pivot column: row}; rows are sparse dicts."""
    pivots: dict[int, dict[int, int]] = {}
    for original in rows:
        row = dict(original)
        for column, pivot_row in pivots.items():
            factor = row.get(column)
            if factor:
                _axpy(row, pivot_row, -factor)
        if not row:
            continue
        column = min(row)
        inverse = pow(row[column], PRIME - 2, PRIME)
        row = {j: v * inverse % PRIME for j, v in row.items()}
        for other in pivots.values():
            factor = other.get(column)
            if factor:
                _axpy(other, row, -factor)
        pivots[column] = row
    return pivots


def _axpy(target: dict[int, int], source: dict[int, int], factor: int) -> None:
    for j, v in source.items():
        value = (target.get(j, 0) + factor * v) % PRIME
        if value:
            target[j] = value
        else:
            target.pop(j, None)


def suppress(
    values: Mapping[C, int],
    relations: Sequence[Relation],
    k: int,
    *,
    totals: Iterable[C] = (),
    lookahead: int = 0,
) -> set[C]:
    """The cells to publish as suppressed: primary cells and their complements.

    ``values`` are the true counts in the table's order (the order breaks ties); ``totals``
    names cells that are sums of others, which are chosen as complements only after body
    cells. The result never contains a cell that the published cells and ``relations``
    determine, and contains no zero unless a zero was the only way to protect a cell.

    ``lookahead`` (0: off) weighs that many complements, in the order above, among the
    partners of every determined cell, and takes the one that leaves the fewest determined,
    at one exact test each: for small systems of linked tables, where the first determined
    cell's own partners may all be unable to free it (its pin runs through another row) and
    the plain rule would hide one total after another.
    """
    hidden = primary(values, k)
    total_cells = set(totals)
    order = {c: i for i, c in enumerate(values)}
    partners: dict[Hashable, set[Hashable]] = {c: set() for c in values}
    for relation in relations:
        cells = [c for c, _ in relation.terms]
        for member in cells:
            partners[member].update(cells)

    def preference(c: C) -> tuple[bool, bool, int, int]:
        return (values[c] == 0, c in total_cells, values[c], order[c])

    while True:
        exposed = sorted(determined(values, relations, hidden), key=order.__getitem__)
        if not exposed:
            return hidden
        near = set(partners[exposed[0]])
        if lookahead:
            for cell in exposed[1:]:
                near |= partners[cell]
        candidates: list[C] = sorted(
            (c for c in values if c in near and c not in hidden), key=preference
        )
        if not candidates:  # cannot happen with the relations reports build; fail safe
            hidden.update(c for c in values)
            return hidden
        if lookahead:
            weighed = candidates[:lookahead]
            left = [len(determined(values, relations, hidden | {c})) for c in weighed]
            hidden.add(weighed[left.index(min(left))])
        else:
            hidden.add(candidates[0])
