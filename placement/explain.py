"""Why a request was left unplaced: grouped, stable reasons (format in docs/solver.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from placement.eligibility import fit_blocks
from placement.instance import Instance, Placement
from placement.solution import Reason


def explain_unplaced(
    inst: Instance, placement: Placement, unexamined: Iterable[int] = ()
) -> dict[int, tuple[Reason, ...]]:
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

    The requests of ``unexamined`` (the wall clock cut the greedy baseline before it reached
    them, and nothing searched after it) get ``not_examined`` at every shelter alone: nothing
    was looked at for them. ``no_shelters`` (with no shelters) when the problem has none.
    Reasons are sorted by code; ``by`` is in code-point order of the request ids. Requests
    alike share their tuples, so the result stays small.
    """
    problem = inst.problem
    shelters = problem.shelters
    rids = [q.id for q in problem.requests]
    if not shelters:
        return {ri: (Reason("no_shelters", ()),) for ri in range(len(rids)) if ri not in placement}
    left = [list(f) for f in inst.free]
    # Per shelter and unit, the placed requests holding beds there.
    holding: list[dict[int, list[int]]] = [{} for _ in shelters]
    for ri, (si, choice) in sorted(placement.items()):
        for b, u in enumerate(choice):
            left[si][u] -= len(inst.blocks[ri][b])
        for u in set(choice):
            holding[si].setdefault(u, []).append(ri)
    # Whether a group fits a shelter depends on the shelter only through its unit
    # configuration and its free beds, before and after the placement, which many shelters of
    # a saturated network share: shelters alike form a class, and a class is asked once.
    class_of: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
    klass = [
        class_of.setdefault((c, f, tuple(lf)), len(class_of))
        for c, f, lf in zip(inst.config, inst.free, left, strict=True)
    ]
    parts: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    codes = _CodeSets(inst)
    # Free beds see a group only through its bed blocks and the units admitting each block in
    # every unit configuration: far fewer kinds than member profiles (55 against 2,514 among
    # 20,000x2,000 national's unplaced).
    configs = range(len(set(inst.config)))
    fitting_ids: dict[tuple[object, ...], int] = {}
    fitting_of: dict[int, int] = {}
    # Per kind of group and class of shelters (see _FEW).
    verdicts: dict[tuple[int, int], tuple[int, frozenset[int]]] = {}
    holders: dict[tuple[int, frozenset[int]], set[int]] = {}
    # What capacity says of a group at its eligible shelters depends only on that kind and on
    # the set of shelters, which the instance shares between requests alike.
    capacity: dict[tuple[int, int], _Capacity] = {}
    by_names: dict[frozenset[int], tuple[str, ...]] = {}

    def requests_named(indices: frozenset[int]) -> tuple[str, ...]:
        hit = by_names.get(indices)
        if hit is None:
            hit = by_names[indices] = _named(rids, indices)
        return hit

    # Without separation links, a request's reasons depend only on its shelter-level fields and
    # its member profile, so requests alike share the whole answer.
    alike: dict[tuple[int, int], tuple[Reason, ...]] = {}
    out: dict[int, tuple[Reason, ...]] = {}
    skipped = set(unexamined)
    if skipped:
        everywhere = (Reason("not_examined", codes.named(frozenset(range(len(shelters))))),)
        out.update((ri, everywhere) for ri in skipped if ri not in placement)
    for ri in range(len(problem.requests)):
        if ri in placement or ri in skipped:
            continue
        separated = inst.separated[ri]
        profile = inst.profile[ri]
        same = (inst.request_key(ri), profile)
        if not separated and same in alike:
            out[ri] = alike[same]
            continue
        eligible = inst.eligible_set(ri)
        fitting = fitting_of.get(profile)
        if fitting is None:
            fitting = fitting_of[profile] = fitting_ids.setdefault(
                (inst.block_sizes[ri], tuple(inst.member_level(ri, c)[1] for c in configs)),
                len(fitting_ids),
            )
        at = (fitting, id(eligible))
        cap = capacity.get(at)
        if cap is None:
            split = parts.get(id(eligible))
            if split is None:
                members: dict[int, list[int]] = {}
                for si in eligible:
                    members.setdefault(klass[si], []).append(si)
                split = parts[id(eligible)] = [(k, tuple(m)) for k, m in members.items()]
            sizes = inst.block_sizes[ri]
            few_at: list[int] = []
            full_at: list[int] = []
            full_by: set[int] = set()
            for k, alike_shelters in split:
                key = (fitting, k)
                verdict = verdicts.get(key)
                if verdict is None:
                    rep = alike_shelters[0]
                    cands = inst.viable(ri, rep)
                    if cands is None:
                        verdict = (_FEW, frozenset())
                    elif fit_blocks(sizes, cands, left[rep]) is not None:
                        verdict = (_FITS, frozenset())
                    else:
                        verdict = (_TAKEN, frozenset(u for c in cands for u in c))
                    verdicts[key] = verdict
                kind, units = verdict
                if kind == _FEW:
                    few_at.extend(alike_shelters)
                    continue
                if kind == _FITS:
                    continue
                full_at.extend(alike_shelters)
                hkey = (id(alike_shelters), units)
                held = holders.get(hkey)
                if held is None:
                    held = holders[hkey] = set()
                    for si in alike_shelters:
                        by_unit = holding[si]
                        for u in units & by_unit.keys():
                            held.update(by_unit[u])
                full_by |= held
            few, full = frozenset(few_at), frozenset(full_at)
            free = eligible - few - full
            cap = capacity[at] = _Capacity(
                few=few,
                full=full,
                free=free,
                few_named=codes.named(few),
                full_named=codes.named(full),
                free_named=codes.named(free),
                by=requests_named(frozenset(full_by)),
            )
        # A separation stands beside too few beds or taken capacity, it does not hide behind
        # them: every eligible shelter where someone to keep apart from is placed.
        apart: set[int] = set()
        apart_by: set[int] = set()
        for other in separated:
            where = placement.get(other)
            if where is not None and where[0] in eligible:
                apart.add(where[0])
                apart_by.add(other)
        reasons = codes.of(ri)
        if cap.full:
            reasons.append(Reason("capacity_taken", cap.full_named, cap.by))
        free_named = cap.free_named if not apart else codes.named(cap.free - apart)
        if free_named:
            reasons.append(Reason("not_chosen", free_named))
        if apart:
            reasons.append(Reason("separated_from", codes.named(apart), _named(rids, apart_by)))
        if cap.few:
            reasons.append(Reason("too_few_beds", cap.few_named))
        merged = tuple(sorted(reasons, key=_code))
        out[ri] = merged
        if not separated:
            alike[same] = merged
    return out


