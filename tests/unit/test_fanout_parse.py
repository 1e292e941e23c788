"""Parsing ingress messages: what is a webhook event and what is not (DESIGN §2)."""

import json

import pytest

from oms_webhooks.routing.fanout import MAX_EVENT_BYTES, OversizeEvent, Unroutable, parse_event


def _event(**overrides: object) -> str:
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "package.created",
        "source": "oms",
        "time": "2026-11-29T10:00:00Z",
        "detail": {"id": 1, "city": "İzmir"},
    }
    event.update(overrides)
    return json.dumps(event)


def test_a_catalogue_event_parses() -> None:
    event = parse_event(_event())
    assert (event.event_id, event.event_type, event.detail) == (
        "e-1",
        "package.created",
        {"id": 1, "city": "İzmir"},
    )
    assert json.loads(event.detail_json) == event.detail


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"detail-type": "package.created", "detail": {}}),
        _event(**{"detail-type": "order.exploded"}),
        _event(**{"detail-type": "package-created"}),
        _event(detail=[1, 2]),
        _event(detail="text"),
        _event(detail=None),
        '{"id": "e", "detail-type": "package.created", "detail": {"x": NaN}}',
        '{"id": "e", "detail-type": "package.created", "detail": {"x": ' + "9" * 5000 + "}}",
        '{"id": "e", "detail-type": "package.created", "detail": '
        + '{"a":' * 5000
        + "1"
        + "}" * 5001,
    ],
    ids=[
        "not-json",
        "array",
        "no-id",
        "unknown-type",
        "alias-not-on-the-bus",
        "array-detail",
        "string-detail",
        "null-detail",
        "nan",
        "5000-digits",
        "deep",
    ],
)
def test_non_webhook_events_are_unroutable(body: str) -> None:
    with pytest.raises(Unroutable):
        parse_event(body)


def test_oversize_event_is_left_for_the_dlq() -> None:
    with pytest.raises(OversizeEvent):
        parse_event(_event(detail={"blob": "x" * (MAX_EVENT_BYTES + 10)}))
