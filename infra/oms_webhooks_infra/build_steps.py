"""What every step of the asset build shares: the repository's root, and running a command.

The steps (:mod:`~oms_webhooks_infra.wheels`' pip, :mod:`~oms_webhooks_infra.runtime_python`'s
compiler, :mod:`~oms_webhooks_infra.asset_import`'s stand-in) run external commands
with :func:`run_step`; a failure is an :class:`AssetBuildError` carrying the tail
of the command's output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

#: Repository root (``infra/oms_webhooks_infra/build_steps.py`` → ``../..``).
REPO_ROOT = Path(__file__).resolve().parents[2]


class AssetBuildError(RuntimeError):
    """pip or the bytecode compiler failed; the message carries the tail of its output."""


def run_step(command: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    """Run ``command`` (our own, fixed); raise :class:`AssetBuildError` naming ``what`` if it fails.

    Args:
        command: the argv.
        what: the step, for the error (``"pip install"``).
        env: the environment (default: this process's).
    """
    done = subprocess.run(  # noqa: S603 (our own fixed commands)
        command, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise AssetBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
