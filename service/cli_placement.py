"""``refuge solve``, ``refuge verify`` and ``refuge bench``: the placement solver offline.

Register on the main Typer app with :func:`register`. Exit codes: 0 success; 1 a solution with
violations (verify); 2 a malformed input file, with the JSON path of the bad field on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from placement import Problem, ProblemError, Solution, SolutionError, solve, verify
from placement.bench import DEFAULT_SIZES, format_results, parse_sizes, run_bench


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except json.JSONDecodeError as exc:
        typer.echo(f"error: {path} is not JSON: {exc}", err=True)
        raise typer.Exit(2) from exc


def _load_problem(path: Path) -> Problem:
    try:
        return Problem.from_document(_load_json(path))
    except ProblemError as exc:
        typer.echo(f"error: {path}: {exc}", err=True)
        raise typer.Exit(2) from exc


def solve_command(
    problem: Annotated[Path, typer.Argument(help="Problem document (refuge.placement-problem/1).")],
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.001, help="Search time in seconds.")
    ] = 10.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Solver random seed.")] = 0,
    method: Annotated[str, typer.Option("--method", help="cp-sat or greedy.")] = "cp-sat",
) -> None:
    """Solve a placement problem and print the solution document."""
    if method not in ("cp-sat", "greedy"):
        typer.echo("error: --method must be cp-sat or greedy", err=True)
        raise typer.Exit(2)
    parsed = _load_problem(problem)
    solution = solve(parsed, time_limit_s=time_limit, seed=seed, method=method)
    typer.echo(json.dumps(solution.to_document(), indent=2, sort_keys=False))


def verify_command(
    problem: Annotated[Path, typer.Argument(help="Problem document.")],
    solution: Annotated[Path, typer.Argument(help="Solution document to check.")],
) -> None:
    """Check a solution against every hard constraint; exit 1 naming each violation."""
    parsed = _load_problem(problem)
    try:
        sol = Solution.from_document(_load_json(solution))
    except SolutionError as exc:
        typer.echo(f"error: {solution}: {exc}", err=True)
        raise typer.Exit(2) from exc
    violations = verify(parsed, sol)
    if violations:
        for v in violations:
            typer.echo(v)
        raise typer.Exit(1)
    typer.echo("ok")


_DEFAULT_SIZES = ",".join(f"{r}x{s}" for r, s in DEFAULT_SIZES)


def bench_command(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma-separated REQUESTSxSHELTERS, e.g. 50x10,500x60.")
    ] = _DEFAULT_SIZES,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit", min=0.001, help="Seconds per size (default: the issue's targets)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Generator and solver seed.")] = 0,
) -> None:
    """Benchmark CP-SAT against the greedy baseline on generated networks."""
    try:
        parsed = parse_sizes(sizes)
    except ValueError as exc:
        typer.echo(f"error: --sizes: {exc}", err=True)
        raise typer.Exit(2) from exc
    results = run_bench(parsed, time_limit_s=time_limit, seed=seed)
    typer.echo(format_results(results))


def register(app: typer.Typer) -> None:
    """Add the ``solve``, ``verify`` and ``bench`` commands to ``app``."""
    app.command("solve")(solve_command)
    app.command("verify")(verify_command)
    app.command("bench")(bench_command)
