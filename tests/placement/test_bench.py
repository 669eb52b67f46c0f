"""The benchmark: child-process runs, the reference rows, and the issue's targets judged."""

from __future__ import annotations

import pytest

from placement import bench
from placement.bench import GB, MB, BenchResult, Run
from placement.generator import FAMILIES


def run(method: str, placed: tuple[int, ...], **extra: object) -> Run:
    fields: dict[str, object] = {
        "status": "feasible",
        "wall_s": 1.0,
        "inner_s": 0.5,
        "rss_bytes": 100 * MB,
        "doc_bytes": MB,
        "placed": placed,
        "bound": placed,
    }
    fields.update(extra)
    return Run(method, **fields)  # type: ignore[arg-type]


def result(size: tuple[int, int], *runs: Run, limit: float = 10.0) -> BenchResult:
    return BenchResult("national", size[0], size[1], size[0], limit, runs)


def test_sizes_and_families_parse_and_refuse_by_name() -> None:
    assert bench.parse_sizes("2000x300, 10x2") == [(2000, 300), (10, 2)]
    with pytest.raises(ValueError, match="12by3"):
        bench.parse_sizes("12by3")
    assert bench.parse_families("all") == list(FAMILIES)
    assert bench.parse_families("rings,uniform") == ["rings", "uniform"]
    with pytest.raises(ValueError, match="'zoo'"):
        bench.parse_families("rings,zoo")


def test_default_time_limits_are_the_issue_targets() -> None:
    assert [bench.size_time_limit(s) for s in bench.DEFAULT_SIZES] == [10.0, 60.0, 120.0]
    assert bench.size_time_limit((2000, 300), 3.0) == 3.0
    assert bench.size_time_limit((15_000, 1_500)) == 60.0


def test_a_2k_row_within_half_a_percent_with_small_rss_and_document_meets_its_target() -> None:
    good = result(
        (2000, 300),
        run("cp-sat", (200, 300, 1000, 50, 20)),
        run("greedy", (190, 290, 990, 50, 20)),
        run("referee", (200, 300, 1004, 50, 20), bound=(200, 300, 1004, 50, 20)),
    )
    assert bench.missed_targets(good) == []
    assert bench.format_rows(good)[0].endswith("| met |")


def test_a_2k_row_misses_on_gap_time_memory_and_size_each_named() -> None:
    bad = result(
        (2000, 300),
        run("cp-sat", (200, 290, 1000, 50, 20), inner_s=12.0, rss_bytes=2 * GB, doc_bytes=9 * MB),
        run("greedy", (190, 290, 990, 50, 20)),
        run("referee", (200, 300, 1000, 50, 20)),
    )
    missed = bench.missed_targets(bad)
    assert missed == ["12.0 s > 10 s", "p4 3.33% > 0.5%", "RSS 2.00 GB > 1 GB", "doc 9.0 MB > 5 MB"]


def test_a_10k_row_must_beat_greedy_at_the_top_only_where_the_lp_leaves_room() -> None:
    lp = run("lp-bound", (), status="bound", bound=(1000, 2000, 5000, 400, 300))
    same = result(
        (10_000, 1_000),
        run("cp-sat", (995, 2000, 5000, 400, 300)),
        run("greedy", (995, 1990, 4990, 400, 300)),
        lp,
        limit=60.0,
    )
    assert bench.missed_targets(same) == ["p5 not above greedy"]
    tight = result(
        (10_000, 1_000),
        run("cp-sat", (1000, 2000, 5000, 400, 300)),
        run("greedy", (1000, 1990, 4990, 400, 300)),
        lp,
        limit=60.0,
    )
    assert bench.missed_targets(tight) == []


def test_a_20k_row_below_greedy_lexicographically_misses() -> None:
    below = result(
        (20_000, 2_000),
        run("cp-sat", (1000, 10, 9000, 0, 0)),
        run("greedy", (1000, 11, 10, 0, 0)),
        limit=120.0,
    )
    assert bench.missed_targets(below) == ["below greedy"]
    invalid = result((20_000, 2_000), run("cp-sat", (1, 0, 0, 0, 0), status="invalid"))
    assert bench.missed_targets(invalid) == ["invalid"]


def test_gaps_are_against_the_lp_row_and_may_be_negative_there() -> None:
    lp = run("lp-bound", (), status="bound", bound=(10, 10, 0, 0, 0))
    got = bench.gaps(run("cp-sat", (9, 11, 0, 0, 0)), lp)
    assert got == pytest.approx((10.0, -10.0, 0.0, 0.0, 0.0))
    assert bench.gaps(run("cp-sat", (9, 11, 0, 0, 0)), None) is None


