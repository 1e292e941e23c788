"""API tokens: creation, listing, revocation and authentication.

A token is a random string shown once, at creation; only its SHA-256 (hex)
is stored (DESIGN §3), by :mod:`oms_webhooks.storage.tokens`. A token
belongs to one tenant. Tenant names match :data:`TENANT_PATTERN` (no ``#``:
the subscriptions table uses it as a separator).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from oms_webhooks.routing.event_types import normalize_event_type
from oms_webhooks.storage.models import TokenModel
from oms_webhooks.storage.tokens import get_store

#: A tenant name, matched against the *whole* value (``fullmatch``: ``$`` would also
#: accept a trailing newline, issue 13).
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN_BYTES = 32


class TokenError(ValueError):
    """Bad input to a token operation (unknown id, bad tenant name, ...)."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a stored token (never the token itself)."""

    token_id: str
    tenant: str
    created_date: datetime
    revoked_date: datetime | None
    event_types: list[str] | None


def hash_token(token: str) -> str:
    """SHA-256 hex digest of ``token`` (UTF-8), the only form ever stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(item: TokenModel) -> TokenInfo:
    return TokenInfo(
        token_id=item.token_id,
        tenant=item.tenant,
        created_date=item.created_date,
        revoked_date=item.revoked_date,
        event_types=[str(t) for t in item.event_types] if item.event_types else None,
    )


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name, else raise :class:`TokenError`."""
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise TokenError(
            f"invalid tenant name {tenant!r}: 1-64 characters of letters, digits, '_', '.', '-'"
        )
    return tenant


def create_token(
    tenant: str, *, token: str | None = None, event_types: list[str] | None = None
) -> tuple[TokenInfo, str]:
    """Create a token for ``tenant``; return its info and the clear token (shown once).

    Args:
        tenant: the tenant (partner) name, see :data:`TENANT_PATTERN`.
        token: a fixed token (the local stack's ``OMS_WEBHOOKS_DEV_TOKEN``);
            default a new random one (256 bits, URL-safe).
        event_types: restrict the token to these event types (None = all).

    Raises:
        TokenError: bad tenant name, bad event type, too short a fixed token,
            or a fixed token that already exists for another tenant.
    """
    validate_tenant(tenant)
    scope = None
    if event_types:
        try:
            scope = sorted({normalize_event_type(t) for t in event_types})
        except ValueError as exc:
            raise TokenError(str(exc)) from None
    if token is None:
        token = secrets.token_urlsafe(_TOKEN_BYTES)
    elif len(token) < 16:
        raise TokenError("a token must be at least 16 characters long")
    token_hash = hash_token(token)
    existing = get_store().get(token_hash, consistent=True)
    if existing is not None:
        if existing.tenant != tenant or existing.revoked_date is not None:
            raise TokenError("this token is already in use")
        return _info(existing), token
    item = TokenModel(
        token_hash,
        token_id="tok_" + secrets.token_hex(8),
        tenant=tenant,
        created_date=datetime.now(UTC),
        event_types=scope,
    )
    if not get_store().insert(item):  # pragma: no cover - a 256-bit collision
        raise TokenError("this token is already in use")
    return _info(item), token


def list_tokens(tenant: str | None = None) -> list[TokenInfo]:
    """Every token (of ``tenant`` if given), oldest first.

    An admin operation on a small table: it scans. The request path
    (:func:`authenticate`) never does.
    """
    items = [_info(t) for t in get_store().scan(tenant)]
    return sorted(items, key=lambda t: t.created_date)


def revoke_token(token_id: str) -> TokenInfo:
    """Revoke the token with public id ``token_id`` (idempotent).

    Raises:
        TokenError: no token has that id.
    """
    item = get_store().find(token_id)
    if item is None:
        raise TokenError(f"no token with id {token_id!r}")
    if item.revoked_date is None:
        get_store().revoke(item, datetime.now(UTC))
    return _info(item)


def authenticate(authorization: str | None) -> TokenInfo | None:
    """Resolve an ``Authorization: Token <token>`` header to its live token.

    Returns None for a missing or malformed header and for an unknown or
    revoked token (the caller answers 401 without saying which).
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "token" or not token or len(token) > 512:
        return None
    token_hash = hash_token(token)
    item = get_store().get(token_hash)
    if item is None:
        return None
    if not hmac.compare_digest(item.token_hash, token_hash) or item.revoked_date is not None:
        return None
    return _info(item)
