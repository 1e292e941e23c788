"""oms-webhooks: a serverless webhook service for an order management system.

The package is importable without AWS: handler modules under
:mod:`oms_webhooks.handlers` are thin Lambda entry points over plain modules
(:mod:`~oms_webhooks.subscriptions`, :mod:`~oms_webhooks.tokens`, ...) that the
local stack (:mod:`oms_webhooks.local`) reuses as they are.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
