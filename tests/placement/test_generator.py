"""The generator families: ``uniform`` unchanged, every family valid, seeded and shaped as said."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from placement.generator import FAMILIES, generate
from placement.problem import Problem

# sha256 of the canonical JSON of generate(n, s, seed) before families existed (commit d4a04ef).
UNIFORM_DIGESTS = {
    (1, 1, 0): "40f6255c8c0a9a3be777afb611279641ff05a6e633dcd5a567bc4fad28abe57b",
    (12, 3, 0): "8a4e9c826e02f44ee55e4e1d35c4c5fc80b69e56a039d2bdd72f251db7b1014a",
    (50, 10, 7): "3f3af113dc206e93da2aedd5e260e09fda5ad126afc1c65e9ec96fb2f5c700e2",
    (150, 20, 0): "8f1899d8884770f4270bf6ea8ff46f3fa6cfe0cef436310bd773edd3587c1881",
    (500, 60, 3): "05aef22ad6a65a1a73580b8e0195ff0730a5852f8a818c6ba001aaa6a7a8b2b0",
}


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


@pytest.mark.parametrize(("size", "expected"), UNIFORM_DIGESTS.items())
def test_uniform_is_byte_for_byte_the_generator_before_families(
    size: tuple[int, int, int], expected: str
) -> None:
    n, s, seed = size
    assert digest(generate(n, s, seed)) == expected
    assert digest(generate(n, s, seed, family="uniform")) == expected


def test_families_are_listed_uniform_first() -> None:
    assert FAMILIES[0] == "uniform"
    assert set(FAMILIES) == {"uniform", "national", "lone-minors", "rings"}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("n", "s"), [(1, 1), (2, 1), (7, 2), (300, 40)])
def test_every_family_gives_a_valid_seeded_document(family: str, n: int, s: int) -> None:
    doc = generate(n, s, seed=3, family=family)
    problem = Problem.from_document(doc)
    assert len(problem.requests) == n
    assert len(problem.shelters) == s
    assert all(u.free_beds >= 1 for sh in problem.shelters for u in sh.units)
    assert generate(n, s, seed=3, family=family) == doc
    if n >= 7:
        assert generate(n, s, seed=4, family=family) != doc


@pytest.mark.parametrize("family", FAMILIES[1:])
def test_the_field_families_differ_from_each_other_and_from_uniform(family: str) -> None:
    others = {f: digest(generate(100, 15, seed=0, family=f)) for f in FAMILIES if f != family}
    assert digest(generate(100, 15, seed=0, family=family)) not in others.values()


def test_an_unknown_family_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'zoo'"):
        generate(10, 2, family="zoo")


def test_people_are_synthetic_letters_and_ages_only() -> None:
    for family in FAMILIES:
        for q in generate(200, 20, seed=1, family=family)["requests"]:
            for m in q["members"]:
                assert set(m) == {"ref", "sex", "age", "guardian_ref"}
                assert len(m["ref"]) == 1
                assert m["ref"].isupper()


def shares(doc: dict[str, Any]) -> dict[str, float]:
    requests, shelters = doc["requests"], doc["shelters"]
    people = sum(len(q["members"]) for q in requests)
    beds = sum(u["free_beds"] for s in shelters for u in s["units"])
    city_demand = sum(q["current_region"].startswith("city-") for q in requests)
    city_shelters = sum(s["region"].startswith("city-") for s in shelters)
    units = [u for s in shelters for u in s["units"]]
    minor_units = sum(
        any("unaccompanied_minor" in r["statuses"] for r in u["admits"]) for u in units
    )
    no_adult = sum(all(m["age"] < 18 for m in q["members"]) for q in requests)
    in_ring = sum(len(q["separate_from"]) >= 2 for q in requests)
    return {
        "demand/supply": people / beds,
        "city demand": city_demand / len(requests),
        "city shelters": city_shelters / len(shelters),
        "minor units": minor_units / len(units),
        "no adult": no_adult / len(requests),
        "excluding home": sum(q["excluded_regions"] == [q["current_region"]] for q in requests)
        / len(requests),
        "high risk": sum(q["high_risk"] for q in requests) / len(requests),
        "in ring": in_ring / len(requests),
    }


def test_national_has_the_shape_issue_18_describes() -> None:
    doc = generate(4000, 500, seed=0, family="national")
    got = shares(doc)
    assert 2.0 <= got["demand/supply"] <= 3.2
    assert 0.37 <= got["city demand"] <= 0.43
    assert 0.18 <= got["city shelters"] <= 0.26
    assert 0.08 <= got["minor units"] <= 0.14
    assert 0.27 <= got["excluding home"] <= 0.33
    sizes = [len(q["members"]) for q in doc["requests"] if q["members"][0]["age"] >= 18]
    assert 0.10 <= sum(4 <= n <= 7 for n in sizes) / len(doc["requests"]) <= 0.18


def test_lone_minors_is_mostly_children_without_an_adult_and_few_minors_places() -> None:
    got = shares(generate(4000, 500, seed=0, family="lone-minors"))
    assert got["no adult"] >= 0.6
    assert got["minor units"] <= 0.10
    assert shares(generate(4000, 500, seed=0, family="uniform"))["minor units"] > got["minor units"]


def test_rings_are_symmetric_cliques_of_several_cases() -> None:
    doc = generate(3000, 300, seed=0, family="rings")
    by_id = {q["id"]: set(q["separate_from"]) for q in doc["requests"]}
    for rid, others in by_id.items():
        for other in others:
            assert rid in by_id[other]
            assert others - {other} <= by_id[other]  # a clique: the others are apart too
    got = shares(doc)
    assert got["in ring"] >= 0.4
    assert got["high risk"] >= 0.3


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_matches_the_published_problem_schema(family: str) -> None:
    from tests.placement.test_documents import PROBLEM

    PROBLEM.validate(generate(300, 40, seed=2, family=family))
