"""Benchmark: the cost of keeping every event for recover, per million events (issue 14).

Every OMS event's payload item (written by the router before it looks for
subscriptions, DESIGN §10) is the kept event: what keeping adds is its entry
in the sparse, keys-only ``by-type-time`` index, written with the item, and
that entry's storage over the payload's life (two delivery retentions). This
benchmark measures the router's AWS calls for ``--n`` events (default 200,
the ``package.created`` sample Detail of ``tests/cases/events``) in two
scenarios on the local stack (router cache off, only the router's poller
running, batches of 10, events published 10 per ``PutEvents``):

* ``no_match``: an event type nobody subscribes to (the router writes the
  payload item only);
* ``one_match``: a type with one subscription (the payload item and the
  delivery item).

How it is counted: as in ``bench/aws_cost.py`` (its helpers in
``bench/_aws_calls.py``): every process logs every botocore call with the
function it ran for (``OMS_WEBHOOKS_COUNT_AWS_CALLS``), the log is matched
request by request with moto's request recorder, and the benchmark exits 1
when one side has a request the other has not. Write units follow DynamoDB's
size rules (developer guide, "Item sizes and formats", "Global secondary
indexes: write costs"): a table write costs one unit per started KB of the
item; an index write one unit per started KB of the *index entry* (for a
keys-only index: the table's key attributes and the index's). Storage: the
entry's bytes plus DynamoDB's 100-byte per-item overhead, for the time from
the write to the item's ``expires_at`` (read from the written item).
``router_wru_per_event.index_priced_by_item_size`` shows the units as
``_aws_calls.Units`` counts them (every index write priced by the item's
size: right for the ALL/INCLUDE indexes of the delivery item, an over-count
for this keys-only index once the payload item passes 1 KB).

Baseline (same run, same calls): the router's writes priced **without** the
kept-events index (what the router writes per event if keeping added
nothing); ``extra`` is the difference, i.e. keeping's own cost. Three
independent counts must agree, else exit 1: index entries counted in the
logged writes, entries found in the index afterwards
(:func:`oms_webhooks.routing.kept_events.find` over the run's window, the
benchmark's own reads), and events published.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CALLS_DIR = tempfile.mkdtemp(prefix="bench-kept-calls-")
RECORDING = os.path.join(CALLS_DIR, "moto-recording.jsonl")
# Before anything imports oms_webhooks or moto (as in aws_cost.py).
os.environ["OMS_WEBHOOKS_COUNT_AWS_CALLS"] = CALLS_DIR
os.environ["MOTO_RECORDER_FILEPATH"] = RECORDING
os.environ.pop("MOTO_ENABLE_RECORDING", None)

import _common as c  # noqa: E402
from _aws_calls import (  # noqa: E402
    CountMismatch,
    TableKeys,
    Units,
    attribute_size,
    cross_check,
    deleted_messages,
    final_sizes,
    function_of,
    item_size,
    read_call_log,
    read_recording,
    recorder,
    table_keys,
)

NAME = "kept_events_cost"
INDEX_KEYS = ("kept_key", "kept_sort")
#: DynamoDB's per-item storage overhead ("Item sizes and formats": 100 bytes for indexing).
ITEM_OVERHEAD_BYTES = 100
#: Days in a billing month, on average (GB-month prorated by the hour).
DAYS_PER_MONTH = 365.25 / 12
SAMPLE = Path(c.REPO_ROOT) / "tests" / "cases" / "events" / "package.created.json"
WAIT_SECONDS = 60.0
#: AWS list prices, us-east-1 (as bench/aws_cost.py, same date), free tiers ignored.
PRICES: dict[str, dict[str, Any]] = {
    "dynamodb_wru": {
        "usd": 0.625 / 1e6,
        "unit": "on-demand write request unit (1 KB)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (as bench/aws_cost.py)",
    },
    "dynamodb_rru": {
        "usd": 0.125 / 1e6,
        "unit": "on-demand read request unit (4 KB strongly consistent)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (as bench/aws_cost.py)",
    },
    "dynamodb_storage_gb_month": {
        "usd": 0.25,
        "unit": "GB-month, Standard table class (after the first 25 GB)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Data storage)",
    },
}
PRICES_DATE = "2026-11-29"


@dataclass(frozen=True)
class Scenario:
    """One scenario: an event type and how many subscriptions it has."""

    name: str
    event_type: str
    subscriptions: int


SCENARIOS = (
    Scenario("no_match", "package.status.packed", 0),
    Scenario("one_match", "package.status.shipped", 1),
)


def _router_poller(endpoint: str) -> Any:
    from oms_webhooks.resources import INGRESS_QUEUE
    from oms_webhooks_local.lanes import ROUTER_FUNCTION, ROUTER_HANDLER, queue_poller

    return queue_poller(
        endpoint,
        replace(INGRESS_QUEUE, batch_size=10),
        ROUTER_HANDLER,
        function_name=ROUTER_FUNCTION,
        concurrency=1,
    )


def _publish(scenario: Scenario, detail: Mapping[str, Any], first: int, events: int) -> None:
    """Publish ``events`` events and wait until the router has taken every one."""
    from oms_webhooks.aws_call_log import function_scope

    started = time.time()
    with function_scope("publisher"):
        c.publish_paced(
            scenario.event_type,
            [{**detail, "run": scenario.name, "seq": first + i} for i in range(events)],
        )
    if not c.wait_until(lambda: deleted_messages(CALLS_DIR, started) >= events, WAIT_SECONDS, 0.05):
        raise RuntimeError(f"{scenario.name}: the router did not take {events} events")


@dataclass
class Window:
    start: float
    end: float
    calls: list[dict[str, Any]]
    recorded: list[dict[str, Any]]


def _window(scenario: Scenario, stack: Any, detail: Mapping[str, Any], events: int) -> Window:
    """Warm up with one event, then record ``events`` events on both sides."""
    endpoint = stack.aws_endpoint_url
    poller = _router_poller(endpoint)
    poller.start()
    try:
        _publish(scenario, detail, 0, 1)
        recorder(endpoint, "reset-recording")
        recorder(endpoint, "start-recording")
        start = time.time()
        _publish(scenario, detail, 1, events)
        end = time.time()
        recorder(endpoint, "stop-recording")
        recorded = read_recording(endpoint)
    finally:
        poller.request_stop()
        poller.stop(timeout=10.0)
    lines = [r for r in read_call_log(CALLS_DIR, start) if r["start"] <= end]
    return Window(start, end, [r for r in lines if r["kind"] == "call"], recorded)


def _without_index(tables: Mapping[str, TableKeys]) -> dict[str, TableKeys]:
    """The same tables with the kept-events index left out (the baseline's pricing)."""
    out: dict[str, TableKeys] = {}
    for name, spec in tables.items():
        projections = spec.projections or [None] * len(spec.indexes)
        kept = [(i, p) for i, p in zip(spec.indexes, projections, strict=True) if i != INDEX_KEYS]
        out[name] = TableKeys(spec.keys, [i for i, _ in kept], [p for _, p in kept])
    return out


def _index_entries(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kept-events index entries the logged writes made: one per written payload item.

    A conditional put refused (the event already kept) writes nothing.
    """
    entries = []
    for call in calls:
        if call["service"] != "dynamodb" or call["operation"] != "PutItem":
            continue
        item = call["params"]["Item"]
        if not all(k in item for k in INDEX_KEYS) or call.get("error"):
            continue
        entries.append({"item": item, "at": call["start"]})
    return entries


def _entry_size(item: Mapping[str, Any], table_key: tuple[str, ...]) -> int:
    """Bytes of a keys-only index entry: the table's key and the index's key attributes."""
    names = dict.fromkeys((*table_key, *INDEX_KEYS))
    return sum(len(n.encode("utf-8")) + attribute_size(item[n]) for n in names)


def _found_in_index(event_type: str, start: float, end: float) -> set[str]:
    """Event ids of ``event_type`` the index holds for [start, end] (the benchmark's own reads)."""
    from oms_webhooks.aws_call_log import function_scope
    from oms_webhooks.routing import kept_events

    since = datetime.fromtimestamp(start, UTC)
    until = datetime.fromtimestamp(end, UTC)
    with function_scope("bench"):
        return {kept.event_id for kept in kept_events.find(event_type, since, until)}


def measure(
    scenario: Scenario, stack: Any, detail: Mapping[str, Any], events: int
) -> dict[str, Any]:
    """Figures of one scenario, per event and per million events."""
    window = _window(scenario, stack, detail, events)
    checked = cross_check(window.calls, window.recorded, window.start, window.end)
    calls = [x for x in window.calls if function_of(x) == "router"]
    unattributed = [x for x in window.calls if function_of(x) == "unattributed"]
    if unattributed:
        raise CountMismatch(
            "calls not attributed to a function: "
            + json.dumps(Counter(f"{x['thread']}:{x['operation']}" for x in unattributed))
        )
    by_op = Counter(f"{x['service']}:{x['operation']}" for x in calls)
    dynamodb = [x for x in calls if x["service"] == "dynamodb"]
    tables = table_keys()
    final = final_sizes(dynamodb, tables)
    counted = Units(tables, final)
    baseline = Units(_without_index(tables), final)
    for x in sorted(dynamodb, key=lambda x: x["start"]):
        counted.add(x)
        baseline.add(x)
    entries = _index_entries(dynamodb)
    payload_table = next(
        name for name, spec in tables.items() if INDEX_KEYS in [tuple(i) for i in spec.indexes]
    )
    table_key = tables[payload_table].keys
    sizes = [_entry_size(e["item"], table_key) for e in entries]
    index_wru = sum(max(1, math.ceil(s / 1024)) for s in sizes)
    retention_days = [
        (int(e["item"]["expires_at"]["N"]) - e["at"]) / 86400
        for e in entries
        if "expires_at" in e["item"]
    ]
    payload_bytes = [item_size(e["item"]) for e in entries]
    written = {str(e["item"]["pk"]["S"]).removeprefix("event#") for e in entries}
    found = _found_in_index(scenario.event_type, window.start, window.end)
    counts = {
        "index_entries_written": len(entries),
        "found_in_index": len(found),
        "events": events,
        "same_event_ids": found == written,
    }
    if not (len(entries) == len(found) == events and found == written):
        raise CountMismatch("kept-events index entries disagree: " + json.dumps(counts))

    def gb_month(byte_sizes: list[int]) -> float:
        days = sum(retention_days) / max(1, len(retention_days))
        stored = sum(s + ITEM_OVERHEAD_BYTES for s in byte_sizes) / len(byte_sizes)
        return stored / 1e9 * days / DAYS_PER_MONTH

    wru, rru, storage = (
        PRICES["dynamodb_wru"]["usd"],
        PRICES["dynamodb_rru"]["usd"],
        PRICES["dynamodb_storage_gb_month"]["usd"],
    )
    # Keeping's write: the baseline's units plus the index entries priced by their size
    # (Units prices an index write by the item's size, an upper bound for a keys-only index).
    with_index_wru = baseline.wru + index_wru
    per_million = {
        "index_writes": round(index_wru / events * wru * 1e6, 3),
        "index_storage": round(gb_month(sizes) * storage * 1e6, 3),
    }
    extra = round(sum(per_million.values()), 3)
    router_writes_without = round(baseline.wru / events * wru * 1e6, 3)
    return {
        "events": events,
        "subscriptions": scenario.subscriptions,
        "router_calls_per_event": {k: round(v / events, 3) for k, v in sorted(by_op.items())},
        "router_wru_per_event": {
            "with_kept_index": round(with_index_wru / events, 3),
            "without_kept_index": round(baseline.wru / events, 3),
            "index_priced_by_item_size": round(counted.wru / events, 3),
        },
        "router_rru_per_event": round(baseline.rru / events, 3),
        "index_wru_per_event": round(index_wru / events, 3),
        "index_entry_bytes": round(sum(sizes) / len(sizes), 1),
        "payload_item_bytes": round(sum(payload_bytes) / len(payload_bytes), 1),
        "retention_days": round(sum(retention_days) / len(retention_days), 2),
        "keeping_usd_per_million_events": per_million,
        "keeping_usd_per_million_events_total": extra,
        "router_writes_usd_per_million_events": {
            "with_kept_index": round(router_writes_without + per_million["index_writes"], 3),
            "without_kept_index": router_writes_without,
        },
        "payload_storage_usd_per_million_events": round(gb_month(payload_bytes) * storage * 1e6, 3),
        "router_reads_usd_per_million_events": round(baseline.rru / events * rru * 1e6, 3),
        "index_counts": counts,
        "cross_check": checked,
    }


def main() -> None:
    """Run the benchmark and print its JSON line; exit 1 when the counts disagree."""
    from oms_webhooks import aws_call_log
    from oms_webhooks.settings import get_settings

    aws_call_log.install_from_env()
    args = c.parse_args(__doc__ or NAME, default_n=200)
    detail = json.loads(SAMPLE.read_text(encoding="utf-8"))
    receiver = c.receiver()
    results: dict[str, Any] = {}
    failure: str | None = None
    try:
        with c.local_stack(pollers=False) as stack:
            cache = get_settings().router_cache_seconds
            retention = get_settings().delivery_retention_days
            for scenario in SCENARIOS:
                for number in range(scenario.subscriptions):
                    c.subscribe("bench", scenario.event_type, receiver.url(f"/{number}"))
            for scenario in SCENARIOS:
                c.note(f"{NAME}: {scenario.name}")
                try:
                    results[scenario.name] = measure(scenario, stack, detail, args.n)
                except CountMismatch as exc:
                    failure = f"{scenario.name}: {exc}"
                    results[scenario.name] = {"cross_check": {"ok": False, "problem": str(exc)}}
    finally:
        receiver.stop()
        if os.environ.get("BENCH_KEEP_CALL_LOGS"):
            c.note(f"{NAME}: call logs and moto's recording kept in {CALLS_DIR}")
        else:
            shutil.rmtree(CALLS_DIR, ignore_errors=True)
    one = results.get("one_match", {}).get("router_writes_usd_per_million_events", {})
    c.emit(
        NAME,
        n=args.n,
        **results,
        router_cache_seconds=cache,
        delivery_retention_days=retention,
        cross_check_ok=failure is None,
        prices=PRICES,
        prices_date=PRICES_DATE,
        load_average=[round(x, 2) for x in os.getloadavg()],
        baseline={
            name: r.get("router_writes_usd_per_million_events", {}).get("without_kept_index")
            for name, r in results.items()
        },
        ratio=c.ratio(one.get("with_kept_index"), one.get("without_kept_index")),
    )
    if failure is not None:
        print(f"[bench] {NAME}: counts disagree: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
