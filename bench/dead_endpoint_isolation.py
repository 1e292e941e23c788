"""Benchmark 2, dead-endpoint isolation: healthy latency with and without a dead endpoint.

On the local stack (moto, the real router and dispatcher fed by its SQS
pollers), one event type has a healthy subscription (a receiver on
127.0.0.1 answering 200 at once). ``--n`` events (default 100) are published
at ``--rate`` events per second (default 10) and the latency of each healthy
delivery is taken from ``publish_events`` to its arrival at the receiver:
the clean run (baseline). Then a second subscription of the same type is
added whose endpoint accepts the connection and never answers (so each
attempt ends at the read timeout, set to ``--read-timeout`` s, default 2,
via ``OMS_WEBHOOKS_READ_TIMEOUT_SECONDS``), and the same is measured again.

Goal: healthy p99 ≤ 1.5 s and ≤ 1.5 × the clean p99 (DESIGN §5: one dead
endpoint must not hold back the others). The dead subscription keeps its
default retry schedule, so its retries compete too, as they would.
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as c
from oms_webhooks.local.pollers import concurrency_from_env

NAME = "dead_endpoint_isolation"
EVENT_TYPE = "shipment.created"
GOAL_P99_S = 1.5
GOAL_RATIO = 1.5
WAIT_SECONDS = 45.0


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=10.0, help="events per second (10)")
    parser.add_argument("--read-timeout", type=float, default=2.0, help="delivery read timeout")


def _run(name: str, healthy: Any, n: int, rate: float) -> dict[str, Any]:
    """Publish ``n`` events of run ``name``; latencies of their healthy deliveries."""
    details = [{"run": name, "seq": i} for i in range(n)]
    sent = c.publish_paced(EVENT_TYPE, details, rate=rate)
    c.wait_until(lambda: len(c.arrivals(healthy.requests, name)) >= n, WAIT_SECONDS, 0.1)
    arrived = c.arrivals(healthy.requests, name)
    latencies = [arrived[seq] - sent[seq] for seq in arrived if seq in sent]
    return {**c.summary(latencies), "missing": n - len(arrived)}


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=100, extra=_extra)
    env = {"OMS_WEBHOOKS_READ_TIMEOUT_SECONDS": str(args.read_timeout)}
    healthy = c.receiver()
    dead = c.BlackHole()
    try:
        with c.local_stack(env=env):
            c.subscribe("bench", EVENT_TYPE, healthy.url("/healthy"))
            c.publish_paced(EVENT_TYPE, [{"run": "warmup", "seq": 0}])
            c.wait_until(lambda: c.arrivals(healthy.requests, "warmup"), 15.0)
            clean = _run("clean", healthy, args.n, args.rate)
            c.subscribe("bench", EVENT_TYPE, dead.url("/dead"))
            dirty = _run("dead", healthy, args.n, args.rate)
    finally:
        dead_connections = dead.accepted
        dead.stop()
        healthy.stop()
    p99, clean_p99 = dirty["p99"], clean["p99"]
    value = c.ratio(p99, clean_p99)
    c.emit(
        NAME,
        n=args.n,
        rate_per_s=args.rate,
        read_timeout_s=args.read_timeout,
        healthy_latency_s=dirty,
        dead_connections=dead_connections,
        dispatcher_pollers=concurrency_from_env(),
        goal=f"p99 <= {GOAL_P99_S} s and ratio <= {GOAL_RATIO}",
        goal_met={
            "p99": p99 is not None and p99 <= GOAL_P99_S and dirty["missing"] == 0,
            "ratio": value is not None and value <= GOAL_RATIO,
        },
        baseline={"healthy_latency_s": clean},
        ratio=value,
    )


if __name__ == "__main__":
    main()
