"""``oms-webhooks tokens``: create, list and revoke API tokens (:mod:`oms_webhooks.api.tokens`)."""

from __future__ import annotations

from datetime import datetime

import click

from oms_webhooks.api.tokens import TokenInfo, create_token, list_tokens, revoke_token
from oms_webhooks_local.cli.base import (
    CONTEXT_SETTINGS,
    aws_options,
    aws_target,
    main,
    token_errors,
)


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
    with aws_target(endpoint_url), token_errors():
        info, token = create_token(tenant=tenant, event_types=scope)
    click.echo(f"Created token {info.token_id} for tenant {info.tenant} (scope: {_scope(info)}).")
    click.echo("The token is shown once, on the next line; store it now:")
    click.echo(token)


@tokens.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--tenant", default=None, help="Only this tenant's tokens.")
@aws_options
def tokens_list(tenant: str | None, endpoint_url: str | None) -> None:
    """List tokens: id, tenant, created, revoked, scope (never the token itself)."""
    with aws_target(endpoint_url), token_errors():
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
    with aws_target(endpoint_url), token_errors():
        info = revoke_token(token_id)
    click.echo(
        f"Revoked token {info.token_id} of tenant {info.tenant} at {_date(info.revoked_date)}."
    )
