"""The placement solution: a frozen mirror of ``refuge.placement-solution/2``.

Documents of schema ``/1`` (one reason string per shelter) are still read: their reasons are
converted to the grouped form on the way in (:func:`reasons_from_strings`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from placement.problem import PRIORITIES, canonical_json

SCHEMA = "refuge.placement-solution/2"
SCHEMA_V1 = "refuge.placement-solution/1"

#: Codes the solver adds to the eligibility codes of SPEC §4. ``capacity_taken`` and
#: ``separated_from`` carry ``by``: the placed requests behind them, each assigned to one of
#: the reason's shelters.
#: ``not_examined``: the wall clock cut the greedy baseline before it reached the request (only
#: in a run the clock cut, alone, at every shelter).
SOLVER_CODES = (
    "capacity_taken",
    "no_shelters",
    "not_chosen",
    "not_examined",
    "separated_from",
    "too_few_beds",
)
BY_CODES = ("capacity_taken", "separated_from")


class SolutionError(ValueError):
    """A solution document is malformed; the message names the JSON path."""


@dataclass(frozen=True)
class SolverInfo:
    """How the solution was computed; all of it is part of the reproducible result."""

    name: str
    version: str
    seed: int
    workers: int
    time_limit_s: float


@dataclass(frozen=True)
class Objective:
    """Objective values, or bounds on them.

    Attributes:
        placed_by_priority: people placed per priority, ordered 5, 4, 3, 2, 1. As a bound:
            an upper bound on each level.
        soft_cost: total soft cost. As a bound: a lower bound.
    """

    placed_by_priority: tuple[int, int, int, int, int]
    soft_cost: int

    def to_document(self) -> dict[str, Any]:
        """``{"placed_by_priority": {"5": n, …, "1": n}, "soft_cost": n}``."""
        return {
            "placed_by_priority": {
                str(p): n for p, n in zip(PRIORITIES, self.placed_by_priority, strict=True)
            },
            "soft_cost": self.soft_cost,
        }


@dataclass(frozen=True)
class Bed:
    """One member's bed: the member's ref and the unit id."""

    member: str
    unit: str


@dataclass(frozen=True)
class Assignment:
    """A request placed whole in one shelter."""

    request: str
    shelter: str
    beds: tuple[Bed, ...]


@dataclass(frozen=True)
class Reason:
    """One reason code and the shelters it applies to (format in docs/solver.md).

    Attributes:
        code: an eligibility code of SPEC §4 (``region_excluded``, ``missing_service:<code>``,
            ``member_not_admitted:<ref>``, …) or one of :data:`SOLVER_CODES`.
        shelters: shelter ids in code-point order; empty only for ``no_shelters``.
        by: for ``capacity_taken`` and ``separated_from``, the placed requests behind the
            reason, in code-point order of their ids; each is assigned to one of
            ``shelters``, so the reason at a shelter names those of ``by`` placed there.
            Empty for every other code.
    """

    code: str
    shelters: tuple[str, ...]
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unplaced:
    """A request left unplaced, with its reasons sorted by code, one per code."""

    request: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Solution:
    """A solution document.

    ``assignments`` follow the problem's request order, ``unplaced`` too; beds follow member
    order. ``wall_s`` and ``safety_net_expired`` describe this run only and are left out of
    :meth:`result_bytes`, which is byte-identical for the same problem, seed and parameters
    unless ``safety_net_expired`` is true.
    """

    status: Literal["optimal", "feasible"]
    problem_digest: str
    solver: SolverInfo
    objective: Objective
    bound: Objective
    wall_s: float
    assignments: tuple[Assignment, ...]
    unplaced: tuple[Unplaced, ...]
    safety_net_expired: bool = False
    work: Mapping[str, Any] | None = None

    def _head(self) -> dict[str, Any]:
        head: dict[str, Any] = {
            "schema": SCHEMA,
            "status": self.status,
            "problem_digest": self.problem_digest,
            "solver": {
                "name": self.solver.name,
                "version": self.solver.version,
                "seed": self.solver.seed,
                "workers": self.solver.workers,
                "time_limit_s": self.solver.time_limit_s,
            },
            "objective": self.objective.to_document(),
            "bound": self.bound.to_document(),
        }
        if self.work is not None:
            head["work"] = dict(self.work)
        head["wall_s"] = self.wall_s
        head["safety_net_expired"] = self.safety_net_expired
        return head

    def to_document(self) -> dict[str, Any]:
        """The JSON document (``refuge.placement-solution/2``)."""
        doc = self._head()
        doc["assignments"] = [_assignment_doc(a) for a in self.assignments]
        sets = IdSets.of(self.unplaced)
        doc["shelter_sets"] = [list(s) for s in sets.shelter_sets]
        doc["request_sets"] = [list(s) for s in sets.request_sets]
        doc["unplaced"] = [sets.unplaced_doc(u) for u in self.unplaced]
        return doc

    def iter_json(self, chunk_chars: int = 1 << 16) -> Iterator[str]:
        """The document of :meth:`to_document` as JSON text, in chunks of about ``chunk_chars``.

        No chunk holds more than one assignment or unplaced request beyond ``chunk_chars``, so
        a national document is never built as one string. The top level is one key per line,
        each assignment and unplaced request one line; the text parses to :meth:`to_document`.
        """
        dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
        sets = IdSets.of(self.unplaced)
        buf: list[str] = ["{"]
        size = 1
        first = True
        for key, value in self._head().items():
            buf.append(("\n" if first else ",\n") + f"{dumps(key)}:{dumps(value)}")
            first = False
        lists: list[tuple[str, Iterable[Any]]] = [
            ("assignments", (_assignment_doc(a) for a in self.assignments)),
            ("shelter_sets", (list(s) for s in sets.shelter_sets)),
            ("request_sets", (list(s) for s in sets.request_sets)),
            ("unplaced", (sets.unplaced_doc(u) for u in self.unplaced)),
        ]
        for key, items in lists:
            buf.append(f",\n{dumps(key)}:[")
            sep = "\n"
            for item in items:
                text = sep + dumps(item)
                sep = ",\n"
                buf.append(text)
                size += len(text)
                if size >= chunk_chars:
                    yield "".join(buf)
                    buf, size = [], 0
            buf.append("\n]" if sep != "\n" else "]")
        buf.append("\n}\n")
        yield "".join(buf)

    def result_bytes(self) -> bytes:
        """Canonical JSON of everything but the run's timing (``wall_s``, safety net)."""
        doc = self.to_document()
        del doc["wall_s"]
        del doc["safety_net_expired"]
        return canonical_json(doc)

    @classmethod
    def from_document(cls, doc: object) -> Solution:
        """Parse a solution document.

        Raises:
            SolutionError: naming the path of the first malformed field. Only the shape is
                checked here; :func:`placement.verify.verify` checks it against a problem.
        """
        d = _obj(doc, "$")
        schema = d.get("schema")
        if schema not in (SCHEMA, SCHEMA_V1):
            raise SolutionError(f"schema: must be {SCHEMA!r} (or {SCHEMA_V1!r})")
        status = d.get("status")
        if status not in ("optimal", "feasible"):
            raise SolutionError("status: must be optimal or feasible")
        s = _obj(d.get("solver"), "solver")
        assignments = []
        for i, a in enumerate(_arr(d.get("assignments"), "assignments")):
            ao = _obj(a, f"assignments[{i}]")
            beds = tuple(
                Bed(
                    member=_s(_obj(b, f"assignments[{i}].beds[{j}]").get("member"), "member"),
                    unit=_s(_obj(b, f"assignments[{i}].beds[{j}]").get("unit"), "unit"),
                )
                for j, b in enumerate(_arr(ao.get("beds"), f"assignments[{i}].beds"))
            )
            assignments.append(
                Assignment(
                    request=_s(ao.get("request"), f"assignments[{i}].request"),
                    shelter=_s(ao.get("shelter"), f"assignments[{i}].shelter"),
                    beds=beds,
                )
            )
        unplaced = unplaced_from_document(d)
        work = d.get("work")
        if work is not None and not isinstance(work, Mapping):
            raise SolutionError("work: must be an object")
        wall = d.get("wall_s")
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            raise SolutionError("wall_s: must be a number")
        return cls(
            status="optimal" if status == "optimal" else "feasible",
            problem_digest=_s(d.get("problem_digest"), "problem_digest"),
            solver=SolverInfo(
                name=_s(s.get("name"), "solver.name"),
                version=_s(s.get("version"), "solver.version"),
                seed=_i(s.get("seed"), "solver.seed"),
                workers=_i(s.get("workers"), "solver.workers"),
                time_limit_s=_f(s.get("time_limit_s"), "solver.time_limit_s"),
            ),
            objective=_objective(d.get("objective"), "objective"),
            bound=_objective(d.get("bound"), "bound"),
            wall_s=float(wall),
            assignments=tuple(assignments),
            unplaced=tuple(unplaced),
            safety_net_expired=bool(d.get("safety_net_expired", False)),
            work=work,
        )


