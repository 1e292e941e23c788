"""The local stack's ports: a busy port names the way out, and ``make run`` takes the ports
(found by a new user following the README alone, issue 13)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from click.testing import CliRunner

from oms_webhooks_local.cli import main

ROOT = Path(__file__).resolve().parents[2]


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
