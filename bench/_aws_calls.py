"""Counting AWS calls for the benchmarks: the processes' call logs, moto's recorder, units.

No side effects at import (unlike ``_common``), so tests import it too.

* :func:`read_call_log` reads what ``oms_webhooks/aws_call_log.py`` wrote
  (one JSON line per botocore call, per process, into one directory);
* :func:`read_recording` reads moto's request recorder
  (``/moto-api/recorder/download-recording``; each line one HTTP request
  with its headers);
* :func:`cross_check` matches them request by request
  (``amz-sdk-invocation-id`` + ``amz-sdk-request``) and raises
  :class:`CountMismatch` when they disagree;
* :class:`Units` prices DynamoDB calls in request units by DynamoDB's rules
  (developer guide, "Read/write capacity mode" and "Item sizes and formats").
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests


class CountMismatch(RuntimeError):
    """The call log and moto's recorder disagree."""


# -- reading the two logs -------------------------------------------------------


def read_call_log(directory: str, since: float = 0.0) -> list[dict[str, Any]]:
    """Every line the processes wrote to ``directory`` ending after ``since``.

    Only whole lines: a line another process is still writing (seen cut at a
    load of 7 while a benchmark polled the log) is read on the next call.
    """
    lines: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob("aws-calls-*.jsonl")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for raw in text[: text.rfind("\n") + 1].splitlines():
            if raw.strip():
                record = json.loads(raw)
                if record["end"] >= since:
                    lines.append(record)
    return lines


def deleted_messages(directory: str, since: float) -> int:
    """SQS messages the pollers deleted since ``since`` (``DeleteMessageBatch`` successes).

    ``directory`` is the call log's (:func:`read_call_log`); ``since`` a
    ``time.time()`` in seconds.
    """
    return sum(
        len(r.get("response", {}).get("Successful", []))
        for r in read_call_log(directory, since)
        if r.get("operation") == "DeleteMessageBatch" and r["start"] >= since
    )


def function_of(record: Mapping[str, Any]) -> str:
    """Who a call is billed to: a function, the event source mapping, or ``unattributed``."""
    function = record.get("function")
    if function:
        return str(function).removeprefix("oms-webhooks-")
    if str(record.get("thread", "")).startswith("poller:"):
        return "event_source_mapping"
    return "unattributed"


