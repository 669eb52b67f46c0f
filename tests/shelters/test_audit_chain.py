"""The audit chain's pure parts: canonical content, hashing, verification (no database)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shelters.audit import (
    GENESIS,
    AuditEvent,
    canonical_content,
    entry_hash,
    parse_anchor,
    verify_entries,
)

T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def chain(n: int) -> list[AuditEvent]:
    """A valid chain of ``n`` entries built the way ``append`` builds them."""
    events: list[AuditEvent] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        event = AuditEvent(
            seq=seq,
            at=T0 + timedelta(seconds=seq),
            actor_user_id=seq % 3 or None,
            actor_role="caseworker",
            action="read",
            resource_type="case",
            resource_id=str(100 + seq),
            outcome="ok",
            request_id=f"req{seq:08d}",
            prev_hash=prev,
        )
        event.hash = entry_hash(event)
        prev = event.hash
        events.append(event)
    return events


def rehash(event: AuditEvent) -> None:
    event.hash = entry_hash(event)


def test_canonical_content_is_sorted_compact_json_in_utc_microseconds() -> None:
    local = T0.astimezone(ZoneInfo("Asia/Almaty"))
    content = canonical_content(
        seq=7,
        at=local,
        actor_user_id=None,
        actor_role=None,
        action="login",
        resource_type="user",
        resource_id=None,
        outcome="denied",
        request_id="abc12345",
        prev_hash=GENESIS,
    )
    assert content == (
        b'{"action":"login","actor_role":null,"actor_user_id":null,'
        b'"at":"2026-11-28T12:00:00.123456Z","outcome":"denied","prev_hash":"'
        + GENESIS.encode()
        + b'","request_id":"abc12345","resource_id":null,"resource_type":"user","seq":7}'
    )
    assert list(json.loads(content)) == sorted(json.loads(content))


def test_entry_hash_is_the_sha256_of_the_canonical_content() -> None:
    event = chain(1)[0]
    expected = hashlib.sha256(
        canonical_content(
            seq=1,
            at=event.at,
            actor_user_id=event.actor_user_id,
            actor_role=event.actor_role,
            action=event.action,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            outcome=event.outcome,
            request_id=event.request_id,
            prev_hash=GENESIS,
        )
    ).hexdigest()
    assert event.hash == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 99),
        ("at", T0 + timedelta(microseconds=1)),
        ("actor_user_id", 424242),
        ("actor_role", "admin"),
        ("action", "update"),
        ("resource_type", "placement"),
        ("resource_id", "9"),
        ("outcome", "denied"),
        ("request_id", "other-request"),
        ("prev_hash", "f" * 64),
    ],
)
def test_every_stored_field_is_covered_by_the_hash(field: str, value: object) -> None:
    event = chain(1)[0]
    before = entry_hash(event)
    setattr(event, field, value)
    assert entry_hash(event) != before


def test_an_intact_chain_verifies() -> None:
    result = verify_entries(chain(5))
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 5, None)


def test_an_empty_chain_verifies() -> None:
    result = verify_entries([])
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 0, None)


def test_a_changed_field_breaks_the_chain_at_that_entry() -> None:
    events = chain(5)
    events[2].resource_id = "999"
    result = verify_entries(events)
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_a_changed_entry_with_its_hash_recomputed_breaks_at_the_next_one() -> None:
    events = chain(5)
    events[2].resource_id = "999"
    rehash(events[2])
    assert verify_entries(events).first_broken_seq == 4


def test_a_missing_entry_is_named_by_its_sequence_number() -> None:
    events = chain(5)
    del events[1]
    assert verify_entries(events).first_broken_seq == 2


def test_two_swapped_entries_break_at_the_first_of_them() -> None:
    events = chain(5)
    events[1].seq, events[2].seq = 3, 2
    events[1], events[2] = events[2], events[1]
    assert verify_entries(events).first_broken_seq == 2


def test_a_chain_that_does_not_start_at_genesis_is_broken() -> None:
    events = chain(3)
    events[0].prev_hash = "a" * 64
    rehash(events[0])
    assert verify_entries(events).first_broken_seq == 1


def test_an_anchor_detects_truncation_after_it() -> None:
    events = chain(6)
    anchor = (6, events[5].hash)
    assert verify_entries(events, anchor=anchor).ok
    result = verify_entries(events[:4], anchor=anchor)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 4, 5)
    assert verify_entries(events[:4]).ok  # without the anchor the cut cannot be seen


def test_an_anchor_detects_a_rewritten_tail() -> None:
    events = chain(6)
    anchor = (5, events[4].hash)
    forged = chain(6)
    for event in forged[3:]:
        event.action = "list"
    prev = forged[2].hash
    for event in forged[3:]:
        event.prev_hash = prev
        rehash(event)
        prev = event.hash
    assert verify_entries(forged).ok  # a consistent rewrite passes on its own
    assert verify_entries(forged, anchor=anchor).first_broken_seq == 5


def test_anchors_parse_as_printed_and_refuse_anything_else() -> None:
    assert parse_anchor(f"12:{'ab' * 32}\n") == (12, "ab" * 32)
    for bad in ("12", f"x:{'ab' * 32}", "12:abc", f"-1:{'ab' * 32}", f"3:{'AB' * 32}"):
        with pytest.raises(ValueError, match="SEQ:HASH"):
            parse_anchor(bad)
