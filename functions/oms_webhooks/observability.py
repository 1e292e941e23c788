"""The Powertools ``Logger`` and ``Metrics`` of every function: one service name, one namespace.

The service name is :data:`oms_webhooks.names.SERVICE_NAME`; the metrics
namespace is ``POWERTOOLS_METRICS_NAMESPACE`` when set (the CDK app sets it
from the context value ``metricsNamespace``), else
:data:`oms_webhooks.names.METRICS_NAMESPACE`. Powertools keeps one logger per
service name and one metric set per process, so each module may build its own.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

from oms_webhooks import names

__all__ = ["service_logger", "service_metrics"]


def service_logger(*, child: bool = False) -> Logger:
    """The service's logger; ``child`` for a module whose parent logger a handler builds."""
    return Logger(service=names.SERVICE_NAME, child=child)


def service_metrics() -> Metrics:
    """The service's metrics, in the configured namespace (module docstring)."""
    return Metrics(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.METRICS_NAMESPACE)
    )
