"""What a new user hit from the README alone (issue 13, item 9), each kept as a test."""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from oms_webhooks.cli import main
from oms_webhooks.local.stack import LocalStack
from oms_webhooks.publisher import publish_event
from tests.functional.helpers import api, subscribe, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_a_bearer_token_gets_a_401_that_names_the_token_scheme(
    stack: LocalStack, tenant: Any
) -> None:
    response = api(stack).get(
        "/whisperer/hooks/", headers={"Authorization": f"Bearer {tenant.token}"}
    )
    assert response.status_code == 401
    assert "Authorization: Token <token>" in response.json()["detail"]


def test_a_public_target_on_the_local_stack_logs_a_warning(
    client: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the local stack (private targets allowed): example.com's address, as a literal
    with caplog.at_level(logging.WARNING):
        sub = subscribe(client, event_type="package.created", target_url="http://93.184.215.14/")
        private = subscribe(client, event_type="shipment.created", target_url="http://10.1.2.3/")
        client.patch(
            f"/whisperer/hooks/{private['id']}/", json={"target_url": "http://8.8.8.8/hook"}
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # THEN it is accepted, with a warning line naming it (and the PATCH to a public one too)
    assert sub["target_url"] == "http://93.184.215.14/"
    assert any("93.184.215.14" in w and "public address" in w for w in warnings), warnings
    assert any("8.8.8.8" in w for w in warnings), warnings
    assert not any("10.1.2.3" in w for w in warnings)


def test_the_delivery_list_shows_the_last_attempts_error(client: requests.Session) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    subscribe(
        client,
        event_type="transfer.status.in_transit",
        target_url=f"http://127.0.0.1:{port}/",
        max_retries=0,
    )
    publish_event("transfer.status.in_transit", {"id": 9})
    (item,) = wait_until(
        lambda: [
            d
            for d in client.get("/whisperer/hook_events/").json()["results"]
            if d["status"] == "failed"
        ],
        timeout=20,
    )
    assert item["response_http_status"] is None
    assert item["error"] and "refused" in item["error"].lower()


def test_a_busy_port_error_names_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main,
            ["local", "--api-port", str(port), "--aws-port", "0", "--state-dir", str(tmp_path)],
        )
    assert result.exit_code == 1, result.output
    assert f"cannot use API port {port}" in result.output
    assert "make run API_PORT=8100 AWS_PORT=4666" in result.output


def test_make_run_takes_the_ports() -> None:
    dry = subprocess.run(
        ["make", "-n", "run", "API_PORT=8100", "AWS_PORT=4666"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "local --api-port 8100 --aws-port 4666" in dry.stdout
