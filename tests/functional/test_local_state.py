"""The local stack keeps its state across a restart (DESIGN §6, issue 17).

Each test runs ``oms-webhooks local`` as a process of its own (its AWS server
in another), with a state directory under ``tmp_path``, stops it (SIGINT as
Ctrl-C does, or ``kill -9``) and starts it again on the same directory.
Everything stays on 127.0.0.1; the partner is a real HTTP receiver.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from oms_webhooks_local.receiver import check_standard, check_whisperer
from tests.functional.helpers import wait_until
from tests.functional.local_process import HTTP_TIMEOUT, RunningStack, start_stack, stop_stack
from tests.receivers import Receiver, Response


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


@pytest.fixture
def stacks() -> Iterator[list[RunningStack]]:
    """Stacks a test started: killed afterwards if still running."""
    started: list[RunningStack] = []
    yield started
    for stack in started:
        if stack.proc.poll() is None:
            stack.proc.kill()
            stack.proc.wait(timeout=10)


def _deliveries(stack: RunningStack) -> list[dict[str, Any]]:
    response = stack.api().get(f"{stack.api_url}/whisperer/hook_events/", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["results"] if isinstance(body, dict) else body)


def test_a_restart_keeps_pending_retries_secrets_tokens_and_survives_kill_9(
    state_dir: Path, stacks: list[RunningStack]
) -> None:
    secret = "whsec-" + uuid.uuid4().hex
    with Receiver() as receiver:
        receiver.respond(Response(status=500))  # the first attempt fails; then 200
        # GIVEN a stack with a secret-signed subscription, a second tenant's
        # token, and a delivery whose retry is pending
        first = start_stack(state_dir)
        stacks.append(first)
        assert f"State:         {state_dir.resolve()}; started empty" in first.output
        created = first.api().post(
            f"{first.api_url}/whisperer/hooks/",
            json={
                "event_type": "package.created",
                "target_url": receiver.url("/hook"),
                "secret_key": secret,
                "retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 10}},
            },
            timeout=HTTP_TIMEOUT,
        )
        assert created.status_code == 201, created.text
        other_token = (
            first.cli("tokens", "create", "--tenant", "other-tenant").strip().splitlines()[-1]
        )
        assert (
            first.api(other_token)
            .get(f"{first.api_url}/whisperer/hooks/", timeout=HTTP_TIMEOUT)
            .status_code
            == 200
        )
        first.cli("publish", "package.created", "--data", json.dumps({"id": 17}))
        receiver.wait_for(1, timeout=30)
        pending = wait_until(
            lambda: [d for d in _deliveries(first) if d["status"] == "pending"], timeout=30
        )
        assert len(pending) == 1

        # WHEN it is stopped with Ctrl-C (SIGINT) and started again on the same state
        assert stop_stack(first) == 0
        assert len(receiver.requests) == 1  # the retry is still to come
        assert (state_dir / "tables.jsonl").exists() and (state_dir / "kms.json").exists()
        assert (state_dir / "kms.json").stat().st_mode & 0o077 == 0
        second = start_stack(state_dir)
        stacks.append(second)

        # THEN the development token, the other tenant's token and the
        # subscription survive, and the pending retry arrives, signed with
        # the secret sealed before the restart
        assert second.token == first.token
        assert "1 pending deliveries" in second.output, second.output
        arrived = receiver.wait_for(2, timeout=45)
        retry = arrived[1]
        assert json.loads(retry.body) == json.loads(arrived[0].body)  # the same event
        assert check_standard(secret, retry.body, retry.headers)
        assert check_whisperer(secret, retry.body, retry.headers.get("X-Whisperer-Signature"))
        delivered = wait_until(
            lambda: [d for d in _deliveries(second) if d["status"] == "delivered"], timeout=30
        )
        assert delivered[0]["uuid"] == pending[0]["uuid"]
        hooks = second.api().get(f"{second.api_url}/whisperer/hooks/", timeout=HTTP_TIMEOUT)
        assert [h["target_url"] for h in _results(hooks.json())] == [receiver.url("/hook")]
        others = second.api(other_token).get(
            f"{second.api_url}/whisperer/hooks/", timeout=HTTP_TIMEOUT
        )
        assert others.status_code == 200 and _results(others.json()) == []

        # AND after a kill -9 (no chance to stop), a restart still has what
        # was snapshotted (every 2 s), here a second subscription
        created = second.api().post(
            f"{second.api_url}/whisperer/hooks/",
            json={"event_type": "package.created", "target_url": receiver.url("/k9")},
            timeout=HTTP_TIMEOUT,
        )
        assert created.status_code == 201, created.text
        wait_until(lambda: b"/k9" in (state_dir / "tables.jsonl").read_bytes(), timeout=20)
        second.proc.kill()
        second.proc.wait(timeout=10)
        third = start_stack(state_dir)
        stacks.append(third)
        hooks = third.api().get(f"{third.api_url}/whisperer/hooks/", timeout=HTTP_TIMEOUT)
        assert sorted(h["target_url"] for h in _results(hooks.json())) == [
            receiver.url("/hook"),
            receiver.url("/k9"),
        ]
        assert stop_stack(third, signal.SIGTERM) == 0


def _results(body: Any) -> list[Any]:
    return list(body["results"] if isinstance(body, dict) else body)


def test_events_not_yet_routed_survive_a_kill_9_of_the_whole_stack(
    state_dir: Path, stacks: list[RunningStack]
) -> None:
    marker = uuid.uuid4().hex
    with Receiver() as receiver:
        # GIVEN a stack with a subscription, whose router is frozen (SIGSTOP),
        # and three events the bus accepted into the ingress queue meanwhile
        first = start_stack(state_dir)
        stacks.append(first)
        created = first.api().post(
            f"{first.api_url}/whisperer/hooks/",
            json={"event_type": "package.created", "target_url": receiver.url("/hook")},
            timeout=HTTP_TIMEOUT,
        )
        assert created.status_code == 201, created.text
        aws_pid = int(
            requests.post(f"{first.aws_url}/_oms_local/stats", timeout=HTTP_TIMEOUT).json()["pid"]
        )
        first.proc.send_signal(signal.SIGSTOP)
        for n in range(3):
            first.cli("publish", "package.created", "--data", json.dumps({"m": marker, "n": n}))
        # ... and journalled by a snapshot (every 2 s)
        wait_until(lambda: (state_dir / "tables.jsonl").read_text().count(marker) >= 3, timeout=30)
        assert not receiver.requests
        # WHEN every process of the stack is killed with SIGKILL (no clean stop, no drain)
        os.kill(aws_pid, signal.SIGKILL)
        first.proc.kill()
        first.proc.wait(timeout=10)
        # THEN a restart queues the three events again and delivers each of them
        second = start_stack(state_dir)
        stacks.append(second)
        assert "3 events to route" in second.output, second.output
        arrived = receiver.wait_for(3, timeout=60)
        assert sorted(json.loads(r.body)["payload"]["n"] for r in arrived) == [0, 1, 2]
        assert stop_stack(second) == 0


def test_a_second_stack_on_the_same_state_directory_is_refused(state_dir: Path) -> None:
    from oms_webhooks_local.aws_server import control, spawn_process
    from oms_webhooks_local.children import stop_children

    # GIVEN the AWS server of a stack holding a state directory, even after its last
    # snapshot (a stopping stack: its server still runs, and may still write)
    first, answer = spawn_process(0, state_dir)
    children = [first]
    try:
        assert "port" in answer, answer
        control(f"http://127.0.0.1:{answer['port']}", "state/stop")
        # WHEN a second stack's server starts on the same directory, fresh or not
        for fresh in (False, True):
            second, refused = spawn_process(0, state_dir, fresh=fresh)
            children.append(second)
            # THEN it refuses at once, naming the holder, and exits
            assert "port" not in refused, refused
            # (the stack's pid, here this test's, not its AWS server's)
            assert f"in use by another local stack (pid {os.getpid()})" in refused["error"]
            assert second.wait(timeout=30) == 1
        # AND the first one still serves; once it is gone, the directory is free
        assert first.poll() is None
        stop_children([first], 10)
        third, free = spawn_process(0, state_dir)
        children.append(third)
        assert "port" in free, free
    finally:
        stop_children(children, 10)
