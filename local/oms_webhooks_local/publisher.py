"""The OMS side's publisher: put OMS events on the EventBridge bus, never losing one.

DESIGN §2: an OMS event is a ``PutEvents`` entry with ``Source`` = the
configured source (``oms``), ``DetailType`` = the event type (a catalogue
name; the hyphenated alias is accepted and normalised) and ``Detail`` = the
domain object as a JSON object.

The batching, sizes (≤ 10 entries and ≤ 256 KB per call, AWS's size rule)
and retry of failed entries are :mod:`oms_webhooks.routing.event_bus`'s, the core
this module shares with the service's operational events; its names are
re-exported here. An entry over 256 KB is refused with :class:`EventTooLarge`
before anything is sent; entries still failing after the retries are raised
as :class:`PublishFailed`, so an event is never dropped silently.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oms_webhooks.routing.event_bus import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_BYTES,
    MAX_ENTRIES_PER_CALL,
    PERMANENT_ERRORS,
    EventTooLarge,
    FailedEntry,
    PublishError,
    PublishFailed,
    entry_size,
    events_client,
    put_entries,
)
from oms_webhooks.routing.event_json import (
    MAX_NESTING_DEPTH,
    dumps_compact,
    escape_lone_surrogates,
    nesting_depth,
)
from oms_webhooks.routing.event_types import normalize_event_type
from oms_webhooks.settings import get_settings


@dataclass(frozen=True)
class OmsEventEntry:
    """One OMS event to publish.

    Attributes:
        event_type: a catalogue event type (``package.created``) or its
            hyphenated alias (``package-created``).
        detail: the domain object: a mapping, or a string holding a JSON object.
        time: the event's time (EventBridge's ``time``); None = when received.
        resources: ARNs or other identifiers of what the event is about (optional).
    """

    event_type: str
    detail: Mapping[str, Any] | str
    time: datetime | None = None
    resources: tuple[str, ...] = ()


class InvalidEvent(PublishError, ValueError):
    """An event type outside the catalogue, or a Detail that is not a JSON object.

    A Detail holding ``NaN`` or ``Infinity`` (which Python's json module
    writes and reads, but JSON and EventBridge do not have) is refused too.
    """


#: Why a Detail with NaN or Infinity is refused (JSON has neither; EventBridge refuses them).
NON_FINITE_MESSAGE = (
    "Detail is not valid JSON: NaN and Infinity are not JSON numbers, and EventBridge "
    "refuses them (a number such as 1e400 overflows to Infinity)"
)


def _json_kind(value: Any) -> str:
    """What ``value`` is, in JSON's words (``a JSON array``, ...) for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, list | tuple):
        return "a JSON array"
    return type(value).__name__


def _refuse_non_finite(text: str) -> float:
    """``parse_float``/``parse_constant`` hook: NaN, ±Infinity and overflowing numbers."""
    number = float(text)
    if not math.isfinite(number):
        raise InvalidEvent(NON_FINITE_MESSAGE)
    return number


def parse_detail(text: str) -> dict[str, Any]:
    """Parse a Detail given as JSON text: it must be a JSON object of JSON numbers only.

    Raises:
        InvalidEvent: ``text`` is not JSON, not an object, or holds ``NaN``,
            ``Infinity`` or a number that overflows to it (``1e400``), which
            Python's json module accepts but JSON and EventBridge do not.
    """
    try:
        parsed = json.loads(text, parse_float=_refuse_non_finite, parse_constant=_refuse_non_finite)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"Detail is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidEvent(
            f"Detail nests too deeply; at most {MAX_NESTING_DEPTH} levels are delivered"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidEvent(f"Detail must be a JSON object, not {_json_kind(parsed)}")
    _check_depth(parsed)
    return parsed


def _check_depth(detail: Any) -> None:
    """Refuse a Detail nested deeper than the router routes (``event_json.MAX_NESTING_DEPTH``)."""
    depth = nesting_depth(detail)
    if depth > MAX_NESTING_DEPTH:
        raise InvalidEvent(
            f"Detail nests {depth} levels deep; at most {MAX_NESTING_DEPTH} are delivered"
        )


