"""The CDK app of oms-webhooks: one stack composed of constructs by concern.

``stack`` wires ``storage`` (tables), ``messaging`` (bus, rule, queues),
``functions`` (four Lambdas, least-privilege roles), ``api`` (REST API and
authorizer) and ``monitoring`` (alarms); ``config`` reads the context,
``asset`` builds the code asset (plain Python, over ``wheels``,
``runtime_python`` and ``build_steps``; ``asset_import`` imports from a built
one for tests and benchmarks) and ``bundling`` hands it to the CDK without
Docker, ``constants`` holds the names and sizes only the deployment decides.

``build_app`` and ``OmsWebhooksStack`` are imported on first use (PEP 562), so
``oms_webhooks_infra.asset`` serves the benchmarks and ``make wheelhouse``
without starting the CDK's jsii runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oms_webhooks_infra.app import build_app
    from oms_webhooks_infra.stack import OmsWebhooksStack

__all__ = ["OmsWebhooksStack", "build_app"]


def __getattr__(name: str) -> Any:
    if name == "build_app":
        from oms_webhooks_infra.app import build_app

        return build_app
    if name == "OmsWebhooksStack":
        from oms_webhooks_infra.stack import OmsWebhooksStack

        return OmsWebhooksStack
    raise AttributeError(name)
