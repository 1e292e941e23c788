"""Benchmark 6, AWS calls and cost per delivery, against EventBridge API Destinations.

On the local stack, with its pollers feeding the router and dispatcher
handlers (wrapped here to time each invocation), two scenarios of ``--n``
deliveries each (default 20), one event at a time, one subscription per
event type (with a ``secret_key``, so signing and sealing are exercised):

* ``first_time``: the endpoint answers 200;
* ``one_retry``: it answers 500, then 200 (fixed 1 s countdown).

Every botocore call of the process is recorded (a wrapper of
``BaseClient._make_api_call``, which boto3's and PynamoDB's clients share).
Counted for a delivery: ``events:PutEvents`` of the publisher, every call
made inside a handler invocation, and the pollers' own non-empty
``ReceiveMessage`` and ``DeleteMessageBatch`` (Lambda's event source mapping
makes those calls and SQS bills them). Added, because moto makes it inside
its server: the rule target's ``sqs:SendMessage`` to the ingress queue.
Not counted: empty long polls of idle pollers (on AWS ~5 pollers × 3 per
minute per queue, whatever the traffic), the bench's own reads.

Cost per million deliveries at list prices (:data:`PRICES`, us-east-1, no
free tier), with Lambda durations as measured here (handler wall time,
rounded up to the ms, at the deployed memory sizes). DynamoDB request units
are estimated from each call (item size from the request's JSON, an upper
bound; the deliveries table's ``by-tenant`` index doubles a delivery item's
writes). CloudWatch Logs ingestion uses the bytes the handlers wrote to
stdout. Measured on x86 against moto, so durations are indicative: AWS's
DynamoDB latency is usually higher than moto's on loopback.

Baseline: EventBridge API Destinations for the same million deliveries
(the PutEvents plus one API destination invocation per attempt).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import _common as c

NAME = "aws_cost"
SCENARIOS = {"first_time": "package.created", "one_retry": "package.status.shipped"}
#: Memory of the functions (infra/oms_webhooks_infra/constants.py MEMORY_MB).
MEMORY_MB = {"router": 512, "dispatcher": 512}
#: AWS list prices, us-east-1, read 2026-11-29 with the search tool. Official
#: pages first; the figure was read where noted (free tiers ignored).
PRICES: dict[str, dict[str, Any]] = {
    "lambda_arm_gb_s": {
        "usd": 0.0000133334,
        "unit": "GB-second (arm64, first 7.5 billion GB-s/month)",
        "source": "https://aws.amazon.com/lambda/pricing/ (figure read on "
        "https://cloudchipr.com/blog/aws-lambda-pricing)",
    },
    "lambda_request": {
        "usd": 0.20 / 1e6,
        "unit": "request",
        "source": "https://aws.amazon.com/lambda/pricing/ ($0.20 per 1M requests)",
    },
    "sqs_request": {
        "usd": 0.40 / 1e6,
        "unit": "standard-queue request (each 64 KB chunk)",
        "source": "https://aws.amazon.com/sqs/pricing/ (figure read on "
        "https://cloudburn.io/blog/amazon-sqs-pricing, March 2026)",
    },
    "dynamodb_wru": {
        "usd": 0.625 / 1e6,
        "unit": "on-demand write request unit (1 KB)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the Nov 2024 "
        "cut; read on https://airbyte.com/data-engineering-resources/dynamodb-pricing)",
    },
    "dynamodb_rru": {
        "usd": 0.125 / 1e6,
        "unit": "on-demand read request unit (4 KB strongly consistent)",
        "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (as above)",
    },
    "eventbridge_custom_event": {
        "usd": 1.00 / 1e6,
        "unit": "custom event published (64 KB chunk)",
        "source": "https://aws.amazon.com/eventbridge/pricing/ (read on "
        "https://cloudburn.io/blog/amazon-eventbridge-pricing, March 2026)",
    },
    "eventbridge_api_destination": {
        "usd": 0.20 / 1e6,
        "unit": "API destination invocation",
        "source": "https://aws.amazon.com/eventbridge/pricing/ (as above)",
    },
    "kms_request": {
        "usd": 0.03 / 1e4,
        "unit": "symmetric key request",
        "source": "https://aws.amazon.com/kms/pricing/ (read on "
        "https://www.wring.co/blog/aws-kms-pricing-guide)",
    },
    "cloudwatch_logs_gb": {
        "usd": 0.50,
        "unit": "GB ingested (standard class, first tier)",
        "source": "https://aws.amazon.com/cloudwatch/pricing/ (read on "
        "https://www.duckbillgroup.com/?p=9080)",
    },
}
PRICES_DATE = "2026-11-29"
WAIT_SECONDS = 20.0


def _size(value: Any) -> int:
    """Rough DynamoDB size of an attribute map from the request (an upper bound)."""
    import json

    return len(json.dumps(value, separators=(",", ":"))) if value else 0


class _Units:
    """Estimated DynamoDB request units of recorded calls."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.indexed: set[str] = set()
        self.rru = 0.0
        self.wru = 0.0

    @staticmethod
    def _key(call: c.ApiCall) -> str:
        attrs = call.params.get("Key") or call.params.get("Item") or {}
        names = ("pk", "sk") if "pk" in attrs else ("tenant", "id")
        parts = [str(attrs.get(name)) for name in names]
        return f"{call.params.get('TableName')}|{'|'.join(parts)}"

    def add(self, call: c.ApiCall) -> None:
        """Add the units of one DynamoDB call."""
        params = call.params
        if call.operation in ("GetItem", "Query"):
            size = max(_size(call.response.get("Item")), _size(call.response.get("Items")), 1)
            per = 1.0 if params.get("ConsistentRead") else 0.5
            self.rru += per * math.ceil(size / 4096)
        elif call.operation in ("PutItem", "UpdateItem", "DeleteItem"):
            key = self._key(call)
            item = params.get("Item")
            if item is not None:
                self.sizes[key] = _size(item)
                if "log_tenant" in item:  # in the deliveries table's by-tenant index
                    self.indexed.add(key)
            units = math.ceil(max(self.sizes.get(key, 1024), 1) / 1024)
            self.wru += units * (2 if key in self.indexed else 1)
        elif call.operation == "TransactWriteItems":
            self.wru += 2 * len(params.get("TransactItems", []))


