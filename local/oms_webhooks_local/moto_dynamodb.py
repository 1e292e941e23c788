"""moto's DynamoDB made atomic per request, as DynamoDB is (local stack and tests only).

On DynamoDB every request is atomic: a conditional write, and a whole
``TransactWriteItems`` (conditions checked and writes applied as one, any
conflicting concurrent transaction cancelled). moto's server answers
requests in threads, and its backend checks a transaction's conditions and
then applies its writes item by item, with no lock: two concurrent
transactions can both find ``total < 5`` true and both add 1 (the per-tenant
limit then ends at 6; issue 13's flaky
``test_the_per_tenant_limit_holds_under_concurrent_creates``), and a
cancelled one restores a deep copy of the table taken before another
thread's write, losing it. Reads can meet a table mid-change as well.

:func:`serialise_dynamodb` puts one lock around every DynamoDB request moto
handles (server and in-process mocks alike), which gives moto DynamoDB's
guarantees back. moto's backends are Python under one GIL, so this costs
next to no throughput. Idempotent; the product's code never imports it.
"""

from __future__ import annotations

import threading
from typing import Any, Final

__all__ = ["serialise_dynamodb"]

_LOCK: Final = threading.RLock()
_MARK: Final = "_oms_webhooks_serialised"


def serialise_dynamodb() -> None:
    """Make every DynamoDB request moto handles run alone (module docstring)."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, _MARK, False):
        return
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with _LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    setattr(DynamoHandler, _MARK, True)
