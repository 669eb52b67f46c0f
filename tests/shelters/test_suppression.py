"""Small-cell and complementary suppression: an attacker tries to recompute every hidden cell."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelters.reports import (
    COUNT_CELLS,
    PLACEMENT_CELLS,
    SEX_CELLS,
    STATUS_CELLS,
    TOTAL_KEY,
    allocation_relations,
)
from shelters.suppression import Relation, determined, primary, suppress


def rank(rows: list[list[Fraction]]) -> int:
    """Rank over the rationals, by plain Gaussian elimination."""
    matrix = [row[:] for row in rows if any(row)]
    if not matrix:
        return 0
    width = len(matrix[0])
    r = 0
    for col in range(width):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][col] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        for i in range(len(matrix)):
            if i != r and matrix[i][col] != 0:
                factor = matrix[i][col] / matrix[r][col]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        r += 1
    return r


def recoverable(
    published: Mapping[Hashable, int | None], relations: Sequence[Relation]
) -> set[Hashable]:
    """Hidden cells whose value every solution of the relations agrees on.

    The attacker knows every published value and every relation. Hidden cell c is pinned iff
    its column in the system restricted to hidden cells is not a combination of the other
    hidden columns, i.e. dropping it lowers the rank.
    """
    hidden = [c for c, v in published.items() if v is None]

    def matrix(cells: list[Hashable]) -> list[list[Fraction]]:
        rows = []
        for relation in relations:
            coefficients = dict.fromkeys(cells, Fraction(0))
            for cell, coefficient in relation.terms:
                if cell in coefficients:
                    coefficients[cell] += coefficient
            rows.append([coefficients[c] for c in cells])
        return rows

    full = rank(matrix(hidden))
    return {c for c in hidden if rank(matrix([h for h in hidden if h != c])) < full}


@st.composite
def allocation_tables(draw: st.DrawFn) -> tuple[dict[tuple[str, str], int], list[str], int]:
    k = draw(st.integers(3, 15))
    count = st.one_of(st.just(0), st.integers(1, k - 1), st.integers(k, 60))
    keys = [str(i) for i in range(draw(st.integers(1, 6)))]
    values: dict[tuple[str, str], int] = {}
    for key in keys:
        for name in PLACEMENT_CELLS:
            values[(key, name)] = draw(count)
        status = [draw(count) for _ in STATUS_CELLS]
        for name, v in zip(STATUS_CELLS, status, strict=True):
            values[(key, name)] = v
        # Split the same number of people by sex.
        people = sum(status)
        cut = sorted(draw(st.lists(st.integers(0, people), min_size=2, max_size=2)))
        for name, v in zip(SEX_CELLS, (cut[0], cut[1] - cut[0], people - cut[1]), strict=True):
            values[(key, name)] = v
    for name in COUNT_CELLS:
        values[(TOTAL_KEY, name)] = sum(values[(key, name)] for key in keys)
    return values, keys, k


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(allocation_tables())
def test_no_suppressed_allocation_cell_can_be_recomputed(
    table: tuple[dict[tuple[str, str], int], list[str], int],
) -> None:
    values, keys, k = table
    relations = allocation_relations(keys)
    for relation in relations:  # the generated table is consistent with what readers know
        assert sum(values[c] * w for c, w in relation.terms) == 0  # type: ignore[index]
    hidden = suppress(values, relations, k, totals=[(TOTAL_KEY, n) for n in COUNT_CELLS])
    published = {c: (None if c in hidden else v) for c, v in values.items()}
    # Every small count is hidden, zero never is by the primary rule.
    assert {c for c, v in values.items() if 1 <= v < k} <= hidden
    assert recoverable(published, relations) == set()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(3, 12).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.lists(st.integers(0, 3 * k), min_size=1, max_size=5), min_size=1, max_size=5
            ).filter(lambda rows: len({len(r) for r in rows}) == 1),
        )
    )
)
def test_a_plain_table_with_row_and_column_totals_never_reveals_a_hidden_cell(
    table: tuple[int, list[list[int]]],
) -> None:
    k, body = table
    n_rows, n_cols = len(body), len(body[0])
    values: dict[tuple[int, int], int] = {}
    for i, row in enumerate(body):
        for j, v in enumerate(row):
            values[(i, j)] = v
        values[(i, n_cols)] = sum(row)
    for j in range(n_cols + 1):
        values[(n_rows, j)] = sum(values[(i, j)] for i in range(n_rows))
    relations = [
        Relation((*tuple(((i, j), 1) for j in range(n_cols)), ((i, n_cols), -1)))
        for i in range(n_rows + 1)
    ] + [
        Relation((*tuple(((i, j), 1) for i in range(n_rows)), ((n_rows, j), -1)))
        for j in range(n_cols + 1)
    ]
    totals = [c for c in values if c[0] == n_rows or c[1] == n_cols]
    hidden = suppress(values, relations, k, totals=totals)
    published = {c: (None if c in hidden else v) for c, v in values.items()}
    assert primary(values, k) <= hidden
    assert recoverable(published, relations) == set()
    assert determined(values, relations, hidden) == set()


def test_zero_is_not_suppressed_and_large_counts_stay_published() -> None:
    values = {"a": 0, "b": 11, "c": 40}
    assert suppress(values, [], 11) == set()


def test_a_single_small_cell_gets_the_smallest_positive_partner_as_complement() -> None:
    # a + b + c = total; only a is small, so the smallest other body cell is hidden with it.
    values = {"a": 4, "b": 0, "c": 30, "d": 20, "total": 54}
    relations = [Relation((("a", 1), ("b", 1), ("c", 1), ("d", 1), ("total", -1)))]
    assert suppress(values, relations, 11, totals=["total"]) == {"a", "d"}


def test_two_hidden_cells_joined_by_a_bridge_are_both_protected() -> None:
    # Rows r1 and r2 each have two hidden cells in columns x and y, which protects them;
    # a third hidden cell alone in its column z would still be pinned by z's total.
    values = {
        ("r1", "x"): 2,
        ("r1", "y"): 3,
        ("r2", "x"): 40,
        ("r2", "y"): 50,
        ("r1", "z"): 5,
        ("r2", "z"): 60,
    }
    values |= {("t", c): values[("r1", c)] + values[("r2", c)] for c in "xyz"}
    relations = [Relation(((("r1", c), 1), (("r2", c), 1), (("t", c), -1))) for c in "xyz"]
    hidden = suppress(values, relations, 11, totals=[("t", c) for c in "xyz"])
    assert {("r1", "x"), ("r1", "y"), ("r1", "z")} <= hidden
    published = {c: (None if c in hidden else v) for c, v in values.items()}
    assert recoverable(published, relations) == set()


def test_k_below_three_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        primary({"a": 1}, 2)


def test_lookahead_frees_a_cell_pinned_through_another_row_without_hiding_the_totals() -> None:
    # Two rows a (small, hidden) and b, each "seen = placed + unplaced" with "seen" published
    # (left out), and placed a + placed b = placed total. Hiding placed_a pins it through
    # unplaced_a; the plain rule then climbs to the total; weighing complements finds b's pair.
    values = {"pa": 8, "ua": 100, "pb": 35, "ub": 70, "pt": 43, "ut": 170}
    relations = [
        Relation((("pa", 1), ("ua", 1))),
        Relation((("pb", 1), ("ub", 1))),
        Relation((("pa", 1), ("pb", 1), ("pt", -1))),
        Relation((("ua", 1), ("ub", 1), ("ut", -1))),
        Relation((("pt", 1), ("ut", 1))),
    ]
    plain = suppress(values, relations, 11, totals=["pt", "ut"])
    weighed = suppress(values, relations, 11, totals=["pt", "ut"], lookahead=8)
    assert weighed == {"pa", "ua", "pb", "ub"}
    assert plain == set(values)  # the plain rule climbs to both totals
    for hidden in (plain, weighed):
        published = {c: (None if c in hidden else v) for c, v in values.items()}
        assert recoverable(published, relations) == set()
