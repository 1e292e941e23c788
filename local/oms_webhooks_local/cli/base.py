"""The ``oms-webhooks`` group and what its commands share: the AWS target, errors, exit codes.

Every subcommand that talks to AWS takes ``--endpoint-url`` (else
``$AWS_ENDPOINT_URL``, else the local stack's ``http://127.0.0.1:4566``) and
``--aws`` (real AWS: no endpoint override, the default credential chain).
Against an endpoint it signs as moto's default account (``testing``/``testing``,
``us-east-1``), DESIGN §6.

Exit codes: 0 done, 1 AWS or the endpoint failed (:class:`Failure`), 2 bad
usage or input (:class:`BadInput`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from oms_webhooks.api.tokens import TokenError
from oms_webhooks_local.environment import environ, local_aws_environ
from oms_webhooks_local.stack import DEFAULT_AWS_ENDPOINT_URL

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
        raise Failure(message) from None


class Failure(click.ClickException):
    """AWS or the endpoint failed: exit code 1."""

    exit_code = 1


class BadInput(click.ClickException):
    """Bad input (a tenant name, an event type, an unknown id): exit code 2."""

    exit_code = 2


@contextmanager
def token_errors() -> Iterator[None]:
    """Turn a :class:`TokenError` (bad tenant, unknown id...) into exit code 2."""
    try:
        yield
    except TokenError as exc:
        raise BadInput(str(exc)) from None
