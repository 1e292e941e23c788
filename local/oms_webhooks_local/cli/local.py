"""``oms-webhooks local``: the whole service on this machine (:mod:`oms_webhooks_local.stack`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from oms_webhooks.api.tokens import TokenError
from oms_webhooks_local.api_workers import DEFAULT_API_WORKERS
from oms_webhooks_local.banner import banner
from oms_webhooks_local.cli.base import CONTEXT_SETTINGS, BadInput, Failure, main
from oms_webhooks_local.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    DEFAULT_STATE_DIR,
    LocalStack,
    StackError,
)


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
                if str(exc).startswith("cannot use ") and " port " in str(exc)
                else ""
            )
            raise Failure(f"{exc}{hint}") from None
        except TokenError as exc:  # a bad $OMS_WEBHOOKS_DEV_TOKEN
            raise BadInput(f"development token: {exc}") from None
        click.echo(banner(stack))
        while not stop.wait(0.5):
            pass
        click.echo("Stopping...", err=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Stopped.", err=True)
