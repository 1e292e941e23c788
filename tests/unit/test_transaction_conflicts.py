"""Transaction conflicts on DynamoDB are retried, never a 500 (subscriptions.store.transact).

moto never cancels a transaction for a conflict (it serialises them), so the
cancellation DynamoDB sends when two transactions touch one item at the same
moment is the one thing here that is built by hand: the exception PynamoDB
raises for it, with DynamoDB's reason codes.
"""

from __future__ import annotations

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
from pynamodb.transactions import TransactWrite

from oms_webhooks.errors import Conflict
from oms_webhooks.subscriptions import store


def _cancelled(*codes: str | None) -> TransactWriteError:
    reasons = [CancellationReason(code=c) if c else None for c in codes]
    cause = VerboseClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
        "TransactWriteItems",
        cancellation_reasons=reasons,
    )
    return TransactWriteError("Failed to write transaction items", cause=cause)


class _Built(Exception):
    """The write was built once more without a conflict (stops before any commit)."""


def _writer(failures: list[TransactWriteError]) -> tuple[list[int], object]:
    calls: list[int] = []

    def write(tx: TransactWrite) -> None:
        calls.append(1)
        raise failures.pop(0) if failures else _Built

    return calls, write


def test_a_transaction_conflict_is_retried_until_it_goes_through() -> None:
    # GIVEN two conflicts, then a transaction that goes through
    calls, write = _writer([_cancelled(None, "TransactionConflict")] * 2)
    # WHEN it runs
    with pytest.raises(_Built):
        store.transact(write)  # type: ignore[arg-type]
    # THEN it was built a third time (nothing is committed here: no AWS in unit tests)
    assert len(calls) == 3


def test_a_conflict_that_never_clears_is_a_409_not_a_500() -> None:
    calls, write = _writer([_cancelled("TransactionConflict")] * store.CONFLICT_TRIES)
    with pytest.raises(Conflict, match="retry"):
        store.transact(write)  # type: ignore[arg-type]
    assert len(calls) == store.CONFLICT_TRIES


def test_a_failed_condition_is_not_retried_even_beside_a_conflict() -> None:
    # A failed condition is the caller's answer (duplicate, limit): it goes up at once.
    calls, write = _writer([_cancelled("ConditionalCheckFailed", "TransactionConflict")])
    with pytest.raises(TransactWriteError):
        store.transact(write)  # type: ignore[arg-type]
    assert len(calls) == 1
