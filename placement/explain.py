"""Why a request was left unplaced: sorted, stable reason strings (format in docs/solver.md)."""

from __future__ import annotations

from placement.eligibility import fit_blocks
from placement.instance import Instance, Placement


def explain_unplaced(inst: Instance, placement: Placement) -> dict[int, tuple[str, ...]]:
    """Reasons for every request not in ``placement``, per shelter of the problem.

    For each shelter ``<id>`` one or more of:

    - ``shelter:<id>:<code>`` — an eligibility reason code of SPEC §4;
    - ``shelter:<id>:too_few_beds`` — eligible, but the group does not fit the shelter's
      free beds even with no one else placed;
    - ``shelter:<id>:capacity_taken:<request>`` — one per placed request holding beds in a
      unit this group could have used;
    - ``shelter:<id>:separated_from:<request>`` — a request placed there must be kept apart;
    - ``shelter:<id>:not_chosen`` — it would fit now (only when the solution is not proven
      optimal, e.g. a reduced model on a large problem, and never with the greedy baseline).

    ``no_shelters`` when the problem has no shelter. Each tuple is sorted.
    """
    problem = inst.problem
    shelters = problem.shelters
    left = [list(f) for f in inst.free]
    placed_at: list[list[int]] = [[] for _ in shelters]
    units_used: dict[int, set[int]] = {}
    for ri, (si, choice) in sorted(placement.items()):
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        placed_at[si].append(ri)
        units_used[ri] = set(choice)
    out: dict[int, tuple[str, ...]] = {}
    prefixes = [f"shelter:{s.id}:" for s in shelters]
    # Eligibility strings depend only on the request's shelter-level fields and on what each
    # unit configuration says about its members, so requests alike share one computation.
    cache: dict[tuple[object, ...], tuple[list[str], list[int]]] = {}
    taken: dict[int, list[tuple[set[int], str]]] = {}
    # Without separation links, a request's reasons depend only on its shelter-level fields and
    # on its member profile (which fixes the member codes, bed blocks and unit candidates), so
    # requests alike share the whole answer; per shelter, the capacity part depends only on
    # the profile.
    alike: dict[tuple[int, int], tuple[str, ...]] = {}
    room: dict[tuple[int, int], tuple[str, ...] | None] = {}
    for ri in range(len(problem.requests)):
        if ri in placement:
            continue
        if not shelters:
            out[ri] = ("no_shelters",)
            continue
        separated = inst.separated[ri]
        same = (inst.request_key(ri), inst.profile[ri])
        if not separated and same in alike:
            out[ri] = alike[same]
            continue
        key = (inst.request_key(ri), inst.member_codes_by_config(ri))
        hit = cache.get(key)
        if hit is None:
            strings: list[str] = []
            eligible: list[int] = []
            for si in range(len(shelters)):
                codes = inst.eligibility(ri, si)
                if codes:
                    strings.extend(prefixes[si] + c for c in codes)
                else:
                    eligible.append(si)
            # Sorted once here; each request then only merges its own few strings in.
            strings.sort()
            hit = (strings, eligible)
            cache[key] = hit
        sizes = [len(b) for b in inst.blocks[ri]]
        reasons: list[str] = []
        for si in hit[1]:
            prefix = prefixes[si]
            if inst.viable(ri, si) is None:
                reasons.append(prefix + "too_few_beds")
                continue
            found = False
            if separated:
                for other in placed_at[si]:
                    if other in separated:
                        reasons.append(f"{prefix}separated_from:{problem.requests[other].id}")
                        found = True
            at = (inst.profile[ri], si)
            if at in room:
                hold = room[at]
            else:
                hold = _holders(inst, si, ri, sizes, left[si], taken, placed_at, units_used)
                room[at] = hold
            if hold is not None:
                reasons.extend(hold)
                found = True
            if not found:
                reasons.append(f"{prefix}not_chosen")
        reasons.sort()
        # Two sorted runs: Timsort merges them in linear time.
        merged = hit[0] + reasons
        merged.sort()
        out[ri] = tuple(merged)
        if not separated:
            alike[same] = out[ri]
    return out


def _holders(
    inst: Instance,
    si: int,
    ri: int,
    sizes: list[int],
    left: list[int],
    taken: dict[int, list[tuple[set[int], str]]],
    placed_at: list[list[int]],
    units_used: dict[int, set[int]],
) -> tuple[str, ...] | None:
    """The ``capacity_taken`` strings of request ``ri`` at shelter ``si``.

    None when the group fits in what is left of the shelter; otherwise one string per placed
    request holding a unit the group could use (possibly none).
    """
    candidates = inst.member_level(ri, inst.config[si])[1]
    if fit_blocks(sizes, candidates, left) is not None:
        return None
    usable = {u for c in candidates for u in c}
    holders = taken.get(si)
    if holders is None:
        prefix = f"shelter:{inst.problem.shelters[si].id}:capacity_taken:"
        ids = inst.problem.requests
        holders = [(units_used[other], prefix + ids[other].id) for other in placed_at[si]]
        taken[si] = holders
    return tuple(text for units, text in holders if units & usable)
