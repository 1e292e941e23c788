"""The ``oms-webhooks`` command line: the local stack, admin tasks, publishing, a receiver.

A thin layer over :mod:`oms_webhooks_local.stack`, :mod:`oms_webhooks.api.tokens`,
:mod:`oms_webhooks_local.publisher` and :mod:`oms_webhooks_local.receiver`.
Every subcommand that talks to AWS takes ``--endpoint-url`` (else
``$AWS_ENDPOINT_URL``, else the local stack's ``http://127.0.0.1:4566``) and
``--aws`` (real AWS: no endpoint override, the default credential chain).
Against an endpoint it signs as moto's default account (``testing``/``testing``,
``us-east-1``), DESIGN §6.

Exit codes: 0 done, 1 AWS or the endpoint failed, 2 bad usage or input.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from oms_webhooks.api.tokens import TokenError, TokenInfo, create_token, list_tokens, revoke_token
from oms_webhooks.resources import QUEUES, QueueSpec
from oms_webhooks.settings import get_settings
from oms_webhooks_local.api_workers import DEFAULT_API_WORKERS
from oms_webhooks_local.publisher import (
    EventTooLarge,
    InvalidEvent,
    PublishFailed,
    parse_detail,
    publish_event,
)
from oms_webhooks_local.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_ENDPOINT_URL,
    DEFAULT_AWS_PORT,
    DEFAULT_STATE_DIR,
    LocalStack,
    StackError,
    environ,
    local_aws_environ,
)

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="oms-webhooks")
def main() -> None:
    """oms-webhooks: run the webhook service locally and administer it."""


# -- AWS target -----------------------------------------------------------------


def aws_options(func: F) -> F:
    """Add ``--endpoint-url`` and ``--aws`` to a command; it receives ``endpoint_url``.

    The command gets ``endpoint_url: str | None`` (None = real AWS).
    """

    @click.option(
        "--endpoint-url",
        metavar="URL",
        help=(
            "AWS endpoint (moto's server). Default: $AWS_ENDPOINT_URL, "
            f"else the local stack's {DEFAULT_AWS_ENDPOINT_URL}."
        ),
    )
    @click.option(
        "--aws",
        "use_aws",
        is_flag=True,
        help="Use real AWS (no endpoint override; the default credential chain).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, endpoint_url: str | None, use_aws: bool, **kwargs: Any) -> Any:
        if use_aws and endpoint_url:
            raise click.UsageError("--aws and --endpoint-url exclude each other")
        if not use_aws:
            endpoint_url = (
                endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_AWS_ENDPOINT_URL
            )
        return func(*args, endpoint_url=None if use_aws else endpoint_url, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def aws_target(endpoint_url: str | None) -> Iterator[None]:
    """Point boto3 (and the models) at ``endpoint_url`` for the block; None = real AWS.

    Turns AWS failures into a clean message and exit code 1.
    """
    changes = local_aws_environ(endpoint_url) if endpoint_url else {"AWS_ENDPOINT_URL": None}
    where = endpoint_url or "AWS"
    try:
        with environ(changes):
            yield
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        cause = getattr(exc, "cause", None) or exc.__cause__ or exc
        message = f"{where}: {cause}"
        if endpoint_url:
            message += " (is the local stack running? `oms-webhooks local`)"
        raise _Failure(message) from None


class _Failure(click.ClickException):
    """AWS or the endpoint failed: exit code 1."""

    exit_code = 1


class _BadInput(click.ClickException):
    """Bad input (a tenant name, an event type, an unknown id): exit code 2."""

    exit_code = 2


@contextmanager
def _token_errors() -> Iterator[None]:
    try:
        yield
    except TokenError as exc:
        raise _BadInput(str(exc)) from None


# -- local ----------------------------------------------------------------------


def banner(stack: LocalStack) -> str:
    """The text printed when the local stack is up: where things are and how to try it.

    The development token appears once, in the ``export TOKEN=...`` line.
    """
    api = f"{stack.api_url}/whisperer"
    auth = '-H "Authorization: Token $TOKEN"'
    body = (
        '{"event_type": "package.created", '
        '"target_url": "http://127.0.0.1:9000/", '
        '"secret_key": "secret"}'
    )
    return "\n".join(
        [
            "oms-webhooks local stack is ready.",
            "",
            f"  API:           {api}/",
            f"  OpenAPI:       {api}/openapi.json  (docs: {api}/docs)",
            f"  AWS endpoint:  {stack.aws_endpoint_url}  (moto; region us-east-1, testing/testing)",
            *_state_lines(stack),
            "",
            "Development token (tenant 'dev'; kept in the state directory):",
            "",
            f"  export TOKEN={stack.dev_token}",
            f"  export AWS_ENDPOINT_URL={stack.aws_endpoint_url}",
            "",
            "Try (in another shell):",
            "",
            "  # a sample partner endpoint that verifies signatures",
            "  .venv/bin/oms-webhooks receiver --port 9000 --secret secret",
            "  # while rotating its secret (rotate_secret/), accept the old and the new one:",
            "  # X-Whisperer-Signature switches to the new secret at once",
            "  .venv/bin/oms-webhooks receiver --port 9000 --secret secret --secret NEW_SECRET",
            "  # subscribe it",
            f"  curl -s -X POST {api}/hooks/ {auth} \\",
            f"       -H 'Content-Type: application/json' -d '{body}'",
            "  # publish an OMS event (PutEvents on the local bus)",
            "  .venv/bin/oms-webhooks publish package.created --data '{\"id\": 1}'",
            "  # the delivery log",
            f"  curl -s {api}/hook_events/ {auth}",
            "  # list your subscriptions",
            f"  curl -s {api}/hooks/ {auth}",
            "  # unsubscribe",
            f"  curl -s -X DELETE {api}/hooks/<id>/ {auth}",
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def _state_lines(stack: LocalStack) -> list[str]:
    """The banner's line about where the state is kept (none without a state directory)."""
    if stack.state_dir is None:
        return ["  State:         not kept (gone at stop)"]
    resumed = (
        f"; resumed {stack.restored_items} items, {stack.resumed_deliveries} pending deliveries"
        + (f", {stack.requeued_events} events to route" if stack.requeued_events else "")
        if stack.restored_items
        else "; started empty"
    )
    return [f"  State:         {stack.state_dir}{resumed}"]


