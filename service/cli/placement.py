"""``refuge solve``, ``refuge verify`` and ``refuge bench``: the placement solver offline.

Register on the main Typer app with :func:`register`. Exit codes: 0 success; 1 a solution with
violations (verify); 2 a malformed input file, with the JSON path of the bad field on stderr.
The solver (OR-Tools) is imported when a command runs, not when ``refuge`` starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from service.cli.support import QUIET_HELP, Progress, shows_progress

if TYPE_CHECKING:
    from placement import Problem, Solution


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
    from placement import Problem, ProblemError

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
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the solution here (atomically) instead of stdout."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="A solution of this problem: redo its recorded work exactly (its method, seed, "
            "time limit and workers), wherever the wall clock cut it.",
        ),
    ] = None,
) -> None:
    """Solve a placement problem and print the solution document."""
    if method not in ("cp-sat", "greedy"):
        typer.echo("error: --method must be cp-sat or greedy", err=True)
        raise typer.Exit(2)
    from placement import solve

    # The limit covers reading the problem too: what a caller waits for is the whole command.
    began = time.perf_counter()
    parsed = _load_problem(problem)
    workers = 1
    work: dict[str, Any] | None = None
    if replay is not None:
        recorded = _load_solution(replay)
        method, seed = recorded.solver.name, recorded.solver.seed
        time_limit, workers = recorded.solver.time_limit_s, recorded.solver.workers
        # A document from before the work record: nothing was cut that it could say.
        work = dict(recorded.work or {})
    with Progress(enabled=shows_progress(quiet=quiet)) as progress:
        progress.task(
            f"solving {len(parsed.requests)} requests, {len(parsed.shelters)} shelters "
            f"({method}, at most {time_limit:g} s)"
        )
        solution = solve(
            parsed,
            time_limit_s=time_limit,
            seed=seed,
            method=method,
            workers=workers,
            replay=work,
            started=began,
        )
    try:
        if output is None:
            _write_stream(sys.stdout, solution.iter_json())
        else:
            _write_atomically(output, solution.iter_json())
    except OSError as exc:
        where = "stdout" if output is None else str(output)
        if isinstance(exc, BrokenPipeError):
            # The reader is gone: point stdout at nothing, or the exit flush fails again.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        typer.echo(f"error: cannot write {where}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc


def _write_stream(out: TextIO, chunks: Iterable[str]) -> None:
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def _write_atomically(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, then rename it over ``path``.

    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            _write_stream(f, chunks)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _load_solution(path: Path) -> Solution:
    from placement import Solution, SolutionError

    try:
        return Solution.from_document(_load_json(path))
    except SolutionError as exc:
        typer.echo(f"error: {path}: {exc}", err=True)
        raise typer.Exit(2) from exc


def verify_command(
    problem: Annotated[Path, typer.Argument(help="Problem document.")],
    solution: Annotated[Path, typer.Argument(help="Solution document to check.")],
) -> None:
    """Check a solution against every hard constraint; exit 1 naming each violation."""
    from placement import verify

    parsed = _load_problem(problem)
    violations = verify(parsed, _load_solution(solution))
    if violations:
        for v in violations:
            typer.echo(v)
        raise typer.Exit(1)
    typer.echo("ok")


# placement.bench.DEFAULT_SIZES, written out so that the help needs no solver (tested).
DEFAULT_SIZES = "2000x300,10000x1000,20000x2000"


def bench_command(
    sizes: Annotated[
        str,
        typer.Option(
            "--sizes", help="Comma-separated REQUESTSxSHELTERS, e.g. 2000x300,10000x1000."
        ),
    ] = DEFAULT_SIZES,
    families: Annotated[
        str,
        typer.Option(
            "--families",
            help="Comma-separated generator families (uniform, national, lone-minors, rings), "
            "or all.",
        ),
    ] = "all",
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit", min=0.001, help="Seconds per solve (default: the issue's targets)."
        ),
    ] = None,
    referee_time_limit: Annotated[
        float,
        typer.Option(
            "--referee-time-limit", min=0.001, help="HiGHS referee seconds per priority level."
        ),
    ] = 20.0,
    no_referee: Annotated[
        bool, typer.Option("--no-referee", help="Run neither the referee nor the LP bound.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Generator and solver seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Benchmark CP-SAT beside greedy and a referee on every generator family, a size at a time."""
    from placement.bench import (
        REFEREE_BELOW,
        format_footer,
        format_header,
        format_rows,
        iter_bench,
        parse_families,
        parse_sizes,
        size_time_limit,
    )

    try:
        parsed = parse_sizes(sizes)
        names = parse_families(families)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    referee = None if no_referee else referee_time_limit

    def budget(size: tuple[int, int]) -> float:
        # cp-sat and greedy take their time limit at most; the referee five levels.
        limit = size_time_limit(size, time_limit)
        if referee is None:
            return 2 * limit
        return 2 * limit + (5 * referee if size[0] < REFEREE_BELOW else limit)

    total = sum(len(names) * budget(size) for size in parsed)
    with Progress(enabled=shows_progress(quiet=quiet)) as progress:
        for line in format_header():
            progress.echo(line)
        task = progress.task(
            f"{len(parsed)} sizes x {len(names)} families, about {total:g} s", total=total
        )
        for result in iter_bench(
            parsed,
            time_limit_s=time_limit,
            seed=seed,
            families=names,
            referee_time_limit_s=referee,
        ):
            for line in format_rows(result):
                progress.echo(line)
            progress.advance(task, budget((result.requests, result.shelters)))
        for line in format_footer():
            progress.echo(line)


def register(app: typer.Typer) -> None:
    """Add the ``solve``, ``verify`` and ``bench`` commands to ``app``."""
    app.command("solve")(solve_command)
    app.command("verify")(verify_command)
    app.command("bench")(bench_command)
