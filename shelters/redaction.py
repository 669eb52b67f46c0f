"""One reader's view of a stored run's documents (SPEC §3, §7).

A run keeps its problem and solution documents exactly as solved, confidential coordinates
and every organisation's requests included, so that ``refuge solve`` replays it. What leaves
the system is a view made for the reader by the functions here, pure and in one place:

- a shelter the reader may not locate (:func:`shelters.access.located_shelters`) has
  ``location: null``; the solver then measures distances to it from its region's centroid;
- a request of another organisation is left out, and named only by an opaque id, in the
  solution as well (there without beds or reasons); its own requests' ``separate_from`` name
  the others by those opaque ids;
- the soft cost (objective and bound) is withheld as ``null`` whenever a shelter was
  withheld: it is a sum of distances in metres, so a reader who knows where their own case
  is could trilaterate a shelter from a few single matches;
- a ``redacted`` marker says what was withheld (:class:`placement.problem.Redaction`).

A run's summary (:func:`run_summary`) is cut to the reader as well: funders get counts, never
a request's or a user's id.

The problem view is a valid ``refuge.placement-problem/1`` document and solves, but it is a
different problem: its digest is not the run's ``problem_digest``, and its solution may differ
from the stored one. Readers who may see everything (admins) get the stored documents as they
are, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from placement.problem import Redaction, redaction_doc
from placement.solution import SCHEMA as SOLUTION_SCHEMA
from placement.solution import IdSets, Reason, Unplaced, unplaced_from_document
from shelters.access import LocatedShelters
from shelters.identity import Principal, Role
from shelters.models import MatchingRun

SOLUTION_NOTE = (
    "One reader's view of a stored solution: the listed requests are other organisations' "
    "(no beds, no reasons), and soft_cost is null because it adds up distances in metres to "
    "the listed shelters, whose location is withheld from this reader."
)
SOLUTION_NOTE_REQUESTS = (
    "One reader's view of a stored solution: the listed requests are other organisations' "
    "(no beds, no reasons)."
)


def _hidden_shelters(doc: Mapping[str, Any], located: LocatedShelters) -> list[str]:
    return [s["id"] for s in doc.get("shelters", ()) if int(s["id"]) not in located]


def problem_view(
    doc: Mapping[str, Any],
    *,
    located: LocatedShelters,
    own: Collection[str] | None,
    rename: Callable[[str], str],
) -> dict[str, Any]:
    """The stored problem document as this reader may see it.

    Args:
        doc: the stored (normalized) problem document; not changed.
        located: the shelters the reader may locate.
        own: ids of the reader's organisation's requests, or None for a reader who may see
            every request.
        rename: the opaque id of another organisation's request.

    Returns:
        ``doc`` itself when nothing is withheld; otherwise a copy with withheld locations set
        to null, other requests left out, and a ``redacted`` marker listing both.
    """
    hidden = set(_hidden_shelters(doc, located))
    requests = doc.get("requests", [])
    others = [] if own is None else [r["id"] for r in requests if r["id"] not in own]
    if not hidden and not others:
        return dict(doc)
    view = dict(doc)
    view["shelters"] = [
        {**s, "location": None} if s["id"] in hidden else s for s in doc.get("shelters", ())
    ]
    if own is not None:
        view["requests"] = [
            {**r, "separate_from": sorted(s if s in own else rename(s) for s in r["separate_from"])}
            for r in requests
            if r["id"] in own
        ]
    view["redacted"] = redaction_doc(
        Redaction(
            shelters=tuple(sorted(hidden)),
            requests=tuple(sorted(rename(i) for i in others)),
        )
    )
    return view


def _renamed(reasons: tuple[Reason, ...], name: Callable[[str], str]) -> tuple[Reason, ...]:
    return tuple(
        Reason(r.code, r.shelters, tuple(sorted(name(b) for b in r.by))) if r.by else r
        for r in reasons
    )


def solution_view(
    doc: Mapping[str, Any],
    problem: Mapping[str, Any],
    *,
    located: LocatedShelters,
    own: Collection[str] | None,
    rename: Callable[[str], str],
) -> dict[str, Any]:
    """The stored solution document as this reader may see it.

    Another organisation's assignment keeps only its (opaque) request and its shelter;
    another organisation's unplaced request only its opaque id; reasons that name another
    request name it by its opaque id. The soft cost of objective and bound is null when a
    shelter of ``problem`` (the stored problem) is withheld from this reader.

    Returns:
        ``doc`` itself when nothing is withheld; otherwise a redacted copy with a
        ``redacted`` marker.
    """
    hidden = _hidden_shelters(problem, located)
    if not hidden and own is None:
        return dict(doc)
    view = dict(doc)
    others: list[str] = []
    if own is not None:
        others = [r["id"] for r in problem.get("requests", ()) if r["id"] not in own]

        def name(request_id: str) -> str:
            return request_id if request_id in own else rename(request_id)

        view["assignments"] = [
            a if a["request"] in own else {"request": name(a["request"]), "shelter": a["shelter"]}
            for a in doc["assignments"]
        ]
        # Reasons are resolved and interned again over the reader's own requests only, so
        # no id list of another organisation's explanation survives in the tables.
        unplaced = unplaced_from_document(doc)
        visible = [
            Unplaced(u.request, _renamed(u.reasons, name)) for u in unplaced if u.request in own
        ]
        sets = IdSets.of(visible)
        mine = iter(visible)
        view["schema"] = SOLUTION_SCHEMA
        view["shelter_sets"] = [list(x) for x in sets.shelter_sets]
        view["request_sets"] = [list(x) for x in sets.request_sets]
        view["unplaced"] = [
            sets.unplaced_doc(next(mine)) if u.request in own else {"request": name(u.request)}
            for u in unplaced
        ]
    if hidden:
        for key in ("objective", "bound"):
            view[key] = {**doc[key], "soft_cost": None}
    if hidden or others:
        view["redacted"] = {
            "shelters": sorted(hidden),
            "requests": sorted(rename(i) for i in others),
            "note": SOLUTION_NOTE if hidden else SOLUTION_NOTE_REQUESTS,
        }
    return view


def run_summary(run: MatchingRun, principal: Principal) -> dict[str, Any]:
    """The fields of a run's summary (SPEC §7) this caller may see.

    Admins see everything stored. Anyone else sees the parameters with the listed requests
    as a count (``request_ids_count``, null when the run took every pending request), never
    their ids; funders see counts only, so ``started_by`` (a user id) is null for them too.
    """
    parameters = dict(run.parameters or {})
    started_by: int | None = run.started_by
    if principal.role is not Role.ADMIN:
        listed = parameters.pop("request_ids", None)
        parameters["request_ids_count"] = None if listed is None else len(listed)
    if principal.role is not Role.ADMIN and principal.role is not Role.CASEWORKER:
        started_by = None
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "dry_run": run.dry_run,
        "started_by": started_by,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "wall_s": run.wall_s,
        "attempts": run.attempts,
        "claims": run.claims,
        "heartbeat_at": run.heartbeat_at,
        "requests_count": run.requests_count,
        "placed_count": run.placed_count,
        "parameters": parameters,
        "solver_version": run.solver_version,
        "problem_digest": run.problem_digest,
        "error": run.error,
    }
