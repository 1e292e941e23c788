"""Benchmark 6, AWS calls and cost per delivery, against EventBridge API Destinations.

Three scenarios on the local stack (router cache off), each ``--n`` events
(default 20) to subscriptions with a ``secret_key`` (signing and sealing
exercised), the endpoint answering 200:

* ``one_to_one``: each event matches 1 subscription; the event source
  mappings take batches of 1 on both queues (the worst case);
* ``one_to_ten``: each event matches 10 subscriptions; batches of 10 on both
  queues, the events published 10 per ``PutEvents`` (a busy deployment);
* ``one_retry``: ``one_to_one`` whose endpoint answers 500 to each
  delivery's first attempt and 200 to its second (a 1 s countdown): what a
  retry costs is this scenario minus ``one_to_one`` (``per_retry``).

How the calls are counted. Every process of the stack logs every botocore
call it makes (``OMS_WEBHOOKS_COUNT_AWS_CALLS``, see
``oms_webhooks/aws_call_log.py``: one JSON line per call, with the Lambda
function it was made for, carried into the handlers' threads and pools).
Independently, moto's request recorder (``/moto-api/recorder/...``) logs
every HTTP request that reaches moto in the same window. The two are matched
request by request (botocore's ``amz-sdk-invocation-id`` and
``amz-sdk-request`` headers): a request moto saw that no process logged, or
a call logged inside the window that moto never saw, makes the benchmark
print both tallies and exit 1. Left out on both sides: the benchmark's own
reads (function ``bench``). Not visible to either and added by hand: the
rule target's ``sqs:SendMessage`` to the ingress queue (inside EventBridge,
inside moto here), one per event.

What is priced: every call of the window except the benchmark's own and the
empty long polls of idle pollers (on AWS about 5 pollers × 3 per minute per
queue, whatever the traffic). The pollers' own non-empty ``ReceiveMessage``
and ``DeleteMessageBatch`` count (Lambda's event source mapping makes them
and SQS bills them).

DynamoDB request units: DynamoDB returns them (``ConsumedCapacity``; the
call log asks for ``INDEXES`` on every call), but moto returns fixed figures
whatever the item (1 per put, delete or query, 0.5 per get or update, an
empty list for transactions, its global indexes named local): those are
shown as ``moto_consumed_capacity`` and not priced; on AWS the call log
holds DynamoDB's own. Priced are the
units by DynamoDB's rules (developer guide, "Read/write capacity mode" and
"Item sizes"), from the items' sizes in the calls: a write costs one unit
per started KB of the item (the larger of before and after for an update),
twice in a transaction, plus the same again for each global secondary index
the item is in (all indexes here project ALL; an update that sets an index
key counts twice, an upper bound); a read costs one unit per started 4 KB
(half when eventually consistent; a query sums its items first).

Lambda GB-seconds from each invocation's wall time (rounded up to the ms) at
the deployed memory sizes; CloudWatch Logs from the bytes the handlers wrote
to stdout. Prices: :data:`PRICES` (us-east-1 list prices, no free tier).
Measured against moto on loopback on a shared machine, so durations are
indicative: AWS's DynamoDB latency is usually higher than moto's here.

``--aws-process`` serves moto from a process of its own (the counting then
spans processes). The call logs and moto's recording are deleted at the
end unless ``$BENCH_KEEP_CALL_LOGS`` is set.

Baseline: EventBridge API Destinations for the same deliveries (its
PutEvents plus one API destination invocation per delivery).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

CALLS_DIR = tempfile.mkdtemp(prefix="bench-aws-calls-")
RECORDING = os.path.join(CALLS_DIR, "moto-recording.jsonl")
# Before anything imports oms_webhooks or moto: every process logs its calls,
# and moto's recorder writes where we read.
os.environ["OMS_WEBHOOKS_COUNT_AWS_CALLS"] = CALLS_DIR
os.environ["MOTO_RECORDER_FILEPATH"] = RECORDING
os.environ.pop("MOTO_ENABLE_RECORDING", None)
# The endpoint answers at once: an attempt that runs past the slow mark here
# does so because the shared machine is loaded, and would move the target's
# deliveries to the slow lane (one more send per delivery, DESIGN §9).
os.environ.setdefault("OMS_WEBHOOKS_SLOW_ATTEMPT_SECONDS", "5")


import _common as c  # noqa: E402
from _aws_calls import (  # noqa: E402
    CountMismatch,
    Units,
    cross_check,
    deleted_messages,
    final_sizes,
    function_of,
    read_call_log,
    read_recording,
    recorder,
    table_keys,
)

NAME = "aws_cost"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass(frozen=True)
class Scenario:
    """One cost scenario: subscriptions per event, ESM batch size, events per PutEvents.

    ``attempts``: attempts per delivery (the endpoint answers 500 to all but
    the last one of each delivery; the countdown between them is
    :data:`RETRY_COUNTDOWN`).
    """

    name: str
    event_type: str
    subscriptions: int
    batch_size: int
    events_per_put: int
    attempts: int = 1


SCENARIOS = (
    Scenario("one_to_one", "package.created", 1, 1, 1),
    Scenario("one_to_ten", "package.status.shipped", 10, 10, 10),
    # one_to_one with one retry per delivery: the retry's cost is the difference.
    Scenario("one_retry", "shipment.created", 1, 1, 1, attempts=2),
)
#: The countdown of the retry scenario's subscriptions (the shortest there is).
RETRY_COUNTDOWN: dict[str, Any] = {"choice": "fixed", "kwargs": {"seconds": 1}}
#: Memory of the functions (infra/oms_webhooks_infra/constants.py MEMORY_MB).
MEMORY_MB = {"router": 512, "dispatcher": 512, "api": 512, "authorizer": 256}
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
WAIT_SECONDS = 60.0
RULE_TARGET_SEND = "sqs:SendMessage (rule target, inside EventBridge: added)"


# -- one scenario -------------------------------------------------------------------


@dataclass
class Window:
    """What one scenario's window holds: calls, invocations, moto's requests, log bytes."""

    start: float
    end: float
    calls: list[dict[str, Any]]
    invocations: list[dict[str, Any]]
    recorded: list[dict[str, Any]]
    log_bytes: int


def _pollers(endpoint: str, batch_size: int) -> Iterator[Any]:
    from oms_webhooks.resources import DELIVERY_QUEUE, DELIVERY_SLOW_QUEUE, INGRESS_QUEUE
    from oms_webhooks_local.lanes import (
        DISPATCHER_FUNCTION,
        DISPATCHER_HANDLER,
        ROUTER_FUNCTION,
        ROUTER_HANDLER,
        queue_poller,
    )

    # The slow lane too: on a loaded machine an attempt past slow_attempt_seconds
    # diverts the target's next deliveries there, and unpolled they never arrive.
    for spec, handler, function in (
        (INGRESS_QUEUE, ROUTER_HANDLER, ROUTER_FUNCTION),
        (DELIVERY_QUEUE, DISPATCHER_HANDLER, DISPATCHER_FUNCTION),
        (DELIVERY_SLOW_QUEUE, DISPATCHER_HANDLER, DISPATCHER_FUNCTION),
    ):
        yield queue_poller(
            endpoint,
            replace(spec, batch_size=batch_size),
            handler,
            function_name=function,
            concurrency=1,
        )


def _publish(scenario: Scenario, receiver: c.FastReceiver, events: int, log_fd: int) -> None:
    """Publish ``events`` events of the scenario, waiting for every delivery and delete."""
    from oms_webhooks.aws_call_log import function_scope

    path = f"/{scenario.name}/"
    started = time.time()
    published = 0
    while published < events:
        group = min(scenario.events_per_put, events - published)
        before = sum(1 for r in receiver.requests if r.path.startswith(path))
        with function_scope("publisher"):
            c.publish_paced(
                scenario.event_type,
                [{"run": scenario.name, "seq": published + i} for i in range(group)],
            )
        published += group
        expected = before + group * scenario.subscriptions * scenario.attempts
        if not c.wait_until(
            lambda e=expected: sum(1 for r in receiver.requests if r.path.startswith(path)) >= e,
            WAIT_SECONDS,
            0.02,
        ):
            raise RuntimeError(f"{scenario.name}: deliveries missing after {WAIT_SECONDS} s")
    messages = events + events * scenario.subscriptions
    if not c.wait_until(
        lambda: deleted_messages(CALLS_DIR, started) >= messages, WAIT_SECONDS, 0.1
    ):
        raise RuntimeError(f"{scenario.name}: {messages} messages not all deleted")


def _responder(arrival: c.Arrival) -> tuple[int, float]:
    """200, but 500 to all attempts of a retry scenario's delivery but its last one."""
    for scenario in SCENARIOS:
        if scenario.attempts > 1 and arrival.path.startswith(f"/{scenario.name}/"):
            uid = arrival.headers.get("webhook-id", "")
            with _seen_lock:
                _seen[uid] += 1
                if _seen[uid] < scenario.attempts:
                    return 500, 0.0
    return 200, 0.0


