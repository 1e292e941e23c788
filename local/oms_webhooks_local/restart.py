"""What a restart of the local stack carries on: dev token, events, deliveries, recoveries.

With a state directory (:mod:`oms_webhooks_local.persistence`) the tables are
kept but SQS messages are not: a clean stop first lets the router drain the
ingress queue (:func:`drain_ingress`); at start :func:`resume_pending_deliveries`
and :func:`resume_recoveries` send again the messages the tables say are still
due. The development token is kept beside the state (:func:`dev_token`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from oms_webhooks.settings import get_settings

logger = logging.getLogger(__name__)

#: The development token's tenant.
DEV_TENANT = "dev"
#: The development token's file in the state directory (mode 0600).
DEV_TOKEN_FILE = "dev-token"  # noqa: S105 - a file name
#: Seconds a clean stop waits for the ingress queue to drain through the router.
DRAIN_SECONDS = 30.0


def _kept_dev_token(state_dir: Path | None) -> str | None:
    """The development token kept in ``state_dir`` (None: no directory, no token kept)."""
    if state_dir is None:
        return None
    try:
        return (state_dir / DEV_TOKEN_FILE).read_text("utf-8").strip() or None
    except FileNotFoundError:
        return None


def _keep_dev_token(state_dir: Path | None, token: str) -> None:
    """Keep ``token`` in ``state_dir`` (file mode 0600); nothing without a directory."""
    if state_dir is None:
        return
    path = state_dir / DEV_TOKEN_FILE
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")


def dev_token(state_dir: Path | None, wanted: str | None) -> str:
    """Register the development token (tenant :data:`DEV_TENANT`) and keep it in ``state_dir``.

    The token is ``wanted``, else the one kept in ``state_dir`` (a new one if
    that was revoked), else a new random one.

    Raises:
        oms_webhooks.api.tokens.TokenError: ``wanted`` is not a valid token.
    """
    from oms_webhooks.api.tokens import TokenError, create_token

    kept = _kept_dev_token(state_dir) if not wanted else None
    try:
        _, token = create_token(tenant=DEV_TENANT, token=wanted or kept or None)
    except TokenError:
        if wanted or not kept:
            raise
        logger.warning("the kept development token was revoked: a new one is made")
        _, token = create_token(tenant=DEV_TENANT)
    _keep_dev_token(state_dir, token)
    return token


def drain_ingress(aws_endpoint_url: str) -> None:
    """Wait (up to :data:`DRAIN_SECONDS`) until the router has taken every ingress message."""
    from oms_webhooks.resources import INGRESS_QUEUE
    from oms_webhooks_local.pollers import sqs_client

    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    try:
        sqs = sqs_client(aws_endpoint_url)
        url = sqs.get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
            left = sum(int(attributes["Attributes"].get(n, 0)) for n in names)
            if not left:
                return
            time.sleep(0.2)
        logger.warning("%d events were not routed within %.0f s", left, DRAIN_SECONDS)
    except Exception:
        logger.exception("could not drain the ingress queue")


def resume_recoveries() -> int:
    """Queue again the recoveries that were running at the last stop (DESIGN §10)."""
    from oms_webhooks.aws_clients import client
    from oms_webhooks.routing.recovery import resume_running

    return resume_running(sqs=client("sqs"), queue_url=get_settings().recovery_queue_url)


def resume_pending_deliveries(now: float | None = None) -> int:
    """Re-create the delivery message of every pending delivery, due when its record says.

    After a restart the delivery queue is empty (SQS messages are not kept),
    while the deliveries table says what is still to do. Each message is
    sent with ``DelaySeconds`` = its due time minus now (0-900 s); a later
    due time comes back early and the dispatcher holds it again, as it
    does any message that is not due (:mod:`oms_webhooks.delivery.retry.scheduling`). A
    delivery that already has a message gets a second one: the dispatcher's
    claim lets only one of them make the attempt.

    Returns:
        how many messages were sent.
    """
    from oms_webhooks.aws_clients import client
    from oms_webhooks.delivery.retry.scheduling import SQS_MAX_DELAY_SECONDS
    from oms_webhooks.delivery.store import PENDING
    from oms_webhooks.storage.models import DeliveryModel
    from oms_webhooks.storage.specs import bind_tables

    bind_tables()
    queue_url = get_settings().delivery_queue_url
    now = time.time() if now is None else now
    entries: list[dict[str, Any]] = []
    sent = 0
    condition = (DeliveryModel.sk == "delivery") & (DeliveryModel.status == PENDING)
    sqs = client("sqs")

    def flush() -> None:
        nonlocal sent
        if entries:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(entries))
            for failure in response.get("Failed", []):
                logger.error("could not resume a delivery: %s", failure.get("Code"))
            sent += len(response.get("Successful", []))
            entries.clear()

    for delivery in DeliveryModel.scan(condition):
        due = float(delivery.next_attempt_at or 0)
        delay = int(min(SQS_MAX_DELAY_SECONDS, max(0.0, due - now)))
        entries.append(
            {
                "Id": str(len(entries)),
                "MessageBody": json.dumps({"delivery": delivery.pk}),
                "DelaySeconds": delay,
            }
        )
        if len(entries) == 10:
            flush()
    flush()
    return sent


__all__ = [
    "DEV_TENANT",
    "DEV_TOKEN_FILE",
    "DRAIN_SECONDS",
    "dev_token",
    "drain_ingress",
    "resume_pending_deliveries",
    "resume_recoveries",
]
