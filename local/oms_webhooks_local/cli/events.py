"""``oms-webhooks publish``, ``events replay`` and ``dlq redrive``: events in, kept events, DLQs.

``publish`` puts one OMS event on the bus (:mod:`oms_webhooks_local.publisher`);
``events replay`` and ``dlq redrive`` are an operator's tools.
"""

from __future__ import annotations

from typing import Any

import click

from oms_webhooks.resources import QUEUES, QueueSpec
from oms_webhooks.settings import get_settings
from oms_webhooks_local.cli.base import (
    CONTEXT_SETTINGS,
    BadInput,
    Failure,
    aws_options,
    aws_target,
    main,
)
from oms_webhooks_local.publisher import (
    EventTooLarge,
    InvalidEvent,
    PublishFailed,
    parse_detail,
    publish_event,
)


@main.command(context_settings=CONTEXT_SETTINGS)
@click.argument("event_type")
@click.option("--data", metavar="JSON", help="The event's Detail, a JSON object.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="A file holding the Detail as a JSON object ('-' = stdin).",
)
@click.option("--bus", default=None, help="EventBridge bus (default: the bus_name setting, oms).")
@click.option(
    "--source",
    default=None,
    help="Event Source (default: the event_source setting; another one is not routed).",
)
@aws_options
def publish(
    event_type: str,
    data: str | None,
    path: str | None,
    bus: str | None,
    source: str | None,
    endpoint_url: str | None,
) -> None:
    """Publish one OMS event of EVENT_TYPE on the bus (PutEvents); print its event id.

    EVENT_TYPE is a catalogue type (package.created) or its alias (package-created).
    The Detail must be a JSON object (NaN and Infinity are not JSON: refused).
    A --source other than the configured one is published with a warning: the
    service's rule routes only the configured source, so nobody gets it.
    """
    if (data is None) == (path is None):
        raise click.UsageError("give exactly one of --data and --file")
    if path is not None:
        with click.open_file(path, encoding="utf-8") as handle:
            data = handle.read()
    try:
        detail = parse_detail(data or "")
    except InvalidEvent as exc:
        raise BadInput(str(exc)) from None
    configured = get_settings().event_source
    if source is not None and source != configured:
        click.echo(
            f"Warning: --source {source!r} is not the configured event source {configured!r} "
            "(the event_source setting, $OMS_WEBHOOKS_EVENT_SOURCE): the rule routes only "
            f"events of source {configured!r}, so no subscriber will get this one.",
            err=True,
        )
    try:
        with aws_target(endpoint_url):
            event_id = publish_event(event_type, detail, bus_name=bus, source=source)
    except (InvalidEvent, EventTooLarge) as exc:
        raise BadInput(str(exc)) from None
    except PublishFailed as exc:
        reasons = "; ".join(f"{f.error_code}: {f.error_message}" for f in exc.failed)
        raise Failure(f"not published: {reasons}") from None
    click.echo(event_id)


@main.group(context_settings=CONTEXT_SETTINGS)
def events() -> None:
    """Kept OMS events (an operator's tools)."""


@events.command("replay", context_settings=CONTEXT_SETTINGS)
@click.argument("event_id")
@click.option(
    "--subscription",
    "subscription_id",
    metavar="ID",
    default=None,
    help="Only this subscription (active, of the event's type).",
)
@click.option(
    "--prefix", default="", help="Queue name prefix of a deployment (its stack name), if any."
)
@aws_options
def events_replay(
    event_id: str, subscription_id: str | None, prefix: str, endpoint_url: str | None
) -> None:
    """Send kept event EVENT_ID again to its current matching subscriptions, as new deliveries.

    New deliveries get new ids (new webhook-id headers): the partner asked for
    the event again. To re-send what a partner missed with the original ids,
    use the API's recover instead.
    """
    import boto3

    from oms_webhooks.resources import DELIVERY_QUEUE
    from oms_webhooks.routing.replay import ReplayError, replay

    name = f"{prefix}-{DELIVERY_QUEUE.name}" if prefix else DELIVERY_QUEUE.name
    with aws_target(endpoint_url):
        sqs = boto3.session.Session().client("sqs")
        queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        try:
            made = replay(event_id, sqs=sqs, queue_url=queue_url, subscription_id=subscription_id)
        except ReplayError as exc:
            raise BadInput(str(exc)) from None
    for sub_id, uid in made:
        click.echo(f"{uid}\t{sub_id}")
    click.echo(f"Replayed {event_id} as {len(made)} new delivery(ies).", err=True)


# -- dlq ------------------------------------------------------------------------


@main.group(context_settings=CONTEXT_SETTINGS)
def dlq() -> None:
    """Redrive the dead-letter queues (poison messages wait there, alarmed)."""


_QUEUE_CHOICE = click.Choice([spec.name.removeprefix("oms-webhooks-") for spec in QUEUES])


def _queue_spec(short: str) -> QueueSpec:
    return next(spec for spec in QUEUES if spec.name.removeprefix("oms-webhooks-") == short)


def redrive(sqs: Any, dlq_url: str, queue_url: str, limit: int | None = None) -> int:
    """Move messages from ``dlq_url`` back to ``queue_url``; return how many moved.

    Each message is sent again (body and message attributes) before it is
    deleted from the DLQ, so a crash in between duplicates it rather than
    loses it (the handlers are idempotent). Stops when the DLQ answers empty
    or after ``limit`` messages.
    """
    moved = 0
    while limit is None or moved < limit:
        batch = 10 if limit is None else max(1, min(10, limit - moved))
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                request["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


@dlq.command("redrive", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--queue",
    "short",
    type=_QUEUE_CHOICE,
    default="delivery",
    show_default=True,
    help="Whose DLQ to redrive.",
)
@click.option(
    "--prefix", default="", help="Queue name prefix of a deployment (its stack name), if any."
)
@click.option("--max", "limit", type=click.IntRange(1), default=None, help="Move at most N.")
@aws_options
def dlq_redrive(short: str, prefix: str, limit: int | None, endpoint_url: str | None) -> None:
    """Move the messages of a dead-letter queue back to its queue; print how many."""
    import boto3

    spec = _queue_spec(short)
    name, dlq_name = spec.name, spec.dlq_name
    if prefix:
        name, dlq_name = f"{prefix}-{name}", f"{prefix}-{dlq_name}"
    with aws_target(endpoint_url):
        sqs = boto3.session.Session().client("sqs")
        dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        moved = redrive(sqs, dlq_url, queue_url, limit)
    click.echo(f"Moved {moved} message(s) from {dlq_name} to {name}.")
