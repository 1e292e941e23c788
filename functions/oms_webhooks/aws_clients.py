"""botocore clients, created lazily and cached per process (cold start stays small).

The endpoint follows the SDK's own rule (``AWS_ENDPOINT_URL``; unset = real
AWS), so nothing here knows whether it runs locally or on AWS.

Clients come from botocore itself, not boto3: boto3 adds only resources and
S3 transfers, which nothing here uses, and importing it costs ~15 ms at every
cold start beside the botocore that PynamoDB loads anyway (it pulls in
s3transfer and multiprocessing; README "Performance", cold import).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from oms_webhooks.settings import aws_endpoint_url, aws_region


@lru_cache(maxsize=8)
def _client(service: str, endpoint: str | None, region: str) -> Any:
    from botocore.config import Config
    from botocore.session import Session

    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
    )
    return Session().create_client(
        service, endpoint_url=endpoint, region_name=region, config=config
    )


def client(service: str) -> Any:
    """A cached botocore client for ``service`` at the current endpoint and region."""
    return _client(service, aws_endpoint_url(), aws_region())
