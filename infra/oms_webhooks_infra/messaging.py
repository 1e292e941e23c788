"""EventBridge bus and rule, the SQS queues and their dead-letter queues.

Queue sizes and the rule's pattern come from :mod:`oms_webhooks.resources`,
the definition the local stack provisions too.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS
from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    RECOVERY_QUEUE,
    RULE_NAME,
    QueueSpec,
    ingress_event_pattern,
)
from oms_webhooks_infra import constants as c


def queue_url_env_var(spec: QueueSpec) -> str:
    """``oms-webhooks-delivery`` → ``OMS_WEBHOOKS_DELIVERY_QUEUE_URL`` (the functions' setting)."""
    short = spec.name.removeprefix(f"{c.SERVICE_NAME}-")
    return f"{c.SETTINGS_ENV_PREFIX}{short.upper().replace('-', '_')}_QUEUE_URL"


def check_visibility(spec: QueueSpec) -> None:
    """Lambda's rule for SQS sources: visibility ≥ 6 × the consumer's timeout.

    Raises:
        ValueError: ``spec`` breaks the rule (a message would reappear while
            its first invocation may still be running).
    """
    needed = c.VISIBILITY_TIMEOUT_FACTOR * spec.function_timeout
    if spec.visibility_timeout < needed:
        raise ValueError(
            f"queue {spec.name}: visibility {spec.visibility_timeout} s < "
            f"{c.VISIBILITY_TIMEOUT_FACTOR} × function timeout {spec.function_timeout} s"
        )


class MessagingConstruct(Construct):
    """Bus, rule → ingress queue, delivery queue; every queue encrypted and TLS-only.

    Attributes:
        bus: the EventBridge bus (created, or imported by name).
        ingress_queue: EventBridge → router.
        delivery_queue: router → dispatcher.
        delivery_slow_queue: dispatcher → dispatcher, the slow lane (DESIGN §9).
        dead_letter_queues: every DLQ by logical name (the two queues' and the rule target's).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bus_name: str,
        use_existing_bus: bool,
        event_source: str,
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.ingress_queue = self._build_queue("Ingress", INGRESS_QUEUE)
        self.delivery_queue = self._build_queue("Delivery", DELIVERY_QUEUE)
        self.recovery_queue = self._build_queue("Recovery", RECOVERY_QUEUE)
        self.delivery_dead_letter_queue = self.dead_letter_queues["DeliveryDeadLetterQueue"]
        self.delivery_slow_queue = self._build_queue("DeliverySlow", DELIVERY_SLOW_QUEUE)
        self.bus = self._build_bus(bus_name, use_existing_bus)
        self.rule = self._build_rule(event_source)
        CfnOutput(self, "BusName", value=self.bus.event_bus_name).override_logical_id("BusName")

    def environment(self, event_source: str) -> dict[str, str]:
        """The settings the functions read: delivery queues' URLs, bus name, event source.

        Only the delivery queues' URLs: nothing but EventBridge sends to the ingress queue.
        """
        return {
            queue_url_env_var(DELIVERY_QUEUE): self.delivery_queue.queue_url,
            queue_url_env_var(DELIVERY_SLOW_QUEUE): self.delivery_slow_queue.queue_url,
            f"{c.SETTINGS_ENV_PREFIX}DELIVERY_DLQ_URL": self.delivery_dead_letter_queue.queue_url,
            f"{c.SETTINGS_ENV_PREFIX}RECOVERY_QUEUE_URL": self.recovery_queue.queue_url,
            f"{c.SETTINGS_ENV_PREFIX}BUS_NAME": self.bus.event_bus_name,
            f"{c.SETTINGS_ENV_PREFIX}EVENT_SOURCE": event_source,
        }

    def _physical_name(self, local_name: str) -> str:
        """The local stack's name prefixed with the stack name (DESIGN §6)."""
        return f"{Stack.of(self).stack_name}-{local_name}"

    def _build_encrypted_queue(self, id_: str, **kwargs: object) -> sqs.Queue:
        return sqs.Queue(
            self,
            id_,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **kwargs,  # type: ignore[arg-type]
        )

    def _build_queue(self, name: str, spec: QueueSpec) -> sqs.Queue:
        check_visibility(spec)
        dlq = self._build_encrypted_queue(
            f"{name}DeadLetterQueue",
            queue_name=self._physical_name(spec.dlq_name),
            retention_period=Duration.seconds(SQS_MAX_RETENTION_SECONDS),
        )
        self.dead_letter_queues[f"{name}DeadLetterQueue"] = dlq
        queue = self._build_encrypted_queue(
            f"{name}Queue",
            queue_name=self._physical_name(spec.name),
            visibility_timeout=Duration.seconds(spec.visibility_timeout),
            retention_period=Duration.seconds(spec.retention),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dlq, max_receive_count=spec.max_receive_count
            ),
        )
        CfnOutput(self, f"{name}QueueUrl", value=queue.queue_url).override_logical_id(
            f"{name}QueueUrl"
        )
        return queue

    def _build_bus(self, bus_name: str, use_existing_bus: bool) -> events.IEventBus:
        if use_existing_bus:
            return events.EventBus.from_event_bus_name(self, "Bus", bus_name)
        return events.EventBus(self, "Bus", event_bus_name=bus_name)

    def _build_rule(self, event_source: str) -> events.Rule:
        pattern = ingress_event_pattern(event_source)
        rule_dlq = self._build_encrypted_queue(
            "RuleDeadLetterQueue",
            queue_name=self._physical_name(f"{RULE_NAME}-rule-dlq"),
            retention_period=Duration.seconds(SQS_MAX_RETENTION_SECONDS),
        )
        self.dead_letter_queues["RuleDeadLetterQueue"] = rule_dlq
        Validations.of(rule_dlq).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the EventBridge rule target's dead-letter queue; "
                "a DLQ has no DLQ of its own (its depth alarms instead).",
            )
        )
        rule = events.Rule(
            self,
            "IngressRule",
            rule_name=self._physical_name(RULE_NAME),
            event_bus=self.bus,
            description="OMS catalogue events to the ingress queue",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"]
            ),
        )
        rule.add_target(
            targets.SqsQueue(
                self.ingress_queue,
                dead_letter_queue=rule_dlq,
                retry_attempts=c.RULE_TARGET_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(c.RULE_TARGET_MAX_EVENT_AGE_HOURS),
            )
        )
        return rule
