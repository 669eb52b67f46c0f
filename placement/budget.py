"""One wall-clock budget for a whole solve, and the record that lets a cut run replay exactly.

Internal to the package. A :class:`Budget` holds one deadline, ``time_limit_s`` after the solve
started, less a reserve for what must follow the search (explanations of the unplaced requests
and assembling the document, which cannot be cut short). Every phase asks it before each piece
of work whether time is left: greedy, improvement and insertion through their ``stop``
callables, the neighbourhood loop, the waits for a model built on the second thread, and each
GLOP and CP-SAT call, which get the seconds left as their own time limit.

Every question is a numbered *check*. Until the wall clock first says "spent", the work done is
the deterministic work of the phases (CP-SAT in deterministic time, the rest by its own count),
so the sequence of checks is the same on every run. The first check that finds the time spent
is the *cut*: its number and, when it stopped a call part-way, how far that call got (CP-SAT:
the number of solutions it had reported) go into the solution's ``work`` record, and every
later check answers "spent" at once. A replay (``Budget(..., replay=work)``) never reads the
clock: it answers "not spent" up to the recorded check, stops the call there at the recorded
point, and "spent" after it, so the same work is done and the result is byte for byte the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
"""Seconds, monotonic (``time.perf_counter`` unless a test injects a fake)."""

DET_PER_SECOND = 0.5
"""CP-SAT deterministic seconds per second of ``time_limit_s``, shared by every search.

