"""Published JSON schemas agree with the documents the package reads and writes."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

from placement import Problem, ProblemError, solve, verify
from placement.generator import generate
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
    allowed = set(sys.stdlib_module_names) | {"ortools", "placement", "__future__"}
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
