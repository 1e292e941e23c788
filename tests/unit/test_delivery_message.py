"""The delivery message: the uuid, and the event's Detail when it fits (DESIGN §12)."""

from __future__ import annotations

import json

import pytest

from oms_webhooks.delivery import message as dm

UID = "a" * 32


def test_a_small_detail_travels_in_the_message_exactly() -> None:
    detail = json.dumps({"id": 1, "name": "Ωmega ✓"}, ensure_ascii=False, separators=(",", ":"))
    message = dm.decode(dm.encode(UID, detail))
    assert message == dm.DeliveryMessage(UID, detail)


def test_a_large_detail_travels_by_reference() -> None:
    detail = json.dumps({"blob": "x" * dm.INLINE_DETAIL_MAX_BYTES})
    assert dm.decode(dm.encode(UID, detail)) == dm.DeliveryMessage(UID, None)
    at_limit = '{"b":"' + "é" * ((dm.INLINE_DETAIL_MAX_BYTES - 8) // 2) + '"}'
    assert len(at_limit.encode()) <= dm.INLINE_DETAIL_MAX_BYTES
    assert dm.decode(dm.encode(UID, at_limit)).detail == at_limit


def test_a_bare_message_is_understood() -> None:
    assert dm.decode(json.dumps({"delivery": UID})) == dm.DeliveryMessage(UID, None)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"delivery": UID, "detail": {"id": 1}}),
        json.dumps({"delivery": UID, "detail": "[1]"}),
        json.dumps({"delivery": UID, "detail": 3}),
        json.dumps({"delivery": "b" * 31, "detail": "{}"}),
        "[" * 100_000,
    ],
)
def test_malformed_messages_are_refused(body: str) -> None:
    with pytest.raises(dm.MalformedMessage):
        dm.decode(body)


def test_batches_keep_to_ten_entries_and_256_kib() -> None:
    small = [dm.encode(UID, "{}")] * 25
    assert [len(b) for b in dm.batches(small)] == [10, 10, 5]
    big_detail = '{"b":"' + "x" * (dm.INLINE_DETAIL_MAX_BYTES - 10) + '"}'
    big = [dm.encode(UID, big_detail)] * 12
    groups = list(dm.batches(big))
    assert sum(len(g) for g in groups) == 12
    assert all(sum(len(b.encode()) for b in g) <= dm.BATCH_MAX_BYTES for g in groups)
    assert all(len(g) <= dm.BATCH_MAX_ENTRIES for g in groups)
    assert list(dm.batches([])) == []


KNOWN = dm.Known("tenant-a", "sub-1", "package.created", "event-1", "2026-12-01T10:00:00Z")


def test_what_never_changes_about_a_delivery_travels_with_it() -> None:
    message = dm.decode(dm.encode(UID, "{}", KNOWN))
    assert message == dm.DeliveryMessage(UID, "{}", KNOWN)
    assert dm.decode(dm.encode(UID, None, KNOWN)) == dm.DeliveryMessage(UID, None, KNOWN)
    # an event without a time (EventBridge fills it in; an empty string is kept)
    untimed = dm.Known("t", "s", "package.created", "e", "")
    assert dm.decode(dm.encode(UID, None, untimed)).known == untimed


@pytest.mark.parametrize(
    "known",
    [
        {"tenant": "t"},
        ["t", "s", "package.created", "e"],
        ["t", "s", "package.created", "e", "time", "extra"],
        ["", "s", "package.created", "e", "time"],
        ["t", 1, "package.created", "e", "time"],
        ["t", "s", "package.created", "e", None],
    ],
)
def test_a_malformed_known_is_refused(known: object) -> None:
    with pytest.raises(dm.MalformedMessage):
        dm.decode(json.dumps({"delivery": UID, "known": known}))
