"""The inbox page: what happened that concerns me, in plain words, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import audit, i18n
from service.auth import ANY_ROLE
from service.deps import ReadDb, UnitOfWorkRoute, WriteDb
from service.ui.routes import PREFIX, Form, redirect, render
from service.ui.session import page_allow
from shelters import notifications
from shelters.errors import N_
from shelters.identity import Principal, Role

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=UnitOfWorkRoute)
PAGE_SIZE = 50

# What each event means to the person reading it; see docs/glossary.md.
EVENT_WORDS = {
    "placement.proposed": N_("A placement is waiting for your answer."),
    "placement.accepted": N_("The shelter accepted the placement."),
    "placement.declined": N_("The shelter declined the placement."),
    "placement.admitted": N_("The people were admitted."),
    "placement.discharged": N_("The people were discharged."),
    "placement.expired": N_("The proposal expired without an answer; its beds are free again."),
    "placement.cancelled": N_("The caseworker cancelled the placement; its beds are free again."),
    "placement.expiring": N_("A proposal expires soon: please answer it."),
    "member.coming_of_age": N_(
        "A placed minor may come of age during the stay: check the unit still fits."
    ),
    "unit.stale": N_("A unit's numbers have not been confirmed lately."),
    "request.escalated": N_(
        "A request has waited longer than its priority allows: it needs a bed or a decision."
    ),
}
# Where the reason changes what the reader should know.
REASON_WORDS = {
    ("member.coming_of_age", "comes_of_age"): N_(
        "A placed minor comes of age this month or next: check the unit still fits."
    ),
}


def _where(principal: Principal, event: str) -> str:
    """The page on which the reader acts on ``event``."""
    coordinating = principal.role in (Role.ADMIN, Role.COORDINATOR)
    caseworking = principal.role in (Role.ADMIN, Role.CASEWORKER)
    if coordinating and event in notifications.TO_COORDINATORS | {"unit.stale"}:
        return f"{PREFIX}/coordinator"
    if caseworking:
        return f"{PREFIX}/caseworker"
    return f"{PREFIX}/coordinator" if coordinating else PREFIX


@router.get("/inbox")
def inbox_page(
    request: Request,
    principal: Annotated[Principal, page_allow(*ANY_ROLE)],
    db: ReadDb,
    cursor: str | None = None,
) -> Response:
    """My inbox: unread first to the eye (marked), newest first, with where to act."""
    locale = i18n.request_locale(request)
    page = notifications.inbox(db, principal, unread_only=False, limit=PAGE_SIZE, cursor=cursor)
    entries = [
        {
            "entry": entry,
            "words": i18n.gettext(
                locale,
                REASON_WORDS.get((entry.event, entry.reason or ""), EVENT_WORDS[entry.event]),
            ),
            "where": _where(principal, entry.event),
        }
        for entry in page.items
    ]
    context = {"entries": entries, "next_cursor": page.next_cursor}
    return render(request, "inbox.html", context)


@router.post("/inbox/{entry_id}/read")
def mark_read(
    entry_id: int,
    request: Request,
    principal: Annotated[Principal, page_allow(*ANY_ROLE)],
    form: Form,
    db: WriteDb,
) -> Response:
    """Mark one of my entries read (another user's entry is not found)."""
    notifications.mark_read(db, principal, entry_id)
    audit.set_resource_id(request, entry_id)
    return redirect(request, f"{PREFIX}/inbox#entry-{entry_id}")
