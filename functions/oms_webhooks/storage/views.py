"""Stored records as the API shows them: attributes picked by name, counters as numbers.

One helper for every ``to_resource`` of a stored record (the delivery log's
:func:`oms_webhooks.delivery.log.to_resource`, a recovery's
:func:`oms_webhooks.routing.recovery.to_resource`): the names are the model's
attribute names, space-separated as in :func:`collections.namedtuple`.
"""

from __future__ import annotations

from typing import Any


def attributes(item: Any, names: str) -> dict[str, Any]:
    """``{name: item.<name>}`` for each of the space-separated ``names``, as stored."""
    return {name: getattr(item, name) for name in names.split()}


def numbers(item: Any, names: str, *, absent: int | None = None) -> dict[str, int | None]:
    """``{name: int(item.<name>)}`` for each of ``names`` (DynamoDB numbers are floats or
    Decimals to PynamoDB); ``absent`` (None, or 0 for a counter) where it is not set."""
    values = ((name, getattr(item, name)) for name in names.split())
    return {name: absent if value is None else int(value) for name, value in values}
