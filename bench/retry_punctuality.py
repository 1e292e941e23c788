"""Benchmark 7, retry punctuality: scheduled vs actual attempt times on the local stack.

Two subscriptions of one event type to a receiver on 127.0.0.1 that always
answers 500: one with a fixed 2 s countdown, one exponential with base 2
(1, 2, 4, 8, 16 s), each with ``--retries`` retries (default 5). ``--n``
events (default 3) are published together; every delivery is followed to
its last attempt. For retry k the scheduled time is the arrival of attempt
k-1 plus the policy's countdown for retry k-1 (what the partner can
observe); lateness = actual arrival − scheduled. ``baseline`` is the mean
scheduled interval, ``ratio`` the mean actual interval over it.

The retry path is SQS itself (DESIGN §5): the dispatcher sets the message's
visibility to the countdown and the poller (1 s long polls) picks it up
again; DESIGN §6 promises a retry within a second of its countdown.

Cross-checked (exit 1 when they differ): the attempts each delivery's
``webhook-id`` brought to the receiver against the attempts the delivery log
recorded for it, and the deliveries seen on both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from typing import Any

import _common as c

NAME = "retry_punctuality"
EVENT_TYPE = "transfer.status.created"
POLICIES: dict[str, dict[str, Any]] = {
    "fixed_2s": {"choice": "fixed", "kwargs": {"seconds": 2}},
    "exponential_base2": {"choice": "exponential", "kwargs": {"base": 2}},
}
GOAL_MAX_LATE_S = 1.0


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retries", type=int, default=5, help="retries per delivery (5)")


def _lateness(
    arrivals: list[c.Arrival], config: dict[str, Any]
) -> tuple[list[float], list[float], list[float]]:
    """(lateness, actual intervals, scheduled intervals) of one delivery's attempts."""
    from oms_webhooks.delivery.retry.policies import countdown_for

    times = sorted(a.received_at for a in arrivals)
    late, actual, scheduled = [], [], []
    for k in range(1, len(times)):
        countdown = float(countdown_for(config, k - 1))
        late.append(times[k] - (times[k - 1] + countdown))
        actual.append(times[k] - times[k - 1])
        scheduled.append(countdown)
    return late, actual, scheduled


def main() -> None:
    """Run the benchmark and print its JSON line."""
    from oms_webhooks.delivery.retry.policies import countdown_for

    args = c.parse_args(__doc__ or NAME, default_n=3, extra=_extra)
    wait = 20.0 + sum(
        max(float(countdown_for(p, k)) for p in POLICIES.values()) + 1.5
        for k in range(args.retries)
    )
    receiver = c.receiver(lambda _arrival: (500, 0.0))
    expected = args.n * len(POLICIES) * (args.retries + 1)
    try:
        with c.local_stack():
            for name, config in POLICIES.items():
                c.subscribe(
                    "bench",
                    EVENT_TYPE,
                    receiver.url(f"/{name}"),
                    retry_countdown_config=config,
                    max_retries=args.retries,
                )
            c.publish_paced(EVENT_TYPE, [{"run": "retry", "seq": i} for i in range(args.n)])
            c.wait_until(lambda: len(receiver.requests) >= expected, wait, 0.1)
            requests = receiver.requests
            at_receiver = c.webhook_ids(requests)
            in_log: dict[str, int] = {}

            def log_caught_up() -> bool:
                # An attempt is recorded just after the partner answered it.
                in_log.update({uid: c.attempts_in_log(uid) for uid in at_receiver})
                return all(in_log[uid] >= n for uid, n in at_receiver.items())

            c.wait_until(log_caught_up, 15.0, 0.5)
            logged_deliveries = {d.pk for d in c.delivery_log("bench")}
    finally:
        receiver.stop()
    by_delivery: dict[tuple[str, str], list[c.Arrival]] = defaultdict(list)
    for arrival in requests:
        by_delivery[(arrival.path.strip("/"), arrival.headers.get("webhook-id", ""))].append(
            arrival
        )
    figures: dict[str, Any] = {}
    all_actual: list[float] = []
    all_scheduled: list[float] = []
    for name, config in POLICIES.items():
        late: list[float] = []
        attempts = 0
        for (policy, _uid), arrivals in by_delivery.items():
            if policy != name:
                continue
            attempts += len(arrivals)
            lateness, actual, scheduled = _lateness(arrivals, config)
            late += lateness
            all_actual += actual
            all_scheduled += scheduled
        figures[name] = {
            "countdowns_s": [countdown_for(config, k) for k in range(args.retries)],
            "attempts": attempts,
            "retries_seen": len(late),
            "mean_late_s": round(statistics.fmean(late), 3) if late else None,
            "max_late_s": round(max(late), 3) if late else None,
            "min_late_s": round(min(late), 3) if late else None,
        }
    checks = {
        "attempts": c.agree(receiver=sum(at_receiver.values()), delivery_log=sum(in_log.values())),
        "attempts_per_delivery": c.agree(
            receiver={(uid, n) for uid, n in at_receiver.items()},
            delivery_log={(uid, n) for uid, n in in_log.items()},
        ),
        "deliveries": c.agree(receiver=set(at_receiver), delivery_log=logged_deliveries),
    }
    worst = max(
        (f["max_late_s"] for f in figures.values() if f["max_late_s"] is not None), default=None
    )
    mean_actual = statistics.fmean(all_actual) if all_actual else None
    mean_scheduled = statistics.fmean(all_scheduled) if all_scheduled else None
    c.emit(
        NAME,
        n=args.n,
        retries=args.retries,
        lateness=figures,
        attempts_expected=expected,
        attempts_seen=len(requests),
        goal=f"every retry within {GOAL_MAX_LATE_S} s of its countdown (DESIGN §6)",
        goal_met=worst is not None and worst <= GOAL_MAX_LATE_S and len(requests) >= expected,
        cross_checks=checks,
        load_average=[round(x, 2) for x in os.getloadavg()],
        baseline={
            "mean_scheduled_interval_s": None
            if mean_scheduled is None
            else round(mean_scheduled, 3)
        },
        ratio=c.ratio(mean_actual, mean_scheduled),
    )
    c.exit_unless_agreed(NAME, checks)


if __name__ == "__main__":
    main()