_seen: Counter[str] = Counter()
_seen_lock = threading.Lock()


def _window(
    scenario: Scenario, stack: Any, receiver: c.FastReceiver, events: int, log_fd: int
) -> Window:
    """Warm up, then record one window of ``events`` events on both sides."""
    endpoint = stack.aws_endpoint_url
    pollers = list(_pollers(endpoint, scenario.batch_size))
    for poller in pollers:
        poller.start()
    try:
        _publish(scenario, receiver, 1, log_fd)  # warm-up: clients, KMS decrypts (cached)
        recorder(endpoint, "reset-recording")
        recorder(endpoint, "start-recording")
        start = time.time()
        log_start = os.fstat(log_fd).st_size
        _publish(scenario, receiver, events, log_fd)
        log_bytes = os.fstat(log_fd).st_size - log_start
        end = time.time()
        recorder(endpoint, "stop-recording")
        recorded = read_recording(endpoint)
    finally:
        for poller in pollers:
            poller.request_stop()
        for poller in pollers:
            poller.stop(timeout=10.0)
    lines = [r for r in read_call_log(CALLS_DIR, start) if r["start"] <= end]
    return Window(
        start=start,
        end=end,
        calls=[r for r in lines if r["kind"] == "call"],
        invocations=[r for r in lines if r["kind"] == "invocation"],
        recorded=recorded,
        log_bytes=log_bytes,
    )


