"""The publisher's rules that need no AWS: entry size, validation, the 256 KB refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from oms_webhooks_local.publisher import (
    MAX_BYTES,
    EventTooLarge,
    InvalidEvent,
    OmsEventEntry,
    build_entry,
    entry_size,
    publish_event,
    publish_events,
)


class NoCalls:
    """A client that fails the test if anything is sent."""

    def put_events(self, **kwargs: Any) -> Any:
        raise AssertionError("nothing may be sent")


def test_entry_size_follows_the_aws_rule() -> None:
    # Time: 14 bytes; Source, DetailType, Detail, each resource: their UTF-8 bytes.
    entry = {
        "Source": "oms",
        "DetailType": "package.created",
        "Detail": '{"name":"café"}',
        "Resources": ["arn:x", "ü"],
        "Time": datetime(2026, 1, 1, tzinfo=UTC),
        "EventBusName": "not counted",
    }
    assert entry_size(entry) == 14 + 3 + 15 + 16 + 5 + 2
    assert entry_size({"Source": "oms", "DetailType": "a", "Detail": "{}"}) == 6


def test_build_entry_normalises_the_alias_and_encodes_compact_utf8() -> None:
    entry = build_entry(
        {"event_type": "package-created", "detail": {"name": "café", "n": [1, 2]}},
        bus_name="oms",
        source="oms",
    )
    assert entry == {
        "EventBusName": "oms",
        "Source": "oms",
        "DetailType": "package.created",
        "Detail": '{"name":"café","n":[1,2]}',
    }


def test_build_entry_keeps_a_json_object_string_and_time_and_resources() -> None:
    when = datetime(2026, 5, 1, 12, tzinfo=UTC)
    entry = build_entry(
        OmsEventEntry("shipment.created", '{"a": 1}', time=when, resources=("r1",)),
        bus_name="b",
        source="s",
    )
    assert entry["Detail"] == '{"a": 1}'
    assert entry["Time"] == when
    assert entry["Resources"] == ["r1"]


def test_an_unknown_event_type_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidEvent, match=r"package\.created.*stock_location\.updated"):
        publish_event("package.exploded", {}, client=NoCalls())


@pytest.mark.parametrize("detail", [[1, 2], "[1]", "not json", 3, None, '"text"', {"x": {1, 2}}])
def test_a_detail_that_is_not_a_json_object_is_refused(detail: Any) -> None:
    with pytest.raises(InvalidEvent):
        publish_event("package.created", detail, client=NoCalls())


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ('"text"', "Detail must be a JSON object, not a JSON string"),
        ("[1]", "Detail must be a JSON object, not a JSON array"),
        ([1, 2], "Detail must be a JSON object, not a JSON array"),
        (3, "Detail must be a JSON object, not a JSON number"),
        (None, "Detail must be a JSON object, not null"),
        ("not json", "Detail is not JSON: Expecting value: line 1 column 1"),
        ({"x": {1, 2}}, "Detail is not JSON-serialisable: Object of type set"),
    ],
)
def test_a_refused_detail_says_why(detail: Any, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        publish_event("package.created", detail, client=NoCalls())
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "detail",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": [1, {"y": -float("inf")}]},
        json.loads('{"x": 1e400}'),  # Python reads it as Infinity
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": [-Infinity]}',
        '{"x": 1e400}',
    ],
)
def test_nan_and_infinity_are_refused_json_has_neither(detail: Any) -> None:
    # EventBridge rejects non-JSON numbers; Python's json module would write them.
    with pytest.raises(InvalidEvent, match=r"^Detail .*NaN and Infinity are not JSON numbers"):
        publish_event("package.created", detail, client=NoCalls())
    with pytest.raises(InvalidEvent):
        publish_events([{"event_type": "package.created", "detail": detail}], client=NoCalls())


def test_finite_numbers_pass_as_given() -> None:
    entry = build_entry(
        {"event_type": "package.created", "detail": {"x": 1.5, "y": -1e300, "z": 10**30}},
        bus_name="oms",
        source="oms",
    )
    assert json.loads(entry["Detail"]) == {"x": 1.5, "y": -1e300, "z": 10**30}
    text = '{"x": 1.5e3, "y": -0.0}'
    assert (
        build_entry(OmsEventEntry("package.created", text), bus_name="o", source="o")["Detail"]
        == text
    )


def test_an_event_over_256_kb_is_refused_before_any_call() -> None:
    fixed = len("oms") + len("package.created") + len('{"x":""}')
    fits = {"x": "a" * (MAX_BYTES - fixed)}
    too_big = {"x": "a" * (MAX_BYTES - fixed + 1)}
    assert (
        entry_size(
            build_entry(
                {"event_type": "package.created", "detail": fits}, bus_name="oms", source="oms"
            )
        )
        == MAX_BYTES
    )
    events = [{"event_type": "package.created", "detail": {"ok": 1}}] * 3
    events.append({"event_type": "package.created", "detail": too_big})
    with pytest.raises(EventTooLarge) as caught:
        publish_events(events, client=NoCalls(), bus_name="oms", source="oms")
    assert caught.value.index == 3
    assert caught.value.size == MAX_BYTES + 1


def test_multibyte_characters_count_as_their_utf8_bytes() -> None:
    detail = {"x": "é" * (MAX_BYTES // 2)}  # 2 bytes each: over the limit in bytes
    assert len(json.dumps(detail, ensure_ascii=False)) < MAX_BYTES
    with pytest.raises(EventTooLarge):
        publish_event("package.created", detail, client=NoCalls())


def test_nothing_to_publish_sends_nothing() -> None:
    assert publish_events([], client=NoCalls()) == []


def test_bad_event_shapes_are_refused() -> None:
    with pytest.raises(InvalidEvent):
        publish_events([{"DetailType": "package.created", "Detail": "{}"}], client=NoCalls())
