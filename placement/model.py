"""The CP-SAT model over groups of interchangeable requests, and what a search returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from ortools.sat.python import cp_model

from placement.budget import Abandoned
from placement.eligibility import fit_blocks
from placement.greedy import greedy_placement, improve_soft_cost, insert_by_moves, occupancy
from placement.instance import Instance, Pair, Placement
from placement.lpfix import INT64_MAX, INT64_MIN, Relaxation, Row
from placement.problem import PRIORITIES


def soft(inst: Instance, placement: Placement) -> int:
    """The soft cost of ``placement``."""
    return sum(inst.pair_cost(ri, si) for ri, (si, _) in placement.items())


def separation_cliques(separated: Sequence[set[int]]) -> list[list[int]]:
    """Groups of requests all separated from each other, covering every separation link.

    Greedy and deterministic: for each link ``(r, o)``, ``r < o``, not yet covered, a clique
    starts from both and takes, in index order, every request linked to all of its members.
    A link is a clique of two. Requests are indices; links are symmetric.
    """
    covered: set[tuple[int, int]] = set()
    cliques: list[list[int]] = []
    for ri, others in enumerate(separated):
        for oi in sorted(others):
            if oi <= ri or (ri, oi) in covered:
                continue
            clique = [ri, oi]
            for x in sorted(others & separated[oi]):
                if x not in clique and all(x in separated[c] for c in clique):
                    clique.append(x)
            clique.sort()
            for a in clique:
                for b in clique:
                    if a < b:
                        covered.add((a, b))
            cliques.append(clique)
    return cliques


@dataclass
class Run:
    placement: Placement
    proven: bool
    bound: tuple[int, int, int, int, int]
    soft_bound: int
    safety_net_expired: bool = False


@dataclass
class Group:
    """Interchangeable requests (same signature), in document order."""

    requests: list[int]
    pairs: list[Pair]
    n: list[int] = field(default_factory=list)
    # y[k][b] = {unit: var} for pair k and bed blocks with more than one candidate unit
    y: list[dict[int, dict[int, int]]] = field(default_factory=list)

    def variables(self, pairs: int | None = None) -> list[int]:
        """The count and unit variables (proto indices) of its first ``pairs`` pairs (all)."""
        out: list[int] = []
        for n, ys in zip(self.n[:pairs], self.y[:pairs], strict=True):
            out.append(n)
            out.extend(y for units in ys.values() for y in units.values())
        return out


Terms = list[tuple[int, int]]
"""(variable's proto index, coefficient) pairs of a linear expression."""
Values = list[int]
"""A value for every variable of a model, by proto index."""


class Model:
    """One CP-SAT model over groups of interchangeable requests.

    Variables and constraints are written straight into the model's proto, and the model's
    code refers to variables by proto index: the expression API (``new_int_var``,
    ``add_linear_constraint``) built the same proto in twice the CPU time (500x60: 0.41
    instead of 0.18 s for both models).

    ``cost_aware=False`` groups requests that differ only in soft cost (for the priority
    levels, where cost plays no part): fewer, larger groups and a much smaller model.
    ``cost_aware=True`` keeps costs apart and carries the soft-cost terms. ``abandon`` is
    asked every 64 groups while building; when it returns True the build raises
    :class:`Abandoned`.
    """

    def __init__(
        self,
        inst: Instance,
        *,
        cost_aware: bool,
        min_priority: int = 1,
        abandon: Callable[[], bool] | None = None,
    ) -> None:
        self.inst = inst
        self.cost_aware = cost_aware
        self.min_priority = min_priority
        self.model = cp_model.CpModel()
        self._variables = self.model.proto.variables
        self._constraints = self.model.proto.constraints
        self.groups = self._groups()
        self.level_max = dict.fromkeys(PRIORITIES, 0)
        self.level_terms: dict[int, Terms] = {p: [] for p in PRIORITIES}
        self.soft_terms: Terms = []
        self.rows: list[Row] = []
        self.bounds: list[tuple[int, int]] = []
        self._abandon = abandon
        self._build()
        self._relaxation: Relaxation | None = None
        self._by_shelter: list[list[int]] | None = None
        self._row_shelters: list[set[int]] | None = None
        self._shelter_of: list[int] = []
        self._rows_seen = 0

    def relaxation(self, abandon: Callable[[], bool] | None = None) -> Relaxation:
        """The model's LP relaxation in GLOP, built on first use and kept in step.

        ``abandon`` as for the model, while the LP is built (raising :class:`Abandoned`).
        """
        if self._relaxation is None:
            self._relaxation = Relaxation(self.model, self.rows, self.bounds, abandon=abandon)
        return self._relaxation

    def at_least(self, terms: Terms, value: int) -> int:
        """Add ``Σ w·v >= value`` to the model (and to its LP relaxation once built).

        Returns the row's index, for :meth:`raise_floor`.
        """
        self._row(terms, value, math.inf)
        if self._relaxation is not None:
            vs, cs, lo, hi = self.rows[-1]
            self._relaxation.add(vs, cs, lo, hi)
        return len(self.rows) - 1

    def raise_floor(self, row: int, value: int) -> None:
        """Make row ``row`` (from :meth:`at_least`) read ``Σ w·v >= value``, in its LP too."""
        self._constraints[row].linear.domain[0] = value
        vs, cs, _, hi = self.rows[row]
        self.rows[row] = (vs, cs, value, hi)
        if self._relaxation is not None:
            self._relaxation.set_lower(row, value)

    def _groups(self) -> list[Group]:
        inst = self.inst
        by_sig: dict[tuple[object, ...], Group] = {}
        groups: list[Group] = []
        for ri, pairs in enumerate(inst.pairs):
            if not pairs or inst.problem.requests[ri].priority < self.min_priority:
                continue
            if inst.separated[ri]:
                groups.append(Group([ri], pairs))
                continue
            sig = (
                inst.problem.requests[ri].priority,
                tuple(len(b) for b in inst.blocks[ri]),
                tuple(
                    sorted(
                        (p.shelter, p.cost if self.cost_aware else 0, p.candidates) for p in pairs
                    )
                ),
            )
            group = by_sig.get(sig)
            if group is None:
                group = Group([ri], pairs)
                by_sig[sig] = group
                groups.append(group)
            else:
                group.requests.append(ri)
        return groups

    def _var(self, count: int, name: str) -> int:
        """A new variable in ``[0, count]``; returns its proto index."""
        var = self._variables.add()
        var.name = name
        var.domain.extend((0, count))
        self.bounds.append((0, count))
        return len(self.bounds) - 1

    def _build(self) -> None:
        inst = self.inst
        unit_terms: dict[tuple[int, int], Terms] = {}
        demand: dict[tuple[int, int], int] = {}
        requests = inst.problem.requests
        for gi, g in enumerate(self.groups):
            if self._abandon is not None and gi % 64 == 0 and self._abandon():
                raise Abandoned
            first = g.requests[0]
            count = len(g.requests)
            size = inst.size[first]
            sizes = [len(b) for b in inst.blocks[first]]
            priority = requests[first].priority
            self.level_max[priority] += size * count
            for pair in g.pairs:
                si = pair.shelter
                n = self._var(count, f"n{gi}_{si}")
                g.n.append(n)
                self.level_terms[priority].append((n, size))
                if self.cost_aware and pair.cost:
                    self.soft_terms.append((n, pair.cost))
                ys: dict[int, dict[int, int]] = {}
                for b, cands in enumerate(pair.candidates):
                    if len(cands) == 1:
                        key = (si, cands[0])
                        unit_terms.setdefault(key, []).append((n, sizes[b]))
                        demand[key] = demand.get(key, 0) + sizes[b] * count
                        continue
                    ys[b] = {}
                    for u in cands:
                        y = self._var(count, f"y{gi}_{si}_{b}_{u}")
                        ys[b][u] = y
                        unit_terms.setdefault((si, u), []).append((y, sizes[b]))
                        demand[(si, u)] = demand.get((si, u), 0) + sizes[b] * count
                    row = [(y, 1) for y in ys[b].values()]
                    self._row([*row, (n, -1)], 0, 0)
                g.y.append(ys)
            self._row([(n, 1) for n in g.n], -math.inf, count)
        for key, terms in unit_terms.items():
            free = inst.free[key[0]][key[1]]
            if demand[key] > free:
                self._row(terms, -math.inf, free)
        # Separated requests are never aggregated: their n variables are booleans.
        var_of: dict[int, dict[int, int]] = {}
        for g in self.groups:
            if len(g.requests) == 1 and inst.separated[g.requests[0]]:
                var_of[g.requests[0]] = {p.shelter: n for p, n in zip(g.pairs, g.n, strict=True)}
        # A ring of cases that must all be kept apart (a clique of separation links) gets one
        # row per shelter, at most one of them there, instead of one per pair: the same integer
        # solutions, a tighter LP (in a triangle the pair rows allow half of each, 1.5 in all).
        for clique in separation_cliques(inst.separated):
            shelters = sorted({si for ri in clique for si in var_of.get(ri, {})})
            for si in shelters:
                here = [var_of[ri][si] for ri in clique if si in var_of.get(ri, {})]
                if len(here) > 1:
                    self._row([(v, 1) for v in here], -math.inf, 1)

    def _row(self, terms: Terms, lo: float, hi: float) -> None:
        """Add ``lo <= Σ w·v <= hi`` to the model and remember it for the LP relaxation.

        Written as ``add_linear_constraint`` writes it: terms of one variable merged, variables
        in index order.
        """
        merged: dict[int, int] = {}
        for v, w in terms:
            merged[v] = merged.get(v, 0) + w
        order = sorted(merged)
        linear = self._constraints.add().linear
        linear.vars.extend(order)
        linear.coeffs.extend([merged[v] for v in order])
        linear.domain.extend(
            (
                INT64_MIN if lo == -math.inf else int(lo),
                INT64_MAX if hi == math.inf else int(hi),
            )
        )
        # Tuples of ints, which the garbage collector stops tracking, rather than lists.
        self.rows.append((tuple([v for v, _ in terms]), tuple([w for _, w in terms]), lo, hi))

    def open_groups(self, x: Sequence[float], values: Values, terms: Terms) -> set[int]:
        """Variables of the groups a wider neighbourhood frees (by proto index).

        A group is opened when one of its variables is fractional in the LP solution ``x``, or
        when ``values`` leave some of its requests unplaced and its counts are in the objective
        ``terms``: all of its shelters and units become free, not only those the LP and the
        incumbent use.
        """
        in_objective = {v for v, _ in terms}
        free: set[int] = set()
        for g in self.groups:
            variables = g.variables()
            fractional = any(abs(x[j] - round(x[j])) > 1e-6 for j in variables)
            unplaced = sum(values[n] for n in g.n) < len(g.requests) and g.n[0] in in_objective
            if fractional or unplaced:
                free.update(variables)
        return free

    def variables_by_shelter(self) -> list[list[int]]:
        """Per shelter (by index), the count and unit variables of its pairs (proto indices)."""
        if self._by_shelter is None:
            by_shelter: list[list[int]] = [[] for _ in self.inst.problem.shelters]
            for g in self.groups:
                for k, pair in enumerate(g.pairs):
                    here = by_shelter[pair.shelter]
                    here.append(g.n[k])
                    here.extend(y for units in g.y[k].values() for y in units.values())
            self._by_shelter = by_shelter
        return self._by_shelter

    def area_shares(
        self, shelter_sets: Sequence[Collection[int]]
    ) -> list[dict[int, tuple[int, int]]]:
        """Per set of ``shelter_sets`` (disjoint, searched at the same time), its ``share``.

        A row that reads pairs of several of the sets (a group's requests, which may be placed
        in any of them; a level's floor) is split between them: given its share,
        :meth:`area` lets each sub-model move the row's value only by its part of the row's
        room at the current values (the room divided evenly, the remainder to the first), so
        the answers of all of them, put back together, still meet it. One set: no share.
        """
        rows_of = self._rows_by_shelter()
        row_sets = [{r for si in s for r in rows_of[si]} for s in shelter_sets]
        seen: dict[int, int] = {}
        for rows in row_sets:
            for r in rows:
                seen[r] = seen.get(r, 0) + 1
        out = []
        earlier: dict[int, int] = {}
        for rows in row_sets:
            share = {r: (earlier.get(r, 0), seen[r]) for r in rows if seen[r] > 1}
            for r in share:
                earlier[r] = earlier.get(r, 0) + 1
            out.append(share)
        return out

    def area(
        self,
        values: Values,
        shelters: Collection[int],
        terms: Terms,
        *,
        share: Mapping[int, tuple[int, int]] | None = None,
    ) -> tuple[cp_model.CpModel, list[int], Terms]:
        """The model of the pairs at ``shelters`` alone, every other variable at its ``values``.

        Returns a new model whose variables are the count and unit variables of those pairs
        (in proto index order, the list returned maps them back), each row that reads one of
        them with the fixed variables' part moved into its bounds, and ``terms`` on them. A
        neighbourhood: every solution of it, put back into ``values``, is a solution of this
        model. Much smaller than a copy of the model with the others fixed, which CP-SAT
        loads and presolves whole (rings, 2,000x300, level 3, two of 12 areas: that copy took
        0.3 s to write and 0.45 s to search, this one 0.1 s and 0.2-0.4 s). ``share``, per
        row, (this model's place, how many models share the row): the row's value may move
        only by that share of its room (see :meth:`area_shares`).
        """
        by_shelter = self.variables_by_shelter()
        rows_of = self._rows_by_shelter()
        free = sorted(j for si in shelters for j in by_shelter[si])
        index = {j: k for k, j in enumerate(free)}
        sub = cp_model.CpModel()
        variables = sub.proto.variables
        for j in free:
            variables.add().domain.extend(self.bounds[j])
        constraints = sub.proto.constraints
        for r in sorted({r for si in shelters for r in rows_of[si]}):
            vs, cs, lo, hi = self.rows[r]
            fixed = 0
            mine: list[tuple[int, int]] = []
            for v, c in zip(vs, cs, strict=True):
                k = index.get(v)
                if k is None:
                    fixed += c * values[v]
                else:
                    mine.append((k, c))
            low = INT64_MIN if lo == -math.inf else int(lo) - fixed
            high = INT64_MAX if hi == math.inf else int(hi) - fixed
            if share is not None and r in share:
                place, parts = share[r]
                now = sum(c * values[free[k]] for k, c in mine)
                if lo != -math.inf:
                    low = now - _part(now - low, place, parts)
                if hi != math.inf:
                    high = now + _part(high - now, place, parts)
            linear = constraints.add().linear
            linear.vars.extend([k for k, _ in mine])
            linear.coeffs.extend([c for _, c in mine])
            linear.domain.extend((low, high))
        return sub, free, [(index[v], w) for v, w in terms if v in index]

    def holds(self, values: Values, shelters: Collection[int]) -> bool:
        """Whether ``values`` meet every row that reads a pair at one of ``shelters``."""
        rows_of = self._rows_by_shelter()
        for r in {r for si in shelters for r in rows_of[si]}:
            vs, cs, lo, hi = self.rows[r]
            total = sum(c * values[v] for v, c in zip(vs, cs, strict=True))
            if not lo <= total <= hi:
                return False
        return True

    def _rows_by_shelter(self) -> list[set[int]]:
        """Per shelter, the rows (constraint indices) reading a variable of one of its pairs."""
        by_shelter = self.variables_by_shelter()
        if self._row_shelters is None:
            shelter_of = [-1] * len(self.bounds)
            for si, js in enumerate(by_shelter):
                for j in js:
                    shelter_of[j] = si
            self._shelter_of = shelter_of
            self._row_shelters = [set() for _ in by_shelter]
        # Rows are only ever added (the levels' rows): the new ones join.
        rows_of, shelter_of = self._row_shelters, self._shelter_of
        for r in range(self._rows_seen, len(self.rows)):
            for si in {shelter_of[v] for v in self.rows[r][0]}:
                if si >= 0:
                    rows_of[si].add(r)
        self._rows_seen = len(self.rows)
        return rows_of

    def cheapest_columns(self, k: int) -> list[int]:
        """Variables (by proto index) of each group's ``k`` cheapest shelters."""
        return [v for g in self.groups for v in g.variables(k)]

    def values_of(self, placement: Placement) -> Values:
        """Variable values encoding a placement."""
        values = [0] * len(self.bounds)
        for g in self.groups:
            k_of = {p.shelter: k for k, p in enumerate(g.pairs)}
            for ri in g.requests:
                if ri not in placement:
                    continue
                si, choice = placement[ri]
                k = k_of[si]
                values[g.n[k]] += 1
                for b, ys in g.y[k].items():
                    values[ys[choice[b]]] += 1
        return values

    def rounded(self, x: list[float], *, stop: Callable[[], bool] | None = None) -> Placement:
        """A feasible placement near the LP solution ``x`` (values by proto index).

        Level by level, most urgent first: each group of the level (in model order) takes the
        rounded-down LP count of requests at each of its shelters where they still fit, a block
        with several admitting units in those the LP gave it most of; then the level's largest
        fractions are rounded up where they fit, and if the level then has fewer people than
        the LP gives it, the insertion of :func:`~placement.greedy.insert_by_moves` (the
        model's pairs only) places what it can of the level, all before the next level takes a
        bed. The greedy baseline then completes
        the result (``stop`` goes to it, the insertion and the local repair). Deterministic
        for a given ``x``. (Fractions after every level's whole counts and units in document
        order lost people at the levels above: rings, 10,000x1,000, priority 3 rounded to 6,437
        with 115 fewer at priority 5; now 6,756 with none fewer.)
        """
        inst = self.inst
        requests = inst.problem.requests
        left = [list(f) for f in inst.free]
        placed_at: list[set[int]] = [set() for _ in inst.problem.shelters]
        placement: Placement = {}

        def priority_of(gi: int) -> int:
            return requests[self.groups[gi].requests[0]].priority

        order = sorted(range(len(self.groups)), key=lambda gi: (-priority_of(gi), gi))
        # The next request of each group to place (alike but for separations, which make a
        # group of one): one that does not fit stays next.
        taken = [0] * len(self.groups)
        y_left: dict[int, float] = {}  # a unit variable's LP value not yet dealt

        def take(gi: int, k: int) -> bool:
            g = self.groups[gi]
            if taken[gi] == len(g.requests):
                return False
            pair = g.pairs[k]
            si = pair.shelter
            ri = g.requests[taken[gi]]
            if inst.separated[ri] & placed_at[si]:
                return False
            sizes = [len(b) for b in inst.blocks[ri]]
            # A block of several admitting units tries first those the LP gave it most of:
            # another group's block may admit only the others.
            ys = g.y[k]
            share = {b: {u: y_left.get(y, x[y]) for u, y in ys[b].items()} for b in ys}
            candidates = [
                sorted(cands, key=share[b].__getitem__, reverse=True) if b in share else cands
                for b, cands in enumerate(pair.candidates)
            ]
            fitted = fit_blocks(sizes, candidates, left[si])
            if fitted is None:
                return False
            for b, u in enumerate(fitted):
                left[si][u] -= sizes[b]
                if b in ys:
                    y_left[ys[b][u]] = share[b][u] - 1
            placed_at[si].add(ri)
            placement[ri] = (si, tuple(fitted))
            taken[gi] += 1
            return True

        # Priority by priority: a level's whole counts, then its largest fractions rounded up,
        # then the insertion for what the LP placed there and the rounding did not, before the
        # next level takes any bed.
        for priority, grouped in groupby(order, key=priority_of):
            level = list(grouped)
            fractions = []
            for gi in level:
                g = self.groups[gi]
                for k in range(len(g.pairs)):
                    value = x[g.n[k]]
                    whole = math.floor(value + 1e-6)
                    if value - whole > 1e-6:
                        fractions.append((-(value - whole), gi, k))
                    for _ in range(whole):
                        if not take(gi, k):
                            break
            for _, gi, k in sorted(fractions):
                take(gi, k)
            # People the LP places at this level that the rounding did not: the insertion
            # looks for them (at 2,000x300 it costs ~0.25 s, spared where nobody is missing).
            wanted = sum(
                x[n] * inst.size[self.groups[gi].requests[0]]
                for gi in level
                for n in self.groups[gi].n
            )
            got = sum(inst.size[ri] for ri in placement if requests[ri].priority == priority)
            if got < math.floor(wanted + 1e-6):
                placement = insert_by_moves(
                    inst, placement, priority=priority, beyond=False, stop=stop
                )
                left, placed_at, placement = occupancy(inst, placement)
        placement = greedy_placement(inst, placement, stop=stop)
        return improve_soft_cost(inst, placement, stop=stop) if self.cost_aware else placement

    def placement_from(self, value: Values) -> Placement:
        """Decode values into a placement, deterministically.

        Each group's requests, in document order, fill its shelters in shelter order, and each
        multi-unit block's unit counts are dealt to them in the same order.
        """
        placement: Placement = {}
        for g in self.groups:
            queue = list(g.requests)
            for k, pair in enumerate(g.pairs):
                n = value[g.n[k]]
                takers, queue = queue[:n], queue[n:]
                remaining = {b: [(u, value[y]) for u, y in ys.items()] for b, ys in g.y[k].items()}
                for ri in takers:
                    choice = []
                    for b, cands in enumerate(pair.candidates):
                        if len(cands) == 1:
                            choice.append(cands[0])
                            continue
                        slots = remaining[b]
                        j = next(i for i, (_, c) in enumerate(slots) if c > 0)
                        u, c = slots[j]
                        slots[j] = (u, c - 1)
                        choice.append(u)
                    placement[ri] = (pair.shelter, tuple(choice))
        return placement


def _part(room: int, place: int, parts: int) -> int:
    """The ``place``-th of ``parts`` near-equal parts of ``room`` (the first ones larger)."""
    return room // parts + (1 if place < room % parts else 0)


def level_key(
    inst: Instance, placement: Placement, fixed: dict[int, int], p: int
) -> tuple[bool, int]:
    """(keeps every fixed higher level, people of priority ``p``): the better start wins."""
    placed = inst.placed_by_priority(placement)
    keeps = all(placed[5 - q] >= value for q, value in fixed.items())
    return (keeps, placed[5 - p])


def key(inst: Instance, placement: Placement) -> tuple[int, ...]:
    """Lexicographic quality: people per priority 5..1, then lower soft cost."""
    return (*inst.placed_by_priority(placement), -soft(inst, placement))
