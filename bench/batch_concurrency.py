"""Benchmark 1, batch concurrency: one dispatcher invocation of 10 records vs 1 record.

Ten subscriptions, each to its own receiver on 127.0.0.1 that answers 200
after 200 ms. Each round creates fresh deliveries directly in DynamoDB (no
SQS message is sent and the local stack runs no pollers, so nothing races
the benchmark for them) and calls ``oms_webhooks.handlers.dispatcher.handler``
with a Lambda SQS event built by hand: once with 10 records (one per
endpoint), once with 1 record. Figures are the median wall times over
``--n`` rounds; ``ratio`` = 10-record time / 1-record time (goal ≤ 1.3: the
records of a batch are sent concurrently, DESIGN §5).

Cross-checked (exit 1 when they differ): the deliveries dispatched, those
that reached the receivers (``webhook-id``) and those the deliveries table
marks delivered; requests dispatched and requests arrived.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from typing import Any

import _common as c

NAME = "batch_concurrency"
ENDPOINTS = 10
DELAY_SECONDS = 0.2
EVENT_TYPE = "package.created"
GOAL_RATIO = 1.3


def _record(uid: str) -> dict[str, Any]:
    """A Lambda SQS record carrying delivery ``uid`` (the shape the pollers build)."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"bench-{uuid.uuid4().hex}",
        "body": json.dumps({"delivery": uid}),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "bench",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:oms-webhooks-delivery",
        "awsRegion": "us-east-1",
    }


def _deliveries(subscriptions: list[Any]) -> list[str]:
    """One new event stored, and one pending delivery of it per subscription."""
    from oms_webhooks.delivery.store import create_delivery
    from oms_webhooks.routing.events_store import get_store

    event_id = str(uuid.uuid4())
    event_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    get_store().put_payload(event_id, EVENT_TYPE, event_time, json.dumps({"id": 1, "bench": True}))
    uids = []
    for subscription in subscriptions:
        delivery, _ = create_delivery(
            subscription, event_id=event_id, event_type=EVENT_TYPE, event_time=event_time
        )
        uids.append(delivery.pk)
    return uids


def _invoke(uids: list[str]) -> tuple[float, dict[str, Any]]:
    """Call the dispatcher handler with one record per uid; (wall seconds, response)."""
    from oms_webhooks.handlers.dispatcher import handler
    from oms_webhooks_local.lambda_context import FakeLambdaContext, invocation

    event = {"Records": [_record(uid) for uid in uids]}
    context = FakeLambdaContext("oms-webhooks-dispatcher", timeout_seconds=60)
    started = time.perf_counter()
    with invocation(context):
        response = handler(event, context)
    return time.perf_counter() - started, response


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=5)
    receivers = [c.receiver(lambda _arrival: (200, DELAY_SECONDS)) for _ in range(ENDPOINTS)]
    try:
        with c.local_stack(pollers=False):
            subscriptions = [
                c.subscribe("bench", EVENT_TYPE, r.url(f"/hook/{i}"))
                for i, r in enumerate(receivers)
            ]
            dispatched = _deliveries(subscriptions[:1])
            _invoke(dispatched)  # warm-up: imports, clients, connections
            single: list[float] = []
            batch: list[float] = []
            failures = 0
            for _ in range(args.n):
                uids = _deliveries(subscriptions[:1])
                seconds, response = _invoke(uids)
                dispatched += uids
                single.append(seconds)
                failures += len(response.get("batchItemFailures", []))
                uids = _deliveries(subscriptions)
                seconds, response = _invoke(uids)
                dispatched += uids
                batch.append(seconds)
                failures += len(response.get("batchItemFailures", []))
            arrived = sum(len(r.requests) for r in receivers)
            at_receivers = c.webhook_ids([a for r in receivers for a in r.requests])
            checks = {
                "deliveries": c.agree(
                    dispatched=set(dispatched),
                    receivers=set(at_receivers),
                    delivery_log_delivered={
                        uid for uid in dispatched if _status(uid) == "delivered"
                    },
                ),
                "requests": c.agree(dispatched=len(dispatched), receivers=arrived),
            }
            # Arrival spread of the last 10-record batch: one wave if all were sent at once.
            last = sorted(r.requests[-1].received_at for r in receivers)
            offsets = [round(t - last[0], 3) for t in last]
    finally:
        for r in receivers:
            r.stop()
    batch_s, single_s = statistics.median(batch), statistics.median(single)
    value = c.ratio(batch_s, single_s)
    c.emit(
        NAME,
        n=args.n,
        records=ENDPOINTS,
        endpoint_delay_s=DELAY_SECONDS,
        batch_wall_s=round(batch_s, 3),
        batch_wall_all_s=[round(s, 3) for s in batch],
        single_wall_all_s=[round(s, 3) for s in single],
        requests_arrived=arrived,
        last_batch_arrival_offsets_s=offsets,
        default_thread_pool_workers=min(32, (os.cpu_count() or 1) + 4),
        batch_item_failures=failures,
        cross_checks=checks,
        load_average=[round(x, 2) for x in os.getloadavg()],
        goal=f"ratio <= {GOAL_RATIO}",
        goal_met=value is not None and value <= GOAL_RATIO,
        baseline={"single_wall_s": round(single_s, 3)},
        ratio=value,
    )
    c.exit_unless_agreed(NAME, checks)


def _status(uid: str) -> str | None:
    """The delivery's status in the deliveries table (None if it is not there)."""
    from oms_webhooks.delivery.store import get_store

    delivery = get_store().get(uid)
    return None if delivery is None else str(delivery.status)


if __name__ == "__main__":
    main()
