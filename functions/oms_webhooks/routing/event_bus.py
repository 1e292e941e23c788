"""The PutEvents core: put entries on an EventBridge bus in batches, retrying what failed.

Shared by the OMS publisher (:mod:`oms_webhooks_local.publisher`, the CLI's
``publish``) and the service's own operational events
(:mod:`oms_webhooks.delivery.operational_events`, sent by the dispatcher), so it ships
in the Lambda asset: it imports nothing but botocore and the settings.

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
published, so an entry is never dropped silently. Errors of the whole call
(throttling, 5xx) are retried by botocore first (standard retry mode).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from oms_webhooks import limits
from oms_webhooks.settings import aws_endpoint_url, aws_region

#: PutEvents: entries per call, and bytes per entry and per call (256 KB).
MAX_ENTRIES_PER_CALL = limits.EVENTBRIDGE_PUT_EVENTS_MAX_ENTRIES
MAX_BYTES = limits.EVENTBRIDGE_ENTRY_MAX_BYTES
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
class FailedEntry:
    """An entry EventBridge did not accept, with its last error.

    Attributes:
        index: position in the entries given to :func:`put_entries`.
        entry: the ``PutEvents`` request entry.
        error_code: EventBridge's ``ErrorCode`` (or the call's error code).
        error_message: EventBridge's ``ErrorMessage``.
    """

    index: int
    entry: dict[str, Any]
    error_code: str
    error_message: str = ""


class PublishError(Exception):
    """Base of the errors of putting events on the bus."""


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
    from botocore.config import Config
    from botocore.session import Session

    return Session().create_client(
        "events",
        endpoint_url=aws_endpoint_url(),
        region_name=aws_region(),
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): full jitter, capped."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def put_entries(
    entries: Sequence[dict[str, Any]],
    *,
    client: Any = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Put ready ``PutEvents`` request entries on their bus; return their event ids in order.

    Args:
        entries: request entries (``EventBusName``, ``Source``, ``DetailType``,
            ``Detail`` as a JSON string, optionally ``Time`` and ``Resources``).
        client: a botocore EventBridge client; default :func:`events_client`.
        max_attempts: calls per entry in all, ≥ 1 (failed entries are retried).
        sleep: how to wait between attempts (tests pass a no-op).

    Raises:
        EventTooLarge: an entry over 256 KB; nothing was sent.
        PublishFailed: entries still failing after the retries (its
            ``failed`` lists them with their error codes; ``event_ids`` has
            the ids of those published).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be ≥ 1")
    pending: list[_Pending] = []
    for index, entry in enumerate(entries):
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


__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_BYTES",
    "MAX_ENTRIES_PER_CALL",
    "PERMANENT_ERRORS",
    "EventTooLarge",
    "FailedEntry",
    "PublishError",
    "PublishFailed",
    "entry_size",
    "events_client",
    "put_entries",
]