def test_the_referees_bound_judges_a_level_only_below_higher_levels_at_least_its_own() -> None:
    # The referee placed 10 at priority 5 and proved at most 20 at priority 4 given that. A
    # row with 9 at priority 5 may have more room at 4: the referee's 20 does not hold there.
    ref = run("referee", (10, 20, 30, 0, 0), bound=(10, 20, 31, 0, 0))
    short = run("cp-sat", (9, 21, 30, 0, 0))
    assert bench.reference_bounds(short, ref) == (10, None, None, None, None)
    got = bench.gaps(short, ref)
    assert got is not None
    assert got[0] == pytest.approx(10.0)
    assert got[1:] == (None, None, None, None)
    # Its own LP bound (given 9 at priority 5, 21 at 4 ...) judges every level; the smaller of
    # the bounds that hold wins.
    own = run("cp-sat", (9, 21, 30, 0, 0), own_bound=(11, 22, 30, 1, 0))
    assert bench.reference_bounds(own, ref) == (10, 22, 30, 1, 0)
    level = bench.gaps(own, ref)
    assert level is not None
    assert level[1] == pytest.approx(100.0 / 22)
    assert level[3] == pytest.approx(100.0)
    # At least the referee's counts above: its bound holds, and is tighter here.
    above = run("cp-sat", (10, 20, 30, 0, 0), own_bound=(12, 25, 40, 0, 0))
    assert bench.reference_bounds(above, ref) == (10, 20, 31, 0, 0)


def test_a_2k_level_no_bound_judges_is_left_unjudged_not_missed() -> None:
    r = result(
        (2000, 300),
        run("cp-sat", (9, 100, 0, 0, 0)),
        run("greedy", (9, 90, 0, 0, 0)),
        run("referee", (10, 200, 0, 0, 0), bound=(10, 200, 0, 0, 0)),
    )
    assert bench.missed_targets(r) == ["p5 10.00% > 0.5%"]
    assert "| 10.00%/-/-/-/- |" in bench.format_rows(r)[0]


def test_an_invalid_row_prints_invalid_with_its_violations() -> None:
    bad = run("cp-sat", (1, 0, 0, 0, 0), status="invalid", violations=2, note="unit u1 over")
    line = bench.format_rows(result((12, 3), bad))[0]
    assert "| invalid (2 violations: unit u1 over) |" in line


def test_a_tiny_run_measures_three_children_that_verify() -> None:
    (measured,) = bench.run_bench(
        [(12, 3)], time_limit_s=2.0, families=["lone-minors"], referee_time_limit_s=5.0
    )
    assert [r.method for r in measured.runs] == ["cp-sat", "greedy", "referee"]
    for r in measured.runs:
        assert r.ok, r
        assert r.violations == 0
        assert r.rss_bytes > 0
        assert r.doc_bytes is not None
        assert r.doc_bytes > 0
    cp, _, referee = measured.runs
    assert all(referee.proven)
    if cp.status == "optimal":
        assert cp.placed == referee.placed


def test_from_the_threshold_up_the_reference_is_the_lp_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "REFEREE_BELOW", 10)
    (measured,) = bench.run_bench(
        [(12, 3)], time_limit_s=2.0, families=["uniform"], referee_time_limit_s=5.0
    )
    assert [r.method for r in measured.runs] == ["cp-sat", "greedy", "lp-bound"]
    cp, _, lp = measured.runs
    assert lp.status == "bound"
    assert lp.total_bound is not None
    assert all(b >= p for b, p in zip(lp.bound, cp.placed, strict=True))


def test_no_referee_means_two_rows() -> None:
    (measured,) = bench.run_bench(
        [(8, 2)], time_limit_s=1.0, families=["rings"], referee_time_limit_s=None
    )
    assert [r.method for r in measured.runs] == ["cp-sat", "greedy"]


def test_a_document_too_large_to_parse_back_is_unverified_and_misses_validity() -> None:
    unchecked = run(
        "cp-sat", (1, 0, 0, 0, 0), status="unverified", violations=-1, note="not parsed"
    )
    measured = result((20_000, 2_000), unchecked, limit=120.0)
    assert "| unverified (not parsed) |" in bench.format_rows(measured)[0]
    assert bench.missed_targets(measured) == ["unverified"]
