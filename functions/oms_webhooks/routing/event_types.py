"""The OMS event catalogue (source: the OMS webhook documentation, DESIGN §2).

Event types are dotted (``package.created``). The OMS documentation's own curl
example spells one with hyphens (``package-created``); that spelling is
accepted as an alias and normalised to the dotted form before storage.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "package.created",
    "package.status.transitioned",
    "package.status.packed",
    "package.status.cancelled",
    "package.status.shipped",
    "package.status.packed_for_refund",
    "package.shipment.awb_number",
    "shipment.created",
    "shipment.status.updated",
    "shipment.cancelled",
    "transfer.status.created",
    "transfer.status.transitioned",
    "transfer.status.in_transit",
    "transfer.status.transferred",
    "transfer.status.cancelled",
    "transfer.status.ready_to_shipment",
    "stock_location.created",
    "stock_location.updated",
)

_BY_ALIAS: dict[str, str] = {t.replace(".", "-"): t for t in EVENT_TYPES}


def normalize_event_type(value: str) -> str:
    """Return the catalogue spelling of ``value``.

    Accepts a dotted catalogue name or its hyphenated alias
    (``package-created`` → ``package.created``).

    Raises:
        ValueError: ``value`` is not in the catalogue; the message lists the
            valid types.
    """
    if value in EVENT_TYPES:
        return value
    if value in _BY_ALIAS:
        return _BY_ALIAS[value]
    raise ValueError(f"unknown event type {value!r}; valid types: {', '.join(EVENT_TYPES)}")
