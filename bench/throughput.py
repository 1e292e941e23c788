"""Benchmark 5, throughput: deliveries per second through the whole local stack.

One subscription to one fast receiver on 127.0.0.1 (200 at once). ``--n``
events (default 1,000) are published as fast as ``publish_events`` goes (10
per PutEvents call); the figure is unique deliveries arrived divided by the
time from the first PutEvents to the last arrival, through the bus, the
rule, the ingress queue, the router, the delivery queue and the dispatcher
(the local stack's pollers: ``$OMS_WEBHOOKS_LOCAL_POLLERS`` per queue,
default 4). Baseline, in the same run: a bare ``requests.Session`` POST loop
of the same envelope size to the same receiver, ``--n`` times.

Everything runs in one Python process on the machine's cores (moto, the
pollers, the handlers, the receiver), so this measures the local stack, not
AWS: it tells how much work each delivery costs, not a deployment's ceiling.
"""

from __future__ import annotations

import time

import requests

import _common as c

NAME = "throughput"
EVENT_TYPE = "package.status.packed"
WAIT_SECONDS = 90.0


def _bare_loop(url: str, n: int, body: bytes) -> float:
    """Requests per second of a plain keep-alive POST loop to ``url``."""
    with requests.Session() as session, c.stopwatch() as elapsed:
        for _ in range(n):
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        return n / elapsed()


def main() -> None:
    """Run the benchmark and print its JSON line."""
    from oms_webhooks.local.pollers import concurrency_from_env

    args = c.parse_args(__doc__ or NAME, default_n=1000)
    receiver = c.receiver()
    try:
        with c.local_stack(), c.ApiCallRecorder() as recorder:
            c.subscribe("bench", EVENT_TYPE, receiver.url("/hook"))
            c.publish_paced(EVENT_TYPE, [{"run": "warmup", "seq": 0}])
            c.wait_until(lambda: c.arrivals(receiver.requests, "warmup"), 15.0)
            sample = receiver.requests[-1].body
            details = [{"run": "load", "seq": i} for i in range(args.n)]
            recorder.clear()
            cpu_started = time.process_time()
            sent = c.publish_paced(EVENT_TYPE, details)
            publish_s = max(sent.values()) - min(sent.values())
            c.wait_until(
                lambda: len(c.arrivals(receiver.requests, "load")) >= args.n, WAIT_SECONDS, 0.2
            )
            arrived = c.arrivals(receiver.requests, "load")
            cpu_s = time.process_time() - cpu_started
            calls = recorder.snapshot()
            total = sum(
                1
                for r in receiver.requests
                if b'"run":"load"' in r.body or b'"run": "load"' in r.body
            )
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
        aws_calls_per_delivery=round(
            sum(1 for x in calls if x.operation != "ReceiveMessage" or x.response.get("Messages"))
            / max(1, len(arrived)),
            2,
        ),
        envelope_bytes=len(sample),
        baseline={"bare_posts_per_s": round(baseline, 1)},
        ratio=c.ratio(rate, baseline),
    )


if __name__ == "__main__":
    main()