Deterministic time is what makes an uncut run reproducible; the wall clock bounds it. On the
2-core benchmark machine it ran 1.5-7x slower than the wall clock on the larger models.
"""
RESERVE_SHARE = 0.1
"""Share of ``time_limit_s`` always kept back for explanations and the document."""
RESERVE_PER_CELL_S = 6e-7
"""Seconds kept back per (request left unplaced by greedy) x (shelter): the explanations name
every shelter for every unplaced request, from shelter sets shared by requests alike
(measured at 20,000x2,000 national: 3.8-5.8 s for 8,034 x 2,000 cells at load 2.3-4.5,
0.24-0.36 µs per cell; before the shelter sets, 35 s at 4.3 µs)."""
RESERVE_PER_REQUEST_S = 2e-4
"""Seconds kept back per request for the bookkeeping after a cut (completing the placement,
comparing it with the baseline, the soft cost): ≈ 0.4-0.7 s at 2,000 requests under load."""
RESERVE_WRITE_PER_REQUEST_S = 5e-5
"""Seconds kept back per request, while the greedy baseline runs, for what follows the solve
in ``refuge solve``: freeing the instance, writing the document and the process's exit
(20,000x2,000 at load 2.7-3.1: write 0.2-0.3 s for 1.5-4.6 MB, then ≈ 0.6 s to free the heap)."""
RESERVE_CAP_SHARE = 0.5
"""The reserve never takes more than this share of ``time_limit_s``."""


class Abandoned(Exception):
    """A build was abandoned part-way: nobody will wait for it (the wall clock is spent)."""


@dataclass(frozen=True)
class Step:
    """One check that starts a call the wall clock may cut part-way (GLOP, CP-SAT, a wait).

    ``seconds`` is the wall time the call may take (``inf`` in a replay). ``stop_at`` is None
    for a call to run to its own end; in a replay of the cut call it is where the recorded run
    was cut (e.g. ``{"solutions": 3}``, or ``{"solutions": [1, 3]}`` for calls run side by
    side): the call stops there instead.
    """

    index: int
    seconds: float
    stop_at: Mapping[str, Any] | None = None


class Budget:
    """The wall-clock budget of one solve (see the module docstring)."""

    def __init__(
        self,
        time_limit_s: float,
        *,
        clock: Clock = time.perf_counter,
        replay: Mapping[str, Any] | None = None,
        started: float | None = None,
    ) -> None:
        """Start the clock now, or at ``started``.

        Args:
            time_limit_s: The whole solve's wall-clock limit in seconds.
            clock: Seconds, monotonic; injected by tests.
            replay: A solution's ``work`` record: reproduce that run instead of reading the
                clock. Without a ``cut`` in it, nothing is cut.
            started: A reading of ``clock`` taken when the caller's part of the work began
                (before it parsed the problem, say), so the limit covers that part too.
        """
        self.clock = clock
        self.started = clock() if started is None else started
        self.time_limit_s = time_limit_s
        self.deadline = self.started + time_limit_s
        self.reserve_s = RESERVE_SHARE * time_limit_s
        self.deterministic_s = DET_PER_SECOND * time_limit_s
        self.replaying = replay is not None
        recorded = replay.get("cut") if replay is not None else None
        self._recorded: Mapping[str, Any] | None = (
            recorded if isinstance(recorded, Mapping) else None
        )
        stops = replay.get("stops", []) if replay is not None else []
        self._recorded_stops = {i for i in stops if isinstance(i, int)}
        self.checks = 0
        self.cut: dict[str, Any] | None = None
        self.stops: list[int] = []
        self.phase = "prepare"
        self.phases: dict[str, dict[str, float]] = {}

    # -- the reserve ---------------------------------------------------------------------------

    def keep_for_explanations(
        self, requests: int, unplaced: int, shelters: int, also_s: float = 0.0
    ) -> None:
        """Keep back time for explaining ``unplaced`` requests against ``shelters`` shelters.

        Also for the bookkeeping after a cut, by the number of ``requests``, and ``also_s``
        more seconds for other work that must follow the search.
        """
        cells = max(unplaced, 0) * max(shelters, 1)
        reserve = max(RESERVE_SHARE * self.time_limit_s, RESERVE_PER_CELL_S * cells)
        reserve += RESERVE_PER_REQUEST_S * requests + also_s
        self.reserve_s = min(reserve, RESERVE_CAP_SHARE * self.time_limit_s)

    def keep_for_baseline(self, requests: int, unplaced: int, shelters: int) -> None:
        """Keep back time, while the greedy baseline runs, for what must follow a cut there.

        The explanations of the ``unplaced`` requests it examined and left unplaced (each
        against every shelter), and the document of ``requests`` requests; nothing else
        follows a cut baseline (the requests not examined get one reason each, no search).
        """
        cells = max(unplaced, 0) * max(shelters, 1)
        reserve = max(RESERVE_SHARE * self.time_limit_s, RESERVE_PER_CELL_S * cells)
        reserve += RESERVE_WRITE_PER_REQUEST_S * requests
        self.reserve_s = min(reserve, RESERVE_CAP_SHARE * self.time_limit_s)

    def wall_left(self) -> float:
        """Seconds left for the search (after the reserve); may be negative."""
        return self.deadline - self.reserve_s - self.clock()

    # -- checks --------------------------------------------------------------------------------

    def _number(self) -> int:
        index = self.checks
        self.checks += 1
        self._count("checks")
        return index

    def spent(self, keep_s: float = 0.0) -> bool:
        """A check: True when the search must stop now (and at every later check).

        With ``keep_s``, also True (for this check only: an early end of one phase, recorded
        in ``stops``) when fewer than ``keep_s`` seconds are left, so that what follows the
        phase keeps that much.
        """
        index = self._number()
        if self.cut is not None:
            return True
        if self.replaying:
            if self._recorded is not None and index == self._recorded.get("check"):
                self.cut = dict(self._recorded)
                return True
            if index in self._recorded_stops:
                self.stops.append(index)
                return True
            return False
        left = self.wall_left()
        if left <= 0:
            self.cut = {"check": index, "phase": self.phase}
            return True
        if keep_s > 0 and left <= keep_s:
            self.stops.append(index)
            return True
        return False

    def stop(self) -> bool:
        """``spent``, as the ``stop`` callable of greedy, improvement and insertion."""
        return self.spent()

    def step(self) -> Step | None:
        """A check that starts a call the clock may cut; None: spent, skip the call."""
        index = self._number()
        if self.cut is not None:
            return None
        if self.replaying:
            rec = self._recorded
            if rec is not None and index == rec.get("check"):
                self.cut = dict(rec)
                at = rec.get("at")
                return Step(index, math.inf, at) if isinstance(at, Mapping) else None
            return Step(index, math.inf)
        left = self.wall_left()
        if left <= 0:
            self.cut = {"check": index, "phase": self.phase}
            return None
        return Step(index, left)

    def cut_during(self, step: Step, at: Mapping[str, Any]) -> None:
        """The wall clock cut ``step``'s call at ``at`` (how far it got); no-op in a replay."""
        if self.replaying or self.cut is not None:
            return
        self.cut = {"check": step.index, "phase": self.phase, "at": dict(at)}

    @property
    def expired(self) -> bool:
        """Whether the wall clock cut a phase (in a replay: whether the recorded run was cut)."""
        return self.cut is not None or bool(self.stops)

    # -- the record ----------------------------------------------------------------------------

    @contextmanager
    def phase_of(self, name: str) -> Iterator[None]:
        """Count the checks and the work inside the block under phase ``name``."""
        saved = self.phase
        self.phase = name
        try:
            yield
        finally:
            self.phase = saved

    def _count(self, what: str, amount: float = 1) -> None:
        counts = self.phases.setdefault(self.phase, {})
        counts[what] = counts.get(what, 0) + amount

    def count(self, what: str, amount: float = 1) -> None:
        """Add deterministic work ``amount`` of kind ``what`` to the current phase."""
        self._count(what, amount)

    def work(self) -> dict[str, Any]:
        """The ``work`` object of the solution: deterministic, part of the reproducible result.

        ``deterministic_s`` is CP-SAT's budget in deterministic seconds; per phase, ``checks``
        (questions asked of the budget), ``cp_sat_calls``, ``deterministic_s_given`` and
        ``_used``, ``lp_solves`` and ``lp_iterations``, of the calls that ran to their own end
        (a call the clock cut is described by ``cut`` alone: its figures depend on the moment
        of the cut, and a replay stops it elsewhere or skips it). ``stops``, present when
        the clock ended a phase early to keep time for the next: those checks. ``cut``, present
        when the wall clock cut the run: the check, the phase and, for a call cut part-way,
        ``at``.
        """
        phases = {
            name: {k: _rounded(v) for k, v in sorted(counts.items())}
            for name, counts in sorted(self.phases.items())
        }
        out: dict[str, Any] = {
            "time_limit_s": float(self.time_limit_s),
            "deterministic_s": _rounded(self.deterministic_s),
            "checks": self.checks,
            "phases": phases,
        }
        if self.stops:
            out["stops"] = list(self.stops)
        if self.cut is not None:
            out["cut"] = dict(self.cut)
        return out


def _rounded(v: float) -> float | int:
    if isinstance(v, int) or float(v).is_integer():
        return int(v)
    return round(float(v), 6)
