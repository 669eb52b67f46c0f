"""``solve``, ``verify`` and ``bench`` through Typer, on a fresh app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from placement import bench
from service.cli import placement as cli_placement
from service.cli.placement import register
from tests.placement.test_problem import base, mutate


def app() -> typer.Typer:
    fresh = typer.Typer()
    register(fresh)
    return fresh


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_solve_prints_a_solution_that_verify_accepts(tmp_path: Path) -> None:
    problem = write(tmp_path / "p.json", base())
    solved = CliRunner().invoke(app(), ["solve", str(problem), "--time-limit", "2", "--seed", "1"])
    assert solved.exit_code == 0, solved.output
    document = json.loads(solved.stdout)
    assert document["solver"]["seed"] == 1
    assert document["unplaced"][0]["request"] == "r1"
    solution = write(tmp_path / "s.json", document)
    checked = CliRunner().invoke(app(), ["verify", str(problem), str(solution)])
    assert checked.exit_code == 0
    assert checked.stdout.strip() == "ok"


def test_greedy_method_is_available(tmp_path: Path) -> None:
    problem = write(tmp_path / "p.json", base())
    result = CliRunner().invoke(app(), ["solve", str(problem), "--method", "greedy"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["solver"]["name"] == "greedy"
    bad = CliRunner().invoke(app(), ["solve", str(problem), "--method", "magic"])
    assert bad.exit_code == 2


def test_a_malformed_problem_exits_2_naming_the_field(tmp_path: Path) -> None:
    problem = write(tmp_path / "p.json", mutate(["requests", 0, "members", 0, "age"], -3))
    result = CliRunner().invoke(app(), ["solve", str(problem)])
    assert result.exit_code == 2
    assert "requests[0].members[0].age: must be an integer 0-120" in result.stderr
    assert result.stdout == ""
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    assert CliRunner().invoke(app(), ["solve", str(not_json)]).exit_code == 2


def test_verify_exits_1_and_names_every_violation(tmp_path: Path) -> None:
    doc = base()
    doc["requests"][0]["members"] = [{"ref": "A", "sex": "female", "age": 30}]
    problem = write(tmp_path / "p.json", doc)
    solved = json.loads(CliRunner().invoke(app(), ["solve", str(problem)]).stdout)
    assert solved["assignments"][0]["beds"] == [{"member": "A", "unit": "u1"}]
    solved["assignments"][0]["beds"][0]["unit"] = "nowhere"
    solved["objective"]["soft_cost"] += 1
    solution = write(tmp_path / "s.json", solved)
    result = CliRunner().invoke(app(), ["verify", str(problem), str(solution)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any("member A is in unit nowhere, not a unit of s1" in line for line in lines)
    assert any(line.startswith("objective.soft_cost") for line in lines)


def test_bench_prints_cp_sat_greedy_and_referee_for_each_family_and_size() -> None:
    result = CliRunner().invoke(
        app(),
        [
            *("bench", "--sizes", "12x3", "--families", "uniform,rings"),
            *("--time-limit", "1", "--referee-time-limit", "1"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("|") for line in result.stdout.splitlines() if "| 12x3" in line]
    assert [(row[1].strip(), row[4].strip()) for row in rows] == [
        ("uniform", "cp-sat"),
        ("uniform", "greedy"),
        ("uniform", "referee"),
        ("rings", "cp-sat"),
        ("rings", "greedy"),
        ("rings", "referee"),
    ]
    assert all("invalid" not in row[5] for row in rows)
    assert CliRunner().invoke(app(), ["bench", "--sizes", "12by3"]).exit_code == 2
    unknown = CliRunner().invoke(app(), ["bench", "--families", "zoo"])
    assert unknown.exit_code == 2
    assert "'zoo'" in unknown.stderr


def test_bench_help_default_is_the_benchmark_default() -> None:
    assert ",".join(f"{r}x{s}" for r, s in bench.DEFAULT_SIZES) == cli_placement.DEFAULT_SIZES


def measured_result(family: str, requests: int, shelters: int) -> bench.BenchResult:
    run = bench.Run("cp-sat", "optimal", 0.2, 0.1, 100 * bench.MB, 1000, (0, 0, requests, 0, 0))
    return bench.BenchResult(family, requests, shelters, requests, 1.0, (run,))


def test_bench_prints_each_size_as_soon_as_it_is_measured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen_before: list[str] = []

    def measured(
        sizes: list[tuple[int, int]], *, families: list[str], **_: object
    ) -> Iterator[bench.BenchResult]:
        for requests, shelters in sizes:
            for family in families:
                seen_before.append(capsys.readouterr().out)
                yield measured_result(family, requests, shelters)

    monkeypatch.setattr(bench, "iter_bench", measured)
    cli_placement.bench_command(
        sizes="12x3,20x4",
        families="uniform,national",
        time_limit=1.0,
        referee_time_limit=1.0,
        no_referee=False,
        seed=0,
        quiet=True,
    )
    rest = capsys.readouterr().out
    assert "| family | size |" in seen_before[0]  # the header before the first run
    assert [line[:16] for line in seen_before[1].splitlines()] == ["| uniform | 12x3"]
    assert [line[:17] for line in seen_before[2].splitlines()] == ["| national | 12x3"]
    assert rest.startswith("| national | 20x4")
    assert "gap to reference =" in rest


def test_bench_piped_draws_no_progress(tmp_path: Path) -> None:
    refuge = Path(sys.executable).with_name("refuge")
    result = subprocess.run(
        [
            *(str(refuge), "bench", "--sizes", "12x3", "--families", "uniform"),
            *("--no-referee", "--time-limit", "0.5"),
        ],
        env=os.environ | {"TERM": "xterm-256color"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\r" not in result.stdout
    assert "\x1b" not in result.stdout
    assert [line[:16] for line in result.stdout.splitlines() if "| 12x3" in line] == [
        "| uniform | 12x3",
        "| uniform | 12x3",
    ]


def test_solve_output_is_written_whole_and_valid(tmp_path: Path) -> None:
    problem = write(tmp_path / "p.json", base())
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app(), ["solve", str(problem), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(out.read_text())["schema"] == "refuge.placement-solution/2"
    assert {p.name for p in tmp_path.iterdir()} == {"p.json", "s.json"}
    checked = CliRunner().invoke(app(), ["verify", str(problem), str(out)])
    assert checked.stdout.strip() == "ok"


def test_a_failed_write_exits_1_with_one_line_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = write(tmp_path / "p.json", base())
    out = tmp_path / "s.json"
    out.write_text("previous")
    real_fsync = os.fsync

    def full(fd: int) -> None:
        real_fsync(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = CliRunner().invoke(app(), ["solve", str(problem), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: cannot write {out}: No space left on device"]
    assert out.read_text() == "previous"
    assert {p.name for p in tmp_path.iterdir()} == {"p.json", "s.json"}
    missing = tmp_path / "no" / "s.json"
    result = CliRunner().invoke(app(), ["solve", str(problem), "-o", str(missing), "--quiet"])
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1


def test_a_closed_pipe_exits_1_with_one_line(tmp_path: Path) -> None:
    problem = write(tmp_path / "p.json", base())
    read, written = os.pipe()
    os.close(read)
    with os.fdopen(written, "wb") as stdout:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("refuge")), "solve", str(problem), "--quiet"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == ["error: cannot write stdout: Broken pipe"]
