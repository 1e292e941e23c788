"""The URL guard runs again at every send, on the address actually connected to.

DESIGN §3/§4 and the security issue: with private targets allowed (the local
stack), a name that resolved to 127.0.0.1 when the partner subscribed and to
the cloud metadata address when the delivery is sent is refused at send time
— no connection is made, the attempt is logged with the reason and retried.
"""

from __future__ import annotations

import time
from typing import Any

from oms_webhooks_local.publisher import publish_event
from tests.dns import fake_dns
from tests.functional.helpers import api
from tests.receivers import Receiver


def test_dns_rebinding_to_metadata_is_refused_at_send_time(stack: Any, tenant: Any) -> None:
    client = api(stack, tenant.token)
    answer = ["127.0.0.1"]
    with Receiver() as receiver, fake_dns({"rebind.example": lambda: answer}):
        # GIVEN a subscription whose host resolved to loopback (allowed on the local stack)
        created = client.post(
            "/whisperer/hooks/",
            json={
                "event_type": "transfer.status.ready_to_shipment",
                "target_url": receiver.url("/", host="rebind.example"),
                "retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 3600}},
            },
        )
        assert created.status_code == 201, created.text
        # WHEN the name now answers with the metadata address and an event comes
        answer[:] = ["169.254.169.254"]
        publish_event("transfer.status.ready_to_shipment", {"id": 1})
        # THEN the attempt is refused without connecting, and the log says why
        deadline = time.monotonic() + 10
        attempts: list[dict[str, Any]] = []
        while not attempts and time.monotonic() < deadline:
            for delivery in client.get("/whisperer/hook_events/").json()["results"]:
                detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
                attempts = detail["attempts"]
            time.sleep(0.1)
        assert attempts, "no attempt recorded"
        assert "target refused" in (attempts[0]["error"] or "")
        assert "169.254.169.254" in attempts[0]["error"]
        assert receiver.requests == []
