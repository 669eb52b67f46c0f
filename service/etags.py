"""ETags and ``If-Match`` for optimistic concurrency (SPEC §3).

A tag names the resource and its version, e.g. ``"unit-12-v3"``; a tag for another resource
never matches. ``If-Match`` is required on PATCH: missing → 428, stale → 412.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

from shelters.errors import PreconditionRequired, StaleVersion

_TAG = re.compile(r'^(?:W/)?"(?P<kind>[a-z]+)-(?P<id>\d+)-v(?P<version>\d+)"$')


def etag(kind: str, object_id: int, version: int) -> str:
    """The entity tag of one version of one object."""
    return f'"{kind}-{object_id}-v{version}"'


def set_etag(response: Response, kind: str, object_id: int, version: int) -> None:
    """Put the entity tag on a response."""
    response.headers["ETag"] = etag(kind, object_id, version)


def expected_version(request: Request, kind: str, object_id: int) -> int:
    """The version ``If-Match`` asks for.

    Raises ``PreconditionRequired`` without the header, and ``StaleVersion`` when it names
    another object, is ``*`` (a blind overwrite is what the header exists to prevent), or is
    not a tag we issued.
    """
    header = request.headers.get("if-match")
    if header is None or not header.strip():
        raise PreconditionRequired("send If-Match with the ETag of the version you changed")
    for candidate in (part.strip() for part in header.split(",")):
        match = _TAG.match(candidate)
        if match and match["kind"] == kind and int(match["id"]) == object_id:
            return int(match["version"])
    raise StaleVersion("If-Match does not name a current version of this resource")
