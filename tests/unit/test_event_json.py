"""An event's JSON text, size and nesting as EventBridge and the router see them (issue 13)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oms_webhooks.routing.event_json import (
    MAX_ENTRY_BYTES,
    MAX_NESTING_DEPTH,
    dumps_compact,
    entry_size,
    nesting_depth,
)
from oms_webhooks.routing.fanout import OversizeEvent, Unroutable, parse_event
from oms_webhooks_local.publisher import build_entry
from oms_webhooks_local.publisher import entry_size as publisher_entry_size


def _body(detail: Any, **extra: Any) -> str:
    """An ingress message as EventBridge writes it to SQS (every non-ASCII char escaped)."""
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "package.created",
        "source": "oms",
        "time": "2026-11-29T10:00:00Z",
        "resources": [],
        "detail": detail,
        **extra,
    }
    return json.dumps(event)


def test_lone_surrogates_stay_escapes_and_the_rest_is_utf8() -> None:
    detail = json.loads('{"a": "\\ud800 x \\udfff", "b": "é😀"}')
    text = dumps_compact(detail)
    assert text == '{"a":"\\ud800 x \\udfff","b":"é😀"}'
    text.encode("utf-8")  # strict
    assert json.loads(text) == detail


def test_an_emoji_costs_4_bytes_in_the_entry_and_12_in_the_queue_message() -> None:
    detail = {"t": "😀" * 1000}
    size = entry_size(source="oms", detail_type="package.created", detail=dumps_compact(detail))
    assert size == len("oms") + len("package.created") + len('{"t":""}') + 4 * 1000
    assert len(_body(detail)) > 12 * 1000


def test_the_router_sizes_as_eventbridge_does() -> None:
    # ~90 KB of emoji: ~270 KB as a queue message, well under the limit as an entry
    event = parse_event(_body({"t": "😀" * 22_500}))
    assert len(event.detail_json.encode()) == 22_500 * 4 + len('{"t":""}')
    # the router's size agrees with the publisher's for the same entry
    entry = build_entry(
        {"event_type": "package.created", "detail": event.detail}, bus_name="b", source="oms"
    )
    assert publisher_entry_size(entry) == entry_size(
        source="oms", detail_type="package.created", detail=event.detail_json
    )
    # one byte over the limit, counted in UTF-8 with the resources, is oversize
    overhead = len("oms") + len("package.created") + len('{"t":""}') + len("arn:x")
    fits = "é" * ((MAX_ENTRY_BYTES - overhead) // 2)
    assert parse_event(_body({"t": fits}, resources=["arn:x"]))
    with pytest.raises(OversizeEvent, match="bytes"):
        parse_event(_body({"t": fits + "é"}, resources=["arn:x"]))


def test_a_lone_surrogate_escape_is_routed() -> None:
    event = parse_event('{"id":"e","detail-type":"package.created","detail":{"a":"\\ud800"}}')
    assert event.detail_json == '{"a":"\\ud800"}'


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_nesting_depth() -> None:
    assert nesting_depth(1) == 0
    assert nesting_depth({}) == 1
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    assert nesting_depth(_nested(5000)) == 5000  # iterative: no RecursionError


def test_the_router_routes_up_to_the_nesting_limit() -> None:
    assert parse_event(_body(_nested(MAX_NESTING_DEPTH)))
    with pytest.raises(Unroutable, match="levels deep"):
        parse_event(_body(_nested(MAX_NESTING_DEPTH + 1)))
    deeper = (
        '{"id":"e","detail-type":"package.created","detail":' + '{"a":' * 5000 + "1" + "}" * 5001
    )
    with pytest.raises(Unroutable):
        parse_event(deeper)
