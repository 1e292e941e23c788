"""storage.views: the API's views of stored records."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from oms_webhooks.storage.views import attributes, numbers


def test_attributes_are_picked_by_name_as_stored() -> None:
    item = SimpleNamespace(status="done", cursor=None, other=1)
    assert attributes(item, "status cursor") == {"status": "done", "cursor": None}


def test_numbers_are_ints_and_absent_ones_take_the_default() -> None:
    item = SimpleNamespace(queued=Decimal("3"), skipped=None, time=2.0)
    assert numbers(item, "queued skipped", absent=0) == {"queued": 3, "skipped": 0}
    assert numbers(item, "skipped time") == {"skipped": None, "time": 2}
