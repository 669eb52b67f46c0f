"""Why a request was left unplaced: grouped, stable reasons (format in docs/solver.md)."""

from __future__ import annotations

from placement.eligibility import fit_blocks
from placement.instance import Instance, Placement
from placement.solution import Reason


def explain_unplaced(inst: Instance, placement: Placement) -> dict[int, tuple[Reason, ...]]:
    """Reasons for every request not in ``placement``, covering every shelter of the problem.

    One :class:`~placement.solution.Reason` per code, with the shelters it applies to in
    code-point order of their ids (as sorted ``/1`` strings name them, so converted documents
    agree); every shelter is named by at least one of:

    - an eligibility reason code of SPEC §4;
    - ``too_few_beds`` — eligible, but the group does not fit the shelter's free beds even
      with no one else placed;
    - ``capacity_taken`` — what is left does not fit the group; ``by`` names the placed
      requests holding beds in a unit this group could have used (possibly none there);
    - ``separated_from`` — a request this one must be kept apart from is placed there (named
      in ``by``), listed beside ``too_few_beds`` or ``capacity_taken`` when those apply too;
    - ``not_chosen`` — it would fit now (only when the solution is not proven optimal, e.g. a
      reduced model on a large problem, and never with the greedy baseline).

    ``no_shelters`` (with no shelters) when the problem has none. Reasons are sorted by code;
    ``by`` is in code-point order of the request ids. Requests alike share their tuples, so
    the result stays small.
    """
    problem = inst.problem
    shelters = problem.shelters
    ids = [s.id for s in shelters]
    rids = [q.id for q in problem.requests]
    # Shelters are visited in id order, so every list built below comes out sorted.
    by_id = sorted(range(len(shelters)), key=ids.__getitem__)
    left = [list(f) for f in inst.free]
    placed_at: list[list[int]] = [[] for _ in shelters]
    units_used: dict[int, set[int]] = {}
    for ri, (si, choice) in sorted(placement.items()):
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        placed_at[si].append(ri)
        units_used[ri] = set(choice)
    out: dict[int, tuple[Reason, ...]] = {}
    # Eligibility codes depend only on the request's shelter-level fields and on what each
    # unit configuration says about its members, so requests alike share one computation.
    cache: dict[tuple[object, ...], tuple[tuple[Reason, ...], list[int]]] = {}
    taken: dict[int, list[tuple[set[int], int]]] = {}
    # Without separation links, a request's reasons depend only on its shelter-level fields and
    # on its member profile (which fixes the member codes, bed blocks and unit candidates), so
    # requests alike share the whole answer; per shelter, the capacity part depends only on
    # the profile.
    alike: dict[tuple[int, int], tuple[Reason, ...]] = {}
    room: dict[tuple[int, int], tuple[int, ...] | None] = {}
    for ri in range(len(problem.requests)):
        if ri in placement:
            continue
        if not shelters:
            out[ri] = (Reason("no_shelters", ()),)
            continue
        separated = inst.separated[ri]
        same = (inst.request_key(ri), inst.profile[ri])
        if not separated and same in alike:
            out[ri] = alike[same]
            continue
        key = (inst.request_key(ri), inst.member_codes_by_config(ri))
        hit = cache.get(key)
        if hit is None:
            by_code: dict[str, list[str]] = {}
            eligible: list[int] = []
            for si in by_id:
                codes = inst.eligibility(ri, si)
                if codes:
                    for c in codes:
                        by_code.setdefault(c, []).append(ids[si])
                else:
                    eligible.append(si)
            hit = (tuple(Reason(c, tuple(by_code[c])) for c in sorted(by_code)), eligible)
            cache[key] = hit
        sizes = [len(b) for b in inst.blocks[ri]]
        few: list[str] = []
        apart: list[str] = []
        apart_by: set[int] = set()
        full: list[str] = []
        full_by: set[int] = set()
        free: list[str] = []
        for si in hit[1]:
            found = False
            if separated:
                # Checked first and at every eligible shelter: a separation stands beside
                # too few beds or taken capacity, it does not hide behind them.
                there = [other for other in placed_at[si] if other in separated]
                if there:
                    apart.append(ids[si])
                    apart_by.update(there)
                    found = True
            if inst.viable(ri, si) is None:
                few.append(ids[si])
                continue
            at = (inst.profile[ri], si)
            if at in room:
                hold = room[at]
            else:
                hold = _holders(inst, si, ri, sizes, left[si], taken, placed_at, units_used)
                room[at] = hold
            if hold is not None:
                full.append(ids[si])
                full_by.update(hold)
                found = True
            if not found:
                free.append(ids[si])
        dynamic: list[Reason] = []
        if full:
            dynamic.append(Reason("capacity_taken", tuple(full), _named(rids, full_by)))
        if free:
            dynamic.append(Reason("not_chosen", tuple(free)))
        if apart:
            dynamic.append(Reason("separated_from", tuple(apart), _named(rids, apart_by)))
        if few:
            dynamic.append(Reason("too_few_beds", tuple(few)))
        merged = tuple(sorted(hit[0] + tuple(dynamic), key=_code))
        out[ri] = merged
        if not separated:
            alike[same] = merged
    return out


def _code(r: Reason) -> str:
    return r.code


def _named(rids: list[str], indices: set[int]) -> tuple[str, ...]:
    return tuple(sorted(rids[i] for i in indices))


def _holders(
    inst: Instance,
    si: int,
    ri: int,
    sizes: list[int],
    left: list[int],
    taken: dict[int, list[tuple[set[int], int]]],
    placed_at: list[list[int]],
    units_used: dict[int, set[int]],
) -> tuple[int, ...] | None:
    """The placed requests behind ``capacity_taken`` of request ``ri`` at shelter ``si``.

    None when the group fits in what is left of the shelter; otherwise the placed requests
    holding a unit the group could use (possibly none).
    """
    candidates = inst.member_level(ri, inst.config[si])[1]
    if fit_blocks(sizes, candidates, left) is not None:
        return None
    usable = {u for c in candidates for u in c}
    holders = taken.get(si)
    if holders is None:
        holders = [(units_used[other], other) for other in placed_at[si]]
        taken[si] = holders
    return tuple(other for units, other in holders if units & usable)
