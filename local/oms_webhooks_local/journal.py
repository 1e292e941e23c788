"""The local state's journal: moto's writes tracked, and snapshots as JSON lines.

:class:`WriteTracker` learns which DynamoDB items were written (moto's
``DynamoDBBackend`` write methods report to the active tracker once
:func:`activate` wrapped them); a snapshot is one JSON line
(:func:`journal_line`) of items and keys in DynamoDB's wire JSON
(:func:`item_json`) and queue messages (:func:`message_json`);
:func:`read_journal` and :func:`replay` fold the lines back into the state
to load. The file layout is described in :mod:`oms_webhooks_local.persistence`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The journal's format version (``"v"`` of every line).
FORMAT_VERSION = 1

#: (table name, key as sorted wire JSON) of items written since the last snapshot.
DirtyKey = tuple[str, str]


def wire(value: Any) -> dict[str, Any]:
    """A moto ``DynamoType`` as DynamoDB's wire JSON (``{"S": "x"}``, maps and lists nested)."""
    inner = value.value
    if isinstance(inner, dict):
        inner = {k: wire(v) for k, v in inner.items()}
    elif isinstance(inner, list) and value.type == "L":
        inner = [wire(v) if hasattr(v, "type") else v for v in inner]
    elif isinstance(inner, bytes):
        inner = base64.b64encode(inner).decode("ascii")
    return {value.type: inner}


def item_json(item: Any) -> dict[str, Any]:
    """A moto ``Item``'s attributes as wire JSON."""
    return {name: wire(value) for name, value in list(item.attrs.items())}


def key_of(table: Any, attributes: dict[str, Any]) -> str:
    """The key attributes of ``attributes`` on ``table`` as sorted JSON (the dirty-set key)."""
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return json.dumps({n: attributes[n] for n in names if n in attributes}, sort_keys=True)


def message_json(message: Any) -> dict[str, Any]:
    """A moto SQS ``Message`` as ``{"id", "body", "attributes"}`` (binary attributes left out)."""
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue")}
        for name, value in dict(message.message_attributes).items()
        if isinstance(value, dict) and "StringValue" in value
    }
    return {"id": message.id, "body": message.body, "attributes": attributes}


class WriteTracker:
    """Which items were written since the last snapshot (moto reports to the active one)."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.lock = threading.Lock()
        self.dirty: set[DirtyKey] = set()

    def mark(self, backend: Any, table_name: str, attributes: Any) -> None:
        """Mark the key of ``attributes`` in ``table_name`` dirty (other accounts: ignored)."""
        if (backend.account_id, backend.region_name) != (self.account_id, self.region):
            return
        with contextlib.suppress(Exception):  # an unknown table: the call itself failed
            table = backend.get_table(table_name)
            key = key_of(table, dict(attributes))
            with self.lock:
                self.dirty.add((table_name, key))

    def take(self) -> set[DirtyKey]:
        """The dirty keys, leaving none."""
        with self.lock:
            taken, self.dirty = self.dirty, set()
        return taken

    def give_back(self, keys: set[DirtyKey]) -> None:
        """Mark ``keys`` dirty again (their snapshot failed)."""
        with self.lock:
            self.dirty |= keys


#: The tracker moto's DynamoDB backend reports writes to (None: nobody listens).
_TRACKER: WriteTracker | None = None
_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    """Wrap moto's ``DynamoDBBackend`` write methods so they mark their keys dirty (once)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.dynamodb.models import DynamoDBBackend

        def wrap(name: str, key_of: Callable[..., Any]) -> None:
            original = getattr(DynamoDBBackend, name)

            @functools.wraps(original)
            def wrapper(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
                try:
                    return original(self, table_name, *args, **kwargs)
                finally:
                    tracker = _TRACKER
                    if tracker is not None:
                        with contextlib.suppress(Exception):
                            tracker.mark(self, table_name, key_of(*args, **kwargs))

            setattr(DynamoDBBackend, name, wrapper)

        wrap("put_item", lambda item_attrs, *a, **k: item_attrs)
        wrap("update_item", lambda key, *a, **k: key)
        wrap("delete_item", lambda key, *a, **k: key)
        _installed = True


def activate(tracker: WriteTracker) -> None:
    """Make moto's DynamoDB backend report its writes to ``tracker``."""
    global _TRACKER
    _install()
    _TRACKER = tracker


def deactivate(tracker: WriteTracker) -> None:
    """Stop reporting writes to ``tracker`` (if it is the active one)."""
    global _TRACKER
    if _TRACKER is tracker:
        _TRACKER = None


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """The snapshots of the journal at ``path``, oldest first (none if it is missing).

    A last line cut short by a crash ends them; an unreadable line is skipped.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                logger.warning("state: snapshot %d was cut short (a crash); ignored", number)
                return
            try:
                yield json.loads(line)
            except ValueError:
                logger.warning("state: snapshot %d is unreadable; ignored", number)


#: Per table, its items by key JSON; per queue, its messages by id.
State = dict[str, dict[str, dict[str, Any]]]


def replay(
    snapshots: Iterable[dict[str, Any]], key_json: Callable[[str, dict[str, Any]], str]
) -> tuple[State, State]:
    """Fold ``snapshots`` (oldest first) into the items and queued messages they leave.

    A full snapshot starts over. ``key_json(table_name, item)`` is an item's
    key as sorted JSON (its identity in the table).

    Returns:
        (items per table by key, messages per queue by id).
    """
    state: State = {}
    queued: State = {}
    for snapshot in snapshots:
        if snapshot.get("full"):
            state, queued = {}, {}
        for queue_name, changes in snapshot.get("queues", {}).items():
            messages = queued.setdefault(queue_name, {})
            for message_id in changes.get("delete", []):
                messages.pop(message_id, None)
            for message in changes.get("put", []):
                messages[message["id"]] = message
        for table_name, changes in snapshot.get("tables", {}).items():
            items = state.setdefault(table_name, {})
            for key in changes.get("delete", []):
                items.pop(json.dumps(key, sort_keys=True), None)
            for item in changes.get("put", []):
                items[key_json(table_name, item)] = item
    return state, queued


def items_of(table: Any) -> list[Any]:
    """Every item of a moto table (a copy of the list: writers may run meanwhile)."""
    for _ in range(5):
        with contextlib.suppress(RuntimeError):
            return list(table.all_items())
    return list(table.all_items())


def journal_line(document: dict[str, Any]) -> bytes:
    """``document`` as one compact JSON line (a snapshot of the journal)."""
    return (json.dumps(document, separators=(",", ":")) + "\n").encode("utf-8")


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


__all__ = [
    "FORMAT_VERSION",
    "DirtyKey",
    "State",
    "WriteTracker",
    "activate",
    "deactivate",
    "item_json",
    "items_of",
    "journal_line",
    "key_of",
    "message_json",
    "read_journal",
    "replay",
    "write_atomically",
]
