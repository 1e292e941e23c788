"""The local stack's durable state: moto's tables and secrets key kept in a directory.

moto keeps everything in memory and has no persistence of its own; this
module gives the local stack what a development database has (DESIGN §6).
It runs in the process that holds moto's backends (the local AWS server,
:mod:`oms_webhooks_local.aws_server`) and works on them directly (the journal's
lines and the write tracking: :mod:`oms_webhooks_local.journal`; the keys:
:mod:`oms_webhooks_local.kms_keys`):

* **tables**: every item written through moto's DynamoDB backend
  (``PutItem``, ``UpdateItem``, ``DeleteItem``, their batch and
  transactional forms all end in the backend's ``put_item``, ``update_item``
  and ``delete_item``) marks its key dirty; :meth:`LocalState.snapshot`
  appends the current value of only the dirty keys (or their deletion) to
  ``tables.jsonl`` as one JSON line, then fsyncs. A line is a whole
  snapshot: a line cut short by a crash is ignored at load, so a snapshot is
  applied entirely or not at all. At load the file is replayed and then
  compacted into one line (so it does not grow across restarts); it is also
  compacted while running once it is :data:`COMPACT_FACTOR` times larger
  than its last compaction.
* **the key that seals secrets**: KMS keys live in moto, and a restored
  ciphertext is useless without its key (moto's ciphertext names its key
  id; the key material decrypts it). ``kms.json`` (mode 0600) keeps the id,
  material, description and aliases of every symmetric key;
  :meth:`LocalState.restore_keys` re-creates them with the same id and
  material before provisioning, which then finds the alias and creates no
  new key.

* **events accepted by the bus but not yet routed**: the messages of the
  kept queues (:data:`KEPT_QUEUES`: the ingress queue) go into the same
  journal lines as the tables: each snapshot compares the queue's message
  ids with those already journalled and writes the new messages (body and
  message attributes) and the ids that left the queue (deleted by the
  router, moved to the DLQ, expired). At load they are sent to the queue
  again (new message ids, receive count 0), so after a ``kill -9`` the
  router routes them; one it had routed less than a snapshot before the
  crash is routed again, which creates no second delivery (the router's
  writes are idempotent, DESIGN §4). A clean stop still drains the ingress
  queue through the router first (:class:`~oms_webhooks_local.stack.LocalStack`).

What is *not* kept here, and how the local stack covers it: delivery
messages; they are re-created at start from the pending delivery records,
each with its due time.

File layout under the state directory::

    tables.jsonl   {"v": 1, "at": <unix s>, "full": bool,
                    "tables": {name: {"put": [item, ...], "delete": [key, ...]}},
                    "queues": {name: {"put": [{"id", "body", "attributes"}, ...],
                                      "delete": [id, ...]}}}
                   one line per snapshot; items and keys in DynamoDB's wire JSON,
                   message attributes in SQS's (string and number values only)
    kms.json       {"v": 1, "keys": [{"id", "material" (base64), "description",
                                      "aliases": [...]}]}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

from oms_webhooks import names
from oms_webhooks.resources import INGRESS_QUEUE
from oms_webhooks_local.journal import (
    FORMAT_VERSION,
    DirtyKey,
    WriteTracker,
    activate,
    deactivate,
    item_json,
    items_of,
    journal_line,
    key_of,
    message_json,
    read_journal,
    replay,
    write_atomically,
)
from oms_webhooks_local.kms_keys import restore_keys, save_keys
from oms_webhooks_local.state_lock import hold_state_dir

logger = logging.getLogger(__name__)

#: moto's default account and the local stack's region (DESIGN §6).
ACCOUNT_ID = names.LOCAL_ACCOUNT_ID
REGION = names.LOCAL_REGION
#: Seconds between snapshots: a ``kill -9`` loses at most about this much.
SNAPSHOT_SECONDS = 2.0
#: Compact the journal once it is this many times larger than after its last compaction.
COMPACT_FACTOR = 4
#: ... and at least this large, in bytes.
COMPACT_MIN_BYTES = 4 * 1024 * 1024
#: Queues whose messages are journalled: events accepted by the bus, not yet routed.
KEPT_QUEUES: tuple[str, ...] = (INGRESS_QUEUE.name,)
TABLES_FILE = "tables.jsonl"
KMS_FILE = "kms.json"


class LocalState:
    """The durable state of one local stack under ``state_dir`` (module docstring).

    Args:
        state_dir: the directory (created if missing, mode 0700), held by this
            state until :meth:`release` or the process's exit
            (:func:`~oms_webhooks_local.state_lock.hold_state_dir`).
        fresh: start empty: remove what a previous run left there.
        account_id, region: the moto backends kept (moto's default account, us-east-1).
        snapshot_seconds: the interval of :meth:`start`'s snapshots.
        kept_queues: the SQS queues whose messages are journalled too.
        owner_pid: the stack's pid, named to a second stack that is refused.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        fresh: bool = False,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        kept_queues: tuple[str, ...] = KEPT_QUEUES,
        owner_pid: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.kept_queues = kept_queues
        self.account_id = account_id
        self.region = region
        self.snapshot_seconds = snapshot_seconds
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Before anything is read or removed: two stacks would overwrite each other's journal.
        self._lock: IO[str] | None = hold_state_dir(self.state_dir, owner_pid=owner_pid)
        self._stopped = False
        try:
            if fresh:
                for name in (TABLES_FILE, KMS_FILE):
                    with contextlib.suppress(FileNotFoundError):
                        (self.state_dir / name).unlink()
        except BaseException:
            self.release()
            raise
        self._tracker = WriteTracker(account_id, region)
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._compacted_bytes = 0
        #: Per kept queue, the ids of its messages the journal holds.
        self._journalled: dict[str, set[str]] = {}
        #: Messages of the kept queues sent again by :meth:`load_tables`.
        self.requeued = 0

    @property
    def tables_path(self) -> Path:
        """The tables' journal, ``<state_dir>/tables.jsonl``."""
        return self.state_dir / TABLES_FILE

    @property
    def kms_path(self) -> Path:
        """The KMS keys, ``<state_dir>/kms.json``."""
        return self.state_dir / KMS_FILE

    # -- moto's backends ----------------------------------------------------

    def _dynamodb(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][self.region]

    def _sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]

    def _kept_messages(self) -> dict[str, dict[str, Any]]:
        """Per kept queue that exists, its messages by id (a copy: pollers run meanwhile)."""
        queues = self._sqs().queues
        found: dict[str, dict[str, Any]] = {}
        for name in self.kept_queues:
            queue = queues.get(name)
            if queue is not None:
                found[name] = {message.id: message for message in list(queue._messages)}
        return found

    def _queue_changes(self) -> dict[str, dict[str, list[Any]]]:
        """The kept queues' messages added and removed since the journal last saw them."""
        changes: dict[str, dict[str, list[Any]]] = {}
        for name, messages in self._kept_messages().items():
            known = self._journalled.get(name, set())
            added = [message_json(messages[i]) for i in messages.keys() - known]
            removed = sorted(known - messages.keys())
            if added or removed:
                changes[name] = {"put": added, "delete": removed}
            self._journalled[name] = set(messages)
        return changes

    def _kms(self) -> Any:
        from moto.kms.models import kms_backends

        return kms_backends[self.account_id][self.region]

    # -- KMS ----------------------------------------------------------------

    def save_keys(self) -> int:
        """Write every symmetric KMS key of moto to ``kms.json`` (mode 0600); return how many."""
        return save_keys(self._kms(), self.kms_path)

    def restore_keys(self) -> int:
        """Re-create the keys of ``kms.json`` in moto (same id, material, aliases); return how many.

        Keys already present are left alone. Call before provisioning.
        """
        return restore_keys(self._kms(), self.kms_path, self.account_id, self.region)

    # -- tables -------------------------------------------------------------

    def load_tables(self) -> int:
        """Replay ``tables.jsonl`` into moto's tables and queues, then compact it.

        Call once the tables and queues exist (after provisioning). A table or
        queue of the file that does not exist (any more) is skipped with a
        warning; a last line cut short by a crash is ignored. The kept queues'
        messages are sent again (:attr:`requeued` says how many).

        Returns:
            the items loaded into the tables.
        """
        state, queued = replay(read_journal(self.tables_path), self._journal_key)
        backend = self._dynamodb()
        loaded = 0
        for table_name, items in state.items():
            try:
                table = backend.get_table(table_name)
            except Exception:
                logger.warning(
                    "state: table %s no longer exists; its items are skipped", table_name
                )
                continue
            for item in items.values():
                table.put_item(item)
                loaded += 1
        self.requeued = self._requeue(queued)
        self.compact()
        return loaded

    def _requeue(self, queued: dict[str, dict[str, dict[str, Any]]]) -> int:
        """Send the journalled messages of the kept queues again; return how many."""
        sqs = self._sqs()
        sent = 0
        for queue_name, messages in queued.items():
            if queue_name not in sqs.queues:
                logger.warning(
                    "state: queue %s no longer exists; its messages are skipped", queue_name
                )
                continue
            for message in messages.values():
                sqs.send_message(
                    queue_name,
                    message["body"],
                    message_attributes=message.get("attributes") or None,
                )
                sent += 1
        return sent

    def _journal_key(self, table_name: str, item: dict[str, Any]) -> str:
        try:
            table = self._dynamodb().get_table(table_name)
        except Exception:
            return json.dumps(item, sort_keys=True)
        return key_of(table, item)

    def compact(self) -> None:
        """Rewrite ``tables.jsonl`` as one full snapshot of tables and kept queues (atomically)."""
        with self._write_lock:
            self._tracker.take()
            backend = self._dynamodb()
            tables: dict[str, Any] = {}
            for name, table in list(backend.tables.items()):
                tables[name] = {"put": [item_json(item) for item in items_of(table)]}
            self._journalled = {}
            queues = self._queue_changes()
            line = journal_line(
                {
                    "v": FORMAT_VERSION,
                    "at": time.time(),
                    "full": True,
                    "tables": tables,
                    "queues": queues,
                }
            )
            write_atomically(self.tables_path, line, mode=0o600)
            self._compacted_bytes = len(line)

    def snapshot(self) -> int:
        """Append what changed since the last snapshot; return the items and messages written."""
        with self._write_lock:
            dirty = self._tracker.take()
            queues = self._queue_changes()
            if not dirty and not queues:
                return 0
            backend = self._dynamodb()
            tables: dict[str, dict[str, list[Any]]] = {}
            retry: set[DirtyKey] = set()
            for table_name, key_json in dirty:
                changes = tables.setdefault(table_name, {"put": [], "delete": []})
                key = json.loads(key_json)
                try:
                    table = backend.get_table(table_name)
                    hash_value, range_value = backend.get_keys_value(table, key)
                    item = table.get_item(hash_value, range_value)
                    if item is None:
                        changes["delete"].append(key)
                    else:
                        changes["put"].append(item_json(item))
                except RuntimeError:  # written while we read it: next snapshot
                    retry.add((table_name, key_json))
                except Exception:
                    logger.warning("state: table %s is gone; change not kept", table_name)
            self._tracker.give_back(retry)
            line = journal_line(
                {
                    "v": FORMAT_VERSION,
                    "at": time.time(),
                    "full": False,
                    "tables": tables,
                    "queues": queues,
                }
            )
            with self.tables_path.open("ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            size = self.tables_path.stat().st_size
            written = len(dirty) - len(retry)
            written += sum(len(c["put"]) + len(c["delete"]) for c in queues.values())
        if size > max(COMPACT_MIN_BYTES, COMPACT_FACTOR * self._compacted_bytes):
            self.compact()
        return written

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Track writes and snapshot every :attr:`snapshot_seconds` in a thread."""
        self._stopped = False
        activate(self._tracker)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="oms-webhooks-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.snapshot_seconds):
            try:
                self.snapshot()
            except Exception:
                logger.exception(
                    "state: snapshot failed (retried in %.0f s)", self.snapshot_seconds
                )

    def stop(self) -> None:
        """Stop the thread, take the last snapshot and save the keys (a clean stop).

        Once: a second call (the AWS server's process at its exit, after the
        stack's ``state/stop``) writes nothing. The lock stays held until
        :meth:`release` or the process's exit: nothing else may write here
        while this server still runs.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30.0)
            self._thread = None
        self.snapshot()
        self.save_keys()
        deactivate(self._tracker)

    def release(self) -> None:
        """Let go of the state directory's lock (idempotent; after :meth:`stop`)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


__all__ = [
    "KEPT_QUEUES",
    "KMS_FILE",
    "SNAPSHOT_SECONDS",
    "TABLES_FILE",
    "LocalState",
]
