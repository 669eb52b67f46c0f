"""The placement problem: frozen input types mirroring ``refuge.placement-problem/1``.

Everything here is plain data. :meth:`Problem.from_document` is the single entry point for
untrusted JSON: it checks structure and meaning with standard-library code and raises
:class:`ProblemError` naming the JSON path of the first bad field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA = "refuge.placement-problem/1"

SEXES: tuple[str, ...] = ("female", "male", "other")
STATUSES: tuple[str, ...] = ("adult", "accompanied_child", "unaccompanied_minor")
SECURITY_LEVELS: tuple[str, ...] = ("standard", "high")
SHELTER_STATUSES: tuple[str, ...] = ("open", "suspended", "closed")
SERVICES: tuple[str, ...] = (
    "medical_care",
    "psychological_counselling",
    "child_psychologist",
    "legal_aid",
    "interpretation",
    "education",
    "vocational_training",
    "substance_use_treatment",
    "disability_support",
    "mother_and_baby_care",
)
PRIORITIES: tuple[int, ...] = (5, 4, 3, 2, 1)
MAX_AGE = 120
MAX_FREE_BEDS = 100_000
MAX_REQUESTS = 100_000
MAX_MEMBERS = 50
MAX_WEIGHT = 1_000_000
MAX_DISTANCE_WEIGHT = 1_000

_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_LANG_RE = re.compile(r"^[a-z]{2}$")


class ProblemError(ValueError):
    """A problem document is malformed or inconsistent.

    Attributes:
        path: JSON path of the offending field, e.g. ``requests[3].members[0].age``; ``$`` for
            the document itself.
        message: What is wrong with it, in words a caller can show unchanged.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class AdmissionRule:
    """One admission rule of a unit: a member fits when sex, age and status all match."""

    sexes: tuple[str, ...]
    min_age: int
    max_age: int
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class Unit:
    """A bed pool inside a shelter; ``free_beds`` is what the solver may fill (≥ 0)."""

    id: str
    free_beds: int
    admits: tuple[AdmissionRule, ...]


