"""The service stack: wires the constructs, builds nothing itself."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from oms_webhooks_infra import constants as c
from oms_webhooks_infra.api import ApiConstruct
from oms_webhooks_infra.config import DeploymentConfig
from oms_webhooks_infra.functions import FunctionsConstruct
from oms_webhooks_infra.messaging import MessagingConstruct
from oms_webhooks_infra.monitoring import MonitoringConstruct
from oms_webhooks_infra.storage import StorageConstruct


class OmsWebhooksStack(Stack):
    """Tables, bus and queues, the four functions, the REST API and the alarms."""

    def __init__(self, scope: Construct, id_: str, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = DeploymentConfig.from_context(self.node)
        Tags.of(self).add("service", c.SERVICE_NAME)

        self.storage = StorageConstruct(
            self, "Storage", removal_policy=self.config.table_removal_policy
        )
        self.messaging = MessagingConstruct(
            self,
            "Messaging",
            bus_name=self.config.bus_name,
            use_existing_bus=self.config.use_existing_bus,
            event_source=self.config.event_source,
        )
        self.functions = FunctionsConstruct(
            self, "Functions", config=self.config, storage=self.storage, messaging=self.messaging
        )
        self.api = ApiConstruct(
            self,
            "Api",
            api_function=self.functions.api,
            authorizer_function=self.functions.authorizer,
            log_retention=self.config.log_retention,
        )
        self.monitoring = MonitoringConstruct(
            self,
            "Monitoring",
            dead_letter_queues=dict(self.messaging.dead_letter_queues),
            functions=dict(self.functions.functions),
            metrics_namespace=self.config.metrics_namespace,
            alarm_topic_arn=self.config.alarm_topic_arn,
            bus=self.messaging.bus,
            operational_source=self.config.operational_source,
        )
