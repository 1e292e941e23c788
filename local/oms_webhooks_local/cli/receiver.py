"""``oms-webhooks receiver``: a sample partner endpoint (:mod:`oms_webhooks_local.receiver`)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from oms_webhooks.names import DEFAULT_RECEIVER_PORT
from oms_webhooks_local.cli.base import CONTEXT_SETTINGS, Failure, main


@main.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_RECEIVER_PORT,
    show_default=True,
    help="Port.",
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
        raise Failure(f"cannot listen on {host}:{port}: {exc.strerror}") from None
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
