"""Benchmark: CP-SAT beside the greedy baseline and a referee, per generator family and size.

For each family of :data:`placement.generator.FAMILIES` and each size, one seeded network is
generated and written to a temporary file; then each method runs in a child process of its
own (``python -m placement.bench child ...``), so that its peak RSS (``os.wait4``'s
``ru_maxrss``) and its process wall are that run's alone. A solver child parses the problem
file, solves it, and streams the solution document (compact JSON) to a file; its document
size is that file's size. A separate child checks every solver's document with
:func:`placement.verify.verify` (not timed). The reference row is the HiGHS referee of
:mod:`placement.referee` below 10,000 requests, and the LP bound of :mod:`placement.lpbound`
from 10,000 up (per level, given the CP-SAT row's counts at the higher levels). Below 10,000
each cp-sat and greedy row also gets the LP bound given its own counts at the higher levels,
and a level's gap is judged against the tightest bound that holds for that row
(:func:`reference_bounds`).

Timings live here and in ``refuge bench``, never in test assertions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placement.generator import FAMILIES, generate
from placement.problem import PRIORITIES

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((2_000, 300), (10_000, 1_000), (20_000, 2_000))
DEFAULT_TIME_LIMITS = {(2_000, 300): 10.0, (10_000, 1_000): 60.0, (20_000, 2_000): 120.0}
"""Per-size time limits in seconds when none is given (issue 18's targets)."""
REFEREE_BELOW = 10_000
"""Below this many requests the reference is the HiGHS referee, from it up the LP bound."""
DEFAULT_REFEREE_TIME_LIMIT_S = 20.0
"""HiGHS seconds per priority level (``--referee-time-limit``)."""
MB = 1_000_000
VERIFY_MAX_BYTES = 1_000_000_000
"""Larger documents are not parsed back for verify (``unverified``): a JSON parse of one
takes several times its size in memory."""
GB = 1_000_000_000


@dataclass(frozen=True)
class Run:
    """One method's run on one network, measured in its own child process.

    Attributes:
        method: ``cp-sat``, ``greedy``, ``referee`` or ``lp-bound``.
        status: the solution's status (``optimal`` / ``feasible``), ``invalid`` when
            :func:`placement.verify.verify` found violations, ``unverified`` when the
            document was too large to check or verify failed, ``bound`` for the LP row,
            ``failed`` or ``timeout`` when the child did not finish.
        wall_s: process wall, start of the child to its exit.
        inner_s: parse of the problem + solve + write of the solution, inside the child
            (what ``--time-limit`` promises); None for the LP row.
        rss_bytes: the child's peak resident set.
        doc_bytes: size of the compact solution document; None for the LP row.
        placed: people placed per priority 5..1 (empty for the LP row).
        bound: the run's own bound per priority 5..1 (CP-SAT's proven bound, the referee's
            per-level bound, the LP bound).
        proven: per level, whether the referee proved it (referee row only).
        violations: how many violations verify found (0 when valid, -1 when unchecked).
        safety_net: the solution's ``safety_net_expired``.
        total_bound: LP bound on all people placed (LP row only).
        own_bound: per priority 5..1, the LP bound of :mod:`placement.lpbound` given this
            row's own counts at the higher levels (cp-sat and greedy rows beside a referee).
        note: why a child failed, or what a row leaves out.
    """

    method: str
    status: str
    wall_s: float
    inner_s: float | None
    rss_bytes: int
    doc_bytes: int | None
    placed: tuple[int, ...] = ()
    bound: tuple[int, ...] = ()
    proven: tuple[bool, ...] = ()
    violations: int = 0
    safety_net: bool = False
    total_bound: int | None = None
    own_bound: tuple[int, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether the run finished with a valid answer (or a bound)."""
        return self.status in ("optimal", "feasible", "bound")


@dataclass(frozen=True)
class BenchResult:
    """One family and size: its network, and the runs cp-sat, greedy, reference (if any)."""

    family: str
    requests: int
    shelters: int
    people: int
    time_limit_s: float
    runs: tuple[Run, ...]
    referee_time_limit_s: float | None = None

    def run(self, method: str) -> Run | None:
        """The run of ``method``, if it was measured."""
        return next((r for r in self.runs if r.method == method), None)

    @property
    def reference(self) -> Run | None:
        """The referee's or the LP bound's run."""
        return self.run("referee") or self.run("lp-bound")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """Parse ``"50x10,500x60"`` into ``[(50, 10), (500, 60)]``.

    Raises:
        ValueError: when an item is not ``<requests>x<shelters>`` with positive integers.
    """
    out = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"{item!r} is not REQUESTSxSHELTERS")
        out.append((int(parts[0]), int(parts[1])))
    return out


def parse_families(text: str) -> list[str]:
    """Parse ``"national,rings"``; ``all`` (or empty) is every family.

    Raises:
        ValueError: naming an unknown family.
    """
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or names == ["all"]:
        return list(FAMILIES)
    for n in names:
        if n not in FAMILIES:
            raise ValueError(f"unknown family {n!r}; one of {', '.join(FAMILIES)} or all")
    return names


def size_time_limit(size: tuple[int, int], time_limit_s: float | None = None) -> float:
    """The CP-SAT time limit of one size: ``time_limit_s``, or its default target."""
    if time_limit_s is not None:
        return time_limit_s
    if size in DEFAULT_TIME_LIMITS:
        return DEFAULT_TIME_LIMITS[size]
    return 10.0 if size[0] < 10_000 else 60.0 if size[0] < 20_000 else 120.0


def size_class(requests: int) -> str:
    """Which of the issue's targets a size is held to: ``2k``, ``10k`` or ``20k``."""
    return "2k" if requests < REFEREE_BELOW else "10k" if requests < 20_000 else "20k"


def run_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    time_limit_s: float | None = None,
    seed: int = 0,
    families: Sequence[str] = FAMILIES,
    referee_time_limit_s: float | None = DEFAULT_REFEREE_TIME_LIMIT_S,
) -> list[BenchResult]:
    """Every family at every size; see :func:`iter_bench`."""
    return list(
        iter_bench(
            sizes,
            time_limit_s=time_limit_s,
            seed=seed,
            families=families,
            referee_time_limit_s=referee_time_limit_s,
        )
    )


def iter_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    time_limit_s: float | None = None,
    seed: int = 0,
    families: Sequence[str] = FAMILIES,
    referee_time_limit_s: float | None = DEFAULT_REFEREE_TIME_LIMIT_S,
) -> Iterator[BenchResult]:
    """Measure each family at each size (sizes outer), yielding each as soon as measured.

    Args:
        sizes: (requests, shelters) pairs.
        time_limit_s: CP-SAT and greedy time limit; None uses :func:`size_time_limit`.
        seed: Seed of the generator and of the solvers.
        families: Generator families (:data:`placement.generator.FAMILIES`).
        referee_time_limit_s: HiGHS seconds per level; None runs no reference row at all
            (neither referee nor LP bound).
    """
    for n_requests, n_shelters in sizes:
        for family in families:
            limit = size_time_limit((n_requests, n_shelters), time_limit_s)
            yield _measure(family, n_requests, n_shelters, seed, limit, referee_time_limit_s)