@main.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--api-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_API_PORT,
    show_default=True,
    help="Port of the API on 127.0.0.1 (0 = any free port).",
)
@click.option(
    "--aws-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_AWS_PORT,
    show_default=True,
    help="Port of moto's AWS server on 127.0.0.1 (0 = any free port).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Keep the tables, the key sealing secrets and the development token here "
    "(in the current directory by default), and resume from them at start.",
)
@click.option("--fresh", is_flag=True, help="Start with an empty state (discard --state-dir's).")
@click.option(
    "--api-workers",
    type=click.IntRange(1, 64),
    default=DEFAULT_API_WORKERS,
    show_default=True,
    help="API worker processes at start, each one Lambda environment serving one request "
    "at a time; more start while all are busy (up to 16).",
)
def local(api_port: int, aws_port: int, state_dir: Path, fresh: bool, api_workers: int) -> None:
    """Run the whole service on this machine until Ctrl-C or SIGTERM.

    Starts moto's AWS server, creates the tables (and the other resources),
    a development token, and serves the API through the real authorizer and
    api handlers. The state is kept in --state-dir: a restart resumes the
    subscriptions, tokens, deliveries and pending retries (Ctrl-C loses
    nothing; a kill -9 at most the last 2 seconds). The development token is
    kept there too; $OMS_WEBHOOKS_DEV_TOKEN sets it.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(
        api_port=api_port,
        aws_port=aws_port,
        state_dir=state_dir,
        fresh=fresh,
        aws_process=True,
        api_workers=api_workers,
    )
    try:
        try:
            stack.start()
        except StackError as exc:
            hint = (
                "; pick free ports: make run API_PORT=8100 AWS_PORT=4666 "
                "(or oms-webhooks local --api-port 8100 --aws-port 4666)"
                if "port" in str(exc)
                else ""
            )
            raise _Failure(f"{exc}{hint}") from None
        except TokenError as exc:  # a bad $OMS_WEBHOOKS_DEV_TOKEN
            raise _BadInput(f"development token: {exc}") from None
        click.echo(banner(stack))
        while not stop.wait(0.5):
            pass
        click.echo("Stopping...", err=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Stopped.", err=True)


# -- tokens ---------------------------------------------------------------------


@main.group(context_settings=CONTEXT_SETTINGS)
def tokens() -> None:
    """Create, list and revoke API tokens (one tenant per token).

    Tokens are stored hashed: a token is shown once, when it is created.
    """


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _scope(info: TokenInfo) -> str:
    return ",".join(info.event_types) if info.event_types else "all"


@tokens.command("create", context_settings=CONTEXT_SETTINGS)
@click.option("--tenant", required=True, help="The tenant (partner) the token belongs to.")
@click.option(
    "--event-types",
    metavar="A,B",
    default=None,
    help="Comma-separated event types the token may use (default: all).",
)
@aws_options
def tokens_create(tenant: str, event_types: str | None, endpoint_url: str | None) -> None:
    """Create a token for TENANT; print its id and, on the last line, the token alone.

    The token is not stored in clear and cannot be shown again.
    """
    scope = None
    if event_types is not None:
        scope = [t.strip() for t in event_types.split(",") if t.strip()]
        if not scope:
            # An empty list must not silently mean "every event type".
            raise click.UsageError("--event-types needs at least one event type")
    with aws_target(endpoint_url), _token_errors():
        info, token = create_token(tenant=tenant, event_types=scope)
    click.echo(f"Created token {info.token_id} for tenant {info.tenant} (scope: {_scope(info)}).")
    click.echo("The token is shown once, on the next line; store it now:")
    click.echo(token)


@tokens.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--tenant", default=None, help="Only this tenant's tokens.")
@aws_options
def tokens_list(tenant: str | None, endpoint_url: str | None) -> None:
    """List tokens: id, tenant, created, revoked, scope (never the token itself)."""
    with aws_target(endpoint_url), _token_errors():
        infos = list_tokens(tenant)
    rows = [("ID", "TENANT", "CREATED", "REVOKED", "SCOPE")]
    rows += [
        (i.token_id, i.tenant, _date(i.created_date), _date(i.revoked_date), _scope(i))
        for i in infos
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


@tokens.command("revoke", context_settings=CONTEXT_SETTINGS)
@click.argument("token_id")
@aws_options
def tokens_revoke(token_id: str, endpoint_url: str | None) -> None:
    """Revoke the token with id TOKEN_ID (tok_...); idempotent.

    API Gateway caches an authorization up to its cache TTL (≤ 60 s): a
    revoked token may work that long there; the local stack refuses it at once.
    """
    with aws_target(endpoint_url), _token_errors():
        info = revoke_token(token_id)
    click.echo(
        f"Revoked token {info.token_id} of tenant {info.tenant} at {_date(info.revoked_date)}."
    )


# -- publish --------------------------------------------------------------------


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
        raise _BadInput(str(exc)) from None
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
        raise _BadInput(str(exc)) from None
    except PublishFailed as exc:
        reasons = "; ".join(f"{f.error_code}: {f.error_message}" for f in exc.failed)
        raise _Failure(f"not published: {reasons}") from None
    click.echo(event_id)


# -- receiver -------------------------------------------------------------------


@main.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=9000, show_default=True, help="Port."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    envvar="OMS_WEBHOOKS_RECEIVER_SECRET",
    help="The subscription's secret_key; verify both signatures (401 when one fails). "
    "Give it twice while rotating: either secret is accepted.",
)
def receiver(port: int, host: str, secrets: tuple[str, ...]) -> None:
    """Run a sample partner endpoint that prints each delivery and checks its signatures.

    Answers 200 when the signatures verify (or without --secret), else 401.
    Its code (local/oms_webhooks_local/receiver.py) shows how to verify our deliveries.
    """
    from oms_webhooks_local.receiver import make_server

    try:
        server = make_server(host, port, list(secrets), echo=lambda line: click.echo(line))
    except OSError as exc:
        raise _Failure(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    where = f"http://{host}:{server.server_address[1]}/"
    check = "verifying signatures" if secrets else "no --secret: signatures not checked"
    click.echo(f"Receiving deliveries at {where} ({check}). Press Ctrl-C to stop.")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Stopped.", err=True)


# -- events -----------------------------------------------------------------------


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
            raise _BadInput(str(exc)) from None
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


if __name__ == "__main__":  # pragma: no cover
    main()