def _detail_json(detail: Any) -> str:
    """The ``Detail`` string of ``detail`` (a mapping, or JSON text kept as given)."""
    if isinstance(detail, str):
        parse_detail(detail)
        return escape_lone_surrogates(detail)
    if not isinstance(detail, Mapping):
        raise InvalidEvent(f"Detail must be a JSON object, not {_json_kind(detail)}")
    options: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}
    try:  # a lone surrogate ("\ud800" in JSON) stays an escape: the text must be UTF-8
        text = dumps_compact(dict(detail))
    except RecursionError:
        raise InvalidEvent(
            f"Detail nests too deeply; at most {MAX_NESTING_DEPTH} levels are delivered"
        ) from None
    except (TypeError, ValueError) as exc:
        error = exc
    else:
        _check_depth(dict(detail))  # after dumps: no cycle left to walk
        return text
    try:  # Is NaN or Infinity what made it fail (or a cycle, an unknown type)?
        json.dumps(dict(detail), allow_nan=True, **options)
    except (TypeError, ValueError):
        raise InvalidEvent(f"Detail is not JSON-serialisable: {error}") from None
    raise InvalidEvent(NON_FINITE_MESSAGE) from None


def _as_entry(event: OmsEventEntry | Mapping[str, Any]) -> OmsEventEntry:
    if isinstance(event, OmsEventEntry):
        return event
    if not isinstance(event, Mapping) or "event_type" not in event or "detail" not in event:
        raise InvalidEvent("an event is an OmsEventEntry or a dict with event_type and detail")
    return OmsEventEntry(
        event_type=event["event_type"],
        detail=event["detail"],
        time=event.get("time"),
        resources=tuple(event.get("resources") or ()),
    )


def build_entry(
    event: OmsEventEntry | Mapping[str, Any], *, bus_name: str, source: str
) -> dict[str, Any]:
    """The ``PutEvents`` request entry of ``event``.

    Raises:
        InvalidEvent: unknown event type (the message lists the valid ones),
            or a detail that is not a JSON object (or holds NaN or Infinity).
    """
    oms_event = _as_entry(event)
    try:
        event_type = normalize_event_type(str(oms_event.event_type))
    except ValueError as exc:
        raise InvalidEvent(str(exc)) from None
    entry: dict[str, Any] = {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": event_type,
        "Detail": _detail_json(oms_event.detail),
    }
    if oms_event.time is not None:
        entry["Time"] = oms_event.time
    if oms_event.resources:
        entry["Resources"] = list(oms_event.resources)
    return entry


def publish_events(
    events: Iterable[OmsEventEntry | Mapping[str, Any]],
    *,
    client: Any = None,
    bus_name: str | None = None,
    source: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Publish OMS events; return their EventBridge event ids, in input order.

    Args:
        events: :class:`OmsEventEntry` objects or dicts with ``event_type``,
            ``detail`` and optionally ``time`` and ``resources``.
        client: a boto3 EventBridge client; default :func:`events_client`.
        bus_name: default the ``bus_name`` setting (``oms``).
        source: default the ``event_source`` setting (``oms``).
        max_attempts: calls per entry in all, ≥ 1 (failed entries are retried).
        sleep: how to wait between attempts (tests pass a no-op).

    Raises:
        InvalidEvent: an event type outside the catalogue or a bad detail (not
            a JSON object, or holding NaN or Infinity); nothing was sent.
        EventTooLarge: an entry over 256 KB; nothing was sent.
        PublishFailed: entries still failing after the retries (its
            ``failed`` lists them with their error codes; ``event_ids`` has
            the ids of those published).
    """
    settings = get_settings()
    bus = bus_name or settings.bus_name
    src = source or settings.event_source
    entries = [build_entry(event, bus_name=bus, source=src) for event in events]
    return put_entries(entries, client=client, max_attempts=max_attempts, sleep=sleep)


def publish_event(
    event_type: str,
    detail: Mapping[str, Any] | str,
    *,
    time: datetime | None = None,
    resources: Sequence[str] = (),
    client: Any = None,
    bus_name: str | None = None,
    source: str | None = None,
) -> str:
    """Publish one OMS event; return its EventBridge event id (errors of :func:`publish_events`)."""
    entry = OmsEventEntry(event_type, detail, time=time, resources=tuple(resources))
    return publish_events([entry], client=client, bus_name=bus_name, source=source)[0]


__all__ = [
    "MAX_BYTES",
    "MAX_ENTRIES_PER_CALL",
    "NON_FINITE_MESSAGE",
    "PERMANENT_ERRORS",
    "EventTooLarge",
    "FailedEntry",
    "InvalidEvent",
    "OmsEventEntry",
    "PublishError",
    "PublishFailed",
    "build_entry",
    "entry_size",
    "events_client",
    "parse_detail",
    "publish_event",
    "publish_events",
]
