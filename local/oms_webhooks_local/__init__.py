"""The local stack: moto's AWS server, provisioning, a local API Gateway and workers.

Not used by the Lambda functions (its dependencies are the ``local`` extra):
:mod:`~oms_webhooks_local.stack` runs the whole service on one machine,
:mod:`~oms_webhooks_local.provision` creates the AWS resources,
:mod:`~oms_webhooks_local.gateway` turns HTTP requests into API Gateway events.
"""
