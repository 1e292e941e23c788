"""The deployment's parameters, read once from CDK context and validated.

Context comes from ``cdk deploy -c key=value`` (always strings), from
``cdk.json`` or from ``App(context=...)`` (typed values); both are accepted:
:class:`DeploymentConfig` is a pydantic model (lax types, so ``"50"`` is 50 and
``"true"`` is true) whose aliases are the context keys.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from oms_webhooks.names import DEFAULT_BUS_NAME, DEFAULT_EVENT_SOURCE, DEFAULT_OPERATIONAL_SOURCE
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


def _context_bool(value: Any) -> Any:
    """``-c key=value`` gives strings: ``""`` is false; pydantic reads true/false/1/0/yes/no."""
    if isinstance(value, str):
        return value.strip().lower() or False
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


ContextBool = Annotated[bool, BeforeValidator(_context_bool)]


class DeploymentConfig(BaseModel):
    """Every deployment parameter with its default (see ``infra/README.md``).

    A pydantic model whose aliases are the context keys (as the cookbook's
    ``env_vars.py`` reads the environment), validated once when the stack is
    built. Fields can be given by name too (tests).

    Attributes:
        bus_name: EventBridge bus the OMS puts events on.
        use_existing_bus: import ``bus_name`` instead of creating it.
        event_source: the events' ``Source`` the rule matches.
        operational_source: ``Source`` of the service's operational events
            (DESIGN §10); must differ from ``event_source``.
        allow_private_targets: always false in a deployment (see :meth:`from_context`).
        log_retention_days: retention of every log group, in days (one CloudWatch accepts).
        removal_policy: what happens to the tables on stack deletion (default retain).
        dispatcher_max_concurrency: the dispatcher mapping's maximum concurrency (2-1000).
        dispatcher_slow_max_concurrency: the slow lane's dispatcher mapping's maximum
            concurrency (2-1000, DESIGN §9): every slow target's attempts share it.
        metrics_namespace: CloudWatch namespace of the custom metrics.
        log_level: Powertools log level.
        alarm_topic_arn: an existing SNS topic the alarms notify, or None.
        skip_bundling: use the plain source folder as code asset (tests).
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_by_name=True, coerce_numbers_to_str=True
    )

    bus_name: str = Field(DEFAULT_BUS_NAME, alias=c.CTX_BUS_NAME)
    use_existing_bus: ContextBool = Field(False, alias=c.CTX_USE_EXISTING_BUS)
    event_source: str = Field(DEFAULT_EVENT_SOURCE, alias=c.CTX_EVENT_SOURCE)
    operational_source: str = Field(DEFAULT_OPERATIONAL_SOURCE, alias=c.CTX_OPERATIONAL_SOURCE)
    allow_private_targets: ContextBool = Field(False, alias=c.CTX_ALLOW_PRIVATE_TARGETS)
    log_retention_days: int = Field(
        c.DEFAULT_LOG_RETENTION_DAYS, alias=c.CTX_LOG_RETENTION_DAYS, ge=1
    )
    removal_policy: Annotated[Literal["retain", "destroy", "snapshot"], BeforeValidator(_lower)] = (
        Field(c.DEFAULT_REMOVAL_POLICY, alias=c.CTX_REMOVAL_POLICY)
    )
    dispatcher_max_concurrency: int = Field(
        c.DEFAULT_DISPATCHER_MAX_CONCURRENCY, alias=c.CTX_DISPATCHER_MAX_CONCURRENCY, ge=2, le=1000
    )
    dispatcher_slow_max_concurrency: int = Field(
        c.DEFAULT_DISPATCHER_SLOW_MAX_CONCURRENCY,
        alias=c.CTX_DISPATCHER_SLOW_MAX_CONCURRENCY,
        ge=2,
        le=1000,
    )
    metrics_namespace: str = Field(c.DEFAULT_METRICS_NAMESPACE, alias=c.CTX_METRICS_NAMESPACE)
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(c.DEFAULT_LOG_LEVEL, alias=c.CTX_LOG_LEVEL)
    alarm_topic_arn: str | None = Field(None, alias=c.CTX_ALARM_TOPIC_ARN)
    skip_bundling: ContextBool = Field(False, alias=c.CTX_SKIP_BUNDLING)

    @field_validator("log_retention_days")
    @classmethod
    def _a_cloudwatch_retention(cls, days: int) -> int:
        if days not in _RETENTION:
            raise ValueError(f"one of {sorted(_RETENTION)}")
        return days

    @field_validator("alarm_topic_arn")
    @classmethod
    def _empty_is_none(cls, arn: str | None) -> str | None:
        return arn or None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> DeploymentConfig:
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
        return self

    @classmethod
    def from_context(cls, node: Node) -> DeploymentConfig:
        """Read and validate the context of ``node`` (an absent or null key takes its default).

        Raises:
            ValueError: naming each malformed key (``context 'removalPolicy': ...,
                got 'keep'``), or ``allowPrivateTargets`` is true (in Lambda,
                loopback reaches the runtime API and extensions, so a deployment
                never delivers to private or loopback addresses), or
                ``operationalSource`` equals ``eventSource``.
        """
        keys = [field.alias for field in cls.model_fields.values() if field.alias]
        context = {key: node.try_get_context(key) for key in keys}
        try:
            return cls.model_validate({k: v for k, v in context.items() if v is not None})
        except ValidationError as exc:
            reasons = []
            for error in exc.errors():
                message = error["msg"].removeprefix("Value error, ")
                if error["loc"]:
                    key = str(error["loc"][0])
                    message = f"context {key!r}: {message}, got {error['input']!r}"
                reasons.append(message)
            raise ValueError("; ".join(reasons)) from None

    @property
    def table_removal_policy(self) -> RemovalPolicy:
        """The tables' removal policy (RETAIN unless the context says otherwise)."""
        return _REMOVAL_POLICIES[self.removal_policy]

    @property
    def log_retention(self) -> logs.RetentionDays:
        """The log groups' retention."""
        return _RETENTION[self.log_retention_days]
