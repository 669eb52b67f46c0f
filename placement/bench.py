"""Benchmark: CP-SAT against the greedy baseline on generated networks (issue 5 targets).

Timings live here and in ``refuge bench``, never in test assertions.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from placement.generator import generate
from placement.instance import Instance
from placement.lpbound import level_bounds, total_bound
from placement.problem import PRIORITIES, Problem
from placement.solve import solve

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((50, 10), (500, 60), (2_000, 300), (10_000, 1_000))
DEFAULT_TIME_LIMITS = {(50, 10): 10.0, (500, 60): 10.0, (2_000, 300): 10.0, (10_000, 1_000): 60.0}
"""Per-size time limits in seconds when none is given (the issue's targets)."""


@dataclass(frozen=True)
class BenchResult:
    """Figures of one benchmark size; ``placed``/``bound`` are per priority 5..1."""

    requests: int
    shelters: int
    people: int
    time_limit_s: float
    status: str
    wall_s: float
    placed: tuple[int, ...]
    bound: tuple[int, ...]
    soft_cost: int
    soft_bound: int
    safety_net_expired: bool
    greedy_wall_s: float
    greedy_placed: tuple[int, ...]
    greedy_soft_cost: int
    lp_levels: tuple[int, ...] = ()
    """Per priority, LP bound given the CP-SAT answer's counts at the higher priorities."""
    greedy_lp_levels: tuple[int, ...] = ()
    """The same given the greedy answer's counts."""
    lp_total: int = 0
    """LP bound on people placed, priorities alike."""


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


def run_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    time_limit_s: float | None = None,
    seed: int = 0,
) -> list[BenchResult]:
    """Generate one network per size (seeded), solve it with CP-SAT and greedy.

    Args:
        sizes: (requests, shelters) pairs.
        time_limit_s: CP-SAT time limit per size; None uses :data:`DEFAULT_TIME_LIMITS`
            (10 s, or 60 s from 10,000 requests up).
        seed: Seed of the generator and of CP-SAT.

    Returns:
        One :class:`BenchResult` per size, in order.
    """
    return list(iter_bench(sizes, time_limit_s=time_limit_s, seed=seed))


def size_time_limit(size: tuple[int, int], time_limit_s: float | None = None) -> float:
    """The CP-SAT time limit of one size: ``time_limit_s``, or its default target."""
    if time_limit_s is not None:
        return time_limit_s
    return DEFAULT_TIME_LIMITS.get(size, 60.0 if size[0] >= 10_000 else 10.0)


def iter_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    time_limit_s: float | None = None,
    seed: int = 0,
) -> Iterator[BenchResult]:
    """:func:`run_bench`, yielding each size's result as soon as it is measured."""
    for n_requests, n_shelters in sizes:
        limit = size_time_limit((n_requests, n_shelters), time_limit_s)
        problem = Problem.from_document(generate(n_requests, n_shelters, seed))
        greedy = solve(problem, method="greedy", seed=seed, time_limit_s=limit)
        best = solve(problem, method="cp-sat", seed=seed, time_limit_s=limit)
        # LP bounds over every viable pair (also where the model was reduced); not timed.
        inst = Instance(problem)
        yield BenchResult(
            requests=n_requests,
            shelters=n_shelters,
            people=sum(len(q.members) for q in problem.requests),
            time_limit_s=limit,
            status=best.status,
            wall_s=best.wall_s,
            placed=best.objective.placed_by_priority,
            bound=best.bound.placed_by_priority,
            soft_cost=best.objective.soft_cost,
            soft_bound=best.bound.soft_cost,
            safety_net_expired=best.safety_net_expired,
            greedy_wall_s=greedy.wall_s,
            greedy_placed=greedy.objective.placed_by_priority,
            greedy_soft_cost=greedy.objective.soft_cost,
            lp_levels=level_bounds(inst, best.objective.placed_by_priority),
            greedy_lp_levels=level_bounds(inst, greedy.objective.placed_by_priority),
            lp_total=total_bound(inst),
        )


def _gap(placed: int, bound: int) -> str:
    return "0" if bound <= placed else f"{100 * (bound - placed) / bound:.2f}%"


def _lp(placed: Sequence[int], levels: Sequence[int], total: int) -> str:
    if not levels:
        return "- | -"
    bounds = "/".join(map(str, levels)) + f" ({total})"
    gaps = "/".join(_gap(p, b) for p, b in zip(placed, levels, strict=True))
    return f"{bounds} | {gaps} ({_gap(sum(placed), total)})"


def format_results(results: Sequence[BenchResult]) -> str:
    """Render results as a plain-text table (Markdown-compatible), machine line first."""
    rows = [line for r in results for line in format_rows(r)]
    return "\n".join([*format_header(), *rows, *format_footer()])


def format_header() -> list[str]:
    """The lines of :func:`format_results` before the first result's rows."""
    return [
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        "",
        "| size | limit s | method | status | wall s | placed p5/p4/p3/p2/p1 | total | "
        "gap to bound p5/p4/p3/p2/p1 | LP bound p5/p4/p3/p2/p1 (total) | "
        "gap to LP p5/p4/p3/p2/p1 (total) | soft cost |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]


def format_rows(r: BenchResult) -> list[str]:
    """The two table rows of one result: CP-SAT, then greedy."""
    size = f"{r.requests}x{r.shelters} ({r.people} people)"
    gaps = "/".join(_gap(p, b) for p, b in zip(r.placed, r.bound, strict=True))
    status = r.status + (" (safety net)" if r.safety_net_expired else "")
    ggaps = "/".join(_gap(p, b) for p, b in zip(r.greedy_placed, r.bound, strict=True))
    return [
        f"| {size} | {r.time_limit_s:g} | cp-sat | {status} | {r.wall_s:.2f} | "
        f"{'/'.join(map(str, r.placed))} | {sum(r.placed)} | {gaps} | "
        f"{_lp(r.placed, r.lp_levels, r.lp_total)} | {r.soft_cost:,} |",
        f"| {size} | | greedy | feasible | {r.greedy_wall_s:.2f} | "
        f"{'/'.join(map(str, r.greedy_placed))} | {sum(r.greedy_placed)} | {ggaps} | "
        f"{_lp(r.greedy_placed, r.greedy_lp_levels, r.lp_total)} | "
        f"{r.greedy_soft_cost:,} |",
    ]


def format_footer() -> list[str]:
    """The lines of :func:`format_results` after the last result's rows."""
    return [
        "",
        "gap = (bound - placed) / bound per priority level, against the best bound CP-SAT "
        f"proved (levels {'/'.join(map(str, PRIORITIES))}); soft cost in weighted metres.",
        "LP bound: the LP relaxation over every viable pair (GLOP, priced out; see "
        "placement/lpbound.py), per level given the row's own counts at the higher levels, "
        "and in total with all priorities alike; wall s excludes it.",
    ]