def _timed(name: str, handler: Callable[..., Any], durations: dict[str, list[float]]) -> Any:
    """``handler`` timed into ``durations[name]`` and its AWS calls tagged ``name``."""

    def wrapper(event: dict[str, Any], context: Any) -> Any:
        with c.tagged(name):
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                durations[name].append(time.perf_counter() - started)

    return wrapper


def _factory(durations: dict[str, list[float]]) -> Callable[[Any], list[Any]]:
    """Worker factory: the stack's two pollers with timed handlers."""
    from oms_webhooks.handlers import dispatcher, router
    from oms_webhooks.local.pollers import DISPATCHER_FUNCTION, ROUTER_FUNCTION, queue_poller
    from oms_webhooks.resources import DELIVERY_QUEUE, INGRESS_QUEUE

    def build(stack: Any) -> list[Any]:
        endpoint = stack.aws_endpoint_url
        return [
            queue_poller(
                endpoint,
                INGRESS_QUEUE,
                _timed("router", router.handler, durations),
                function_name=ROUTER_FUNCTION,
            ),
            queue_poller(
                endpoint,
                DELIVERY_QUEUE,
                _timed("dispatcher", dispatcher.handler, durations),
                function_name=DISPATCHER_FUNCTION,
            ),
        ]

    return build


def _counted(calls: list[c.ApiCall]) -> list[c.ApiCall]:
    """The calls a delivery is billed for (module docstring)."""
    kept = []
    for call in calls:
        if call.operation == "ReceiveMessage" and not call.response.get("Messages"):
            continue
        if (
            call.tag in ("router", "dispatcher")
            or call.thread.startswith("poller:")
            or call.operation == "PutEvents"
        ):
            kept.append(call)
    return kept


