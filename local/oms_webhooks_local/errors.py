"""Why the local stack could not start: one error type the CLI turns into a message."""

from __future__ import annotations


class StackError(RuntimeError):
    """The local stack could not start (a port in use, moto not answering, ...)."""


class StateDirInUse(StackError):
    """Another local stack holds the state directory (its ``lock`` file)."""


__all__ = ["StackError", "StateDirInUse"]
