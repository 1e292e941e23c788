"""Stopping the local stack's child processes (the AWS server, the API workers).

Each child exits when its stdin closes (the parent stopped it, or is gone,
even after a ``kill -9``), once the request in hand is done.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence


def stop_children(children: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """Close every child's stdin (they wind down together), wait for each; end stragglers.

    A child still running ``timeout`` seconds after its turn to be waited for
    gets SIGTERM, then SIGKILL after as long again. The children's stdout
    pipes, if any, are closed.
    """
    for child in children:
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child.stdout is not None:
            with contextlib.suppress(OSError):
                child.stdout.close()


__all__ = ["stop_children"]
