"""Benchmark 5, throughput: deliveries per second through the whole local stack.

One subscription to one fast receiver on 127.0.0.1 (200 at once). ``--n``
events (default 1,000) are published as fast as ``publish_events`` goes (10
per PutEvents call); the figure is unique deliveries arrived divided by the
time from the first PutEvents to the last arrival, through the bus, the
rule, the ingress queue, the router, the delivery queue and the dispatcher
(the local stack's pollers: ``$OMS_WEBHOOKS_LOCAL_POLLERS`` per queue,
default 4). Baseline, in the same run: a bare ``requests.Session`` POST loop
of the same envelope size to the same receiver, ``--n`` times.

Cross-checked (exit 1 when they differ): the deliveries at the receiver
(their ``webhook-id``) against the deliveries the delivery log lists as
delivered, and the events published against the events arrived.

The stack is laid out as ``oms-webhooks local`` runs it: moto's server in a
process of its own (:mod:`oms_webhooks_local.aws_server`), the pollers and
handlers in this one (with the receiver), so the figures report both
processes' CPU per delivery (``cpu_ms_per_delivery`` here,
``aws_server.cpu_ms_per_delivery`` there) and the AWS requests moto served
per delivery. This measures the local stack, not AWS: it tells how much work
each delivery costs, not a deployment's ceiling.

Before the burst, ``--paced`` events (default 50) go out one at a time at
10 a second on the idle stack: ``paced_latency_s`` is PutEvents → arrival at
the receiver for each.
"""

from __future__ import annotations

import json
import os
import time

import requests

import _common as c

NAME = "throughput"
EVENT_TYPE = "package.status.packed"
WAIT_SECONDS = 90.0
#: The paced phase: events, one every 1 / rate seconds, on the idle stack.
PACED_EVENTS = 50
PACED_RATE = 10.0


def _bare_loop(url: str, n: int, body: bytes) -> float:
    """Requests per second of a plain keep-alive POST loop to ``url``."""
    with requests.Session() as session, c.stopwatch() as elapsed:
        for _ in range(n):
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        return n / elapsed()


def main() -> None:
    """Run the benchmark and print its JSON line."""
    from oms_webhooks_local.lanes import concurrency_from_env

    args = c.parse_args(__doc__ or NAME, default_n=1000)
    receiver = c.receiver()
    try:
        with c.local_stack(aws_process=True) as stack, c.ApiCallRecorder() as recorder:
            c.subscribe("bench", EVENT_TYPE, receiver.url("/hook"))
            c.publish_paced(EVENT_TYPE, [{"run": "warmup", "seq": 0}])
            c.wait_until(lambda: c.arrivals(receiver.requests, "warmup"), 15.0)
            sample = receiver.requests[-1].body
            paced = [{"run": "paced", "seq": i} for i in range(PACED_EVENTS)]
            paced_sent = c.publish_paced(EVENT_TYPE, paced, rate=PACED_RATE)
            c.wait_until(
                lambda: len(c.arrivals(receiver.requests, "paced")) >= len(paced), 30.0, 0.1
            )
            paced_arrived = c.arrivals(receiver.requests, "paced")
            paced_latency = [paced_arrived[i] - paced_sent[i] for i in paced_arrived]
            details = [{"run": "load", "seq": i} for i in range(args.n)]
            recorder.clear()
            aws_started = stack.aws_stats()
            cpu_started = time.process_time()
            sent = c.publish_paced(EVENT_TYPE, details)
            publish_s = max(sent.values()) - min(sent.values())
            c.wait_until(
                lambda: len(c.arrivals(receiver.requests, "load")) >= args.n, WAIT_SECONDS, 0.2
            )
            arrived = c.arrivals(receiver.requests, "load")
            cpu_s = time.process_time() - cpu_started
            aws_ended = stack.aws_stats()
            calls = recorder.snapshot()
            load = [r for r in receiver.requests if _run_of(r) == "load"]
            total = len(load)
            at_receiver = set(c.webhook_ids(load))
            warmup = set(
                c.webhook_ids([r for r in receiver.requests if _run_of(r) in ("warmup", "paced")])
            )
            # The dispatcher records a delivery just after its POST is answered.
            logged: set[str] = set()

            def log_caught_up() -> bool:
                nonlocal logged
                logged = {d.pk for d in c.delivery_log("bench") if d.status == "delivered"} - warmup
                return logged >= at_receiver

            c.wait_until(log_caught_up, 30.0, 0.5)
        checks = {
            "deliveries": c.agree(receiver=at_receiver, delivery_log_delivered=logged),
            "events": c.agree(published=args.n, arrived_at_receiver=len(arrived)),
        }
        duration = max(arrived.values()) - min(sent.values()) if arrived else None
        rate = len(arrived) / duration if duration else None
        baseline = _bare_loop(receiver.url("/bare"), args.n, sample)
    finally:
        receiver.stop()
    c.emit(
        NAME,
        n=args.n,
        deliveries_per_s=None if rate is None else round(rate, 1),
        delivered=len(arrived),
        duplicates=total - len(arrived),
        missing=args.n - len(arrived),
        duration_s=None if duration is None else round(duration, 2),
        publish_s=round(publish_s, 2),
        pollers_per_queue=concurrency_from_env(),
        cpu_ms_per_delivery=round(cpu_s / max(1, len(arrived)) * 1000, 1),
        aws_server={
            "cpu_ms_per_delivery": round(
                (aws_ended["cpu_s"] - aws_started["cpu_s"]) / max(1, len(arrived)) * 1000, 1
            ),
            "requests_per_delivery": round(
                (aws_ended["requests"] - aws_started["requests"]) / max(1, len(arrived)), 2
            ),
        },
        paced_latency_s=c.summary(paced_latency),
        aws_calls_per_delivery=round(
            sum(1 for x in calls if x.operation != "ReceiveMessage" or x.response.get("Messages"))
            / max(1, len(arrived)),
            2,
        ),
        envelope_bytes=len(sample),
        cross_checks=checks,
        load_average=[round(x, 2) for x in os.getloadavg()],
        baseline={"bare_posts_per_s": round(baseline, 1)},
        ratio=c.ratio(rate, baseline),
    )
    c.exit_unless_agreed(NAME, checks)


def _run_of(arrival: c.Arrival) -> str | None:
    """The ``run`` of the envelope's payload (``None`` if it has none)."""
    try:
        return str(json.loads(arrival.body.decode("utf-8"))["payload"]["run"])
    except (ValueError, KeyError, TypeError):
        return None


if __name__ == "__main__":
    main()
