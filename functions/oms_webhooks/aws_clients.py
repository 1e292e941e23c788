"""boto3 clients, created lazily and cached per process (cold start stays small).

The endpoint follows boto3's own rule (``AWS_ENDPOINT_URL``; unset = real
AWS), so nothing here knows whether it runs locally or on AWS.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from oms_webhooks.settings import aws_endpoint_url, aws_region

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
)


@lru_cache(maxsize=8)
def _client(service: str, endpoint: str | None, region: str) -> Any:
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=region, config=_CONFIG
    )


def client(service: str) -> Any:
    """A cached boto3 client for ``service`` at the current endpoint and region."""
    return _client(service, aws_endpoint_url(), aws_region())
