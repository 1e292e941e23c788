"""An event's JSON text and its size, as EventBridge counts it.

Two rules that the publisher, the router and the delivery log share:

* **JSON text.** A Detail is written compactly (``","``/``":"``) with
  ``ensure_ascii=False``, so non-ASCII text costs its UTF-8 bytes and not a
  6- or 12-byte ``\\uXXXX`` escape (DESIGN §4). The one exception is a lone
  surrogate (``"\\ud800"``: valid JSON syntax, not valid Unicode, so it has
  no UTF-8 form): it stays the ``\\uXXXX`` escape it came as, so the text is
  always valid UTF-8 and JSON-equal to what the OMS sent (issue 13).
* **Nesting.** A Detail may nest at most :data:`MAX_NESTING_DEPTH` (512)
  objects and arrays deep: well inside what Python's json module parses and
  writes on every path (router, dispatcher, delivery log), so whatever the
  publisher and the router accept is delivered and shown (issue 13).
* **Size.** EventBridge sizes a ``PutEvents`` entry as the UTF-8 bytes of
  ``Source``, ``DetailType``, ``Detail`` and each ``Resources`` entry, plus
  14 bytes for ``Time`` when given; an entry may be at most 262,144 bytes
  (AWS: "Calculating Amazon EventBridge PutEvents event entry size"). Never
  the size of an SQS message carrying the event: EventBridge writes the
  event there with every non-ASCII character escaped (an emoji is 12 bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final

from oms_webhooks import limits

__all__ = [
    "MAX_ENTRY_BYTES",
    "MAX_NESTING_DEPTH",
    "TIME_BYTES",
    "dumps_compact",
    "entry_size",
    "escape_lone_surrogates",
    "nesting_depth",
]

#: EventBridge's largest ``PutEvents`` entry, in bytes (256 KB), DESIGN §8.
MAX_ENTRY_BYTES: Final = limits.EVENTBRIDGE_ENTRY_MAX_BYTES
#: Deepest nesting of objects and arrays in a Detail (the Detail object itself is 1).
MAX_NESTING_DEPTH: Final = 512
#: What ``Time`` counts in an entry's size when given, in bytes.
TIME_BYTES: Final = 14

_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def escape_lone_surrogates(text: str) -> str:
    """``text`` with each surrogate code point written as its JSON escape ``\\udXXX``.

    Only JSON text produced with ``ensure_ascii=False`` (or given by a user)
    may hold them, and only inside strings, where the escape means the same.

    >>> escape_lone_surrogates('{"a":"\\ud800"}')
    '{"a":"\\\\ud800"}'
    """
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def dumps_compact(value: Any) -> str:
    """Compact JSON text of ``value``: ``ensure_ascii=False``, lone surrogates escaped.

    The result always encodes as UTF-8.

    Raises:
        ValueError: NaN or an infinite float (not JSON, RFC 8259 §6).
        TypeError: a value that is not JSON-serialisable.
        RecursionError: nesting deeper than the interpreter's recursion limit.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return escape_lone_surrogates(text)


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1).

    Iterative, so it never hits the recursion limit itself.

    >>> nesting_depth({"a": [1, {"b": []}]})
    4
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _utf8_bytes(text: str) -> int:
    # surrogatepass: a caller's own text may still hold a lone surrogate; EventBridge
    # would see its escape, which is longer, but never fewer bytes than this.
    return len(text.encode("utf-8", errors="surrogatepass"))


def entry_size(
    *,
    source: str | None,
    detail_type: str | None,
    detail: str | None,
    resources: Iterable[str | None] = (),
    has_time: bool = False,
) -> int:
    """Bytes of an event entry as EventBridge counts them (module docstring).

    Args:
        source, detail_type, detail: the entry's ``Source``, ``DetailType``
            and ``Detail`` (JSON text); None counts 0.
        resources: the ``Resources`` entries (None entries count 0).
        has_time: whether the entry gives ``Time`` (+14 bytes).

    >>> entry_size(source="oms", detail_type="package.created", detail='{"a":"😀"}')
    30
    """
    size = TIME_BYTES if has_time else 0
    for text in (source, detail_type, detail, *resources):
        if text is not None:
            size += _utf8_bytes(str(text))
    return size
