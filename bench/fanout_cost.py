"""Benchmark 3, fan-out cost: router time and items read for one event, 10 vs 10,010 subscriptions.

The local stack runs without pollers. First 10 subscriptions of
``package.created`` are created, and the router handler
(``oms_webhooks.handlers.router.handler``) is called ``--n`` times with a
Lambda SQS record holding a new EventBridge event of that type: the
baseline. Then ``--others`` (default 10,000) active subscriptions of the
other catalogue types are written straight into the table with PynamoDB's
``batch_write`` (25 items per ``BatchWriteItem``), and the same is measured
again.

Items read are counted from the DynamoDB ``Query`` responses (``Count``,
``ScannedCount``) seen by a wrapper of botocore's ``_make_api_call``, which
every client in the process (boto3's and PynamoDB's) goes through. Goal: the
router's time with 10,000 others ≤ 1.5 × the baseline, and items read =
matching subscriptions (the sparse index, DESIGN §8).

moto answers a GSI query by walking the table's items in Python, so on the
local stack the time grows with the table even when the items read do not;
DynamoDB's cost and latency follow the items read.

The router's subscription cache (``router_cache_seconds``) is off on the
local stack (DESIGN §6), so every event here reads the index, the worst
case; a deployment's cache skips the query for most events of a busy type.

Cross-checked (exit 1 when they differ): the deliveries the router created
(its ``PutItem`` calls) against the delivery log and against 10 per event,
and the subscriptions the query returned against the 10 matching.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import _common as c

NAME = "fanout_cost"
EVENT_TYPE = "package.created"
MATCHING = 10
GOAL_RATIO = 1.5


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--others", type=int, default=10_000, help="subscriptions of other types (10,000)"
    )


#: The routed event's detail.
DETAIL = {"id": 1234, "order_number": "OMS-42", "status": "created"}


def _seed_others(count: int) -> float:
    """Write ``count`` active subscriptions of other types in batches; return seconds."""
    from oms_webhooks.routing.event_types import EVENT_TYPES
    from oms_webhooks.storage.models import SubscriptionModel
    from oms_webhooks.storage.specs import bind_tables

    bind_tables()
    others = [t for t in EVENT_TYPES if t != EVENT_TYPE]
    now = datetime.now(UTC)
    started = time.perf_counter()
    with SubscriptionModel.batch_write() as batch:
        for number in range(count):
            event_type = others[number % len(others)]
            batch.save(
                SubscriptionModel(
                    f"other-{number % 100:03d}",
                    uuid.uuid4().hex,
                    event_type=event_type,
                    fanout_event_type=event_type,
                    target_url=f"http://127.0.0.1:9/other/{number}",
                    retry_countdown_config={"choice": "exponential", "kwargs": {"base": 2}},
                    max_retries=18,
                    is_active=True,
                    created_date=now,
                    modified_date=now,
                )
            )
    return time.perf_counter() - started


def _measure(rounds: int, recorder: c.ApiCallRecorder) -> dict[str, Any]:
    """Median router time and items read per event over ``rounds`` events."""
    from oms_webhooks.handlers.router import handler
    from oms_webhooks_local.lambda_context import FakeLambdaContext, invocation

    times: list[float] = []
    scanned: list[int] = []
    returned: list[int] = []
    calls: list[int] = []
    query_times: list[float] = []
    created = 0
    for _ in range(rounds):
        event = c.router_sqs_event(EVENT_TYPE, DETAIL)
        context = FakeLambdaContext("oms-webhooks-router", timeout_seconds=30)
        recorder.clear()
        started = time.perf_counter()
        with invocation(context):
            response = handler(event, context)
        times.append(time.perf_counter() - started)
        if response.get("batchItemFailures"):
            raise RuntimeError(f"router failed the event: {response}")
        seen = recorder.snapshot()
        queries = [x for x in seen if x.service == "dynamodb" and x.operation == "Query"]
        scanned.append(sum(int(q.response.get("ScannedCount", 0)) for q in queries))
        returned.append(sum(int(q.response.get("Count", 0)) for q in queries))
        calls.append(len(seen))
        created += sum(
            1
            for x in seen
            if x.operation == "PutItem" and x.params.get("Item", {}).get("sk") == {"S": "delivery"}
        )
        query_times.append(sum(q.seconds for q in queries))
    return {
        "router_s": round(statistics.median(times), 4),
        "router_all_s": [round(t, 4) for t in times],
        "query_s": round(statistics.median(query_times), 4),
        "router_without_query_s": round(
            statistics.median(t - q for t, q in zip(times, query_times, strict=True)), 4
        ),
        "items_read": max(scanned),
        "items_returned": max(returned),
        "aws_calls_per_event": max(calls),
        "deliveries_created": created,
    }


def _router_cache_seconds() -> float:
    """The router cache setting in effect (0 = off, as on the local stack)."""
    from oms_webhooks.settings import get_settings

    return float(getattr(get_settings(), "router_cache_seconds", 0.0))


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=10, extra=_extra)
    with c.local_stack(pollers=False), c.ApiCallRecorder() as recorder:
        for number in range(MATCHING):
            c.subscribe("bench", EVENT_TYPE, f"http://127.0.0.1:9/hook/{number}")
        _measure(1, recorder)  # warm-up: imports, clients
        logged_before = len(c.delivery_log("bench"))
        baseline = _measure(args.n, recorder)
        recorder.clear()
        seed_s = _seed_others(args.others)
        seed_calls = c.ApiCallRecorder.count(recorder.snapshot())
        loaded = _measure(args.n, recorder)
        cache_s = _router_cache_seconds()
        logged = len(c.delivery_log("bench")) - logged_before
    checks = {
        "deliveries_created": c.agree(
            expected=2 * args.n * MATCHING,
            router_put_items=baseline["deliveries_created"] + loaded["deliveries_created"],
            delivery_log=logged,
        ),
        "subscriptions_found": c.agree(
            matching=MATCHING,
            query_returned=loaded["items_returned"],
            query_returned_baseline=baseline["items_returned"],
        ),
    }
    value = c.ratio(loaded["router_s"], baseline["router_s"])
    c.emit(
        NAME,
        n=args.n,
        matching=MATCHING,
        others=args.others,
        **loaded,
        ratio_without_query=c.ratio(
            loaded["router_without_query_s"], baseline["router_without_query_s"]
        ),
        router_cache_seconds=cache_s,
        seed_s=round(seed_s, 2),
        seed_calls=seed_calls,
        goal=f"ratio <= {GOAL_RATIO} and items_read == {MATCHING}",
        goal_met={
            "ratio": value is not None and value <= GOAL_RATIO,
            "items_read": loaded["items_read"] == MATCHING,
        },
        cross_checks=checks,
        load_average=[round(x, 2) for x in os.getloadavg()],
        baseline=baseline,
        ratio=value,
    )
    c.exit_unless_agreed(NAME, checks)


if __name__ == "__main__":
    main()