def _measure(
    family: str,
    n_requests: int,
    n_shelters: int,
    seed: int,
    limit: float,
    referee_limit: float | None,
) -> BenchResult:
    doc = generate(n_requests, n_shelters, seed, family=family)
    people = sum(len(q["members"]) for q in doc["requests"])
    with tempfile.TemporaryDirectory(prefix="refuge-bench-") as tmp:
        problem = Path(tmp) / "problem.json"
        with problem.open("w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        del doc
        runs = []
        for method in ("cp-sat", "greedy"):
            runs.append(_solver_run(Path(tmp), problem, method, limit, seed))
        if referee_limit is not None and n_requests < REFEREE_BELOW:
            runs.append(_solver_run(Path(tmp), problem, "referee", referee_limit, seed))
            # A level is judged given the row's own levels above it (the lexicographic
            # optimum of a level depends on them): the LP bound given those counts, for
            # every level the referee's bound cannot judge (see reference_bounds).
            for i, r in enumerate(runs[:2]):
                if r.ok and r.placed:
                    lp = _lp_run(Path(tmp), problem, r.placed)
                    if lp.ok:
                        runs[i] = dataclasses.replace(r, own_bound=lp.bound)
        elif referee_limit is not None:
            cp = runs[0]
            runs.append(_lp_run(Path(tmp), problem, cp.placed if cp.ok else None))
    return BenchResult(
        family=family,
        requests=n_requests,
        shelters=n_shelters,
        people=people,
        time_limit_s=limit,
        runs=tuple(runs),
        referee_time_limit_s=referee_limit,
    )


# --- child processes ------------------------------------------------------------------------


def _spawn(args: list[str], tmp: Path, timeout_s: float) -> tuple[str, float, int, str]:
    """Run ``python -m placement.bench child ARGS``; (outcome, wall, peak RSS bytes, stderr)."""
    err_path = tmp / "stderr.txt"
    start = time.perf_counter()
    with err_path.open("wb") as err:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "placement.bench", "child", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        outcome = "done"
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout_s:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                outcome = "timeout"
                break
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if outcome == "done" and proc.returncode != 0:
        outcome = "failed"
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    text = err_path.read_text(encoding="utf-8", errors="replace").strip()
    return outcome, wall, rss, text.splitlines()[-1] if text else ""


def _solver_run(tmp: Path, problem: Path, method: str, limit: float, seed: int) -> Run:
    solution = tmp / f"{method}.solution.json"
    result = tmp / f"{method}.result.json"
    timeout = (5 * limit + 600) if method == "referee" else (10 * limit + 600)
    outcome, wall, rss, err = _spawn(
        ["solve", str(problem), method, repr(limit), str(seed), str(solution), str(result)],
        tmp,
        timeout,
    )
    if outcome != "done":
        return Run(method, outcome, wall, None, rss, None, note=err)
    r = json.loads(result.read_text(encoding="utf-8"))
    checked = tmp / f"{method}.verify.json"
    size = solution.stat().st_size
    if size > VERIFY_MAX_BYTES:
        v_outcome, v_err = "skipped", f"document of {size / MB:.0f} MB not parsed"
    else:
        v_outcome, _, _, v_err = _spawn(
            ["verify", str(problem), str(solution), str(checked)], tmp, 3600
        )
    if v_outcome != "done":
        violations, note = -1, f"verify {v_outcome}: {v_err}"
    else:
        found = json.loads(checked.read_text(encoding="utf-8"))
        violations, note = len(found), "; ".join(found[:2])
    return Run(
        method=method,
        status=r["status"] if violations == 0 else "unverified" if violations < 0 else "invalid",
        wall_s=wall,
        inner_s=r["inner_s"],
        rss_bytes=rss,
        doc_bytes=solution.stat().st_size,
        placed=tuple(r["placed"]),
        bound=tuple(r["bound"]),
        proven=tuple(r.get("proven", ())),
        violations=violations,
        safety_net=r["safety_net"],
        note=note,
    )


def _lp_run(tmp: Path, problem: Path, placed: Sequence[int] | None) -> Run:
    result = tmp / "lp.result.json"
    floors = "-" if placed is None else ",".join(map(str, placed))
    outcome, wall, rss, err = _spawn(["lp", str(problem), floors, str(result)], tmp, 3600)
    if outcome != "done":
        return Run("lp-bound", outcome, wall, None, rss, None, note=err)
    r = json.loads(result.read_text(encoding="utf-8"))
    return Run(
        "lp-bound",
        "bound",
        wall,
        None,
        rss,
        None,
        bound=tuple(r["levels"]),
        total_bound=r["total"],
        note="" if placed is not None else "levels given nothing at the higher levels",
    )


def _child(argv: Sequence[str]) -> None:
    """The child side of :func:`_spawn` (``python -m placement.bench child ...``)."""
    from placement.problem import Problem

    kind = argv[0]
    if kind == "solve":
        problem_path, method, limit, seed, out, result = argv[1:7]
        start = time.perf_counter()
        with open(problem_path, encoding="utf-8") as f:
            problem = Problem.from_document(json.load(f))
        extra: dict[str, Any] = {}
        if method == "referee":
            from placement.referee import referee

            judged = referee(problem, level_time_limit_s=float(limit))
            solution = judged.solution
            extra["proven"] = [level.proven for level in judged.levels]
            extra["outcomes"] = [level.outcome for level in judged.levels]
        else:
            from placement.solve import solve

            solution = solve(
                problem, time_limit_s=float(limit), seed=int(seed), method=method, started=start
            )
        with open(out, "w", encoding="utf-8") as f:
            json.dump(solution.to_document(), f, separators=(",", ":"))
        inner = time.perf_counter() - start
        Path(result).write_text(
            json.dumps(
                {
                    "status": solution.status,
                    "inner_s": inner,
                    "placed": list(solution.objective.placed_by_priority),
                    "bound": list(solution.bound.placed_by_priority),
                    "safety_net": solution.safety_net_expired,
                    **extra,
                }
            ),
            encoding="utf-8",
        )
    elif kind == "verify":
        from placement.solution import Solution
        from placement.verify import verify

        problem_path, solution_path, result = argv[1:4]
        with open(problem_path, encoding="utf-8") as f:
            problem = Problem.from_document(json.load(f))
        with open(solution_path, encoding="utf-8") as f:
            sol = Solution.from_document(json.load(f))
        Path(result).write_text(json.dumps(verify(problem, sol)), encoding="utf-8")
    elif kind == "lp":
        from placement.instance import Instance
        from placement.lpbound import level_bounds, total_bound

        problem_path, floors, result = argv[1:4]
        with open(problem_path, encoding="utf-8") as f:
            problem = Problem.from_document(json.load(f))
        inst = Instance(problem)
        placed = [0] * 5 if floors == "-" else [int(v) for v in floors.split(",")]
        levels = level_bounds(inst, placed)
        Path(result).write_text(
            json.dumps({"levels": list(levels), "total": total_bound(inst)}), encoding="utf-8"
        )
    else:
        raise SystemExit(f"unknown child kind {kind!r}")


# --- targets and the table --------------------------------------------------------------------


def _pct(placed: int, bound: int) -> float:
    return 0.0 if bound <= 0 else 100.0 * (bound - placed) / bound


def reference_bounds(run: Run, reference: Run | None) -> tuple[int | None, ...] | None:
    """Per level, the tightest bound that holds for ``run`` given its own higher levels.

    The lexicographic optimum of a level is the most that can be placed there while the
    levels above keep what the row placed: a row one person short at priority 3 may have more
    room at priority 2 than the optimum leaves. So each level takes the smallest of: the LP
    bound given the row's own counts above it (``own_bound``), and the reference's bound at
    that level when it holds for the row: the LP reference row (computed given the cp-sat
    row's counts) always, the referee's only where the row placed at least as many as the
    referee at every higher level (its bound is given its own counts there, a looser
    condition). None at a level no bound judges; None in all without a reference and an own
    bound.
    """
    usable = reference is not None and reference.ok and bool(reference.bound)
    if not run.placed or (not usable and not run.own_bound):
        return None
    out: list[int | None] = []
    for i in range(len(run.placed)):
        found = [run.own_bound[i]] if run.own_bound else []
        if usable:
            assert reference is not None
            holds = reference.method == "lp-bound" or (
                bool(reference.placed)
                and all(run.placed[j] >= reference.placed[j] for j in range(i))
            )
            if holds:
                found.append(reference.bound[i])
        out.append(min(found) if found else None)
    return tuple(out)


def gaps(run: Run, reference: Run | None) -> tuple[float | None, ...] | None:
    """Per level, ``(bound - placed) / bound`` in percent against :func:`reference_bounds`.

    Negative: above the bound (possible only against the LP reference row, given another
    row's counts); None at a level no bound judges.
    """
    bounds = reference_bounds(run, reference)
    if bounds is None:
        return None
    return tuple(None if b is None else _pct(p, b) for p, b in zip(run.placed, bounds, strict=True))


def missed_targets(result: BenchResult) -> list[str]:
    """Which of issue 18's targets the CP-SAT row misses (empty: all met).

    ``2k`` sizes: parse + solve + write within the time limit, within 0.5 % of the referee's
    bound at every level, peak RSS ≤ 1 GB, document ≤ 5 MB. ``10k``: within the time limit,
    strictly more than greedy at priority 5 where the LP bound leaves room, within 1 % of the
    LP bound at every level. ``20k``: within the time limit, valid, lexicographically never
    below greedy, peak RSS ≤ 4 GB, document ≤ 50 MB. A target needing the reference row is
    left unjudged (not missed) when that row is absent.
    """
    cp, greedy, ref = result.run("cp-sat"), result.run("greedy"), result.reference
    if cp is None:
        return ["no cp-sat run"]
    if not cp.ok:
        return [cp.status]
    out = []
    if cp.inner_s is not None and cp.inner_s > result.time_limit_s:
        out.append(f"{cp.inner_s:.1f} s > {result.time_limit_s:g} s")
    cls = size_class(result.requests)
    g = gaps(cp, ref)
    if cls == "2k":
        if g is not None:
            out += [
                f"p{p} {v:.2f}% > 0.5%"
                for p, v in zip(PRIORITIES, g, strict=True)
                if v is not None and v > 0.5
            ]
        if cp.rss_bytes > GB:
            out.append(f"RSS {cp.rss_bytes / GB:.2f} GB > 1 GB")
        if cp.doc_bytes is not None and cp.doc_bytes > 5 * MB:
            out.append(f"doc {cp.doc_bytes / MB:.1f} MB > 5 MB")
    elif cls == "10k":
        if (
            greedy is not None
            and greedy.ok
            and ref is not None
            and ref.ok
            and greedy.placed[0] < ref.bound[0]
            and cp.placed[0] <= greedy.placed[0]
        ):
            out.append("p5 not above greedy")
        if g is not None:
            out += [
                f"p{p} {v:.2f}% > 1%"
                for p, v in zip(PRIORITIES, g, strict=True)
                if v is not None and v > 1.0
            ]
    else:
        if greedy is not None and greedy.ok and cp.placed < greedy.placed:
            out.append("below greedy")
        if cp.rss_bytes > 4 * GB:
            out.append(f"RSS {cp.rss_bytes / GB:.2f} GB > 4 GB")
        if cp.doc_bytes is not None and cp.doc_bytes > 50 * MB:
            out.append(f"doc {cp.doc_bytes / MB:.1f} MB > 50 MB")
    return out


def format_results(results: Sequence[BenchResult]) -> str:
    """Render results as a plain-text table (Markdown-compatible), machine line first."""
    rows = [line for r in results for line in format_rows(r)]
    return "\n".join([*format_header(), *rows, *format_footer()])


def format_header() -> list[str]:
    """The lines of :func:`format_results` before the first result's rows."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return [
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, load {load:.2f} at start",
        "",
        "| family | size | limit s | method | status | wall s | solve+io s | peak RSS MB | "
        "doc MB | placed p5/p4/p3/p2/p1 | total | bound p5/p4/p3/p2/p1 | "
        "gap to reference p5/p4/p3/p2/p1 | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]


def _slash(values: Sequence[object]) -> str:
    return "/".join(map(str, values)) if values else "-"


def format_rows(r: BenchResult) -> list[str]:
    """The rows of one family and size: cp-sat, greedy, then the reference if measured."""
    size = f"{r.requests}x{r.shelters} ({r.people} people)"
    ref = r.reference
    missed = missed_targets(r)
    lines = []
    for run in r.runs:
        status = run.status
        if run.safety_net:
            status += " (safety net)"
        if run.method == "referee" and run.proven:
            status += f" ({sum(run.proven)}/{len(run.proven)} proven)"
        if run.violations > 0:
            status += f" ({run.violations} violations: {run.note})"
        elif run.violations < 0:
            status += f" ({run.note})"
        elif run.status in ("failed", "timeout") and run.note:
            status += f" ({run.note[:80]})"
        limit = (
            f"{r.referee_time_limit_s:g}/level"
            if run.method == "referee" and r.referee_time_limit_s is not None
            else ""
            if run.method == "lp-bound"
            else f"{r.time_limit_s:g}"
        )
        g = gaps(run, ref) if run is not ref else None
        gap = "-" if g is None else "/".join("-" if v is None else f"{v:.2f}%" for v in g)
        bound = _slash(run.bound)
        if run.total_bound is not None:
            bound += f" (total {run.total_bound})"
        target = ""
        if run.method == "cp-sat":
            target = "met" if not missed else "missed: " + ", ".join(missed)
        lines.append(
            f"| {r.family} | {size} | {limit} | {run.method} | {status} | {run.wall_s:.2f} | "
            f"{'-' if run.inner_s is None else f'{run.inner_s:.2f}'} | "
            f"{run.rss_bytes / MB:.0f} | "
            f"{'-' if run.doc_bytes is None else f'{run.doc_bytes / MB:.2f}'} | "
            f"{_slash(run.placed)} | {sum(run.placed) if run.placed else '-'} | {bound} | "
            f"{gap} | {target} |"
        )
    return lines


def format_footer() -> list[str]:
    """The lines of :func:`format_results` after the last result's rows."""
    return [
        "",
        "Each row is one child process: wall s from its start to its exit; solve+io s = parse "
        "of the problem + solve + streaming the solution document (what --time-limit "
        "promises); peak RSS = the child's ru_maxrss; doc MB = the compact JSON document.",
        "bound: the row's own bound per level (CP-SAT's proven bound; the referee's HiGHS "
        "bound, each level given the levels above fixed at its own values; the LP bound of "
        "placement/lpbound.py, given the cp-sat row's counts at the higher levels).",
        "gap to reference = (bound - placed) / bound per level, the bound being the tightest "
        "that holds given the row's own counts at the higher levels (a level's lexicographic "
        "optimum depends on them): the LP bound given those counts, and the referee's bound "
        "where the row placed at least the referee's counts above (below 10,000 requests) or "
        "the LP row (from 10,000); negative = above the LP row, possible at a level below one "
        "where the row placed fewer than cp-sat.",
        "targets (issue 18): below 10,000 requests within the limit, <= 0.5 % per level, "
        "RSS <= 1 GB, doc <= 5 MB; below 20,000: within the limit, p5 above greedy where "
        "the LP bound leaves room, <= 1 % of the LP bound per level; 20,000 up: within the "
        "limit, valid, never below greedy (lexicographically), RSS <= 4 GB, doc <= 50 MB.",
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "child":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _child(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m placement.bench child KIND ARGS (internal)")
