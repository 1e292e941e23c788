"""Alarms: every DLQ's depth, each function's errors and throttles, the delivery failure rate,
operational events not published."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oms_webhooks_infra import constants as c
from tests.infra.conftest import Synthesized


def _alarms(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]


def test_every_dead_letter_queue_alarms_on_one_message(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    dlqs = {k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]}
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in _alarms(synthesized)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Threshold"] == 0
        and a["ComparisonOperator"] == "GreaterThanThreshold"
    }
    assert watched == dlqs


def test_every_function_alarms_on_errors_and_throttles(synthesized: Synthesized) -> None:
    functions = set(synthesized.resources("AWS::Lambda::Function"))
    for metric in ("Errors", "Throttles"):
        watched = {
            a["Dimensions"][0]["Value"]["Ref"]
            for a in _alarms(synthesized)
            if a.get("MetricName") == metric and a.get("Namespace") == "AWS/Lambda"
        }
        assert watched == functions, metric


def test_delivery_failure_rate_alarm_divides_failed_by_attempted(
    synthesized: Synthesized,
) -> None:
    (rate,) = [a for a in _alarms(synthesized) if "Metrics" in a]
    metrics = {m["Id"]: m for m in rate["Metrics"]}
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics.values() if "MetricStat" in m}
    assert names == {c.METRIC_DELIVERY_FAILED, c.METRIC_DELIVERY_ATTEMPTED}
    for m in metrics.values():
        if "MetricStat" in m:
            assert m["MetricStat"]["Metric"]["Namespace"] == c.DEFAULT_METRICS_NAMESPACE
    (expression,) = [m["Expression"] for m in metrics.values() if "Expression" in m]
    assert "failed / attempted" in expression
    assert rate["Threshold"] == c.DELIVERY_FAILURE_RATE_PERCENT


def test_an_operational_event_not_published_alarms_at_once(synthesized: Synthesized) -> None:
    (alarm,) = [
        a
        for a in _alarms(synthesized)
        if a.get("MetricName") == c.METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED
    ]
    assert alarm["Namespace"] == c.DEFAULT_METRICS_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": c.SERVICE_NAME}]
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_log_groups_have_the_configured_retention(synthesized: Synthesized) -> None:
    synthesized.template.all_resources_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": c.DEFAULT_LOG_RETENTION_DAYS}
    )


def test_with_an_alarm_topic_disabled_subscriptions_notify_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from oms_webhooks_infra.app import build_app

    topic = "arn:aws:sns:us-east-1:123456789012:oms-ops"
    outdir = tmp_path_factory.mktemp("cdk.out.topic")
    context = {"skipBundling": "true", "alarmTopicArn": topic}
    app, stack = build_app(context, outdir=str(outdir))
    app.synth()
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    rules = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("EventPattern", {}).get("source") == ["oms-webhooks"]
    ]
    (rule,) = rules
    assert rule["EventPattern"]["detail-type"] == ["webhook.subscription.disabled"]
    assert rule["Targets"][0]["Arn"] == topic