def _priced(call: Mapping[str, Any]) -> bool:
    """Whether a call of the window is billed to the deliveries (module docstring)."""
    if function_of(call) == "bench":
        return False
    return not (call["operation"] == "ReceiveMessage" and not call["response"].get("Messages"))


def _moto_capacity(calls: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """What moto returned as ConsumedCapacity (fixed figures, not DynamoDB's)."""
    returned = 0.0
    without = 0
    for call in calls:
        capacity = call["response"].get("ConsumedCapacity")
        entries = capacity if isinstance(capacity, list) else [capacity] if capacity else []
        if not entries:
            without += 1
        returned += sum(float(e.get("CapacityUnits", 0)) for e in entries)
    return {"capacity_units": returned, "calls_without_capacity": without}


def measure(
    scenario: Scenario, stack: Any, receiver: c.FastReceiver, events: int, log_fd: int
) -> dict[str, Any]:
    """Figures of one scenario (per delivery, per event, dollars per million)."""
    window = _window(scenario, stack, receiver, events, log_fd)
    checked = cross_check(window.calls, window.recorded, window.start, window.end)
    deliveries = events * scenario.subscriptions
    calls = [x for x in window.calls if _priced(x)]
    unattributed = [x for x in calls if function_of(x) == "unattributed"]
    if unattributed:
        raise CountMismatch(
            "calls not attributed to a function: "
            + json.dumps(Counter(f"{x['thread']}:{x['operation']}" for x in unattributed))
        )
    requests_per_call = {id(x): max(1, len(x["attempts"])) for x in calls}
    by_function: dict[str, Counter[str]] = defaultdict(Counter)
    for x in calls:
        by_function[function_of(x)][f"{x['service']}:{x['operation']}"] += requests_per_call[id(x)]
    by_function["eventbridge"][RULE_TARGET_SEND] = events
    by_op: Counter[str] = Counter()
    for counted in by_function.values():
        by_op.update(counted)
    tables = table_keys()
    dynamodb = [x for x in calls if x["service"] == "dynamodb"]
    units = Units(tables, final_sizes(dynamodb, tables))
    for x in sorted(dynamodb, key=lambda x: x["start"]):
        units.add(x)
    moto_capacity = _moto_capacity(dynamodb)
    invocations: dict[str, list[float]] = defaultdict(list)
    for inv in window.invocations:
        if str(inv["function"]).removeprefix("oms-webhooks-") not in MEMORY_MB:
            continue  # the publisher's scope: the OMS, not a Lambda function here
        invocations[str(inv["function"]).removeprefix("oms-webhooks-")].append(
            inv["end"] - inv["start"]
        )
    gb_s = sum(
        MEMORY_MB.get(f, 512) / 1024 * sum(math.ceil(d * 1000) / 1000 for d in durations)
        for f, durations in invocations.items()
    )
    records = {
        f: round(
            sum(
                len(x["response"].get("Messages", []))
                for x in calls
                if x["operation"] == "ReceiveMessage" and _queuefunction_of(x) == f
            )
            / max(1, len(v)),
            2,
        )
        for f, v in invocations.items()
    }

    def per(value: float, digits: int = 3) -> float:
        return round(value / deliveries, digits)

    sqs = sum(v for k, v in by_op.items() if k.startswith("sqs:"))
    kms = sum(v for k, v in by_op.items() if k.startswith("kms:"))
    cost = {
        "lambda_requests": sum(len(v) for v in invocations.values())
        * PRICES["lambda_request"]["usd"],
        "lambda_duration": gb_s * PRICES["lambda_arm_gb_s"]["usd"],
        "sqs": sqs * PRICES["sqs_request"]["usd"],
        "dynamodb_writes": units.wru * PRICES["dynamodb_wru"]["usd"],
        "dynamodb_reads": units.rru * PRICES["dynamodb_rru"]["usd"],
        "eventbridge_put_events": events * PRICES["eventbridge_custom_event"]["usd"],
        "kms": kms * PRICES["kms_request"]["usd"],
        "cloudwatch_logs": window.log_bytes / 1e9 * PRICES["cloudwatch_logs_gb"]["usd"],
    }
    per_million = {k: round(v / deliveries * 1e6, 3) for k, v in cost.items()}
    total = round(sum(per_million.values()), 2)
    return {
        "events": events,
        "subscriptions_per_event": scenario.subscriptions,
        "deliveries": deliveries,
        "batch_size": scenario.batch_size,
        "events_per_put_events": scenario.events_per_put,
        "calls_per_delivery": {
            f: {k: per(v) for k, v in sorted(counted.items())}
            for f, counted in sorted(by_function.items())
        },
        "calls_total_per_delivery": per(sum(by_op.values()), 2),
        "calls_total_per_event": round(sum(by_op.values()) / events, 2),
        "invocations_per_delivery": {f: per(len(v)) for f, v in sorted(invocations.items())},
        "records_per_invocation": records,
        "handler_ms_median": {
            f: round(sorted(v)[len(v) // 2] * 1000, 1) for f, v in sorted(invocations.items())
        },
        "gb_s_per_delivery": per(gb_s, 6),
        "dynamodb_wru_per_delivery": per(units.wru, 2),
        "dynamodb_wru_indexes_per_delivery": per(units.wru_indexes, 2),
        "dynamodb_rru_per_delivery": per(units.rru, 2),
        "moto_consumed_capacity_per_delivery": {
            "capacity_units": per(moto_capacity["capacity_units"], 2),
            "calls_without_capacity": per(moto_capacity["calls_without_capacity"], 2),
        },
        "log_bytes_per_delivery": round(window.log_bytes / deliveries),
        "usd_per_million_deliveries": per_million,
        "usd_per_million_deliveries_total": total,
        "usd_per_million_events_total": round(total * scenario.subscriptions, 2),
        "cross_check": checked,
    }


def _queuefunction_of(call: Mapping[str, Any]) -> str:
    """router or dispatcher: the function whose queue a ReceiveMessage polled."""
    from oms_webhooks.resources import INGRESS_QUEUE

    url = str(call["params"].get("QueueUrl", ""))
    return "router" if url.rsplit("/", 1)[-1] == INGRESS_QUEUE.name else "dispatcher"


def _per_retry(once: Mapping[str, Any], retried: Mapping[str, Any]) -> dict[str, Any] | None:
    """What one retry adds: ``one_retry`` (one retry per delivery) minus ``one_to_one``.

    Both scenarios publish one event per PutEvents to one subscription with
    batches of one, so the difference per delivery is the retry's own
    work: its attempt, its record, the hold (``ChangeMessageVisibility``),
    the message's second receive, the dispatcher's second invocation.
    """
    if "usd_per_million_deliveries" not in once or "usd_per_million_deliveries" not in retried:
        return None
    a, b = once["usd_per_million_deliveries"], retried["usd_per_million_deliveries"]

    def ops(result: Mapping[str, Any]) -> Counter[str]:
        counted: Counter[str] = Counter()
        for per_function in result["calls_per_delivery"].values():
            counted.update(per_function)
        return counted

    calls = ops(retried)
    calls.subtract(ops(once))
    return {
        "usd_per_million_retries": {k: round(b[k] - a[k], 3) for k in sorted(a)},
        "usd_per_million_retries_total": round(
            retried["usd_per_million_deliveries_total"] - once["usd_per_million_deliveries_total"],
            2,
        ),
        "calls_per_retry": {k: round(v, 3) for k, v in sorted(calls.items()) if round(v, 3)},
        "calls_total_per_retry": round(
            retried["calls_total_per_delivery"] - once["calls_total_per_delivery"], 2
        ),
        "dynamodb_wru_per_retry": round(
            retried["dynamodb_wru_per_delivery"] - once["dynamodb_wru_per_delivery"], 2
        ),
        "dynamodb_rru_per_retry": round(
            retried["dynamodb_rru_per_delivery"] - once["dynamodb_rru_per_delivery"], 2
        ),
        "log_bytes_per_retry": retried["log_bytes_per_delivery"] - once["log_bytes_per_delivery"],
    }


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--aws-process",
        action="store_true",
        help="serve moto from a process of its own (the count spans processes)",
    )


def main() -> None:
    """Run the benchmark and print its JSON line; exit 1 when the counts disagree."""
    from oms_webhooks import aws_call_log
    from oms_webhooks.settings import get_settings

    aws_call_log.install_from_env()
    args = c.parse_args(__doc__ or NAME, default_n=20, extra=_extra)
    log = tempfile.NamedTemporaryFile(prefix="bench-aws-cost-", suffix=".log")  # noqa: SIM115
    os.dup2(log.fileno(), 1)  # the handlers' stdout (logs, EMF metrics) → measured file
    receiver = c.receiver(_responder)
    results: dict[str, Any] = {}
    failure: str | None = None
    try:
        with c.local_stack(pollers=False, aws_process=args.aws_process) as stack:
            cache = get_settings().router_cache_seconds
            for scenario in SCENARIOS:
                retry = {"retry_countdown_config": RETRY_COUNTDOWN} if scenario.attempts > 1 else {}
                for number in range(scenario.subscriptions):
                    c.subscribe(
                        "bench",
                        scenario.event_type,
                        receiver.url(f"/{scenario.name}/{number}"),
                        secret_key=SECRET,
                        **retry,
                    )
            for scenario in SCENARIOS:
                c.note(f"{NAME}: {scenario.name}")
                try:
                    results[scenario.name] = measure(
                        scenario, stack, receiver, args.n, log.fileno()
                    )
                except CountMismatch as exc:
                    failure = f"{scenario.name}: {exc}"
                    results[scenario.name] = {"cross_check": {"ok": False, "problem": str(exc)}}
    finally:
        receiver.stop()
        if os.environ.get("BENCH_KEEP_CALL_LOGS"):
            shutil.copyfile(log.name, os.path.join(CALLS_DIR, "handlers-stdout.log"))
        log.close()
        if os.environ.get("BENCH_KEEP_CALL_LOGS"):
            c.note(f"{NAME}: call logs, moto's recording and stdout kept in {CALLS_DIR}")
        else:
            shutil.rmtree(CALLS_DIR, ignore_errors=True)
    api_destinations = {
        s.name: round(
            (
                PRICES["eventbridge_custom_event"]["usd"] / s.subscriptions
                + PRICES["eventbridge_api_destination"]["usd"] * s.attempts
            )
            * 1e6,
            3,
        )
        for s in SCENARIOS
    }
    first = results.get("one_to_one", {}).get("usd_per_million_deliveries_total")
    busy = results.get("one_to_ten", {}).get("usd_per_million_deliveries_total")
    retry = _per_retry(results.get("one_to_one", {}), results.get("one_retry", {}))
    c.emit(
        NAME,
        n=args.n,
        **results,
        router_cache_seconds=cache,
        aws_process=args.aws_process,
        cross_check_ok=failure is None,
        prices=PRICES,
        prices_date=PRICES_DATE,
        memory_mb=MEMORY_MB,
        load_average=[round(x, 2) for x in os.getloadavg()],
        baseline={"api_destinations_usd_per_million_deliveries": api_destinations},
        ratio=c.ratio(first, api_destinations["one_to_one"]),
        ratio_one_to_ten=c.ratio(busy, api_destinations["one_to_ten"]),
        per_retry=retry,
    )
    if failure is not None:
        print(
            f"[bench] {NAME}: the call log and moto's recorder disagree: {failure}", file=sys.stderr
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