def _scenario(
    name: str,
    event_type: str,
    n: int,
    receiver: c.FastReceiver,
    recorder: c.ApiCallRecorder,
    durations: dict[str, list[float]],
    log_fd: int,
) -> dict[str, Any]:
    """Run ``n`` deliveries of one scenario; calls, durations and cost per delivery."""
    from oms_webhooks.tables import DeliveryModel

    for values in durations.values():
        values.clear()
    expected_attempts = 2 if name == "one_retry" else 1
    recorder.clear()
    log_start = os.fstat(log_fd).st_size
    delivered = 0
    for seq in range(n):
        sent_before = len(receiver.requests)
        c.publish_paced(event_type, [{"run": name, "seq": seq}])
        c.wait_until(
            lambda sb=sent_before: len(receiver.requests) >= sb + expected_attempts,
            WAIT_SECONDS,
            0.01,
        )
        uid = receiver.requests[-1].headers.get("webhook-id", "")
        if c.wait_until(
            lambda u=uid: DeliveryModel.get(u, "delivery").status == "delivered", 5.0, 0.02
        ):
            delivered += 1
        time.sleep(0.3)  # the poller deletes the message after the handler returned
    calls = _counted(recorder.snapshot())
    log_bytes = os.fstat(log_fd).st_size - log_start
    units = _Units()
    for call in calls:
        if call.service == "dynamodb":
            units.add(call)
    by_op = {k: round(v / n, 3) for k, v in c.ApiCallRecorder.count(calls).items()}
    by_op["sqs:SendMessage (rule target, inside EventBridge)"] = 1.0
    sqs_requests = sum(v for k, v in by_op.items() if k.startswith("sqs:"))
    invocations = {k: len(v) / n for k, v in durations.items()}
    gb_s = sum(
        MEMORY_MB[k] / 1024 * sum(math.ceil(d * 1000) / 1000 for d in v) / n
        for k, v in durations.items()
    )
    kms = sum(v for k, v in by_op.items() if k.startswith("kms:"))
    cost = {
        "lambda_requests": sum(invocations.values()) * PRICES["lambda_request"]["usd"],
        "lambda_duration": gb_s * PRICES["lambda_arm_gb_s"]["usd"],
        "sqs": sqs_requests * PRICES["sqs_request"]["usd"],
        "dynamodb_writes": units.wru / n * PRICES["dynamodb_wru"]["usd"],
        "dynamodb_reads": units.rru / n * PRICES["dynamodb_rru"]["usd"],
        "eventbridge_put_events": by_op.get("events:PutEvents", 0)
        * PRICES["eventbridge_custom_event"]["usd"],
        "kms": kms * PRICES["kms_request"]["usd"],
        "cloudwatch_logs": log_bytes / n / 1e9 * PRICES["cloudwatch_logs_gb"]["usd"],
    }
    per_million = {k: round(v * 1e6, 3) for k, v in cost.items()}
    return {
        "delivered": delivered,
        "calls_per_delivery": by_op,
        "calls_total_per_delivery": round(sum(by_op.values()), 2),
        "invocations_per_delivery": {k: round(v, 2) for k, v in invocations.items()},
        "handler_ms": {
            k: round(statistics.median(v) * 1000, 1) if v else None for k, v in durations.items()
        },
        "gb_s_per_delivery": round(gb_s, 6),
        "dynamodb_wru_per_delivery": round(units.wru / n, 2),
        "dynamodb_rru_per_delivery": round(units.rru / n, 2),
        "log_bytes_per_delivery": round(log_bytes / n),
        "usd_per_million": per_million,
        "usd_per_million_total": round(sum(per_million.values()), 2),
    }


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=20)
    durations: dict[str, list[float]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def responder(arrival: c.Arrival) -> tuple[int, float]:
        if not arrival.path.startswith("/one_retry"):
            return 200, 0.0
        with lock:
            uid = arrival.headers.get("webhook-id", "")
            seen[uid] += 1
            return (500 if seen[uid] == 1 else 200), 0.0

    log = tempfile.NamedTemporaryFile(prefix="bench-aws-cost-", suffix=".log")  # noqa: SIM115
    os.dup2(log.fileno(), 1)  # the handlers' stdout (logs, EMF metrics) → measured file
    receiver = c.receiver(responder)
    results: dict[str, Any] = {}
    try:
        with c.local_stack(worker_factories=[_factory(durations)]), c.ApiCallRecorder() as rec:
            for name, event_type in SCENARIOS.items():
                c.subscribe(
                    "bench",
                    event_type,
                    receiver.url(f"/{name}"),
                    secret_key="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
                    max_retries=3,
                )
            # warm-up: cold clients, KMS decrypts of the secrets (cached per process)
            for name, event_type in SCENARIOS.items():
                _scenario(name, event_type, 1, receiver, rec, durations, log.fileno())
            for name, event_type in SCENARIOS.items():
                results[name] = _scenario(
                    name, event_type, args.n, receiver, rec, durations, log.fileno()
                )
    finally:
        receiver.stop()
        log.close()
    attempts = {"first_time": 1, "one_retry": 2}
    api_destinations = {
        name: round(
            (
                PRICES["eventbridge_custom_event"]["usd"]
                + attempts[name] * PRICES["eventbridge_api_destination"]["usd"]
            )
            * 1e6,
            3,
        )
        for name in SCENARIOS
    }
    ours = results["first_time"]["usd_per_million_total"]
    c.emit(
        NAME,
        n=args.n,
        **results,
        prices=PRICES,
        prices_date=PRICES_DATE,
        memory_mb=MEMORY_MB,
        baseline={"api_destinations_usd_per_million": api_destinations},
        ratio=c.ratio(ours, api_destinations["first_time"]),
        ratio_one_retry=c.ratio(
            results["one_retry"]["usd_per_million_total"], api_destinations["one_retry"]
        ),
    )


if __name__ == "__main__":
    main()
