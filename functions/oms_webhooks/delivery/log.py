"""The delivery log (``hook_events``): what was sent where, and what came back.

Plain module behind ``GET /whisperer/hook_events/`` and
``GET /whisperer/hook_events/{uuid}/`` (DESIGN §3). Every read names the
tenant: the list queries the tenant's partition of the sparse ``by-tenant``
index (newest first), and a delivery of another tenant is not found. The
index holds only what never changes after creation; the page's items are
read from the table (one ``BatchGetItem`` per index page), so attempts never
write the index (README "Design notes", cost).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oms_webhooks.delivery import store as deliveries
from oms_webhooks.errors import NotFound
from oms_webhooks.routing import events_store
from oms_webhooks.storage.models import AttemptModel, DeliveryModel
from oms_webhooks.storage.pagination import Page, decode_cursor, encode_cursor
from oms_webhooks.storage.views import attributes, numbers

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
#: Most log entries one list request reads before it answers (the filters
#: are DynamoDB filter expressions, applied after the read): a filter that
#: matches rarely answers with fewer than ``limit`` deliveries, even none, and
#: a ``next`` cursor after the last entry read, instead of reading the
#: tenant's whole log in one request (an attack run: 2,000 deliveries and
#: ``?limit=1&webhook=<id>`` ran past API Gateway's 29 s).
MAX_ENTRIES_READ = 1000
#: Most attempts the detail view shows, the latest ones, oldest first: manual
#: resends add attempts without a bound, and 600 of them made a 7.5 MB answer
#: (over Lambda's 6 MB response limit: a 502 on AWS; third attack run); 100
#: take ~1.2 MB at most.
MAX_ATTEMPTS_SHOWN = 100


def _encode_cursor(item: DeliveryModel) -> str:
    return encode_cursor({"s": str(item.log_sort), "k": item.pk})


def list_deliveries(
    tenant: str,
    *,
    subscription_id: str | None = None,
    event_type: str | None = None,
    delivered: bool | None = None,
    response_http_status: int | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    allowed: frozenset[str] | None = None,
) -> Page[DeliveryModel]:
    """One page of ``tenant``'s deliveries, newest first, filtered.

    ``created_gte``/``created_lte`` bound ``created_date`` (inclusive).

    Raises:
        ValidationFailed: a cursor this API did not issue.
    """
    store = deliveries.get_store()
    wanted = deliveries.LogFilter(subscription_id, event_type, allowed, created_gte, created_lte)

    def shown(item: DeliveryModel) -> bool:
        # Filters on what changes after creation: not in the index, so applied
        # to the items read from the table.
        if delivered is not None and (item.status == deliveries.DELIVERED) != delivered:
            return False
        return response_http_status is None or (
            item.response_http_status is not None
            and int(item.response_http_status) == response_http_status
        )

    after = None
    if cursor:
        position = decode_cursor(cursor, ("s", "k"))
        after = position["s"], position["k"]
    # Pages grow from limit + 1 (an unfiltered page reads no more than it
    # shows) by doubling, so a rare filter costs a few round trips, not one
    # per limit + 1 entries; every read counts against MAX_ENTRIES_READ.
    page_size = min(limit + 1, MAX_PAGE_SIZE + 1)
    read = 0
    items: list[DeliveryModel] = []
    while True:
        page = store.log_page(
            tenant, wanted, after=after, page_size=min(page_size, MAX_ENTRIES_READ - read)
        )
        read += page.scanned
        for item in _from_table(page.entries):
            if item is None or not shown(item):
                continue  # expired between the index read and the table read, or filtered out
            if len(items) == limit:
                return Page(items, _encode_cursor(items[-1]))
            items.append(item)
        after = page.last
        if after is None:
            return Page(items, None)
        if read >= MAX_ENTRIES_READ:
            # Out of reads: resume after the last entry read (shown or filtered out).
            return Page(items, encode_cursor({"s": after[0], "k": after[1]}))
        page_size *= 2


def _from_table(entries: list[DeliveryModel]) -> list[DeliveryModel | None]:
    """The delivery items of index ``entries``, in their order (None: gone meanwhile).

    The index holds only what never changes
    (:data:`~oms_webhooks.storage.models.DELIVERY_LOG_ATTRIBUTES`);
    status and the last attempt's answer come from the table, read in
    ``BatchGetItem`` calls of up to 100 keys (eventually consistent: half a
    read unit per item).
    """
    if not entries:
        return []
    found = deliveries.get_store().get_many([e.pk for e in entries])
    return [found.get(e.pk) for e in entries]


def get_delivery(tenant: str, uid: str, *, allowed: frozenset[str] | None = None) -> DeliveryModel:
    """Delivery ``uid`` of ``tenant`` (within the token scope ``allowed``).

    Raises:
        NotFound: unknown uuid, malformed uuid, another tenant's delivery, or
            one of an event type outside the caller's scope.
    """
    if len(uid) != 32 or not all(c in "0123456789abcdef" for c in uid):
        raise NotFound("delivery not found")
    item = deliveries.get_store().get(uid)
    if item is None or item.tenant != tenant:
        raise NotFound("delivery not found")
    if allowed is not None and item.event_type not in allowed:
        raise NotFound("delivery not found")
    return item


def attempts_of(
    uid: str, *, limit: int | None = None, delivery: DeliveryModel | None = None
) -> list[AttemptModel]:
    """Attempts of delivery ``uid``, oldest first: every one, or the latest ``limit``.

    The latest attempt is read from the delivery item (``delivery``, or read
    here), the earlier ones from their attempt items; an attempt found in
    both (the record of the next one stopped after moving it) is listed once.
    """
    store = deliveries.get_store()
    if delivery is None:
        delivery = store.get(uid)
    latest = on_delivery(delivery) if delivery is not None else None
    earlier = store.attempts(uid, latest=limit)
    if latest is not None and all(a.sk != latest.sk for a in earlier):
        earlier.append(latest)
    return earlier if limit is None else earlier[-limit:]


def attempt_key(number: int) -> str:
    """The sort key of attempt ``number`` (1-based): ``attempt#0001`` ... ``attempt#9999``,
    then ``attempt#~510000``.

    Keys sort as their numbers do (:func:`attempts_of` reads the latest ones
    by key order). Four digits were the whole scheme, but manual resends add
    attempts without a bound and ``attempt#10000`` sorts before
    ``attempt#9999``: from 10,000 on, the digits follow ``~`` (after every
    digit) and their count, so longer numbers sort after shorter ones (up to
    999,999,999 attempts). Keys already stored keep their meaning.
    """
    if number < 10_000:
        return f"attempt#{number:04d}"
    digits = str(number)
    return f"attempt#~{len(digits)}{digits}"


def on_delivery(delivery: DeliveryModel) -> AttemptModel | None:
    """The attempt the delivery item holds (its latest), as an attempt item; None if none."""
    if delivery.last_attempt is None or delivery.attempt_at is None:
        return None
    return AttemptModel(
        delivery.pk,
        attempt_key(int(delivery.last_attempt)),
        at=delivery.attempt_at,
        response_http_status=delivery.response_http_status,
        error=delivery.error,
        response_time=delivery.response_time or 0,
        response_content=delivery.response_content,
        expires_at=delivery.expires_at,
    )


def to_resource(item: DeliveryModel) -> dict[str, Any]:
    """The API view of a delivery (``hook_events`` list item)."""
    return {
        "uuid": item.pk,
        "webhook": item.subscription_id,
        "delivered": item.status == deliveries.DELIVERED,
        **attributes(item, "event_type event_id status response_content error"),
        **attributes(item, "created_date modified_date"),
        **numbers(item, "retry_count", absent=0),
        **numbers(item, "response_http_status response_time"),
    }


def to_detail(item: DeliveryModel) -> tuple[dict[str, Any], str | None]:
    """The detail view, and the event payload's JSON text as stored (None once expired).

    The view is the list view plus ``request_payload`` (its ``payload`` left
    null) and the latest attempts (at most :data:`MAX_ATTEMPTS_SHOWN`, oldest
    first). The payload stays text: the API writes it into
    the answer as it is, so a payload nested as deep as the router accepts
    is shown without being parsed and re-serialised (pydantic stops
    serialising at a depth of a few hundred; issue 13).
    """
    payload = events_store.get_store().get_payload(item.event_id)
    view = to_resource(item)
    view["request_payload"] = {
        "event": {"type": item.event_type, "uuid": item.pk, "time": item.event_time},
        "payload": None,
    }
    view["attempts"] = [
        {
            "at": a.at,
            "response_http_status": None
            if a.response_http_status is None
            else int(a.response_http_status),
            "error": a.error,
            "response_time": int(a.response_time),
            "response_content": a.response_content,
        }
        for a in attempts_of(item.pk, limit=MAX_ATTEMPTS_SHOWN, delivery=item)
    ]
    return view, payload.detail if payload is not None else None
