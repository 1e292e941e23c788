"""One ``TransactWriteItems`` on the configured endpoint, over a connection per process."""

from __future__ import annotations

from functools import lru_cache

from pynamodb.connection import Connection
from pynamodb.transactions import TransactWrite

from oms_webhooks.settings import aws_endpoint_url, aws_region


@lru_cache(maxsize=4)
def _connection(region: str, host: str | None) -> Connection:
    # A botocore client costs ~0.1 s to build: one per endpoint and process.
    return Connection(region=region, host=host)


def transaction() -> TransactWrite:
    """A PynamoDB transaction on ``AWS_ENDPOINT_URL`` (unset: AWS) in the configured region."""
    return TransactWrite(connection=_connection(aws_region(), aws_endpoint_url()))
