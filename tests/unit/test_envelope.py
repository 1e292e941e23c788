"""The delivery body (DESIGN §4): exact bytes, compact UTF-8 JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms_webhooks.delivery.request.envelope import build_envelope

UUID = "0123456789abcdef0123456789abcdef"


def _build(payload: Any) -> bytes:
    return build_envelope(
        event_type="package.created",
        delivery_uuid=UUID,
        event_time="2024-05-01T12:00:00.123Z",
        payload=payload,
    )


def test_exact_bytes_compact_and_ordered() -> None:
    body = _build({"id": "P-1", "items": [1, 2.5, None, True]})
    assert body == (
        b'{"event":{"type":"package.created","uuid":"0123456789abcdef0123456789abcdef",'
        b'"time":"2024-05-01T12:00:00.123Z"},"payload":{"id":"P-1","items":[1,2.5,null,true]}}'
    )


def test_non_ascii_is_utf8_not_escaped() -> None:
    body = _build({"city": "Zürich", "emoji": "📦"})
    assert "Zürich".encode() in body and "📦".encode() in body
    assert b"\\u" not in body


def test_lone_surrogate_becomes_json_escape_and_body_stays_utf8() -> None:
    body = _build({"s": "a\ud800b"})
    body.decode("utf-8")  # valid UTF-8
    assert b'"a\\ud800b"' in body
    assert json.loads(body)["payload"] == {"s": "a\ud800b"}


@pytest.mark.parametrize("payload", [None, [], "text", 0, {"nested": {"deep": [{}]}}])
def test_any_json_payload(payload: Any) -> None:
    assert json.loads(_build(payload)) == {
        "event": {"type": "package.created", "uuid": UUID, "time": "2024-05-01T12:00:00.123Z"},
        "payload": payload,
    }


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        _build({"x": math.nan})


def test_non_serializable_is_refused() -> None:
    with pytest.raises(TypeError):
        _build({"x": object()})


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=15,
    )
)
def test_round_trip(payload: Any) -> None:
    body = _build(payload)
    assert json.loads(body.decode("utf-8"))["payload"] == payload
