"""Where recoveries are kept: the recover requests and their progress, behind a small interface.

:mod:`oms_webhooks.routing.recovery` decides what a recovery does and calls a
:class:`RecoveryStore`; :func:`get_store` returns the DynamoDB one
(:class:`DynamoRecoveryStore`), the only one today.

How it is kept (DESIGN §10): one item per recovery in the deliveries table
(pk ``recovery#<32-hex id>``, sk ``recovery``), expiring after the delivery
retention. The API checks the tenant and subscription of one it reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from oms_webhooks.storage.models import RecoveryModel
from oms_webhooks.storage.specs import bind_tables


def recovery_key(recovery_id: str) -> tuple[str, str]:
    """The ``(pk, sk)`` of recovery ``recovery_id``."""
    return f"recovery#{recovery_id}", "recovery"


class RecoveryStore(Protocol):
    """What recover (the API's start and read, the recoverer's worker) needs from storage."""

    def put(self, item: RecoveryModel) -> None:
        """Store a new recovery (its key from :func:`recovery_key`)."""
        ...

    def get(self, recovery_id: str) -> RecoveryModel | None:
        """Recovery ``recovery_id``, read strongly consistent; None if absent (or expired)."""
        ...

    def save_progress(self, item: RecoveryModel, changes: dict[str, Any]) -> None:
        """Set the attributes in ``changes`` (name → value; a None value is left as it is)
        and ``modified_date`` to now, on the stored item and on ``item``."""
        ...

    def running(self, status: str) -> Iterator[RecoveryModel]:
        """Every recovery whose status is ``status`` (a Scan: the local stack's restart only)."""
        ...


class DynamoRecoveryStore:
    """:class:`RecoveryStore` on the ``deliveries`` table (PynamoDB)."""

    def put(self, item: RecoveryModel) -> None:
        bind_tables()
        item.save()

    def get(self, recovery_id: str) -> RecoveryModel | None:
        bind_tables()
        try:
            return RecoveryModel.get(*recovery_key(recovery_id), consistent_read=True)
        except RecoveryModel.DoesNotExist:
            return None

    def save_progress(self, item: RecoveryModel, changes: dict[str, Any]) -> None:
        bind_tables()
        actions = [getattr(RecoveryModel, k).set(v) for k, v in changes.items() if v is not None]
        actions.append(RecoveryModel.modified_date.set(datetime.now(UTC)))
        item.update(actions=actions)

    def running(self, status: str) -> Iterator[RecoveryModel]:
        bind_tables()
        condition = (RecoveryModel.sk == "recovery") & (RecoveryModel.status == status)
        yield from RecoveryModel.scan(condition)


@lru_cache(maxsize=1)
def get_store() -> RecoveryStore:
    """The store of recoveries: DynamoDB (one per process)."""
    return DynamoRecoveryStore()
