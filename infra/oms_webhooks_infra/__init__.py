"""The CDK app of oms-webhooks: one stack composed of constructs by concern.

``stack`` wires ``storage`` (tables), ``messaging`` (bus, rule, queues),
``functions`` (four Lambdas, least-privilege roles), ``api`` (REST API and
authorizer) and ``monitoring`` (alarms); ``config`` reads the context,
``bundling`` builds the code asset without Docker, ``constants`` holds the
names and sizes only the deployment decides.
"""

from oms_webhooks_infra.app import build_app
from oms_webhooks_infra.stack import OmsWebhooksStack

__all__ = ["OmsWebhooksStack", "build_app"]
