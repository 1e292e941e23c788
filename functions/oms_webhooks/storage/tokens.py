"""Where API tokens are kept: DynamoDB behind a small interface (DESIGN §3).

:mod:`oms_webhooks.api.tokens` decides (hashing, tenant names, scopes,
revocation) and calls a :class:`TokenStore`; :func:`get_store` returns the
DynamoDB one (:class:`DynamoTokenStore`), the only one today.

How it is kept: the tokens table, one
:class:`~oms_webhooks.storage.models.TokenModel` per token, keyed by the
token's SHA-256 (hex); the index ``by-token-id`` finds one by its public id.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from pynamodb.exceptions import PutError

from oms_webhooks.storage.models import TokenModel
from oms_webhooks.storage.specs import bind_tables

__all__ = ["DynamoTokenStore", "TokenStore", "get_store"]


class TokenStore(Protocol):
    """What :mod:`oms_webhooks.api.tokens` needs from storage."""

    def get(self, token_hash: str, *, consistent: bool = False) -> TokenModel | None:
        """The token whose SHA-256 (hex) is ``token_hash``, or None.

        ``consistent``: a strongly consistent read (twice the read cost; the
        request path, :func:`~oms_webhooks.api.tokens.authenticate`, does without).
        """
        ...

    def insert(self, item: TokenModel) -> bool:
        """Store a new token; False (nothing written) when its hash is stored already."""
        ...

    def find(self, token_id: str) -> TokenModel | None:
        """The token whose public id is ``token_id`` (strongly consistent), or None."""
        ...

    def scan(self, tenant: str | None) -> Iterator[TokenModel]:
        """Every token (of ``tenant`` if given), in no order: a scan, for admin tools only."""
        ...

    def revoke(self, item: TokenModel, at: datetime) -> None:
        """Set the token's ``revoked_date`` to ``at`` (``item`` too)."""
        ...


class DynamoTokenStore:
    """:class:`TokenStore` on the tokens table (PynamoDB)."""

    def get(self, token_hash: str, *, consistent: bool = False) -> TokenModel | None:
        bind_tables()
        try:
            return TokenModel.get(token_hash, consistent_read=consistent)
        except TokenModel.DoesNotExist:
            return None

    def insert(self, item: TokenModel) -> bool:
        bind_tables()
        try:
            item.save(condition=TokenModel.token_hash.does_not_exist())
        except PutError:  # pragma: no cover - a 256-bit collision
            return False
        return True

    def find(self, token_id: str) -> TokenModel | None:
        bind_tables()
        found = list(TokenModel.by_token_id.query(token_id, limit=1))
        # The index is eventually consistent: read the item itself.
        return self.get(found[0].token_hash, consistent=True) if found else None

    def scan(self, tenant: str | None) -> Iterator[TokenModel]:
        bind_tables()
        items: Iterator[TokenModel] = TokenModel.scan(
            filter_condition=TokenModel.tenant == tenant if tenant else None
        )
        return items

    def revoke(self, item: TokenModel, at: datetime) -> None:
        bind_tables()
        item.update(actions=[TokenModel.revoked_date.set(at)])


@lru_cache(maxsize=1)
def get_store() -> TokenStore:
    """The store the token operations use: DynamoDB (one per process)."""
    return DynamoTokenStore()