_FEW, _FITS, _TAKEN = 0, 1, 2
"""Verdicts of a kind of group at a class of shelters: too few beds even when empty, fits
what is left, or does not fit what is left (with the units it could have used)."""


@dataclass(frozen=True)
class _Capacity:
    """What free beds say of one member profile at one set of eligible shelters (indices)."""

    few: frozenset[int]
    full: frozenset[int]
    free: frozenset[int]
    few_named: tuple[str, ...]
    full_named: tuple[str, ...]
    free_named: tuple[str, ...]
    by: tuple[str, ...]


class _CodeSets:
    """The eligibility codes of a request as shelter sets, built from per-condition indexes.

    The same codes as :meth:`Instance.eligibility` shelter by shelter (a test holds the two
    together), without visiting every shelter for every request: a code's shelters are a set
    operation on the shelters by region, service, access, security and unit configuration,
    and the id tuples of sets shared by many requests are built once.
    """

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        shelters = inst.problem.shelters
        self.ids = [s.id for s in shelters]
        self._order = sorted(range(len(shelters)), key=self.ids.__getitem__)
        self._named: dict[frozenset[int], tuple[str, ...]] = {}
        everyone = frozenset(range(len(shelters)))
        self.by_id = {s.id: i for i, s in enumerate(shelters)}
        self.by_region: dict[str, set[int]] = {}
        services: dict[str, set[int]] = {}
        for i, s in enumerate(shelters):
            self.by_region.setdefault(s.region, set()).add(i)
            for c in s.services:
                services.setdefault(c, set()).add(i)
        self.not_open = self.named(
            frozenset(i for i, s in enumerate(shelters) if s.status != "open")
        )
        self.not_accessible = self.named(
            frozenset(i for i, s in enumerate(shelters) if not s.wheelchair_accessible)
        )
        self.not_secure = self.named(
            frozenset(i for i, s in enumerate(shelters) if s.security_level != "high")
        )
        self.missing = {c: self.named(everyone - services.get(c, set())) for c in services}
        self.missing_nowhere = self.named(everyone)
        self.by_config: dict[int, list[int]] = {}
        for si, config in enumerate(inst.config):
            self.by_config.setdefault(config, []).append(si)
        self._members: dict[int, tuple[Reason, ...]] = {}
        self._configs: dict[tuple[int, ...], tuple[str, ...]] = {}
        self._regions: dict[tuple[str, ...], tuple[str, ...]] = {}

    def named(self, indices: Iterable[int]) -> tuple[str, ...]:
        """Shelter ids of ``indices`` in code-point order; equal sets share one tuple."""
        wanted = indices if isinstance(indices, frozenset) else frozenset(indices)
        hit = self._named.get(wanted)
        if hit is None:
            ids = self.ids
            if 8 * len(wanted) > len(ids):
                # Most of the shelters: walk them in id order rather than sort the many.
                hit = tuple(ids[i] for i in self._order if i in wanted)
            else:
                hit = tuple(sorted(ids[i] for i in wanted))
            self._named[wanted] = hit
        return hit

    def _of_configs(self, configs: tuple[int, ...]) -> tuple[str, ...]:
        hit = self._configs.get(configs)
        if hit is None:
            hit = self._configs[configs] = self.named(
                si for c in configs for si in self.by_config[c]
            )
        return hit

    def _shelter_ids(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(s for s in wanted if s in self.by_id))

    def _member_reasons(self, ri: int) -> tuple[Reason, ...]:
        profile = self.inst.profile[ri]
        hit = self._members.get(profile)
        if hit is None:
            at: dict[str, list[int]] = {}
            for c in self.by_config:
                for code in self.inst.member_level(ri, c)[0]:
                    at.setdefault(code, []).append(c)
            hit = tuple(Reason(code, self._of_configs(tuple(at[code]))) for code in at)
            self._members[profile] = hit
        return hit

    def of(self, ri: int) -> list[Reason]:
        """Every eligibility reason of request ``ri`` with its shelters (unsorted codes)."""
        q = self.inst.problem.requests[ri]
        out: list[Reason] = []
        if self.not_open:
            out.append(Reason("shelter_not_open", self.not_open))
        if q.excluded_regions:
            named = self._regions.get(q.excluded_regions)
            if named is None:
                hit: set[int] = set()
                for code in q.excluded_regions:
                    hit |= self.by_region.get(code, set())
                named = self._regions[q.excluded_regions] = self.named(hit)
            if named:
                out.append(Reason("region_excluded", named))
        for code, wanted in (
            ("shelter_excluded", q.excluded_shelters),
            ("declined_by_shelter", q.declined_shelters),
            ("separated_case_housed", q.separated_shelters),
        ):
            named = self._shelter_ids(wanted)
            if named:
                out.append(Reason(code, named))
        for service in q.required_services:
            named = self.missing.get(service, self.missing_nowhere)
            if named:
                out.append(Reason(f"missing_service:{service}", named))
        if q.wheelchair and self.not_accessible:
            out.append(Reason("not_wheelchair_accessible", self.not_accessible))
        if q.high_risk and self.not_secure:
            out.append(Reason("security_level_too_low", self.not_secure))
        out.extend(self._member_reasons(ri))
        return out


def _code(r: Reason) -> str:
    return r.code


def _named(rids: list[str], indices: Iterable[int]) -> tuple[str, ...]:
    return tuple(sorted(rids[i] for i in indices))
