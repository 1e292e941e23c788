"""Context parameters: defaults, string values from ``-c``, refusals."""

from __future__ import annotations

import pytest
from aws_cdk import App, RemovalPolicy

from oms_webhooks_infra.config import DeploymentConfig


def _config(**context: object) -> DeploymentConfig:
    return DeploymentConfig.from_context(App(context=dict(context)).node)


def test_defaults_retain_tables_and_create_the_oms_bus() -> None:
    config = _config()
    assert config.table_removal_policy == RemovalPolicy.RETAIN
    assert (config.bus_name, config.use_existing_bus, config.event_source) == ("oms", False, "oms")
    assert config.allow_private_targets is False
    assert config.dispatcher_slow_max_concurrency == 10


def test_cli_strings_are_parsed() -> None:
    config = _config(
        useExistingBus="true",
        busName="default",
        dispatcherMaxConcurrency="50",
        dispatcherSlowMaxConcurrency="25",
        logRetentionDays="90",
        removalPolicy="DESTROY",
    )
    assert config.use_existing_bus is True
    assert config.bus_name == "default"
    assert config.dispatcher_max_concurrency == 50
    assert config.dispatcher_slow_max_concurrency == 25
    assert config.log_retention_days == 90
    assert config.table_removal_policy == RemovalPolicy.DESTROY


def test_private_targets_are_refused_in_a_deployment() -> None:
    with pytest.raises(ValueError, match="allowPrivateTargets"):
        _config(allowPrivateTargets="true")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("removalPolicy", "keep"),
        ("logRetentionDays", "10"),
        ("dispatcherMaxConcurrency", "1"),
        ("dispatcherSlowMaxConcurrency", "1"),
        ("dispatcherSlowMaxConcurrency", "1001"),
        ("dispatcherSlowMaxConcurrency", "ten"),
        ("useExistingBus", "maybe"),
        ("logLevel", "verbose"),
    ],
)
def test_malformed_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key):
        _config(**{key: value})


def test_operational_source_equal_to_the_oms_source_is_refused() -> None:
    # DESIGN §10: the ingress rule matches the OMS source; operational events must not match it.
    assert _config().operational_source == "oms-webhooks"
    with pytest.raises(ValueError, match="operationalSource"):
        _config(operationalSource="oms")
    with pytest.raises(ValueError, match="operationalSource"):
        _config(eventSource="erp", operationalSource="erp")


def test_every_malformed_key_is_named_at_once() -> None:
    # GIVEN two malformed keys WHEN the context is read THEN one error names both, with values
    with pytest.raises(ValueError) as caught:
        _config(removalPolicy="keep", logRetentionDays="10")
    message = str(caught.value)
    assert "'removalPolicy'" in message and "'keep'" in message
    assert "'logRetentionDays'" in message and "'10'" in message


def test_fields_can_be_given_by_name() -> None:
    assert DeploymentConfig(bus_name="default", use_existing_bus=True).bus_name == "default"


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_every_powertools_log_level_has_a_lambda_application_level(level: str) -> None:
    from oms_webhooks_infra.functions import APPLICATION_LOG_LEVELS

    assert _config(logLevel=level).log_level in APPLICATION_LOG_LEVELS