def unplaced_from_document(doc: Mapping[str, Any]) -> list[Unplaced]:
    """The unplaced requests of a ``/1`` or ``/2`` document, reasons grouped and resolved.

    Raises:
        SolutionError: naming the path of the first malformed field.
    """
    schema = doc.get("schema")
    if schema == SCHEMA_V1:
        shelter_sets: list[tuple[str, ...]] = []
        request_sets: list[tuple[str, ...]] = []
    else:
        shelter_sets = _id_sets(doc.get("shelter_sets"), "shelter_sets")
        request_sets = _id_sets(doc.get("request_sets"), "request_sets")
    unplaced = []
    for i, u in enumerate(_arr(doc.get("unplaced"), "unplaced")):
        uo = _obj(u, f"unplaced[{i}]")
        path = f"unplaced[{i}].reasons"
        raw = _arr(uo.get("reasons"), path)
        if schema == SCHEMA_V1:
            try:
                reasons = reasons_from_strings(_s(r, f"{path}[{j}]") for j, r in enumerate(raw))
            except ValueError as exc:
                raise SolutionError(f"{path}: {exc}") from exc
        else:
            reasons = tuple(
                _reason(r, f"{path}[{j}]", shelter_sets, request_sets) for j, r in enumerate(raw)
            )
        unplaced.append(Unplaced(_s(uo.get("request"), f"unplaced[{i}].request"), reasons))
    return unplaced


