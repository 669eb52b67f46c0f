"""Problem documents: parsing, normalisation, digests and error paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from placement import Problem, ProblemError, problem_digest
from placement.generator import generate
from placement.problem import SCHEMA, Weights


def base() -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "regions": [{"code": "north", "lat": 51.0, "lon": 71.0}],
        "shelters": [
            {
                "id": "s1",
                "region": "north",
                "services": ["legal_aid", "medical_care"],
                "units": [
                    {
                        "id": "u1",
                        "free_beds": 2,
                        "admits": [
                            {
                                "sexes": ["female"],
                                "min_age": 18,
                                "max_age": 120,
                                "statuses": ["adult"],
                            }
                        ],
                    }
                ],
            }
        ],
        "requests": [
            {
                "id": "r1",
                "priority": 3,
                "members": [
                    {"ref": "A", "sex": "female", "age": 30},
                    {"ref": "B", "sex": "male", "age": 3, "guardian_ref": "A"},
                ],
            }
        ],
    }


def test_defaults_are_filled_and_the_document_round_trips() -> None:
    problem = Problem.from_document(base())
    assert problem.majority_age == 18
    assert problem.weights == Weights()
    assert problem.shelters[0].status == "open"
    assert problem.shelters[0].security_level == "standard"
    assert problem.requests[0].members[1].guardian_ref == "A"
    again = Problem.from_document(problem.to_document())
    assert again == problem


def test_the_digest_ignores_key_order_defaults_and_set_order() -> None:
    doc = base()
    shuffled = copy.deepcopy(doc)
    shuffled["shelters"][0]["services"] = ["medical_care", "legal_aid"]
    shuffled["shelters"][0]["status"] = "open"
    shuffled = dict(reversed(list(shuffled.items())))
    assert problem_digest(doc) == problem_digest(shuffled)
    assert problem_digest(doc) == problem_digest(Problem.from_document(doc))
    assert len(problem_digest(doc)) == 64


def test_the_digest_changes_with_the_content() -> None:
    doc = base()
    other = copy.deepcopy(doc)
    other["shelters"][0]["units"][0]["free_beds"] = 3
    assert problem_digest(doc) != problem_digest(other)


def test_generated_networks_are_valid_and_reproducible() -> None:
    first = generate(200, 20, seed=5)
    assert first == generate(200, 20, seed=5)
    assert first != generate(200, 20, seed=6)
    problem = Problem.from_document(first)
    minors = sum(
        1 for q in problem.requests if all(m.age < 18 and m.guardian_ref is None for m in q.members)
    )
    assert 0.2 < minors / len(problem.requests) < 0.4
    assert any(q.separate_from for q in problem.requests)
    assert {len(s.units) for s in problem.shelters} <= {1, 2, 3}


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    doc = base()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["requests", 0, "members", 0, "age"],
            121,
            "requests[0].members[0].age: must be an integer 0-120",
        ),
        (
            ["requests", 0, "members", 0, "age"],
            "30",
            "requests[0].members[0].age: must be an integer 0-120",
        ),
        (
            ["requests", 0, "members", 1, "age"],
            True,
            "requests[0].members[1].age: must be an integer 0-120",
        ),
        (["requests", 0, "priority"], 6, "requests[0].priority: must be an integer 1-5"),
        (
            ["requests", 0, "members", 1, "guardian_ref"],
            "Z",
            "requests[0].members[1].guardian_ref: must name another member of the request",
        ),
        (
            ["requests", 0, "members", 1, "ref"],
            "A",
            "requests[0].members[1].ref: duplicate member ref 'A'",
        ),
        (["requests", 0, "members"], [], "requests[0].members: must hold 1-50 members"),
        (
            ["requests", 0, "separate_from"],
            ["r1"],
            "requests[0].separate_from: a request cannot be separated from itself",
        ),
        (
            ["requests", 0, "current_region"],
            "south",
            "requests[0].current_region: unknown region code 'south'",
        ),
        (
            ["requests", 0, "required_services"],
            ["massage"],
            "requests[0].required_services[0]: must be one of",
        ),
        (
            ["requests", 0, "languages"],
            ["Russian"],
            "requests[0].languages[0]: must be an ISO 639-1 code",
        ),
        (["requests", 0, "nickname"], "x", "requests[0].nickname: unknown field"),
        (["shelters", 0, "region"], "south", "shelters[0].region: unknown region code 'south'"),
        (
            ["shelters", 0, "units", 0, "free_beds"],
            -1,
            "shelters[0].units[0].free_beds: must be an integer 0-100000",
        ),
        (
            ["shelters", 0, "units", 0, "admits", 0, "max_age"],
            10,
            "shelters[0].units[0].admits[0].max_age: must not be below min_age",
        ),
        (
            ["shelters", 0, "units", 0, "admits", 0, "sexes"],
            [],
            "shelters[0].units[0].admits[0].sexes: must name at least one sex",
        ),
        (
            ["shelters", 0, "location"],
            {"lat": 91, "lon": 0},
            "shelters[0].location.lat: must be a number -90 to 90",
        ),
        (["shelters", 0, "id"], "has space", "shelters[0].id: must be an id"),
        (["shelters", 0, "units"], KeyError, "shelters[0].units: is required"),
        (["regions", 0, "lat"], float("nan"), "regions[0].lat: must be a number -90 to 90"),
        (["schema"], "refuge.placement-problem/2", "schema: must be 'refuge.placement-problem/1'"),
        (
            ["weights"],
            {"distance_per_metre": 5000},
            "weights.distance_per_metre: must be an integer 0-1000",
        ),
        (["requests"], {"r1": {}}, "requests: must be an array"),
    ],
)
def test_a_malformed_document_names_the_path_of_the_bad_field(
    path: list[Any], value: Any, message: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        Problem.from_document(mutate(path, value))
    assert str(caught.value).startswith(message)
    assert str(caught.value).startswith(caught.value.path + ": ")


def test_duplicate_ids_are_refused() -> None:
    doc = base()
    doc["requests"].append(copy.deepcopy(doc["requests"][0]))
    with pytest.raises(ProblemError, match=r"^requests\[1\]\.id: duplicate request id 'r1'"):
        Problem.from_document(doc)
    doc = base()
    doc["shelters"].append(copy.deepcopy(doc["shelters"][0]))
    doc["shelters"][1]["id"] = "s2"
    with pytest.raises(ProblemError, match=r"^shelters\[1\]\.units\[0\]\.id: duplicate unit id"):
        Problem.from_document(doc)


def test_the_document_must_be_an_object() -> None:
    with pytest.raises(ProblemError, match=r"^\$: must be an object"):
        Problem.from_document(["not", "a", "problem"])


def test_unknown_separated_and_excluded_ids_are_allowed() -> None:
    doc = mutate(["requests", 0, "separate_from"], ["r-elsewhere"])
    doc["requests"][0]["excluded_shelters"] = ["s-elsewhere"]
    problem = Problem.from_document(doc)
    assert problem.requests[0].separate_from == ("r-elsewhere",)


def redacted(**marker: Any) -> dict[str, Any]:
    doc = base()
    doc["redacted"] = {"shelters": ["s1"], "requests": ["other-1"]} | marker
    return doc


def test_a_redaction_marker_round_trips_and_changes_the_digest() -> None:
    problem = Problem.from_document(redacted())
    assert problem.redacted is not None
    assert problem.redacted.shelters == ("s1",)
    assert problem.redacted.distances == "region_centroid"
    assert Problem.from_document(problem.to_document()) == problem
    assert problem_digest(problem) != problem_digest(base())
    # Without a marker the document, and so every stored run's digest, is as before.
    assert "redacted" not in Problem.from_document(base()).to_document()


@pytest.mark.parametrize(
    ("marker", "path"),
    [
        ({"shelters": ["s9"]}, "redacted.shelters[0]"),
        ({"requests": ["r1"]}, "redacted.requests[0]"),
        ({"distances": "exact"}, "redacted.distances"),
        ({"reason": "x"}, "redacted.reason"),
    ],
)
def test_a_redaction_marker_must_say_what_the_document_withholds(
    marker: dict[str, Any], path: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        Problem.from_document(redacted(**marker))
    assert caught.value.path == path


def test_a_redaction_marker_may_not_name_a_shelter_whose_location_is_there() -> None:
    doc = redacted()
    doc["shelters"][0]["location"] = {"lat": 50.0, "lon": 70.0}
    with pytest.raises(ProblemError) as caught:
        Problem.from_document(doc)
    assert caught.value.path == "redacted.shelters[0]"


def test_declined_and_separated_shelters_parse_and_are_left_out_when_empty() -> None:
    doc = base()
    before = problem_digest(doc)
    # A document written before these fields existed keeps its digest.
    assert "declined_shelters" not in Problem.from_document(doc).to_document()["requests"][0]
    assert problem_digest(Problem.from_document(doc).to_document()) == before
    doc["requests"][0]["declined_shelters"] = ["s1", "s1"]
    doc["requests"][0]["separated_shelters"] = ["s9"]
    problem = Problem.from_document(doc)
    assert problem.requests[0].declined_shelters == ("s1",)
    assert problem.requests[0].separated_shelters == ("s9",)
    assert Problem.from_document(problem.to_document()) == problem
    assert problem_digest(doc) != before
    doc["requests"][0]["declined_shelters"] = "s1"
    with pytest.raises(ProblemError, match="declined_shelters"):
        Problem.from_document(doc)
