"""The deployment's parameters, read once from CDK context and validated.

Context comes from ``cdk deploy -c key=value`` (always strings), from
``cdk.json`` or from ``App(context=...)`` (typed values); both are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

from oms_webhooks.resources import (
    DEFAULT_BUS_NAME,
    DEFAULT_EVENT_SOURCE,
    DEFAULT_OPERATIONAL_SOURCE,
)
from oms_webhooks_infra import constants as c

_REMOVAL_POLICIES = {
    "retain": RemovalPolicy.RETAIN,
    "destroy": RemovalPolicy.DESTROY,
    "snapshot": RemovalPolicy.SNAPSHOT,
}
#: CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", ""}:
        return False
    raise ValueError(f"context {key!r}: expected true or false, got {value!r}")


def _as_int(key: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"context {key!r}: expected an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"context {key!r}: must be ≥ {minimum}, got {number}")
    return number


@dataclass(frozen=True)
class DeploymentConfig:
    """Every deployment parameter with its default (see ``infra/README.md``).

    Attributes:
        bus_name: EventBridge bus the OMS puts events on.
        use_existing_bus: import ``bus_name`` instead of creating it.
        event_source: the events' ``Source`` the rule matches.
        operational_source: ``Source`` of the service's operational events
            (DESIGN §10); must differ from ``event_source``.
        allow_private_targets: always false in a deployment (see :meth:`from_context`).
        log_retention_days: retention of every log group, in days.
        removal_policy: what happens to the tables on stack deletion (default retain).
        dispatcher_max_concurrency: the dispatcher mapping's maximum concurrency (≥ 2).
        metrics_namespace: CloudWatch namespace of the custom metrics.
        log_level: Powertools log level.
        alarm_topic_arn: an existing SNS topic the alarms notify, or None.
        skip_bundling: use the plain source folder as code asset (tests).
    """

    bus_name: str = DEFAULT_BUS_NAME
    use_existing_bus: bool = False
    event_source: str = DEFAULT_EVENT_SOURCE
    operational_source: str = DEFAULT_OPERATIONAL_SOURCE
    allow_private_targets: bool = False
    log_retention_days: int = c.DEFAULT_LOG_RETENTION_DAYS
    removal_policy: str = c.DEFAULT_REMOVAL_POLICY
    dispatcher_max_concurrency: int = c.DEFAULT_DISPATCHER_MAX_CONCURRENCY
    metrics_namespace: str = c.DEFAULT_METRICS_NAMESPACE
    log_level: str = c.DEFAULT_LOG_LEVEL
    alarm_topic_arn: str | None = None
    skip_bundling: bool = False

    @classmethod
    def from_context(cls, node: Node) -> DeploymentConfig:
        """Read and validate the context of ``node``.

        Raises:
            ValueError: a value is malformed, or ``allowPrivateTargets`` is true
                (in Lambda, loopback reaches the runtime API and extensions, so
                a deployment never delivers to private or loopback addresses).
        """

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        config = cls(
            bus_name=str(get(c.CTX_BUS_NAME, DEFAULT_BUS_NAME)),
            use_existing_bus=_as_bool(c.CTX_USE_EXISTING_BUS, get(c.CTX_USE_EXISTING_BUS, False)),
            event_source=str(get(c.CTX_EVENT_SOURCE, DEFAULT_EVENT_SOURCE)),
            operational_source=str(get(c.CTX_OPERATIONAL_SOURCE, DEFAULT_OPERATIONAL_SOURCE)),
            allow_private_targets=_as_bool(
                c.CTX_ALLOW_PRIVATE_TARGETS, get(c.CTX_ALLOW_PRIVATE_TARGETS, False)
            ),
            log_retention_days=_as_int(
                c.CTX_LOG_RETENTION_DAYS, get(c.CTX_LOG_RETENTION_DAYS, cls.log_retention_days), 1
            ),
            removal_policy=str(get(c.CTX_REMOVAL_POLICY, cls.removal_policy)).lower(),
            dispatcher_max_concurrency=_as_int(
                c.CTX_DISPATCHER_MAX_CONCURRENCY,
                get(c.CTX_DISPATCHER_MAX_CONCURRENCY, cls.dispatcher_max_concurrency),
                2,
            ),
            metrics_namespace=str(get(c.CTX_METRICS_NAMESPACE, cls.metrics_namespace)),
            log_level=str(get(c.CTX_LOG_LEVEL, cls.log_level)).upper(),
            alarm_topic_arn=get(c.CTX_ALARM_TOPIC_ARN, None) or None,
            skip_bundling=_as_bool(c.CTX_SKIP_BUNDLING, get(c.CTX_SKIP_BUNDLING, False)),
        )
        config.validate()
        return config

    def validate(self) -> None:
        """Check cross-field rules; raises ``ValueError`` on the first broken one."""
        if self.allow_private_targets:
            raise ValueError(
                f"context {c.CTX_ALLOW_PRIVATE_TARGETS!r} must be false in a deployment: "
                "in Lambda, loopback and private addresses reach the runtime API"
            )
        if self.operational_source == self.event_source:
            raise ValueError(
                f"context {c.CTX_OPERATIONAL_SOURCE!r} must differ from {c.CTX_EVENT_SOURCE!r} "
                f"({self.event_source!r}): the ingress rule would route the service's "
                "operational events to partners"
            )
        if self.removal_policy not in _REMOVAL_POLICIES:
            raise ValueError(
                f"context {c.CTX_REMOVAL_POLICY!r}: one of {sorted(_REMOVAL_POLICIES)}, "
                f"got {self.removal_policy!r}"
            )
        if self.log_retention_days not in _RETENTION:
            raise ValueError(
                f"context {c.CTX_LOG_RETENTION_DAYS!r}: one of {sorted(_RETENTION)}, "
                f"got {self.log_retention_days}"
            )
        if self.dispatcher_max_concurrency > 1000:
            raise ValueError(f"context {c.CTX_DISPATCHER_MAX_CONCURRENCY!r}: at most 1000")

    @property
    def table_removal_policy(self) -> RemovalPolicy:
        """The tables' removal policy (RETAIN unless the context says otherwise)."""
        return _REMOVAL_POLICIES[self.removal_policy]

    @property
    def log_retention(self) -> logs.RetentionDays:
        """The log groups' retention."""
        return _RETENTION[self.log_retention_days]