def _assignment_doc(a: Assignment) -> dict[str, Any]:
    return {
        "request": a.request,
        "shelter": a.shelter,
        "beds": [{"member": b.member, "unit": b.unit} for b in a.beds],
    }


def reason_doc(r: Reason) -> dict[str, Any]:
    """One reason as a JSON object with its ids written out (no interning)."""
    out: dict[str, Any] = {"code": r.code, "shelters": list(r.shelters)}
    if r.code in BY_CODES:
        out["by"] = list(r.by)
    return out


def reason_from_doc(v: object, path: str = "$") -> Reason:
    """Parse :func:`reason_doc`'s shape; raises :class:`SolutionError` naming ``path``."""
    return _reason(v, path, [], [])


class _Counter:
    """Uses of id tuples, equal tuples counted together, in order of first use.

    A tuple's hash is not cached and reasons share their tuple objects, so each object is
    looked up by value once and counted by its id after that.
    """

    def __init__(self) -> None:
        self._first: dict[tuple[str, ...], int] = {}  # value -> position in _order
        self._order: list[tuple[str, ...]] = []
        self._uses: list[int] = []
        self._met: dict[int, tuple[tuple[str, ...], int]] = {}  # id -> (the tuple, position)

    def use(self, ids: tuple[str, ...]) -> None:
        hit = self._met.get(id(ids))
        if hit is None:
            at = self._first.get(ids)
            if at is None:
                at = self._first[ids] = len(self._order)
                self._order.append(ids)
                self._uses.append(0)
            hit = self._met[id(ids)] = (ids, at)
        self._uses[hit[1]] += 1

    def repeated(self) -> list[tuple[str, ...]]:
        """The tuples used twice or more, in order of first use."""
        return [t for t, n in zip(self._order, self._uses, strict=True) if n > 1]


class IdSets:
    """The interned id lists of one document: ``shelter_sets`` and ``request_sets``.

    A list of two or more ids that appears in two or more reasons of the document is written
    once in the table and referred to by its index; every other list is written out. Tables
    are in order of first use, so the document is a function of the solution alone.
    """

    def __init__(
        self, shelter_sets: Sequence[tuple[str, ...]], request_sets: Sequence[tuple[str, ...]]
    ) -> None:
        self.shelter_sets = list(shelter_sets)
        self.request_sets = list(request_sets)
        self._shelter_index = {s: i for i, s in enumerate(self.shelter_sets)}
        self._request_index = {s: i for i, s in enumerate(self.request_sets)}
        # Reasons share their id tuples (explain_unplaced), and a tuple's hash is not cached:
        # at 20,000x2,000, 18,000 reasons naming all 2,000 shelters took 1-2 s of hashing.
        # Each tuple object is looked up by value once (kept here, so its id stays its own).
        self._seen: dict[int, tuple[tuple[str, ...], int | None]] = {}

    @classmethod
    def of(cls, unplaced: Iterable[Unplaced]) -> IdSets:
        """The tables for these unplaced requests."""
        shelters = _Counter()
        requests = _Counter()
        for u in unplaced:
            for r in u.reasons:
                if len(r.shelters) > 1:
                    shelters.use(r.shelters)
                if len(r.by) > 1:
                    requests.use(r.by)
        return cls(shelters.repeated(), requests.repeated())

    def _index(self, ids: tuple[str, ...], table: dict[tuple[str, ...], int]) -> int | None:
        hit = self._seen.get(id(ids))
        if hit is None or hit[0] is not ids:
            hit = self._seen[id(ids)] = (ids, table.get(ids))
        return hit[1]

    def reason_doc(self, r: Reason) -> dict[str, Any]:
        """One reason with its id lists interned where the tables hold them."""
        out: dict[str, Any] = {"code": r.code}
        si = self._index(r.shelters, self._shelter_index)
        out["shelters"] = list(r.shelters) if si is None else si
        if r.code in BY_CODES:
            ri = self._index(r.by, self._request_index)
            out["by"] = list(r.by) if ri is None else ri
        return out

    def unplaced_doc(self, u: Unplaced) -> dict[str, Any]:
        """``{"request": id, "reasons": [...]}`` with interned id lists."""
        return {"request": u.request, "reasons": [self.reason_doc(r) for r in u.reasons]}