def _recorded_operation(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(service, operation) of one moto recorder entry (signature scope, target or Action)."""
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    scope = headers.get("authorization", "").split("Credential=", 1)[-1].split(",", 1)[0]
    parts = scope.split("/")
    service = parts[3] if len(parts) > 3 else "?"
    target = headers.get("x-amz-target", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    for pair in str(body).split("&"):
        if pair.startswith("Action="):
            return service, pair[len("Action=") :]
    return service, "?"


def read_recording(endpoint: str) -> list[dict[str, Any]]:
    """moto's recorded requests (:func:`parse_recording`), downloaded from ``endpoint``."""
    text = requests.get(f"{endpoint}/moto-api/recorder/download-recording", timeout=30).text
    return parse_recording(text)


def parse_recording(text: str) -> list[dict[str, Any]]:
    """moto's recording → one dict per AWS request: ``service``, ``operation``, ``key``.

    ``key`` is ``(amz-sdk-invocation-id, amz-sdk-request)``; requests to
    ``/moto-api/`` are left out.
    """
    entries = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        entry = json.loads(raw)
        if "/moto-api/" in entry.get("url", ""):
            continue
        headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
        service, operation = _recorded_operation(entry)
        entries.append(
            {
                "service": service,
                "operation": operation,
                "key": (headers.get("amz-sdk-invocation-id"), headers.get("amz-sdk-request")),
            }
        )
    return entries


def recorder(endpoint: str, action: str) -> None:
    response = requests.post(f"{endpoint}/moto-api/recorder/{action}", timeout=10)
    response.raise_for_status()


def cross_check(
    calls: list[dict[str, Any]], recorded: list[dict[str, Any]], start: float, end: float
) -> dict[str, Any]:
    """Match the call log with moto's recording, request by request.

    ``calls`` are the logged calls overlapping [start, end]. Raises
    :class:`CountMismatch` (with both tallies) when moto saw a request no
    process logged, or a call logged wholly inside the window never reached
    moto. The benchmark's own calls are left out of both tallies.
    """
    logged: dict[tuple[Any, Any], dict[str, Any]] = {}
    for call in calls:
        for attempt in call["attempts"]:
            logged[(attempt["id"], attempt["attempt"])] = call
    seen = {tuple(entry["key"]) for entry in recorded}
    unlogged = [e for e in recorded if tuple(e["key"]) not in logged]
    never_seen = [
        call
        for call in calls
        if call["start"] >= start
        and call["end"] <= end
        and any((a["id"], a["attempt"]) not in seen for a in call["attempts"])
    ]
    ours = [e for e in recorded if tuple(e["key"]) in logged]
    by_recorder = Counter(
        f"{e['service']}:{e['operation']}"
        for e in ours
        if function_of(logged[tuple(e["key"])]) != "bench"
    )
    by_log = Counter(
        f"{call['service']}:{call['operation']}"
        for call in calls
        if function_of(call) != "bench"
        for attempt in call["attempts"]
        if (attempt["id"], attempt["attempt"]) in seen
    )
    tallies = {
        "moto_recorder": dict(sorted(by_recorder.items())),
        "call_log": dict(sorted(by_log.items())),
    }
    if unlogged or never_seen or by_recorder != by_log:
        problems = {
            "seen_by_moto_not_logged": Counter(
                f"{e['service']}:{e['operation']}" for e in unlogged
            ),
            "logged_never_seen_by_moto": Counter(
                f"{x['service']}:{x['operation']}" for x in never_seen
            ),
            **tallies,
        }
        raise CountMismatch(json.dumps(problems, default=dict))
    return {"requests_matched": sum(by_log.values()), **tallies}


# -- DynamoDB request units by DynamoDB's rules ------------------------------------


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value ("Item sizes and formats", developer guide)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8"))
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(attribute_size({"B": b}) for b in inner)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of one item: its attribute names and values."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attribute_size(v) for name, v in item.items())


@dataclass
class TableKeys:
    keys: tuple[str, ...]
    indexes: list[tuple[str, ...]]
    #: Per index, the non-key attributes it copies (None: ALL).
    projections: list[tuple[str, ...] | None] | None = None


def table_keys() -> dict[str, TableKeys]:
    """Table name → key attributes and the key attributes of each GSI (from storage/specs.py)."""
    from oms_webhooks.settings import get_settings
    from oms_webhooks.storage import specs

    def names(hash_key: tuple[str, str], range_key: tuple[str, str] | None) -> tuple[str, ...]:
        return (hash_key[0],) + ((range_key[0],) if range_key else ())

    return {
        spec.name(get_settings()): TableKeys(
            names(spec.hash_key, spec.range_key),
            [names(i.hash_key, i.range_key) for i in spec.indexes],
            [i.non_key_attributes for i in spec.indexes],
        )
        for spec in specs.table_specs()
    }


class Units:
    """DynamoDB read and write request units of logged calls (module docstring)."""

    def __init__(self, tables: Mapping[str, TableKeys], final: Mapping[str, int]) -> None:
        self.tables = tables
        self.final = final  # item key → size read back after the window
        self.known: dict[str, int] = {}
        self.in_index: dict[str, set[int]] = defaultdict(set)
        self.rru = 0.0
        self.wru = 0.0
        self.wru_indexes = 0.0

    def key(self, table: str, item: Mapping[str, Any]) -> str:
        names = self.tables[table].keys if table in self.tables else tuple(sorted(item))
        return f"{table}|" + "|".join(json.dumps(item.get(n), sort_keys=True) for n in names)

    def _note_item(self, table: str, item: Mapping[str, Any]) -> str:
        key = self.key(table, item)
        self.known[key] = max(self.known.get(key, 0), item_size(item))
        for number, index in enumerate(self.tables.get(table, TableKeys((), [])).indexes):
            if all(name in item for name in index):
                self.in_index[key].add(number)
        return key

    def _write(
        self,
        table: str,
        key: str,
        size: int,
        touched: Iterable[str],
        factor: float,
        update: bool = False,
    ) -> None:
        units = max(1, math.ceil(size / 1024)) * factor
        self.wru += units
        spec = self.tables.get(table)
        if spec is None:
            return
        touched = set(touched)
        projections = spec.projections or [None] * len(spec.indexes)
        for number, index in enumerate(spec.indexes):
            if number in self.in_index.get(key, set()):
                included = projections[number]
                if update and included is not None and not touched & {*index, *included}:
                    continue  # an update of attributes the index does not copy: no index write
                extra = units * (2 if touched & set(index) else 1)
                self.wru += extra
                self.wru_indexes += extra

    def _read(self, size: int, consistent: bool, factor: float = 1.0) -> None:
        self.rru += max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5) * factor

    def add(self, call: Mapping[str, Any]) -> None:
        """Add the units of one DynamoDB call."""
        op, params, response = call["operation"], call["params"], call.get("response") or {}
        table = params.get("TableName", "")
        if op == "GetItem":
            item = response.get("Item")
            if item:
                self._note_item(table, item)
            self._read(item_size(item), bool(params.get("ConsistentRead")))
        elif op in ("Query", "Scan"):
            items = response.get("Items", [])
            for item in items:
                if "IndexName" not in params:
                    self._note_item(table, item)
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            self._read(sum(item_size(i) for i in items), consistent)
        elif op == "PutItem":
            item = params["Item"]
            key = self._note_item(table, item)
            self._write(table, key, item_size(item), (), 1.0)
        elif op in ("UpdateItem", "DeleteItem"):
            self._keyed_write(table, params, op, 1.0)
        elif op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                (kind, body), *_ = entry.items()
                if kind == "Put":
                    key = self._note_item(body["TableName"], body["Item"])
                    self._write(body["TableName"], key, item_size(body["Item"]), (), 2.0)
                else:
                    self._keyed_write(body["TableName"], body, kind, 2.0)
        elif op == "BatchGetItem":
            # Every requested key is read (a missing item costs the minimum, as GetItem).
            for name, request in params.get("RequestItems", {}).items():
                found = {self.key(name, i): i for i in response.get("Responses", {}).get(name, [])}
                for key in request.get("Keys", []):
                    item = found.get(self.key(name, key))
                    if item:
                        self._note_item(name, item)
                    self._read(item_size(item), bool(request.get("ConsistentRead")))
        elif op in ("BatchWriteItem", "TransactGetItems"):
            raise NotImplementedError(f"units of {op} are not counted yet")

    def _keyed_write(self, table: str, body: Mapping[str, Any], op: str, factor: float) -> None:
        key = self.key(table, body["Key"])
        size = max(self.known.get(key, 0), self.final.get(key, 0), item_size(body["Key"]))
        touched = set((body.get("ExpressionAttributeNames") or {}).values())
        if op in ("Update", "UpdateItem"):
            self.known[key] = size
        is_update = op in ("Update", "UpdateItem")
        self._write(table, key, size, touched if is_update else (), factor, update=is_update)


