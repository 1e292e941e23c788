"""Service settings, read once from the environment and validated at cold start.

Every setting is an environment variable with the ``OMS_WEBHOOKS_`` prefix
(``subscriptions_table`` → ``OMS_WEBHOOKS_SUBSCRIPTIONS_TABLE``). The AWS
endpoint follows boto3's own rule: ``AWS_ENDPOINT_URL`` set → that endpoint
(moto's server on the local stack), unset → real AWS.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from oms_webhooks import names


class Settings(BaseSettings):
    """All settings of the service, with their defaults and units."""

    model_config = SettingsConfigDict(env_prefix="OMS_WEBHOOKS_", extra="ignore")

    subscriptions_table: str = Field(
        names.DEFAULT_SUBSCRIPTIONS_TABLE, description="DynamoDB table"
    )
    tokens_table: str = Field(
        names.DEFAULT_TOKENS_TABLE, description="DynamoDB table of API tokens"
    )
    deliveries_table: str = Field(names.DEFAULT_DELIVERIES_TABLE, description="DynamoDB table")
    allow_private_targets: bool = Field(
        False,
        description="Allow loopback and private target URLs (never link-local/metadata).",
    )
    delivery_retention_days: int = Field(
        30, ge=1, le=365, description="Days a delivery record is kept (DynamoDB TTL)."
    )
    max_body_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest API request body accepted, in bytes (else 413)."
    )
    dns_timeout_seconds: float = Field(2.0, gt=0, description="Timeout of one DNS lookup.")
    delivery_queue_url: str = Field("", description="URL of the SQS delivery queue.")
    delivery_dlq_url: str = Field(
        "", description="URL of the delivery queue's DLQ (malformed messages go straight there)."
    )
    secrets_kms_key_id: str = Field(
        "", description="KMS key (id, ARN or alias) that seals partner secrets; empty = unsealed."
    )
    bus_name: str = Field(
        names.DEFAULT_BUS_NAME, description="EventBridge bus the OMS publishes to."
    )
    event_source: str = Field(
        names.DEFAULT_EVENT_SOURCE, description="EventBridge Source of OMS events."
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, description="Delivery connect timeout.")
    read_timeout_seconds: float = Field(10.0, gt=0, description="Delivery read timeout.")
    router_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="Seconds the router keeps an event type's subscriptions (0 = off). "
        "A new subscription may miss events published within that window (DESIGN §8: "
        "the fan-out index's partition is hot at high event rates).",
    )
    max_response_bytes: int = Field(
        64 * 1024, ge=4096, description="Most bytes of a partner's response read, in bytes."
    )
    max_subscriptions_per_tenant: int = Field(
        100, ge=1, description="Subscriptions one tenant may have (400 limit_exceeded above)."
    )
    max_concurrent_per_host: int = Field(
        10,
        ge=1,
        description="Deliveries to one host:port at once in one dispatcher invocation; "
        "the rest come back a second later without using up a retry.",
    )
    max_operator_sends_per_tenant: int = Field(
        2,
        ge=1,
        description="Pings and manual resends one tenant may have in flight at once, over every "
        "API execution environment; more answer 429 with Retry-After (DESIGN §9).",
    )
    breaker_threshold: int = Field(
        5,
        ge=1,
        description="Consecutive timeouts or connection failures that open a target's "
        "circuit breaker (DESIGN §9).",
    )
    breaker_cooldown_seconds: int = Field(
        30,
        ge=1,
        le=600,
        description="Seconds an opened circuit breaker holds deliveries before a probe; "
        "doubles on each failed probe, up to 600.",
    )
    breaker_cache_seconds: float = Field(
        1.0, ge=0, description="Seconds a dispatcher keeps a read circuit breaker item."
    )
    slow_attempt_seconds: float = Field(
        0.25,
        gt=0,
        description="An attempt still running after this many seconds marks its target slow: "
        "the target's next deliveries take the slow lane.",
    )
    slow_lane_seconds: int = Field(
        300, ge=1, description="Seconds a slow mark lasts unless a quick answer lifts it."
    )
    delivery_slow_queue_url: str = Field(
        "", description="URL of the slow lane's delivery queue (empty: no slow lane)."
    )
    secret_rotation_grace_seconds: int = Field(
        86_400, ge=0, description="How long the previous secret still signs after a rotation."
    )
    operational_source: str = Field(
        names.DEFAULT_OPERATIONAL_SOURCE,
        min_length=1,
        description="EventBridge Source of the service's operational events (DESIGN §10); "
        "must differ from event_source, so they are never routed to partners.",
    )
    emit_delivery_succeeded: bool = Field(
        False,
        description="Also put webhook.delivery.succeeded on the bus for every delivered "
        "delivery (adds PutEvents' $1 per million deliveries).",
    )
    recovery_queue_url: str = Field("", description="URL of the SQS recovery queue (recover).")
    recover_rate: float = Field(
        10.0,
        gt=0,
        le=1000,
        description="Deliveries a recover enqueues per second at most (DESIGN §10), so a "
        "recovering partner is not flooded.",
    )
    auto_disable_after_seconds: int = Field(
        432_000,
        ge=1,
        description="Seconds of unbroken failure after which a subscription is turned "
        "inactive (DESIGN §10; default 5 days, as Svix). A 410 Gone disables at once.",
    )

    @property
    def delivery_retention_seconds(self) -> int:
        """The delivery retention in seconds."""
        return self.delivery_retention_days * 86_400

    @model_validator(mode="after")
    def _tables_differ(self) -> Settings:
        names = {self.subscriptions_table, self.tokens_table, self.deliveries_table}
        if len(names) != 3:
            raise ValueError("table names must differ")
        if self.operational_source == self.event_source:
            raise ValueError(
                "operational_source must differ from event_source: the ingress rule "
                "would route operational events to partners"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read from the environment once)."""
    return Settings()


def aws_endpoint_url() -> str | None:
    """The AWS endpoint override (``AWS_ENDPOINT_URL``), or None for real AWS."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def aws_region() -> str:
    """The AWS region from the environment (``AWS_REGION``/``AWS_DEFAULT_REGION``)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
