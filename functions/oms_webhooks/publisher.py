"""The OMS side's publisher: put OMS events on the EventBridge bus, never losing one.

DESIGN §2: an OMS event is a ``PutEvents`` entry with ``Source`` = the
configured source (``oms``), ``DetailType`` = the event type (a catalogue
name; the hyphenated alias is accepted and normalised) and ``Detail`` = the
domain object as a JSON object.

Limits (EventBridge ``PutEvents``, DESIGN §8):

* at most 10 entries per call;
* at most 256 KB (262,144 bytes) per entry *and* per call, sizes computed as
  AWS documents ("Calculating Amazon EventBridge PutEvents event entry
  size"): ``Time`` counts 14 bytes when given; ``Source``, ``DetailType``,
  ``Detail`` and each ``Resources`` entry count their UTF-8 bytes
  (:func:`entry_size`). An entry over the limit is refused with
  :class:`EventTooLarge` before anything is sent.

``PutEvents`` answers HTTP 200 even when some entries failed
(``FailedEntryCount`` > 0, per-entry ``ErrorCode``/``ErrorMessage``): those
entries are sent again with exponential backoff and jitter, up to
``max_attempts`` calls in all; errors that cannot heal by retrying
(:data:`PERMANENT_ERRORS`, e.g. ``MalformedDetail``) are not retried. What
still failed is raised as :class:`PublishFailed`, with the ids of what was
published, so an event is never dropped silently. Errors of the whole call
(throttling, 5xx) are retried by botocore first (standard retry mode).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from oms_webhooks.event_json import (
    MAX_NESTING_DEPTH,
    dumps_compact,
    escape_lone_surrogates,
    nesting_depth,
)
from oms_webhooks.event_types import normalize_event_type
from oms_webhooks.settings import aws_endpoint_url, aws_region, get_settings

#: PutEvents: entries per call, and bytes per entry and per call (256 KB).
MAX_ENTRIES_PER_CALL = 10
MAX_BYTES = 256 * 1024
#: What ``Time`` counts in the entry size when given (AWS's size rule).
TIME_BYTES = 14
#: PutEvents entry error codes that retrying cannot fix.
PERMANENT_ERRORS = frozenset(
    {
        "MalformedDetail",
        "InvalidArgument",
        "AccessDeniedException",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "ResourceNotFoundException",
        "ValidationException",
    }
)
#: Calls for one entry in all (first try included), and the backoff, in seconds.
DEFAULT_MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0


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


@dataclass(frozen=True)
class FailedEntry:
    """An entry EventBridge did not accept, with its last error.

    Attributes:
        index: position in the ``events`` given to :func:`publish_events`.
        entry: the ``PutEvents`` request entry.
        error_code: EventBridge's ``ErrorCode`` (or the call's error code).
        error_message: EventBridge's ``ErrorMessage``.
    """

    index: int
    entry: dict[str, Any]
    error_code: str
    error_message: str = ""


class PublishError(Exception):
    """Base of the publisher's errors."""


class InvalidEvent(PublishError, ValueError):
    """An event type outside the catalogue, or a Detail that is not a JSON object.

    A Detail holding ``NaN`` or ``Infinity`` (which Python's json module
    writes and reads, but JSON and EventBridge do not have) is refused too.
    """


class EventTooLarge(PublishError, ValueError):
    """An entry over :data:`MAX_BYTES`; nothing was sent.

    Attributes:
        index: the entry's position; size: its size in bytes.
    """

    def __init__(self, index: int, size: int) -> None:
        super().__init__(
            f"event #{index} is {size} bytes, over EventBridge's {MAX_BYTES}-byte entry limit"
        )
        self.index = index
        self.size = size


class PublishFailed(PublishError):
    """Some entries were still failing after the retries.

    Attributes:
        failed: the entries that were not published, with their error codes.
        event_ids: per input position, the event id, or None for a failed entry.
    """

    def __init__(self, failed: Sequence[FailedEntry], event_ids: Sequence[str | None]) -> None:
        codes = sorted({f.error_code for f in failed})
        super().__init__(
            f"{len(failed)} of {len(event_ids)} events were not published ({', '.join(codes)})"
        )
        self.failed = list(failed)
        self.event_ids = list(event_ids)


@dataclass
class _Pending:
    index: int
    entry: dict[str, Any]
    size: int
    error: tuple[str, str] = field(default=("", ""))


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes of a ``PutEvents`` request entry as EventBridge counts them (module docstring)."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key) is not None:
            size += len(str(entry[key]).encode("utf-8"))
    for resource in entry.get("Resources") or ():
        if resource is not None:
            size += len(str(resource).encode("utf-8"))
    return size


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


def _batches(pending: Sequence[_Pending]) -> Iterable[list[_Pending]]:
    """Consecutive groups of ≤ 10 entries and ≤ :data:`MAX_BYTES` in all."""
    batch: list[_Pending] = []
    total = 0
    for item in pending:
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or total + item.size > MAX_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += item.size
    if batch:
        yield batch


def events_client() -> Any:
    """An EventBridge client at the process's endpoint (``AWS_ENDPOINT_URL``; unset = AWS)."""
    return boto3.session.Session().client(
        "events",
        endpoint_url=aws_endpoint_url(),
        region_name=aws_region(),
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): full jitter, capped."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


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
    if max_attempts < 1:
        raise ValueError("max_attempts must be ≥ 1")
    settings = get_settings()
    bus = bus_name or settings.bus_name
    src = source or settings.event_source
    pending: list[_Pending] = []
    for index, event in enumerate(events):
        entry = build_entry(event, bus_name=bus, source=src)
        size = entry_size(entry)
        if size > MAX_BYTES:
            raise EventTooLarge(index, size)
        pending.append(_Pending(index, entry, size))
    ids: list[str | None] = [None] * len(pending)
    if not pending:
        return []
    events_api = client if client is not None else events_client()
    failed: list[_Pending] = []
    for attempt in range(1, max_attempts + 1):
        if attempt > 1:
            sleep(_backoff(attempt - 1))
        retry: list[_Pending] = []
        for batch in _batches(pending):
            for item, error in zip(batch, _put(events_api, batch, ids), strict=True):
                if error is None:
                    continue
                item.error = error
                (failed if error[0] in PERMANENT_ERRORS else retry).append(item)
        pending = retry
        if not pending:
            break
    failed.extend(pending)
    if failed:
        failed.sort(key=lambda item: item.index)
        raise PublishFailed(
            [FailedEntry(f.index, f.entry, f.error[0], f.error[1]) for f in failed], ids
        )
    return [event_id for event_id in ids if event_id is not None]


def _put(
    events_api: Any, batch: Sequence[_Pending], ids: list[str | None]
) -> list[tuple[str, str] | None]:
    """One PutEvents call; fills ``ids``; returns per entry None or (code, message)."""
    try:
        response = events_api.put_events(Entries=[item.entry for item in batch])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = (str(error.get("Code") or "ClientError"), str(error.get("Message") or exc))
        return [code] * len(batch)
    except BotoCoreError as exc:  # connection refused, timeouts: retried as a whole
        return [(type(exc).__name__, str(exc))] * len(batch)
    results: list[tuple[str, str] | None] = []
    entries = response.get("Entries", [])
    for position, item in enumerate(batch):
        result = entries[position] if position < len(entries) else {}
        if result.get("EventId") and not result.get("ErrorCode"):
            ids[item.index] = str(result["EventId"])
            results.append(None)
        else:
            results.append(
                (
                    str(result.get("ErrorCode") or "MissingResult"),
                    str(result.get("ErrorMessage") or ""),
                )
            )
    return results


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