def reasons_from_strings(strings: Iterable[str]) -> tuple[Reason, ...]:
    """Convert ``/1`` reason strings (``shelter:<id>:<code>``, ``no_shelters``) to reasons.

    Shelters and ``by`` come out in code-point order of their ids, the reasons sorted by code:
    exactly what :func:`placement.explain.explain_unplaced` gives for the same facts.

    Raises:
        ValueError: a string of neither form.
    """
    shelters: dict[str, list[str]] = {}
    by: dict[str, list[str]] = {}
    for text in strings:
        if text == "no_shelters":
            shelters.setdefault(text, [])
            continue
        kind, _, rest = text.partition(":")
        shelter, _, code = rest.partition(":")
        if kind != "shelter" or not shelter or not code:
            raise ValueError(f"{text!r} is not a reason string")
        name, _, arg = code.partition(":")
        if name in BY_CODES:
            code = name
            if arg and arg not in by.setdefault(code, []):
                by[code].append(arg)
        listed = shelters.setdefault(code, [])
        if shelter not in listed:
            listed.append(shelter)
    return tuple(
        Reason(code, tuple(sorted(shelters[code])), tuple(sorted(by.get(code, ()))))
        for code in sorted(shelters)
    )


def reasons_to_strings(reasons: Iterable[Reason], assigned: Mapping[str, str]) -> list[str]:
    """The ``/1`` strings of ``reasons``, sorted; ``assigned`` maps request → shelter id.

    ``by`` requests are written at the shelter they are assigned to.
    """
    out: list[str] = []
    for r in reasons:
        if r.code == "no_shelters":
            out.append("no_shelters")
            continue
        for s in r.shelters:
            if r.code in BY_CODES:
                out.extend(f"shelter:{s}:{r.code}:{q}" for q in r.by if assigned.get(q) == s)
                continue
            out.append(f"shelter:{s}:{r.code}")
    return sorted(out)


def _obj(v: object, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise SolutionError(f"{path}: must be an object")
    return v


def _arr(v: object, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise SolutionError(f"{path}: must be an array")
    return v


def _s(v: object, path: str) -> str:
    if not isinstance(v, str):
        raise SolutionError(f"{path}: must be a string")
    return v


def _i(v: object, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SolutionError(f"{path}: must be an integer")
    return v


def _f(v: object, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SolutionError(f"{path}: must be a number")
    return float(v)


def _ids(v: object, path: str) -> tuple[str, ...]:
    return tuple(_s(x, f"{path}[{k}]") for k, x in enumerate(_arr(v, path)))


def _id_sets(v: object, path: str) -> list[tuple[str, ...]]:
    return [_ids(x, f"{path}[{k}]") for k, x in enumerate(_arr(v, path))]


def _id_list(v: object, path: str, table: Sequence[tuple[str, ...]], name: str) -> tuple[str, ...]:
    if isinstance(v, int) and not isinstance(v, bool):
        if not 0 <= v < len(table):
            raise SolutionError(f"{path}: {v} is not an index of {name}")
        return table[v]
    return _ids(v, path)


def _reason(
    v: object,
    path: str,
    shelter_sets: Sequence[tuple[str, ...]],
    request_sets: Sequence[tuple[str, ...]],
) -> Reason:
    o = _obj(v, path)
    code = _s(o.get("code"), f"{path}.code")
    shelters = _id_list(o.get("shelters"), f"{path}.shelters", shelter_sets, "shelter_sets")
    by: tuple[str, ...] = ()
    if code in BY_CODES:
        by = _id_list(o.get("by"), f"{path}.by", request_sets, "request_sets")
    elif "by" in o:
        raise SolutionError(f"{path}.by: only {' and '.join(BY_CODES)} name requests")
    return Reason(code, shelters, by)


def _objective(v: object, path: str) -> Objective:
    o = _obj(v, path)
    levels = _obj(o.get("placed_by_priority"), f"{path}.placed_by_priority")
    p5, p4, p3, p2, p1 = (
        _i(levels.get(str(p)), f"{path}.placed_by_priority.{p}") for p in PRIORITIES
    )
    return Objective((p5, p4, p3, p2, p1), _i(o.get("soft_cost"), f"{path}.soft_cost"))
