"""``oms-webhooks local`` run as a process of its own, for tests of the command as a whole.

Used by the tests that stop and start a stack (its state) and by those that
need its API worker processes; everything on 127.0.0.1.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

HTTP_TIMEOUT = 15.0
START_TIMEOUT = 60.0


@dataclass
class RunningStack:
    """One ``oms-webhooks local`` process and what its banner said."""

    proc: subprocess.Popen[str]
    output: str
    api_url: str
    aws_url: str
    token: str

    def api(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token or self.token}"
        return session

    def cli(self, *args: str) -> str:
        """Run another ``oms-webhooks`` command against this stack; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "oms_webhooks_local.cli", *args, "--endpoint-url", self.aws_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def start_stack(
    state_dir: Path, *extra: str, api_workers: int = 1, dev_token: str | None = None
) -> RunningStack:
    """Start ``oms-webhooks local`` on free ports with ``state_dir``; wait for its banner.

    One API worker process unless told (each costs its imports at start);
    ``dev_token`` is given as ``OMS_WEBHOOKS_DEV_TOKEN`` (else the stack makes one).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("OMS_WEBHOOKS_DEV_TOKEN", None)
    if dev_token is not None:
        env["OMS_WEBHOOKS_DEV_TOKEN"] = dev_token
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oms_webhooks_local.cli",
            "local",
            "--api-port",
            "0",
            "--aws-port",
            "0",
            "--state-dir",
            str(state_dir),
            "--api-workers",
            str(api_workers),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    output = ""
    try:
        while "Press Ctrl-C" not in output:
            output += lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"the local stack did not start:\n{output}") from None
    api = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)/whisperer/", output)
    aws = re.search(r"AWS endpoint:\s+(http://127\.0\.0\.1:\d+)", output)
    token = re.search(r"export TOKEN=(\S+)", output)
    assert api and aws and token, output
    return RunningStack(proc, output, api.group(1), aws.group(1), token.group(1))


def stop_stack(stack: RunningStack, sig: int = signal.SIGINT) -> int:
    """Send ``sig`` and wait for the process to end; its exit code."""
    stack.proc.send_signal(sig)
    return stack.proc.wait(timeout=60)


@contextmanager
def running_stack(state_dir: Path, *extra: str, api_workers: int = 1) -> Iterator[RunningStack]:
    """:func:`start_stack` for a ``with`` block; stopped (killed if it will not stop) after it."""
    stack = start_stack(state_dir, *extra, api_workers=api_workers)
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            stop_stack(stack)
        if stack.proc.poll() is None:
            stack.proc.kill()
