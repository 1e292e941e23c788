"""Benchmark 2, isolation: healthy latency beside a dead, dripping or slow partner (DESIGN §9).

On the local stack (moto, the real router and dispatcher fed by its SQS
pollers: the shipped defaults unless ``--read-timeout`` says otherwise), one
event type has a healthy subscription (a receiver on 127.0.0.1 answering 200
at once). ``--n`` events (default 100) are published at ``--rate`` events
per second (default 10) and the latency of each healthy delivery is taken
from ``publish_events`` to its arrival at the receiver. Three runs in one
invocation, on one stack:

1. ``clean``: the healthy subscription alone (baseline);
2. ``control``: another tenant's partner that answers ``200`` at once is
   subscribed too (baseline: what a second subscription costs on this
   machine, CPU included; its subscription is deleted afterwards);
3. the variant: another tenant subscribes a misbehaving partner to the same
   event type.

The machine's load average is reported before and after. ``--variant``:

* ``dead`` (default): accepts the connection, reads the request, never answers;
  each attempt ends at the read timeout (``--read-timeout``, default the
  shipped 10 s, via ``OMS_WEBHOOKS_READ_TIMEOUT_SECONDS``);
* ``dripping``: sends its status line and headers one byte every 0.5 s, so
  each wait for data is short: the attempt ends at its deadline (connect +
  read timeout in all);
* ``slow``: answers ``200`` after 8 s (within the default read timeout);
* ``fast``: answers ``200`` at once (the control alone; no separate control run).

The partner keeps its default retry schedule, so its retries compete too.
Goal: healthy p99 ≤ 1.5 s (and ≤ 1.5 × the control's p99: the ratio reported
is against the control run, the clean run is beside it). Cross-check, which
fails the run (exit 1) when it does not hold: the partner's accepted
connections equal the attempts in its delivery log (waited for up to 60 s
after the run, so that attempts in flight are recorded).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import _common as c
from oms_webhooks_local.lanes import concurrency_from_env

# isort: split
# (after _common, which puts the repository's root on sys.path)
from tests.raw_endpoints import RawEndpoint, Script, dripping, silent, slow

NAME = "dead_endpoint_isolation"
EVENT_TYPE = "shipment.created"
GOAL_P99_S = 1.5
GOAL_RATIO = 1.5
WAIT_SECONDS = 60.0
SHIPPED_READ_TIMEOUT_S = 10.0
BAD_TENANT = "bench-partner"
CONTROL_TENANT = "bench-control"
#: Each ``--variant``'s script (tests/raw_endpoints.py, the tests' misbehaving partners).
SCRIPTS: dict[str, Script] = {
    "dead": silent,
    "dripping": dripping(0.5),
    "slow": slow(8.0),
    "fast": slow(0.0),
}


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=10.0, help="events per second (10)")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=SHIPPED_READ_TIMEOUT_S,
        help="delivery read timeout in seconds (default: the shipped 10)",
    )
    parser.add_argument(
        "--variant",
        choices=tuple(SCRIPTS),
        default="dead",
        help="the partner (fast: a control, answers 200 at once)",
    )


def _run(name: str, healthy: Any, n: int, rate: float) -> dict[str, Any]:
    """Publish ``n`` events of run ``name``; latencies of their healthy deliveries."""
    details = [{"run": name, "seq": i} for i in range(n)]
    sent = c.publish_paced(EVENT_TYPE, details, rate=rate)
    c.wait_until(lambda: len(c.arrivals(healthy.requests, name)) >= n, WAIT_SECONDS, 0.1)
    arrived = c.arrivals(healthy.requests, name)
    latencies = [arrived[seq] - sent[seq] for seq in arrived if seq in sent]
    return {**c.summary(latencies), "missing": n - len(arrived)}


def _logged_attempts(subscription_id: str) -> int:
    """Attempts in the delivery log of the partner's subscription (DynamoDB, as the API reads)."""
    from oms_webhooks.delivery.log import attempts_of
    from oms_webhooks.storage.models import DeliveryModel

    total = 0
    for delivery in DeliveryModel.by_tenant.query(BAD_TENANT):
        if delivery.subscription_id != subscription_id:
            continue
        total += len(attempts_of(delivery.pk))  # the latest is on the delivery item
    return total


