"""The ``oms-webhooks`` command line against the running local stack."""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from oms_webhooks_local.cli import main
from oms_webhooks_local.stack import LocalStack
from tests.functional import local_process
from tests.functional.helpers import HTTP_TIMEOUT, Tenant, api, assert_unauthorized


def run(*args: str) -> Result:
    """Run the CLI in-process; never lets an exception escape as a pass."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tenant_name() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    "command",
    [[], ["local"], ["tokens"], ["tokens", "create"], ["tokens", "list"], ["tokens", "revoke"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_create_prints_the_token_last_and_it_authenticates(stack: LocalStack) -> None:
    result = run(
        "tokens", "create", "--tenant", tenant_name(), "--endpoint-url", stack.aws_endpoint_url
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    token = lines[-1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    assert re.search(r"tok_[0-9a-f]+", result.output)
    assert api(stack, token).get("/whisperer/hooks/registry/").status_code == 200


def test_create_with_a_scope(stack: LocalStack) -> None:
    name = tenant_name()
    result = run(
        "tokens", "create", "--tenant", name, "--event-types", "package-created, shipment.created",
        "--endpoint-url", stack.aws_endpoint_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = run("tokens", "list", "--tenant", name, "--endpoint-url", stack.aws_endpoint_url)
    assert "package.created,shipment.created" in listed.output


def test_list_shows_ids_never_tokens(stack: LocalStack) -> None:
    name = tenant_name()
    created = run("tokens", "create", "--tenant", name, "--endpoint-url", stack.aws_endpoint_url)
    token = created.output.strip().splitlines()[-1]
    result = run("tokens", "list", "--tenant", name, "--endpoint-url", stack.aws_endpoint_url)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.strip().splitlines()
    assert header.split() == ["ID", "TENANT", "CREATED", "REVOKED", "SCOPE"]
    assert len(rows) == 1 and name in rows[0] and rows[0].split()[-1] == "all"
    assert token not in result.output
    everyone = run("tokens", "list", "--endpoint-url", stack.aws_endpoint_url)
    assert name in everyone.output and "dev" in everyone.output
    assert token not in everyone.output and stack.dev_token not in everyone.output


def test_revoke_then_401(stack: LocalStack, tenant: Tenant) -> None:
    session = api(stack, tenant.token)
    assert session.get("/whisperer/hooks/registry/").status_code == 200
    result = run("tokens", "revoke", tenant.token_id, "--endpoint-url", stack.aws_endpoint_url)
    assert result.exit_code == 0, result.output
    assert tenant.token_id in result.output
    assert_unauthorized(session.get("/whisperer/hooks/registry/"))
    listed = run(
        "tokens", "list", "--tenant", tenant.name, "--endpoint-url", stack.aws_endpoint_url
    )
    assert listed.output.strip().splitlines()[1].split()[3] != "-"


def test_endpoint_comes_from_the_environment(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws_endpoint_url)
    result = run("tokens", "create", "--tenant", tenant_name())
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "create", "--tenant", "bad#name"], "invalid tenant name"),
        (["tokens", "create", "--tenant", "ok", "--event-types", "nope.nope"], "nope.nope"),
        (["tokens", "revoke", "tok_doesnotexist"], "no token with id"),
    ],
)
def test_bad_input_exits_2_with_a_message(stack: LocalStack, args: list[str], message: str) -> None:
    result = run(*args, "--endpoint-url", stack.aws_endpoint_url)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_aws_and_endpoint_exclude_each_other() -> None:
    result = run("tokens", "list", "--aws", "--endpoint-url", "http://127.0.0.1:1")
    assert result.exit_code == 2
    assert "exclude" in result.output


def test_unreachable_endpoint_is_a_clean_error() -> None:
    result = run("tokens", "list", "--endpoint-url", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "127.0.0.1:1" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_local_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    dev_token = "dev-" + uuid.uuid4().hex
    running = local_process.start_stack(tmp_path / "state", dev_token=dev_token)
    try:
        output = running.output
        assert output.count(dev_token) == 1
        assert f"export TOKEN={dev_token}" in output
        assert '"Authorization: Token $TOKEN"' in output
        response = requests.get(
            f"{running.api_url}/whisperer/hooks/registry/",
            headers={"Authorization": f"Token {dev_token}"},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200
        assert local_process.stop_stack(running, signal.SIGTERM) == 0
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(timeout=5)
