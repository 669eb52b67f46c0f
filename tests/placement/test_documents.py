"""Published JSON schemas agree with the documents the package reads and writes."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

from placement import Problem, ProblemError, Solution, SolutionError, solve, verify
from placement.generator import generate
from placement.solution import reasons_to_strings
from tests.placement.strategies import problem_docs
from tests.placement.test_problem import base, mutate

ROOT = Path(__file__).resolve().parents[2]


def schema(name: str) -> Any:
    document = json.loads((ROOT / "openapi" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


PROBLEM = schema("placement-problem")
SOLUTION = schema("placement-solution")


@settings(max_examples=30, deadline=None)
@given(problem_docs())
def test_generated_problems_and_their_solutions_match_the_schemas(doc: dict[str, Any]) -> None:
    PROBLEM.validate(doc)
    problem = Problem.from_document(doc)
    PROBLEM.validate(problem.to_document())
    for method in ("cp-sat", "greedy"):
        SOLUTION.validate(solve(problem, method=method).to_document())


def test_a_benchmark_network_matches_the_problem_schema() -> None:
    doc = generate(300, 40, seed=2)
    PROBLEM.validate(doc)
    SOLUTION.validate(solve(Problem.from_document(doc), method="greedy").to_document())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["requests", 0, "members", 0, "age"], 121),
        (["requests", 0, "priority"], 0),
        (["shelters", 0, "units", 0, "free_beds"], -1),
        (["requests", 0, "nickname"], "x"),
        (["shelters", 0, "services"], ["massage"]),
    ],
)
def test_the_schema_and_the_parser_refuse_the_same_structural_errors(
    path: list[Any], value: Any
) -> None:
    doc = mutate(path, value)
    assert not PROBLEM.is_valid(doc)
    with pytest.raises(ProblemError):
        Problem.from_document(doc)
    assert PROBLEM.is_valid(base())


def test_placement_imports_only_the_standard_library_and_ortools() -> None:
    # numpy comes with ortools (one of its own dependencies), so it adds nothing to install.
    allowed = set(sys.stdlib_module_names) | {"ortools", "numpy", "placement", "__future__"}
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "placement").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] not in allowed:
                    found.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    assert found == {}
    assert "typer" not in allowed
    assert "jsonschema" not in allowed


def test_a_redacted_view_matches_the_schema_and_still_solves() -> None:
    doc = generate(20, 5, seed=4)
    hidden = [s["id"] for s in doc["shelters"][:5]]
    for s in doc["shelters"][:5]:
        s["location"] = None
    doc["redacted"] = {"shelters": hidden, "requests": ["other-0123456789abcdef"]}
    PROBLEM.validate(doc)
    problem = Problem.from_document(doc)
    PROBLEM.validate(problem.to_document())
    solution = solve(problem, method="cp-sat", time_limit_s=5)
    SOLUTION.validate(solution.to_document())
    # verify() recomputes the soft cost with region centroids for the withheld shelters.
    assert verify(problem, solution) == []
    doc["redacted"]["distances"] = "exact"
    assert not PROBLEM.is_valid(doc)


def _unplaced_network() -> Any:
    """A network that leaves many requests unplaced, so that reasons repeat."""
    return solve(Problem.from_document(generate(300, 40, seed=2)), method="greedy")


def test_the_streamed_document_parses_to_the_document_and_matches_the_schema() -> None:
    solution = _unplaced_network()
    chunks = list(solution.iter_json(chunk_chars=512))
    assert len(chunks) > 10, "a small chunk size should give many chunks"
    parsed = json.loads("".join(chunks))
    assert parsed == solution.to_document()
    SOLUTION.validate(parsed)
    assert Solution.from_document(parsed) == solution


def test_id_lists_that_repeat_are_written_once_and_read_back() -> None:
    solution = _unplaced_network()
    doc = solution.to_document()
    assert doc["shelter_sets"], "requests alike share their shelter lists"
    used = [
        r["shelters"]
        for u in doc["unplaced"]
        for r in u["reasons"]
        if isinstance(r["shelters"], int)
    ]
    assert set(used) == set(range(len(doc["shelter_sets"])))
    assert Solution.from_document(doc) == solution
    doc["unplaced"][0]["reasons"][0]["shelters"] = len(doc["shelter_sets"])
    with pytest.raises(SolutionError, match=r"unplaced\[0\]\.reasons\[0\]\.shelters: .* index"):
        Solution.from_document(doc)


def test_a_version_1_document_is_read_as_grouped_reasons() -> None:
    solution = _unplaced_network()
    assigned = {a.request: a.shelter for a in solution.assignments}
    old = solution.to_document()
    old["schema"] = "refuge.placement-solution/1"
    del old["shelter_sets"], old["request_sets"]
    old["unplaced"] = [
        {"request": u.request, "reasons": reasons_to_strings(u.reasons, assigned)}
        for u in solution.unplaced
    ]
    assert any(":capacity_taken:" in r for u in old["unplaced"] for r in u["reasons"])
    assert Solution.from_document(old) == solution


def test_the_work_record_is_part_of_the_result_and_must_be_an_object() -> None:
    solution = dataclasses.replace(_unplaced_network(), work=None)
    assert "work" not in solution.to_document()
    worked = dataclasses.replace(solution, work={"lp": {"given": 10, "used": 4}})
    doc = worked.to_document()
    assert list(doc)[list(doc).index("bound") + 1] == "work"
    SOLUTION.validate(doc)
    assert Solution.from_document(doc) == worked
    assert worked.result_bytes() != solution.result_bytes()
    doc["work"] = [1]
    with pytest.raises(SolutionError, match="work: must be an object"):
        Solution.from_document(doc)


def test_the_document_is_compact_where_most_requests_are_unplaced() -> None:
    # 300 requests for 40 shelters: the one-string-per-shelter form of /1 took ~100 bytes per
    # shelter and unplaced request; grouped and interned it must stay far below that.
    solution = _unplaced_network()
    size = sum(len(c.encode()) for c in solution.iter_json())
    assert len(solution.unplaced) > 50
    assert size < 20 * len(solution.unplaced) * 40
