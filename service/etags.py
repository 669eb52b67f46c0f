"""ETags and ``If-Match`` for optimistic concurrency (SPEC §3).

A tag names the resource and its version, e.g. ``"unit-12-v3"``; a tag for another resource
never matches. ``If-Match`` is required on PATCH and read as RFC 9110 §13.1.1 says:

- missing or empty → 428;
- ``*`` → 428 as well: it matches any current version, so it would check nothing, and the
  SPEC asks for the tag of the version the client changed;
- not ``*`` and not a list of entity tags (an unquoted tag, say) → 400 saying so;
- a list of tags → the strong tag naming this resource gives the version to check (412 when
  stale); weak tags never match with ``If-Match`` (strong comparison), so a list of only weak
  tags, or one that names no version of this resource, is 412.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

from service.problems import MalformedHeader
from shelters.errors import PreconditionRequired, StaleVersion

_OURS = re.compile(r"(?P<kind>[a-z]+)-(?P<id>\d+)-v(?P<version>\d+)")
# One element of ``#entity-tag`` (RFC 9110 §8.8.3, §5.6.1): optional whitespace, an optional
# tag (``W/`` for weak, then etagc* in double quotes; obs-text arrives as latin-1), whitespace,
# then a comma or the end. Empty elements are allowed, as the list syntax says.
_ELEMENT = re.compile(
    r'[ \t]*(?:(?P<weak>W/)?"(?P<opaque>[\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)'
)


def etag(kind: str, object_id: int, version: int) -> str:
    """The entity tag of one version of one object."""
    return f'"{kind}-{object_id}-v{version}"'


def set_etag(response: Response, kind: str, object_id: int, version: int) -> None:
    """Put the entity tag on a response."""
    response.headers["ETag"] = etag(kind, object_id, version)


def entity_tags(value: str) -> list[tuple[bool, str]]:
    """The (weak, opaque tag) pairs of an ``If-Match`` list; ``MalformedHeader`` otherwise."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        element = _ELEMENT.match(value, position)
        if element is None:
            raise MalformedHeader(
                'If-Match must be "*" or a comma-separated list of entity tags in double '
                'quotes, e.g. "unit-12-v3"'
            )
        if element["opaque"] is not None:
            tags.append((element["weak"] is not None, element["opaque"]))
        position = element.end()
    return tags


def expected_version(request: Request, kind: str, object_id: int) -> int:
    """The version ``If-Match`` asks for (see the module docstring for every other answer)."""
    header = (request.headers.get("if-match") or "").strip()
    if header == "*":
        raise PreconditionRequired(
            "If-Match: * matches any version and so checks nothing; "
            "send the ETag of the version you changed"
        )
    tags = entity_tags(header) if header else []
    if not tags:
        raise PreconditionRequired("send If-Match with the ETag of the version you changed")
    strong = [opaque for weak, opaque in tags if not weak]
    for opaque in strong:
        ours = _OURS.fullmatch(opaque)
        if ours and ours["kind"] == kind and int(ours["id"]) == object_id:
            return int(ours["version"])
    if not strong:
        raise StaleVersion(
            "weak entity tags never match If-Match (RFC 9110 §13.1.1); send the strong ETag"
        )
    raise StaleVersion("If-Match does not name a current version of this resource")
