"""oms-webhooks: a serverless webhook service for an order management system.

The package is importable without AWS: handler modules under
:mod:`oms_webhooks.handlers` are thin Lambda entry points over plain modules
(:mod:`~oms_webhooks.subscriptions.service`, :mod:`~oms_webhooks.api.tokens`, ...) that the
local stack (:mod:`oms_webhooks_local`) reuses as they are.
"""

import os as _os

__version__ = "0.1.0"

# Benchmarks only: log every AWS call of this process (oms_webhooks/aws_call_log.py).
if _os.environ.get("OMS_WEBHOOKS_COUNT_AWS_CALLS"):
    from oms_webhooks.aws_call_log import install_from_env

    install_from_env()

__all__ = ["__version__"]
