"""Disclosure control over every table of one year at once (SPEC §8). Pure: no database.

A funder can ask for many tables of the same counts: by shelter, organisation or region, with
the network total, for every calendar month, quarter and the year. All of them are sums of one
set of **base cells**: a unit (a shelter, or an unmet-demand row) x a month x a count. This
module chooses, for one year, which published cells to suppress so that, from *all* those tables
together, no suppressed cell can be recomputed and no primary cell (a count from 1 to k-1) can
be narrowed to an interval shorter than k.

The attacker (and the audit in the tests) knows: every published cell and which base cells it
adds up; that counts are not negative; and the relations every base cell obeys
(``System.equalities``, e.g. people by status = people by sex; ``System.at_least``, e.g. there
are at least as many people as admitted placements). They solve linear programmes for the
smallest and largest value of a suppressed cell.

Method (an LP-audited heuristic in the spirit of τ-ARGUS's optimal method, Fischetti and
Salazar's model solved one primary cell at a time):

1. Quarters are published in order, and a published cell never changes afterwards: at the
   end of quarter q, the cells of its three months, of the quarter, and after Q4 of the year,
   are new; everything decided before is frozen. So a table asked for in April shows exactly
   what it will show in December, and differencing publications over time learns nothing new.
   (Deciding a whole quarter at once lets a perturbation balance one month against another of
   the same quarter, so that quarter and year cells, and the totals, can stay published;
   deciding month by month would hide nearly every quarter and year cell.)
2. New cells from 1 to k-1 are suppressed (primary).
3. For every primary cell t (new ones, and earlier ones whose protection the new quarter or year
   cells could cut), find a **perturbation** d of the base cells that raises t by k while
   keeping every published cell, non-negativity and every base relation intact, i.e. a second
   world the attacker cannot tell apart from the true one, where t is k larger. It is the
   solution of an LP (GLOP) that may also change new, not yet suppressed cells at a cost of
   (1 + value) per unit of change; every new cell it changes is suppressed. A perturbation found
   earlier that already does the job is reused.

Why this protects: ``x + d`` satisfies everything the attacker knows, so the attacker's maximum
of t is at least its value + k, and its minimum at most its value: the interval is at least k
wide. A complementary cell is suppressed only because some d changes it, so it is never
determined either. Suppressing more cells only widens intervals, so protection found for one
cell survives the rest of the run. The LP may be fractional: the guarantee is against an LP
attacker, the standard audit (an integer attacker may, in rare cases, do better).

Deterministic: cells and variables are built in sorted order and GLOP runs single-threaded.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ortools.linear_solver import pywraplp

U = TypeVar("U", bound=Hashable)
MIN_K = 3
MONTHS = tuple(range(1, 13))
# Periods of a year, by id, with the months each covers.
PERIODS: dict[str, tuple[int, ...]] = {
    **{f"m{m:02d}": (m,) for m in MONTHS},
    **{f"q{q}": tuple(range(3 * q - 2, 3 * q + 1)) for q in range(1, 5)},
    "y": MONTHS,
}
EPS = 1e-7
SPARSE = 1e-3
# Up to this many units, every LP may use all of them; above, only the units that share a
# region or organisation with the cell (and all of them only when that is infeasible).
WHOLE_SYSTEM_UNITS = 40

Frame = tuple[str, str, str]  # grouping, group key, period id
Cell = tuple[str, str, str, str]  # grouping, group key, period id, count name
Base = tuple[int, int, str]  # unit index, month, count name


def period_id(first_month: int, last_month: int) -> str | None:
    """The id of the calendar period covering ``first_month``..``last_month``, if it is one."""
    months = tuple(range(first_month, last_month + 1))
    return next((pid for pid, covered in PERIODS.items() if covered == months), None)


def new_periods(quarter: int) -> list[str]:
    """Periods decided at the end of ``quarter``: its months, itself, and the year after Q4."""
    out = [f"m{m:02d}" for m in PERIODS[f"q{quarter}"]] + [f"q{quarter}"]
    if quarter == 4:
        out.append("y")
    return out


@dataclass(frozen=True)
class System(Generic[U]):
    """The tables of one year that readers can ask for, over one kind of base cell.

    ``groupings`` maps each grouping name to the group key of every unit; ``identity`` names
    the grouping in which every unit is its own group (its cells are the base cells).
    ``blocks`` partitions ``names`` into counts that are linked by ``equalities`` (sum of
    coefficient x base value = 0 for every unit and month) or ``at_least`` (sum ≥ 0); counts of
    different blocks never share a relation and are protected independently. ``start`` is the
    first month a unit takes part in (default 1): before it, its cells are known zeros, never
    used as complements, so a shelter opened in August changes nothing published before.
    """

    units: tuple[U, ...]
    groupings: Mapping[str, Mapping[U, str]]
    identity: str
    blocks: tuple[tuple[str, ...], ...]
    equalities: tuple[tuple[tuple[str, int], ...], ...] = ()
    at_least: tuple[tuple[tuple[str, int], ...], ...] = ()
    start: Mapping[U, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Protection:
    """What one year publishes, up to the end of month ``through`` (whole quarters only).

    ``values`` holds every cell's true value; a cell in ``suppressed`` is published as null.
    ``primary`` ⊆ ``suppressed`` are the cells from 1 to k-1.
    """

    k: int
    through: int
    values: Mapping[Cell, int]
    suppressed: frozenset[Cell]
    primary: frozenset[Cell]
    lp_solved: int = 0

    def published(self, cell: Cell) -> int | None:
        """The published value of ``cell``: None when suppressed; KeyError when not in the year."""
        value = self.values[cell]
        return None if cell in self.suppressed else value


@dataclass
class _Block(Generic[U]):
    system: System[U]
    names: tuple[str, ...]
    base: Mapping[Base, int]
    k: int
    frames: dict[Frame, list[tuple[int, int]]] = field(default_factory=dict)
    frames_of: dict[tuple[int, int], list[Frame]] = field(default_factory=dict)
    neighbours: dict[int, list[int]] = field(default_factory=dict)
    suppressed: set[Cell] = field(default_factory=set)
    primary: set[Cell] = field(default_factory=set)
    new: set[Cell] = field(default_factory=set)
    perturbation: dict[Cell, dict[Base, float]] = field(default_factory=dict)
    doomed: set[Cell] = field(default_factory=set)
    by_base: dict[Base, list[Cell]] = field(default_factory=dict)
    values: dict[Cell, int] = field(default_factory=dict)
    month: int = 0
    lp_solved: int = 0

    def __post_init__(self) -> None:
        units = self.system.units
        groups: dict[str, dict[str, list[int]]] = {}
        for grouping, keys in sorted(self.system.groupings.items()):
            groups[grouping] = {}
            for i, unit in enumerate(units):
                groups[grouping].setdefault(keys[unit], []).append(i)
        for grouping, members in groups.items():
            for key, indices in sorted(members.items()):
                for pid, months in PERIODS.items():
                    frame = (grouping, key, pid)
                    self.frames[frame] = [(i, m) for i in indices for m in months]
                    for i in indices:
                        for m in months:
                            self.frames_of.setdefault((i, m), []).append(frame)
        for i in range(len(units)):
            near: set[int] = set()
            for grouping, members in groups.items():
                if grouping != self.system.identity and len(members) > 1:
                    near.update(members[self.system.groupings[grouping][units[i]]])
            near.add(i)
            self.neighbours[i] = sorted(near)

    def value(self, frame: Frame, name: str, through: int = 12) -> int:
        return sum(self.base.get((i, m, name), 0) for i, m in self.frames[frame] if m <= through)

    def run(self, through: int) -> None:
        for quarter in range(1, through // 3 + 1):
            self.month = 3 * quarter
            periods = new_periods(quarter)
            self.new = set()
            for frame in self.frames:
                if frame[2] in periods:
                    for name in self.names:
                        cell = (*frame, name)
                        value = self.value(frame, name)
                        self.values[cell] = value
                        self.new.add(cell)
                        if 1 <= value < self.k:
                            self.primary.add(cell)
                            self.suppressed.add(cell)
                        if cell in self.doomed:
                            # A perturbation found earlier changes it: hiding it keeps that
                            # perturbation, and every cell it protects, valid for good.
                            self.suppressed.add(cell)
            for target in sorted(self.primary & self.new):
                self._protect(target)

    # -- perturbations --------------------------------------------------------------------

    def _changes(self, d: Mapping[Base, float]) -> dict[Cell, float]:
        """How much ``d`` changes each cell, of complete periods and of periods still open."""
        out: dict[Cell, float] = {}
        for (i, m, name), delta in d.items():
            for frame in self.frames_of[(i, m)]:
                cell = (*frame, name)
                out[cell] = out.get(cell, 0.0) + delta
        return out

    def _hidden(self, cell: Cell) -> bool:
        """Suppressed, or (in a period still open) bound to be suppressed when published."""
        return cell in self.suppressed if cell in self.values else cell in self.doomed

    def _still_hides(self, d: Mapping[Base, float], target: Cell) -> bool:
        changes = self._changes(d)
        if changes.get(target, 0.0) < self.k - EPS:
            return False
        return all(abs(v) <= EPS or self._hidden(c) for c, v in changes.items())

    def _feasible(self, d: Mapping[Base, float]) -> bool:
        """``x + d`` keeps every count non-negative and every base relation true."""
        if any(self.base.get(b, 0) + v < -EPS for b, v in d.items()):
            return False
        touched = sorted({(i, m) for i, m, _ in d})
        for i, m in touched:
            for relation in self.system.equalities:
                if (
                    abs(sum(c * d.get((i, m, n), 0.0) for n, c in relation if n in self.names))
                    > EPS
                ):
                    return False
            for relation in self.system.at_least:
                if any(n not in self.names for n, _ in relation):
                    continue
                before = sum(c * self.base.get((i, m, n), 0) for n, c in relation)
                after = before + sum(c * d.get((i, m, n), 0.0) for n, c in relation)
                if after < min(before, 0) - EPS:
                    return False
        return True

    def _protect(self, target: Cell) -> None:
        frame = target[:3]
        seen: set[Cell] = set()
        for i, m in self.frames[frame]:
            for other in self.by_base.get((i, m, target[3]), ()):
                if other in seen:
                    continue
                seen.add(other)
                theirs = self.perturbation[other]
                lift = sum(theirs.get((j, n, target[3]), 0.0) for j, n in self.frames[frame])
                for sign in (1.0, -1.0):
                    if sign * lift < self.k - EPS:
                        continue
                    d = {b: sign * v for b, v in theirs.items()}
                    if self._still_hides(d, target) and self._feasible(d):
                        self._keep(target, d)
                        return
        found = self._solve(target, wide=False)
        if found is None and len(self.system.units) > WHOLE_SYSTEM_UNITS:
            found = self._solve(target, wide=True)
        if found is None:  # cannot happen: raising t alone and hiding what it changes is feasible
            self.suppressed.update(self.new)
            return
        for cell, change in self._changes(found).items():
            if abs(change) > EPS:
                (self.suppressed if cell in self.values else self.doomed).add(cell)
        self._keep(target, found)

    def _keep(self, target: Cell, d: dict[Base, float]) -> None:
        self.perturbation[target] = d
        for b in d:
            self.by_base.setdefault(b, []).append(target)

    def _solve(self, target: Cell, *, wide: bool) -> dict[Base, float] | None:
        """The cheapest perturbation raising ``target`` by k, over free base cells near it."""
        self.lp_solved += 1
        frame = target[:3]
        identity = self.system.identity
        units = sorted({i for i, _ in self.frames[frame]})
        if wide or len(self.system.units) <= WHOLE_SYSTEM_UNITS:
            scope = list(range(len(self.system.units)))
        else:
            scope = sorted({j for i in units for j in self.neighbours[i]})
        # A cell of a month or quarter is protected within its quarter: months of earlier
        # quarters are frozen or hidden already, and leaving them out keeps the LP small.
        pid = frame[2]
        months = PERIODS[pid] if pid == "y" else PERIODS[f"q{(PERIODS[pid][-1] - 1) // 3 + 1}"]
        # A base cell is free when its own (identity) cell is suppressed or new; a published
        # base cell is known, so its change is 0.
        free: list[Base] = []
        for i in scope:
            unit = self.system.units[i]
            key = self.system.groupings[identity][unit]
            for m in months:
                if m < self.system.start.get(unit, 1):
                    continue
                for name in self.names:
                    cell = (identity, key, f"m{m:02d}", name)
                    if cell in self.suppressed or cell in self.new:
                        free.append((i, m, name))
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if solver is None:  # pragma: no cover - OR-Tools always ships GLOP
            raise RuntimeError("GLOP is not available")
        inf = solver.infinity()
        objective = solver.Objective()
        # d = up - down; a small cost on both keeps the perturbation sparse, so that it is
        # cheap to check again and reuse for other cells.
        up: dict[Base, pywraplp.Variable] = {}
        down: dict[Base, pywraplp.Variable] = {}
        for b in free:
            up[b] = solver.NumVar(0.0, float(self.k), "")
            down[b] = solver.NumVar(0.0, float(self.base.get(b, 0)), "")
            objective.SetCoefficient(up[b], SPARSE)
            objective.SetCoefficient(down[b], SPARSE)
        grown: dict[Cell, list[Base]] = {}
        for b in free:
            i, m, name = b
            for f in self.frames_of[(i, m)]:
                grown.setdefault((*f, name), []).append(b)
        if target not in grown:
            return None

        def row(lower: float, upper: float, members: list[Base], sign: float = 1.0) -> Any:
            constraint = solver.Constraint(lower, upper)
            for b in members:
                constraint.SetCoefficient(up[b], sign)
                constraint.SetCoefficient(down[b], -sign)
            return constraint

        row(float(self.k), float(self.k), grown[target])
        # Cells over the same base cells (a region or organisation of one shelter, say) get
        # one row: frozen if any of them is, else one cost for those not hidden yet.
        alike: dict[tuple[Base, ...], list[Cell]] = {}
        for cell in sorted(grown):
            if cell != target and not self._hidden(cell):
                alike.setdefault(tuple(grown[cell]), []).append(cell)
        for members_key, cells in alike.items():
            members = list(members_key)
            if any(x in self.values and x not in self.new for x in cells):
                row(0.0, 0.0, members)  # published before: frozen
                continue
            # New, or in a period still open: may change, and is then suppressed. An open
            # period's weight counts only the months so far: nothing decided now may depend
            # on data of months not yet published.
            weight = 0.0
            for same in cells:
                value = self.values.get(same)
                if value is None:
                    value = self.value(same[:3], same[3], self.month)
                weight += 1.0 + value
            u = solver.NumVar(0.0, inf, "")
            objective.SetCoefficient(u, weight)
            for sign in (1.0, -1.0):
                row(0.0, inf, members, sign).SetCoefficient(u, 1.0)
        pairs = sorted({(i, m) for i, m, _ in free})
        for i, m in pairs:
            for relation in self.system.equalities:
                if any(n not in self.names for n, _ in relation):
                    continue
                terms = [(b, c) for n, c in relation if (b := (i, m, n)) in up]
                if terms:
                    constraint = solver.Constraint(0.0, 0.0)
                    for b, c in terms:
                        constraint.SetCoefficient(up[b], c)
                        constraint.SetCoefficient(down[b], -c)
            for relation in self.system.at_least:
                if any(n not in self.names for n, _ in relation):
                    continue
                terms = [(b, c) for n, c in relation if (b := (i, m, n)) in up]
                if terms:
                    before = sum(c * self.base.get((i, m, n), 0) for n, c in relation)
                    constraint = solver.Constraint(float(min(before, 0) - before), inf)
                    for b, c in terms:
                        constraint.SetCoefficient(up[b], c)
                        constraint.SetCoefficient(down[b], -c)
        objective.SetMinimization()
        if solver.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        d = {b: up[b].solution_value() - down[b].solution_value() for b in free}
        return {b: v for b, v in d.items() if abs(v) > EPS / 10}


def protect(
    system: System[U], base: Mapping[tuple[U, int, str], int], k: int, *, through: int
) -> Protection:
    """Suppress cells of one year's tables: the quarters ending by month ``through``.

    ``base`` holds the true count of every (unit, month, name); missing entries are 0. The
    cells of a quarter (its months, itself; the year with Q4) are decided at its end and never
    change later, so ``protect(..., through=n)`` and ``protect(..., through=12)`` agree on
    every cell of the quarters ending by month n. ``ValueError`` if ``k`` is below 3.
    """
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}")
    if not 0 <= through <= 12:
        raise ValueError("through must be a month number from 0 to 12")
    index = {unit: i for i, unit in enumerate(system.units)}
    indexed = {(index[u], m, n): v for (u, m, n), v in base.items() if v and u in index}
    values: dict[Cell, int] = {}
    suppressed: set[Cell] = set()
    primary: set[Cell] = set()
    solved = 0
    for names in system.blocks:
        block = _Block(system=system, names=names, base=indexed, k=k)
        block.run(through)
        values.update(block.values)
        suppressed.update(block.suppressed)
        primary.update(block.primary)
        solved += block.lp_solved
    return Protection(
        k=k,
        through=through,
        values=values,
        suppressed=frozenset(suppressed),
        primary=frozenset(primary),
        lp_solved=solved,
    )


class ProtectionCache:
    """Protections already computed, keyed by a digest of everything they depend on.

    Bounded (least recently used goes first) and safe to share between request threads. The
    key covers the system, every base value, k and the stage, so a change in the data is a
    new key: the cache never serves a protection computed from other data.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[str, Protection] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(system: System[U], base: Mapping[tuple[U, int, str], int], k: int, through: int) -> str:
        """A digest of the inputs of ``protect``; equal inputs give equal keys in any process."""
        parts = [
            repr(system.units),
            repr(sorted((g, sorted(m.items())) for g, m in system.groupings.items())),
            repr((system.identity, system.blocks, system.equalities, system.at_least)),
            repr(sorted(system.start.items())),
            repr(sorted((repr(b), v) for b, v in base.items() if v)),
            repr((k, through)),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def get_or_compute(self, key: str, compute: Callable[[], Protection]) -> Protection:
        """The cached protection for ``key``, computing (outside the lock) when missing."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = compute()
        with self._lock:
            self._items[key] = made
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return made


__all__ = [
    "MIN_K",
    "PERIODS",
    "Cell",
    "Protection",
    "ProtectionCache",
    "System",
    "new_periods",
    "period_id",
    "protect",
]