@dataclass(frozen=True)
class Location:
    """A point in WGS 84 degrees."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Region:
    """A region with its centroid, used for distances when no exact location is known."""

    code: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Shelter:
    """A shelter with its units. ``location`` falls back to the region centroid when None."""

    id: str
    region: str
    location: Location | None
    security_level: Literal["standard", "high"]
    wheelchair_accessible: bool
    services: tuple[str, ...]
    languages: tuple[str, ...]
    units: tuple[Unit, ...]
    status: str = "open"


@dataclass(frozen=True)
class Member:
    """A person of a request. ``age`` is in whole years; ``guardian_ref`` names a member."""

    ref: str
    sex: str
    age: int
    guardian_ref: str | None


@dataclass(frozen=True)
class Request:
    """A group that must be placed whole in one shelter, or not at all.

    ``separate_from``, ``excluded_shelters``, ``declined_shelters`` and ``separated_shelters``
    may name ids absent from the problem; those entries are ignored. ``declined_shelters``
    are shelters that declined this very request; ``separated_shelters`` are shelters where a
    group this one must be kept apart from is already held or housed. Both exclude the
    shelter like ``excluded_shelters``, each with its own reason code.
    """

    id: str
    priority: int
    members: tuple[Member, ...]
    required_services: tuple[str, ...] = ()
    desired_services: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    wheelchair: bool = False
    high_risk: bool = False
    excluded_regions: tuple[str, ...] = ()
    excluded_shelters: tuple[str, ...] = ()
    preferred_regions: tuple[str, ...] = ()
    separate_from: tuple[str, ...] = ()
    current_region: str | None = None
    location: Location | None = None
    declined_shelters: tuple[str, ...] = ()
    separated_shelters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Weights:
    """Integer soft-cost weights. All costs are per placed request, never per person.

    Attributes:
        distance_per_metre: cost per whole metre of haversine distance between the request's
            origin and the shelter (default 1, range 0-1,000).
        missing_desired_service: cost per desired service the shelter lacks (default 50,000,
            i.e. worth 50 km; range 0-1,000,000).
        no_shared_language: cost when the request names languages, the shelter speaks none of
            them and offers no ``interpretation`` (default 200,000; range 0-1,000,000).
        outside_preferred_regions: cost when the request names preferred regions and the
            shelter lies in none of them (default 100,000; range 0-1,000,000).
    """

    distance_per_metre: int = 1
    missing_desired_service: int = 50_000
    no_shared_language: int = 200_000
    outside_preferred_regions: int = 100_000


REDACTION_NOTE = (
    "One reader's view of a stored problem: the listed shelters' locations are withheld (null), "
    "so distances to them are computed from their region's centroid, and the listed requests "
    "are left out. Solving it runs, but its digest and solution may differ from the stored run's."
)


@dataclass(frozen=True)
class Redaction:
    """The marker of a redacted document: what was withheld from this reader, and what follows.

    Attributes:
        shelters: ids of the shelters whose ``location`` was withheld (it is null here, so
            distances to them come from their region's centroid, ``distances``).
        requests: ids (opaque to this reader) of the requests left out of ``requests``.
        distances: how distances to the withheld shelters are computed: ``region_centroid``.
        note: the same in words.
    """

    shelters: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()
    distances: Literal["region_centroid"] = "region_centroid"
    note: str = REDACTION_NOTE


@dataclass(frozen=True)
class Problem:
    """A whole placement problem. Order of regions, shelters, units and requests is kept.

    ``redacted`` is set only on a reader's view of a stored problem (see :class:`Redaction`);
    the solver ignores it.
    """

    majority_age: int = 18
    regions: tuple[Region, ...] = ()
    shelters: tuple[Shelter, ...] = ()
    requests: tuple[Request, ...] = ()
    weights: Weights = field(default_factory=Weights)
    redacted: Redaction | None = None

    @classmethod
    def from_document(cls, doc: object) -> Problem:
        """Parse and check a ``refuge.placement-problem/1`` document.

        Optional fields take the defaults of the dataclasses above; set-like string lists are
        de-duplicated and sorted. Unknown fields are refused so that a typo never passes
        silently.

        Raises:
            ProblemError: naming the JSON path of the first bad field, structural (wrong type,
                out of range, unknown field) or semantic (duplicate id, unknown region code,
                ``guardian_ref`` naming a non-member, a request separated from itself).
        """
        return _parse_problem(doc)

    def to_document(self) -> dict[str, Any]:
        """Return the normalized document: every field explicit, JSON-serialisable.

        ``redacted`` appears only when set, so that an unredacted problem's digest does not
        depend on the marker's existence.
        """
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "majority_age": self.majority_age,
            "regions": [{"code": r.code, "lat": r.lat, "lon": r.lon} for r in self.regions],
            "shelters": [_shelter_doc(s) for s in self.shelters],
            "requests": [_request_doc(r) for r in self.requests],
            "weights": {
                "distance_per_metre": self.weights.distance_per_metre,
                "missing_desired_service": self.weights.missing_desired_service,
                "no_shared_language": self.weights.no_shared_language,
                "outside_preferred_regions": self.weights.outside_preferred_regions,
            },
        }
        if self.redacted is not None:
            doc["redacted"] = redaction_doc(self.redacted)
        return doc


def redaction_doc(redaction: Redaction) -> dict[str, Any]:
    """The ``redacted`` marker of a document, JSON-serialisable."""
    return {
        "shelters": list(redaction.shelters),
        "requests": list(redaction.requests),
        "distances": redaction.distances,
        "note": redaction.note,
    }


def canonical_json(doc: object) -> bytes:
    """Serialise ``doc`` canonically: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def problem_digest(problem_or_doc: Problem | Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of the *normalized* problem document.

    A raw document is parsed first, so two documents that differ only in defaults, key order
    or the order of set-like lists have the same digest.

    Raises:
        ProblemError: when given a malformed document.
    """
    problem = (
        problem_or_doc
        if isinstance(problem_or_doc, Problem)
        else Problem.from_document(problem_or_doc)
    )
    return hashlib.sha256(problem_canonical_json(problem)).hexdigest()


def problem_canonical_json(problem: Problem) -> bytes:
    """The canonical JSON of the normalized document, computed once per problem object.

    A problem is immutable, so its solver, its digest and the record of a run can share the
    bytes (a network of 300 shelters makes ~190 kB).
    """
    cached = problem.__dict__.get("_canonical_json")
    if cached is None:
        cached = canonical_json(problem.to_document())
        object.__setattr__(problem, "_canonical_json", cached)
    return cached


def _location_doc(loc: Location | None) -> dict[str, float] | None:
    return None if loc is None else {"lat": loc.lat, "lon": loc.lon}


def _shelter_doc(s: Shelter) -> dict[str, Any]:
    return {
        "id": s.id,
        "region": s.region,
        "location": _location_doc(s.location),
        "security_level": s.security_level,
        "wheelchair_accessible": s.wheelchair_accessible,
        "services": list(s.services),
        "languages": list(s.languages),
        "status": s.status,
        "units": [
            {
                "id": u.id,
                "free_beds": u.free_beds,
                "admits": [
                    {
                        "sexes": list(a.sexes),
                        "min_age": a.min_age,
                        "max_age": a.max_age,
                        "statuses": list(a.statuses),
                    }
                    for a in u.admits
                ],
            }
            for u in s.units
        ],
    }


def _request_doc(r: Request) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": r.id,
        "priority": r.priority,
        "members": [
            {"ref": m.ref, "sex": m.sex, "age": m.age, "guardian_ref": m.guardian_ref}
            for m in r.members
        ],
        "required_services": list(r.required_services),
        "desired_services": list(r.desired_services),
        "languages": list(r.languages),
        "wheelchair": r.wheelchair,
        "high_risk": r.high_risk,
        "excluded_regions": list(r.excluded_regions),
        "excluded_shelters": list(r.excluded_shelters),
        "preferred_regions": list(r.preferred_regions),
        "separate_from": list(r.separate_from),
        "current_region": r.current_region,
        "location": _location_doc(r.location),
    }
    # Written only when set, so a document made before these fields existed keeps its digest
    # and a stored run still replays to the same bytes.
    if r.declined_shelters:
        doc["declined_shelters"] = list(r.declined_shelters)
    if r.separated_shelters:
        doc["separated_shelters"] = list(r.separated_shelters)
    return doc


# --- parsing -----------------------------------------------------------------------------


def _object(value: object, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProblemError(path, "must be an object")
    for key in value:
        if key not in allowed:
            raise ProblemError(f"{path}.{key}" if path != "$" else str(key), "unknown field")
    return value


def _sub(path: str, key: str) -> str:
    return key if path == "$" else f"{path}.{key}"


def _required(obj: Mapping[str, Any], key: str, path: str) -> object:
    if key not in obj:
        raise ProblemError(_sub(path, key), "is required")
    return obj[key]


def _int(value: object, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProblemError(path, f"must be an integer {lo}-{hi}")
    return value


def _number(value: object, path: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(path, f"must be a number {lo:g} to {hi:g}")
    number = float(value)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ProblemError(path, f"must be a number {lo:g} to {hi:g}")
    return number


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ProblemError(path, "must be true or false")
    return value


def _ident(value: object, path: str) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ProblemError(path, "must be an id of 1-100 characters A-Z a-z 0-9 . _ -")
    return value


def _choice(value: object, path: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ProblemError(path, f"must be one of {', '.join(choices)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProblemError(path, "must be an array")
    return value


def _str_set(value: object, path: str, kind: str) -> tuple[str, ...]:
    """Parse a set-like list of strings; ``kind`` is 'id', 'language' or a tuple name."""
    items = _list(value, path)
    out: set[str] = set()
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        if kind == "id":
            out.add(_ident(item, p))
        elif kind == "language":
            if not isinstance(item, str) or not _LANG_RE.fullmatch(item):
                raise ProblemError(p, "must be an ISO 639-1 code of two lower-case letters")
            out.add(item)
        elif kind == "service":
            out.add(_choice(item, p, SERVICES))
        elif kind == "sex":
            out.add(_choice(item, p, SEXES))
        else:
            out.add(_choice(item, p, STATUSES))
    return tuple(sorted(out))


def _location(value: object, path: str) -> Location | None:
    if value is None:
        return None
    obj = _object(value, path, ("lat", "lon"))
    return Location(
        lat=_number(_required(obj, "lat", path), f"{path}.lat", -90, 90),
        lon=_number(_required(obj, "lon", path), f"{path}.lon", -180, 180),
    )


def _rule(value: object, path: str) -> AdmissionRule:
    obj = _object(value, path, ("sexes", "min_age", "max_age", "statuses"))
    sexes = _str_set(_required(obj, "sexes", path), f"{path}.sexes", "sex")
    statuses = _str_set(_required(obj, "statuses", path), f"{path}.statuses", "status")
    if not sexes:
        raise ProblemError(f"{path}.sexes", "must name at least one sex")
    if not statuses:
        raise ProblemError(f"{path}.statuses", "must name at least one status")
    lo = _int(_required(obj, "min_age", path), f"{path}.min_age", 0, MAX_AGE)
    hi = _int(_required(obj, "max_age", path), f"{path}.max_age", 0, MAX_AGE)
    if hi < lo:
        raise ProblemError(f"{path}.max_age", "must not be below min_age")
    return AdmissionRule(sexes=sexes, min_age=lo, max_age=hi, statuses=statuses)


def _unit(value: object, path: str) -> Unit:
    obj = _object(value, path, ("id", "free_beds", "admits"))
    admits = _list(_required(obj, "admits", path), f"{path}.admits")
    return Unit(
        id=_ident(_required(obj, "id", path), f"{path}.id"),
        free_beds=_int(_required(obj, "free_beds", path), f"{path}.free_beds", 0, MAX_FREE_BEDS),
        admits=tuple(_rule(a, f"{path}.admits[{i}]") for i, a in enumerate(admits)),
    )


_SHELTER_FIELDS = (
    "id",
    "region",
    "location",
    "security_level",
    "wheelchair_accessible",
    "services",
    "languages",
    "units",
    "status",
)


def _shelter(value: object, path: str) -> Shelter:
    obj = _object(value, path, _SHELTER_FIELDS)
    units = _list(_required(obj, "units", path), f"{path}.units")
    level = _choice(
        obj.get("security_level", "standard"), f"{path}.security_level", SECURITY_LEVELS
    )
    return Shelter(
        id=_ident(_required(obj, "id", path), f"{path}.id"),
        region=_ident(_required(obj, "region", path), f"{path}.region"),
        location=_location(obj.get("location"), f"{path}.location"),
        security_level="high" if level == "high" else "standard",
        wheelchair_accessible=_bool(
            obj.get("wheelchair_accessible", False), f"{path}.wheelchair_accessible"
        ),
        services=_str_set(obj.get("services", []), f"{path}.services", "service"),
        languages=_str_set(obj.get("languages", []), f"{path}.languages", "language"),
        units=tuple(_unit(u, f"{path}.units[{i}]") for i, u in enumerate(units)),
        status=_choice(obj.get("status", "open"), f"{path}.status", SHELTER_STATUSES),
    )


def _member(value: object, path: str) -> Member:
    obj = _object(value, path, ("ref", "sex", "age", "guardian_ref"))
    guardian = obj.get("guardian_ref")
    return Member(
        ref=_ident(_required(obj, "ref", path), f"{path}.ref"),
        sex=_choice(_required(obj, "sex", path), f"{path}.sex", SEXES),
        age=_int(_required(obj, "age", path), f"{path}.age", 0, MAX_AGE),
        guardian_ref=None if guardian is None else _ident(guardian, f"{path}.guardian_ref"),
    )


_REQUEST_FIELDS = (
    "id",
    "priority",
    "members",
    "required_services",
    "desired_services",
    "languages",
    "wheelchair",
    "high_risk",
    "excluded_regions",
    "excluded_shelters",
    "preferred_regions",
    "separate_from",
    "current_region",
    "location",
    "declined_shelters",
    "separated_shelters",
)


def _request(value: object, path: str) -> Request:
    obj = _object(value, path, _REQUEST_FIELDS)
    members_raw = _list(_required(obj, "members", path), f"{path}.members")
    if not 1 <= len(members_raw) <= MAX_MEMBERS:
        raise ProblemError(f"{path}.members", f"must hold 1-{MAX_MEMBERS} members")
    members = tuple(_member(m, f"{path}.members[{i}]") for i, m in enumerate(members_raw))
    refs: set[str] = set()
    for i, m in enumerate(members):
        if m.ref in refs:
            raise ProblemError(f"{path}.members[{i}].ref", f"duplicate member ref {m.ref!r}")
        refs.add(m.ref)
    for i, m in enumerate(members):
        if m.guardian_ref is not None and (m.guardian_ref not in refs or m.guardian_ref == m.ref):
            raise ProblemError(
                f"{path}.members[{i}].guardian_ref", "must name another member of the request"
            )
    region = obj.get("current_region")
    return Request(
        id=_ident(_required(obj, "id", path), f"{path}.id"),
        priority=_int(_required(obj, "priority", path), f"{path}.priority", 1, 5),
        members=members,
        required_services=_str_set(
            obj.get("required_services", []), f"{path}.required_services", "service"
        ),
        desired_services=_str_set(
            obj.get("desired_services", []), f"{path}.desired_services", "service"
        ),
        languages=_str_set(obj.get("languages", []), f"{path}.languages", "language"),
        wheelchair=_bool(obj.get("wheelchair", False), f"{path}.wheelchair"),
        high_risk=_bool(obj.get("high_risk", False), f"{path}.high_risk"),
        excluded_regions=_str_set(
            obj.get("excluded_regions", []), f"{path}.excluded_regions", "id"
        ),
        excluded_shelters=_str_set(
            obj.get("excluded_shelters", []), f"{path}.excluded_shelters", "id"
        ),
        preferred_regions=_str_set(
            obj.get("preferred_regions", []), f"{path}.preferred_regions", "id"
        ),
        separate_from=_str_set(obj.get("separate_from", []), f"{path}.separate_from", "id"),
        current_region=None if region is None else _ident(region, f"{path}.current_region"),
        location=_location(obj.get("location"), f"{path}.location"),
        declined_shelters=_str_set(
            obj.get("declined_shelters", []), f"{path}.declined_shelters", "id"
        ),
        separated_shelters=_str_set(
            obj.get("separated_shelters", []), f"{path}.separated_shelters", "id"
        ),
    )


_WEIGHT_LIMITS = {
    "distance_per_metre": MAX_DISTANCE_WEIGHT,
    "missing_desired_service": MAX_WEIGHT,
    "no_shared_language": MAX_WEIGHT,
    "outside_preferred_regions": MAX_WEIGHT,
}


def _weights(value: object, path: str) -> Weights:
    if value is None:
        return Weights()
    obj = _object(value, path, tuple(_WEIGHT_LIMITS))
    given = {k: _int(v, f"{path}.{k}", 0, _WEIGHT_LIMITS[k]) for k, v in obj.items()}
    return Weights(**given)


def _redaction(value: object, path: str) -> Redaction | None:
    if value is None:
        return None
    obj = _object(value, path, ("shelters", "requests", "distances", "note"))
    note = obj.get("note", REDACTION_NOTE)
    if not isinstance(note, str) or len(note) > 1000:
        raise ProblemError(f"{path}.note", "must be a string of at most 1000 characters")
    _choice(obj.get("distances", "region_centroid"), f"{path}.distances", ("region_centroid",))
    return Redaction(
        shelters=_str_set(obj.get("shelters", []), f"{path}.shelters", "id"),
        requests=_str_set(obj.get("requests", []), f"{path}.requests", "id"),
        note=note,
    )


def _parse_problem(doc: object) -> Problem:
    obj = _object(
        doc,
        "$",
        ("schema", "majority_age", "regions", "shelters", "requests", "weights", "redacted"),
    )
    if _required(obj, "schema", "$") != SCHEMA:
        raise ProblemError("schema", f"must be {SCHEMA!r}")
    majority = _int(obj.get("majority_age", 18), "majority_age", 1, MAX_AGE)
    regions_raw = _list(obj.get("regions", []), "regions")
    regions: list[Region] = []
    for i, r in enumerate(regions_raw):
        p = f"regions[{i}]"
        ro = _object(r, p, ("code", "lat", "lon"))
        regions.append(
            Region(
                code=_ident(_required(ro, "code", p), f"{p}.code"),
                lat=_number(_required(ro, "lat", p), f"{p}.lat", -90, 90),
                lon=_number(_required(ro, "lon", p), f"{p}.lon", -180, 180),
            )
        )
    shelters_raw = _list(obj.get("shelters", []), "shelters")
    shelters = [_shelter(s, f"shelters[{i}]") for i, s in enumerate(shelters_raw)]
    requests_raw = _list(obj.get("requests", []), "requests")
    if len(requests_raw) > MAX_REQUESTS:
        raise ProblemError("requests", f"must hold at most {MAX_REQUESTS} requests")
    requests = [_request(r, f"requests[{i}]") for i, r in enumerate(requests_raw)]
    weights = _weights(obj.get("weights"), "weights")
    redacted = _redaction(obj.get("redacted"), "redacted")
    _check_semantics(regions, shelters, requests)
    if redacted is not None:
        _check_redaction(redacted, shelters, requests)
    return Problem(
        majority_age=majority,
        regions=tuple(regions),
        shelters=tuple(shelters),
        requests=tuple(requests),
        weights=weights,
        redacted=redacted,
    )


def _check_redaction(
    redacted: Redaction, shelters: Sequence[Shelter], requests: Sequence[Request]
) -> None:
    """A withheld shelter is one of the problem's, with no location; a left-out request is not."""
    located = {s.id: s.location is not None for s in shelters}
    for j, shelter_id in enumerate(redacted.shelters):
        if shelter_id not in located:
            raise ProblemError(f"redacted.shelters[{j}]", f"unknown shelter id {shelter_id!r}")
        if located[shelter_id]:
            raise ProblemError(
                f"redacted.shelters[{j}]", f"shelter {shelter_id!r} has a location all the same"
            )
    present = {q.id for q in requests}
    for j, request_id in enumerate(redacted.requests):
        if request_id in present:
            raise ProblemError(
                f"redacted.requests[{j}]", f"request {request_id!r} is in the problem all the same"
            )


def _check_semantics(
    regions: Sequence[Region], shelters: Sequence[Shelter], requests: Sequence[Request]
) -> None:
    codes: set[str] = set()
    for i, r in enumerate(regions):
        if r.code in codes:
            raise ProblemError(f"regions[{i}].code", f"duplicate region code {r.code!r}")
        codes.add(r.code)
    shelter_ids: set[str] = set()
    unit_ids: set[str] = set()
    for i, s in enumerate(shelters):
        if s.id in shelter_ids:
            raise ProblemError(f"shelters[{i}].id", f"duplicate shelter id {s.id!r}")
        shelter_ids.add(s.id)
        if s.region not in codes:
            raise ProblemError(f"shelters[{i}].region", f"unknown region code {s.region!r}")
        for j, u in enumerate(s.units):
            if u.id in unit_ids:
                raise ProblemError(f"shelters[{i}].units[{j}].id", f"duplicate unit id {u.id!r}")
            unit_ids.add(u.id)
    request_ids: set[str] = set()
    for i, q in enumerate(requests):
        p = f"requests[{i}]"
        if q.id in request_ids:
            raise ProblemError(f"{p}.id", f"duplicate request id {q.id!r}")
        request_ids.add(q.id)
        if q.current_region is not None and q.current_region not in codes:
            raise ProblemError(f"{p}.current_region", f"unknown region code {q.current_region!r}")
        for key, values in (
            ("excluded_regions", q.excluded_regions),
            ("preferred_regions", q.preferred_regions),
        ):
            for j, code in enumerate(values):
                if code not in codes:
                    raise ProblemError(f"{p}.{key}[{j}]", f"unknown region code {code!r}")
        if q.id in q.separate_from:
            raise ProblemError(f"{p}.separate_from", "a request cannot be separated from itself")
