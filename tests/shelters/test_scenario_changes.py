"""What-if changes applied to stored problem documents, and the answer's suppression (pure)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from placement import Problem, Solution, solve
from shelters import catalogue
from shelters.reports import period
from shelters.scenarios import Carry, Change, RunResult, aggregate, change_grant, changed_document

GIRLS = catalogue.unit_type_rules("unaccompanied_girls", 18)
LEVELS = {str(p): 0 for p in range(1, 6)}
CENTROIDS = {"astana": (51.2, 71.4), "turkistan": (43.3, 68.3), "abai": (50.4, 80.2)}


def problem_doc() -> dict[str, Any]:
    return {
        "schema": "refuge.placement-problem/1",
        "majority_age": 18,
        "regions": [
            {"code": "astana", "lat": 51.2, "lon": 71.4},
            {"code": "turkistan", "lat": 43.3, "lon": 68.3},
        ],
        "shelters": [
            {
                "id": "1",
                "region": "astana",
                "location": None,
                "security_level": "standard",
                "wheelchair_accessible": False,
                "services": ["legal_aid"],
                "languages": ["ru"],
                "status": "open",
                "units": [
                    {
                        "id": "10",
                        "free_beds": 2,
                        "admits": [catalogue.unit_type_rules("women", 18)[0]],
                    },
                    {"id": "11", "free_beds": 0, "admits": GIRLS},
                ],
            },
            {
                "id": "2",
                "region": "astana",
                "location": None,
                "security_level": "standard",
                "wheelchair_accessible": False,
                "services": [],
                "languages": [],
                "status": "open",
                "units": [{"id": "20", "free_beds": 3, "admits": GIRLS}],
            },
        ],
        "requests": [
            {
                "id": "100",
                "priority": 4,
                "members": [{"ref": "A", "sex": "female", "age": 15}],
                "current_region": "turkistan",
            },
            {"id": "101", "priority": 3, "members": [{"ref": "A", "sex": "female", "age": 30}]},
        ],
    }


def units_of(doc: dict[str, Any]) -> dict[str, int]:
    return {u["id"]: u["free_beds"] for s in doc["shelters"] for u in s["units"]}


def test_adding_units_to_a_region_makes_a_virtual_shelter_at_its_centroid() -> None:
    base = problem_doc()
    stored = copy.deepcopy(base)
    change = Change(
        kind="add_units",
        beds=10,
        region="abai",
        admits=tuple(GIRLS),
        services=("child_psychologist",),
        security_level="high",
    )
    doc = changed_document(base, [change], Carry(), centroids=CENTROIDS)
    assert base == stored  # the stored document is never touched
    added = doc["shelters"][-1]
    assert added["id"] == "scenario-1"
    assert added["region"] == "abai"
    assert added["location"] is None  # distances from the region's centroid
    assert added["security_level"] == "high"
    assert added["services"] == ["child_psychologist"]
    assert added["units"] == [{"id": "scenario-1", "free_beds": 10, "admits": GIRLS}]
    assert {"code": "abai", "lat": 50.4, "lon": 80.2} in doc["regions"]
    Problem.from_document(doc)


def test_adding_units_to_a_shelter_takes_that_shelters_conditions() -> None:
    change = Change(kind="add_units", beds=4, shelter_id=2, admits=tuple(GIRLS))
    doc = changed_document(problem_doc(), [change], Carry(), centroids=CENTROIDS)
    second = doc["shelters"][1]
    assert [u["id"] for u in second["units"]] == ["20", "scenario-1"]
    assert len(doc["shelters"]) == 2


def test_removing_a_unit_or_a_shelter_takes_it_out_of_the_problem() -> None:
    doc = changed_document(
        problem_doc(), [Change(kind="remove_unit", unit_id=10)], Carry(), centroids=CENTROIDS
    )
    assert "10" not in units_of(doc)
    assert "11" in units_of(doc)
    doc = changed_document(
        problem_doc(), [Change(kind="remove_shelter", shelter_id=2)], Carry(), centroids=CENTROIDS
    )
    assert [s["id"] for s in doc["shelters"]] == ["1"]


def test_a_grant_change_spreads_beds_round_robin_and_takes_them_from_the_fullest() -> None:
    units = [{"id": "a", "free_beds": 0}, {"id": "b", "free_beds": 3}]
    change_grant(units, 3)
    assert [u["free_beds"] for u in units] == [2, 4]
    change_grant(units, -5)
    assert [u["free_beds"] for u in units] == [0, 1]
    change_grant(units, -9)  # never below zero
    assert [u["free_beds"] for u in units] == [0, 0]
    doc = changed_document(
        problem_doc(),
        [Change(kind="change_grant", shelter_id=1, beds=2)],
        Carry(),
        centroids=CENTROIDS,
    )
    assert units_of(doc)["10"] == 3
    assert units_of(doc)["11"] == 1


def test_a_change_naming_what_a_problem_lacks_changes_nothing_in_it() -> None:
    for change in (
        Change(kind="remove_shelter", shelter_id=99),
        Change(kind="remove_unit", unit_id=99),
        Change(kind="change_grant", shelter_id=99, beds=5),
        Change(kind="add_units", beds=1, shelter_id=99, admits=tuple(GIRLS)),
    ):
        assert (
            changed_document(problem_doc(), [change], Carry(), centroids=CENTROIDS) == problem_doc()
        )


def test_the_carry_removes_placed_requests_and_keeps_extra_beds_taken() -> None:
    base = problem_doc()
    carry = Carry()
    change = Change(kind="add_units", beds=1, region="astana", admits=tuple(GIRLS))
    first = Problem.from_document(changed_document(base, [change], carry, centroids=CENTROIDS))
    before = solve(Problem.from_document(base), time_limit_s=2, seed=1)
    after = solve(first, time_limit_s=2, seed=1)
    carry.after(before, after)
    assert carry.placed == {a.request for a in after.assignments}
    assert "100" in carry.placed
    # The girl took a bed: in the base run she took one of shelter 2's; the scenario may put her
    # elsewhere, and whatever it used beyond the base run stays taken later.
    later = changed_document(base, [change], carry, centroids=CENTROIDS)
    assert all(r["id"] not in carry.placed for r in later["requests"])
    for unit, extra in carry.taken.items():
        assert units_of(later)[unit] == max(
            0,
            units_of(changed_document(base, [change], Carry(), centroids=CENTROIDS))[unit] - extra,
        )


def _result(placed_before: set[str], placed_after: set[str], n: int) -> RunResult:
    requests = tuple(
        Problem.from_document(
            {
                "schema": "refuge.placement-problem/1",
                "regions": [
                    {"code": "astana", "lat": 51.2, "lon": 71.4},
                    {"code": "turkistan", "lat": 43.3, "lon": 68.3},
                ],
                "shelters": [],
                "requests": [
                    {
                        "id": str(i),
                        "priority": 3 + i % 2,
                        "members": [{"ref": "A", "sex": "female", "age": 30}],
                        "current_region": "astana" if i % 3 else "turkistan",
                    }
                    for i in range(n)
                ],
            }
        ).requests
    )

    def solution(placed: set[str]) -> Solution:
        return Solution.from_document(
            {
                "schema": "refuge.placement-solution/2",
                "status": "optimal",
                "problem_digest": "0" * 64,
                "solver": {
                    "name": "cp-sat",
                    "version": "x",
                    "seed": 0,
                    "workers": 1,
                    "time_limit_s": 1.0,
                },
                "objective": {"placed_by_priority": LEVELS, "soft_cost": 0},
                "bound": {"placed_by_priority": LEVELS, "soft_cost": 0},
                "wall_s": 0.0,
                "safety_net_expired": False,
                "assignments": [
                    {"request": r, "shelter": "1", "beds": [{"member": "A", "unit": "10"}]}
                    for r in sorted(placed)
                ],
                "shelter_sets": [],
                "request_sets": [],
                "unplaced": [],
            }
        )

    return RunResult(1, "0" * 64, solution(placed_before), solution(placed_after), True, requests)


def test_small_cells_and_their_complements_are_suppressed() -> None:
    when = period(date(2026, 1, 1), date(2026, 3, 31))
    result = _result({str(i) for i in range(30)}, {str(i) for i in range(35)}, 60)
    answer = aggregate([result], majority_age=18, k=11, when=when)
    total = answer["total"]
    assert (total["people_seen"], total["people_before"]) == (60, 30)
    # Five more people placed is a count of five people: hidden, and the 35 placed after with
    # it, since 35 - 30 would give it away.
    assert total["people_difference"] is None
    assert total["people_after"] is None
    cells = [row for table in answer["tables"].values() for row in table] + [total]
    for row in cells:
        for name, value in row.items():
            if isinstance(value, int):
                assert value == 0 or abs(value) >= 11, (row["key"], name, value)
        for name in row["suppressed"]:
            assert row[name] is None
    # turkistan (every third request: 20 of them) against the rest; some cells are below 11.
    assert any(row["suppressed"] for row in cells)

    more = aggregate(
        [_result({str(i) for i in range(30)}, {str(i) for i in range(45)}, 60)],
        majority_age=18,
        k=11,
        when=when,
    )["total"]
    assert (more["people_before"], more["people_after"], more["people_difference"]) == (30, 45, 15)


def test_the_stored_runs_cells_are_hidden_the_same_whatever_the_changes() -> None:
    when = period(date(2026, 1, 1), date(2026, 3, 31))
    base = {str(i) for i in range(30)}
    answers = [
        aggregate(
            [_result(base, base | {str(i) for i in range(30, 30 + extra)}, 60)],
            majority_age=18,
            k=11,
            when=when,
        )
        for extra in (0, 3, 12, 25)
    ]

    def before_hidden(answer: dict[str, Any]) -> set[tuple[str, str]]:
        rows = [row for table in answer["tables"].values() for row in table] + [answer["total"]]
        return {
            (row["key"], name)
            for row in rows
            for name in row["suppressed"]
            if name.endswith(("_seen", "_before")) and "difference" not in name
        }

    assert len({frozenset(before_hidden(a)) for a in answers}) == 1