def final_sizes(
    calls: Iterable[Mapping[str, Any]], tables: Mapping[str, TableKeys]
) -> dict[str, int]:
    """Sizes, read back after the window, of the items updated in it (benchmark's own reads)."""
    from oms_webhooks.aws_call_log import function_scope
    from oms_webhooks.aws_clients import client

    wanted: dict[str, tuple[str, dict[str, Any]]] = {}
    units = Units(tables, {})
    for call in calls:
        if call["service"] != "dynamodb":
            continue
        bodies: list[tuple[str, Mapping[str, Any]]] = []
        if call["operation"] in ("UpdateItem", "DeleteItem"):
            bodies.append((call["operation"], call["params"]))
        elif call["operation"] == "TransactWriteItems":
            bodies += [next(iter(e.items())) for e in call["params"].get("TransactItems", [])]
        for kind, body in bodies:
            if kind in ("Update", "UpdateItem", "ConditionCheck", "Delete", "DeleteItem"):
                wanted[units.key(body["TableName"], body["Key"])] = (body["TableName"], body["Key"])
    sizes: dict[str, int] = {}
    dynamodb = client("dynamodb")
    with function_scope("bench"):
        for key, (table, item_key) in wanted.items():
            item = dynamodb.get_item(TableName=table, Key=item_key, ConsistentRead=True).get("Item")
            sizes[key] = item_size(item)
    return sizes
