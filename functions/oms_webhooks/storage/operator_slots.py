"""Where operators' slots are kept: DynamoDB behind a small interface (DESIGN §9).

:mod:`oms_webhooks.api.operator_limits` decides when a ping or a manual
resend may run (how many slots, how long a lease) and calls an
:class:`OperatorSlotStore`; :func:`get_store` returns the DynamoDB one
(:class:`DynamoOperatorSlotStore`), the only one today.

How it is kept: one small item per slot in the deliveries table
(:class:`~oms_webhooks.storage.models.OperatorSlotModel`, ``opslot#<tenant>``
/ ``slot#<n>``), expiring :data:`ITEM_TTL_SECONDS` after its last write.
Lease times are Unix time in microseconds.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, Protocol

from pynamodb.exceptions import PutError, UpdateError

from oms_webhooks.storage.models import OperatorSlotModel
from oms_webhooks.storage.specs import bind_tables

__all__ = ["ITEM_TTL_SECONDS", "DynamoOperatorSlotStore", "OperatorSlotStore", "get_store"]

#: Slot items expire (TTL) this long after their last write, in seconds.
ITEM_TTL_SECONDS: Final = 86_400
_MICRO: Final = 1_000_000


class OperatorSlotStore(Protocol):
    """What :func:`~oms_webhooks.api.operator_limits.operator_slot` needs from storage."""

    def take(self, tenant: str, index: int, *, lease_until: int, now: int) -> bool:
        """Take slot ``index`` of ``tenant`` until ``lease_until`` if it is free at ``now``.

        Free: never taken, or its lease ended (``lease_until`` < ``now``). One conditional
        write; False when the slot is taken.
        """
        ...

    def free(self, tenant: str, index: int, *, lease_until: int) -> None:
        """Free slot ``index`` if its lease is still ``lease_until`` (else nothing changes)."""
        ...


def _slot(tenant: str, index: int) -> OperatorSlotModel:
    return OperatorSlotModel(f"opslot#{tenant}", f"slot#{index}")


class DynamoOperatorSlotStore:
    """:class:`OperatorSlotStore` on the deliveries table (PynamoDB)."""

    def take(self, tenant: str, index: int, *, lease_until: int, now: int) -> bool:
        bind_tables()
        item = _slot(tenant, index)
        item.lease_until = lease_until
        item.expires_at = datetime.fromtimestamp(now / _MICRO + ITEM_TTL_SECONDS, UTC)
        try:
            item.save(
                condition=OperatorSlotModel.pk.does_not_exist()
                | (OperatorSlotModel.lease_until < now)
            )
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def free(self, tenant: str, index: int, *, lease_until: int) -> None:
        bind_tables()
        with contextlib.suppress(UpdateError):
            _slot(tenant, index).update(
                actions=[OperatorSlotModel.lease_until.set(0)],
                condition=OperatorSlotModel.lease_until == lease_until,
            )


@lru_cache(maxsize=1)
def get_store() -> OperatorSlotStore:
    """The store operators' slots use: DynamoDB (one per process)."""
    return DynamoOperatorSlotStore()