def _deliveries_by_outcome(subscription_id: str) -> dict[str, int]:
    from oms_webhooks.delivery.store import get_store
    from oms_webhooks.storage.models import DeliveryModel

    counts: dict[str, int] = {}
    for entry in DeliveryModel.by_tenant.query(BAD_TENANT):
        # The index holds what never changes; the status is on the item.
        delivery = get_store().get(entry.pk) if entry.subscription_id == subscription_id else None
        if delivery is not None:
            counts[delivery.status] = counts.get(delivery.status, 0) + 1
    return counts


def _control(healthy: Any, n: int, rate: float) -> dict[str, Any]:
    """The control run: a partner answering at once beside the healthy one, then removed."""
    from oms_webhooks.subscriptions.service import delete_subscription

    control = c.receiver()
    try:
        subscription = c.subscribe(CONTROL_TENANT, EVENT_TYPE, control.url("/control"))
        result = _run("control", healthy, n, rate)
        c.wait_until(lambda: len(c.arrivals(control.requests, "control")) >= n, WAIT_SECONDS)
        result["partner_arrivals"] = len(c.arrivals(control.requests, "control"))
        delete_subscription(CONTROL_TENANT, subscription.id)
    finally:
        control.stop()
    return result


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    """Run the benchmark, print its JSON line; exit 1 if connections ≠ logged attempts."""
    args = c.parse_args(__doc__ or NAME, default_n=100, extra=_extra)
    env = {"OMS_WEBHOOKS_READ_TIMEOUT_SECONDS": str(args.read_timeout)}
    load_before = _load()
    healthy = c.receiver()
    partner = RawEndpoint(SCRIPTS[args.variant]).start()
    control: dict[str, Any] | None = None
    try:
        with c.local_stack(env=env, aws_process=True):
            c.subscribe("bench", EVENT_TYPE, healthy.url("/healthy"))
            c.publish_paced(EVENT_TYPE, [{"run": "warmup", "seq": 0}])
            c.wait_until(lambda: c.arrivals(healthy.requests, "warmup"), 15.0)
            clean = _run("clean", healthy, args.n, args.rate)
            c.note(f"clean p99 {clean['p99']} s")
            if args.variant != "fast":
                control = _control(healthy, args.n, args.rate)
                c.note(f"control p99 {control['p99']} s")
            bad = c.subscribe(BAD_TENANT, EVENT_TYPE, partner.url("/partner"))
            started = time.monotonic()
            dirty = _run(args.variant, healthy, args.n, args.rate)
            c.note(f"{args.variant} p99 {dirty['p99']} s")
            load_after = _load()
            # Attempts in flight finish (or time out) and are recorded; then compare.
            c.wait_until(lambda: _logged_attempts(bad.id) == partner.accepted, WAIT_SECONDS, 0.5)
            attempts = _logged_attempts(bad.id)
            connections = partner.accepted
            outcomes = _deliveries_by_outcome(bad.id)
            elapsed = time.monotonic() - started
    finally:
        partner.stop()
        healthy.stop()
    checks = {
        "partner_attempts": c.agree(partner_connections=connections, delivery_log_attempts=attempts)
    }
    p99 = dirty["p99"]
    reference = control if control is not None else clean
    value = c.ratio(p99, reference["p99"])
    c.emit(
        NAME,
        n=args.n,
        variant=args.variant,
        rate_per_s=args.rate,
        read_timeout_s=args.read_timeout,
        healthy_latency_s=dirty,
        partner_connections=connections,
        partner_attempts_logged=attempts,
        partner_deliveries=outcomes,
        partner_run_s=round(elapsed, 1),
        dispatcher_pollers_per_lane=concurrency_from_env(),
        load_average={"before": load_before, "after_variant_run": load_after},
        goal=f"p99 <= {GOAL_P99_S} s and ratio (to the control's p99) <= {GOAL_RATIO}",
        goal_met={
            "p99": p99 is not None and p99 <= GOAL_P99_S and dirty["missing"] == 0,
            "ratio": value is not None and value <= GOAL_RATIO,
        },
        baseline={
            "clean_healthy_latency_s": clean,
            "control_healthy_latency_s": control,
        },
        cross_checks=checks,
        ratio=value,
    )
    c.exit_unless_agreed(NAME, checks)


if __name__ == "__main__":
    main()
