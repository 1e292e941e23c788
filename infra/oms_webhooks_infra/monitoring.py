"""CloudWatch alarms: dead-letter queues, function errors and throttles, delivery failures,
operational events that could not be published."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from oms_webhooks_infra import constants as c


class MonitoringConstruct(Construct):
    """One alarm per failure mode; all notify ``alarm_topic_arn`` when given.

    Attributes:
        alarms: every alarm by construct id.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dead_letter_queues: dict[str, sqs.IQueue],
        functions: dict[str, lambda_.IFunction],
        metrics_namespace: str,
        alarm_topic_arn: str | None,
        bus: events.IEventBus | None = None,
        operational_source: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self._period = Duration.seconds(c.ALARM_PERIOD_SECONDS)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, queue in dead_letter_queues.items():
            self._build_dlq_alarm(name, queue)
        for name, function in functions.items():
            self._build_function_alarms(name, function)
        self._build_delivery_failure_alarm(metrics_namespace)
        self._build_not_published_alarm(metrics_namespace)
        if alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
            for alarm in self.alarms.values():
                alarm.add_alarm_action(actions.SnsAction(topic))
            if bus is not None and operational_source:
                self._build_disabled_rule(bus, operational_source, topic)

    def _build_disabled_rule(
        self, bus: events.IEventBus, operational_source: str, topic: sns.ITopic
    ) -> None:
        """``webhook.subscription.disabled`` operational events → the alarm topic (DESIGN §10).

        The topic is imported: its policy must let ``events.amazonaws.com`` publish.
        """
        events.Rule(
            self,
            "SubscriptionDisabledRule",
            event_bus=bus,
            description="A partner subscription was disabled (failing too long, or 410 Gone)",
            event_pattern=events.EventPattern(
                source=[operational_source], detail_type=["webhook.subscription.disabled"]
            ),
            targets=[targets.SnsTopic(topic)],
        )

    def _add(
        self, id_: str, metric: cloudwatch.IMetric, description: str, **kwargs: object
    ) -> None:
        self.alarms[id_] = cloudwatch.Alarm(
            self,
            id_,
            metric=metric,
            alarm_description=description,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            **{  # type: ignore[arg-type]
                "threshold": 0,
                "evaluation_periods": 1,
                "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                **kwargs,
            },
        )

    def _build_dlq_alarm(self, name: str, queue: sqs.IQueue) -> None:
        self._add(
            f"{name}Depth",
            queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            ),
            f"{name}: messages waiting (poison or undeliverable events); inspect and redrive.",
        )

    def _build_function_alarms(self, name: str, function: lambda_.IFunction) -> None:
        self._add(
            f"{name}Errors",
            function.metric_errors(period=self._period, statistic=cloudwatch.Stats.SUM),
            f"{name} function: invocation errors.",
        )
        self._add(
            f"{name}Throttles",
            function.metric_throttles(period=self._period, statistic=cloudwatch.Stats.SUM),
            f"{name} function: throttled invocations.",
        )

    def _build_not_published_alarm(self, namespace: str) -> None:
        """One operational event not put on the bus (DESIGN §10): nobody was told of it."""
        self._add(
            "OperationalEventNotPublished",
            cloudwatch.Metric(
                namespace=namespace,
                metric_name=c.METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED,
                dimensions_map={"service": c.SERVICE_NAME},
                statistic=cloudwatch.Stats.SUM,
                period=self._period,
            ),
            "Operational events (webhook.subscription.disabled, webhook.delivery.failed) "
            "could not be put on the bus: read the dispatcher's and the API's error logs.",
        )

    def _build_delivery_failure_alarm(self, namespace: str) -> None:
        def metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map={"service": c.SERVICE_NAME},
                statistic=cloudwatch.Stats.SUM,
                period=self._period,
            )

        rate = cloudwatch.MathExpression(
            expression="IF(attempted > 0, 100 * failed / attempted, 0)",
            using_metrics={
                "failed": metric(c.METRIC_DELIVERY_FAILED),
                "attempted": metric(c.METRIC_DELIVERY_ATTEMPTED),
            },
            label="Delivery failure rate (%)",
            period=self._period,
        )
        self._add(
            "DeliveryFailureRate",
            rate,
            f"More than {c.DELIVERY_FAILURE_RATE_PERCENT}% of delivery attempts failed in "
            f"{c.DELIVERY_FAILURE_EVALUATION_PERIODS} consecutive periods.",
            threshold=c.DELIVERY_FAILURE_RATE_PERCENT,
            evaluation_periods=c.DELIVERY_FAILURE_EVALUATION_PERIODS,
        )
