"""One local stack per state directory: an ``flock`` on ``<state-dir>/lock``.

Two stacks on one directory would append to one journal and overwrite each
other's ``kms.json``; the second one is refused before it reads or removes
anything (``--fresh`` included). The lock is the kernel's: it goes when the
file is closed or the holding process dies (``kill -9`` included), so a
crashed stack never leaves it taken. The file holds the pid of the stack
that holds it (the ``oms-webhooks local`` process, also when its AWS server
runs in a child process), for the refusal's message.

On a filesystem without ``flock`` (some network or FUSE mounts) the state
directory is used unlocked, with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from oms_webhooks_local.errors import StackError, StateDirInUse

logger = logging.getLogger(__name__)

#: Held by the one stack using the directory; holds that stack's pid.
LOCK_FILE = "lock"
#: ``flock`` errors of a filesystem that cannot lock at all (not: held by another).
_CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def hold_state_dir(state_dir: Path, *, owner_pid: int | None = None) -> IO[str]:
    """Take ``state_dir``'s lock; it is held while the returned file stays open.

    Args:
        state_dir: an existing directory.
        owner_pid: the pid to name in another stack's refusal (default: this
            process; the AWS server's child process passes its stack's).

    Raises:
        StateDirInUse: another local stack holds it (the message names its pid).
        StackError: the lock file cannot be opened or written (permissions, a
            full disk), with the reason.
    """
    path = state_dir / LOCK_FILE
    try:
        handle = path.open("a+", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise StackError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read(40).strip() or "unknown"
        handle.close()
        raise StateDirInUse(
            f"the state directory {state_dir} is in use by another local stack "
            f"(pid {holder}): stop it first, or give this one its own (--state-dir DIR)"
        ) from None
    except OSError as exc:
        if exc.errno not in _CANNOT_LOCK:
            handle.close()
            raise StackError(f"cannot lock {path}: {exc.strerror or exc}") from None
        logger.warning("%s cannot be locked (%s): run one stack on it at a time", path, exc)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{owner_pid or os.getpid()}\n")
        handle.flush()
    except OSError as exc:
        handle.close()
        raise StackError(f"cannot write {path}: {exc.strerror or exc}") from None
    return handle


__all__ = ["LOCK_FILE", "hold_state_dir"]
