"""Tokens table: API tokens (only their SHA-256 is stored).

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from oms_webhooks import names


class TokenById(GlobalSecondaryIndex["TokenModel"]):
    """Look a token up by its public id (for revocation)."""

    class Meta:
        index_name = "by-token-id"
        projection = AllProjection()

    token_id = UnicodeAttribute(hash_key=True)


class TokenModel(Model):
    """An API token of one tenant; only the SHA-256 of the token is stored."""

    class Meta:
        table_name = names.DEFAULT_TOKENS_TABLE
        settings_field = "tokens_table"

    token_hash = UnicodeAttribute(hash_key=True)
    token_id = UnicodeAttribute()
    tenant = UnicodeAttribute()
    created_date = UTCDateTimeAttribute()
    revoked_date = UTCDateTimeAttribute(null=True)
    event_types = ListAttribute(of=UnicodeAttribute, null=True)

    by_token_id = TokenById()
