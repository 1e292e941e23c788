"""Property tests of payload filters (DESIGN §11): no filter and no payload make the router raise.

The router's filter step is :func:`oms_webhooks.routing.fanout.apply_filters` over the
subscriptions of an event type; it runs here on in-memory subscriptions (no
AWS), with filters drawn two ways: arbitrary text (what a record written
around the API could hold) and expressions built from JMESPath's grammar
(every node type and every function of the ``jmespath`` package, with
arguments of any type), on arbitrary JSON payloads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jmespath.functions import Functions

from oms_webhooks.routing.fanout import apply_filters
from oms_webhooks.routing.filters import InvalidFilter, evaluate, validate
from oms_webhooks.storage.models import SubscriptionModel

FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
PAYLOADS = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["a", "b", "id", "items", "ş", ""]), inner, max_size=5)
    ),
    max_leaves=30,
)
NAMES = st.sampled_from(["a", "b", "id", "items", '"ş"', '""', "@"])
LITERALS = st.sampled_from(
    [
        "`0`",
        "`1e400`",
        "`-1`",
        "`null`",
        "`true`",
        '`"x"`',
        "`[]`",
        "`{}`",
        '`[1, "a"]`',
        "'ş'",
        "''",
    ]
)
FUNCTIONS = sorted(Functions.FUNCTION_TABLE)  # type: ignore[attr-defined]


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(inner, inner)
        return (
            st.builds(lambda a, b: f"{a}.{b}", inner, NAMES)
            | st.builds(
                lambda a, op, b: f"({a} {op} {b})",
                inner,
                st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "&&", "||", "|"]),
                inner,
            )
            | st.builds(lambda a: f"!{a}", inner)
            | st.builds(lambda a, b: f"{a}[?{b}]", inner, inner)
            | st.builds(lambda a, b: f"{a}[*].{b}", inner, NAMES)
            | st.builds(lambda a: f"{a}[]", inner)
            | st.builds(lambda a, i: f"{a}[{i}]", inner, st.integers(-3, 3))
            | st.builds(lambda a: f"{a}[::-1]", inner)
            | st.builds(lambda a: f"*.{a}", NAMES)
            | pair.map(lambda p: f"[{p[0]}, {p[1]}]")
            | pair.map(lambda p: f"{{x: {p[0]}, y: {p[1]}}}")
            | st.builds(
                lambda name, args: f"{name}({', '.join(args)})",
                st.sampled_from(FUNCTIONS),
                st.lists(inner | inner.map(lambda a: f"&{a}"), min_size=1, max_size=3),
            )
        )

    return st.recursive(NAMES | LITERALS, extend, max_leaves=12)


EXPRESSIONS = _expressions()
FILTERS = st.none() | st.text(max_size=40) | EXPRESSIONS


def _subscription(number: int, expression: str | None) -> SubscriptionModel:
    now = datetime.now(UTC)
    return SubscriptionModel(
        "tenant",
        f"sub-{number}",
        event_type="package.created",
        target_url="https://partner.example/",
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
        max_retries=1,
        is_active=True,
        filter=expression,
        created_date=now,
        modified_date=now,
    )


@FAST
@given(filters=st.lists(FILTERS, min_size=1, max_size=5), payload=PAYLOADS)
def test_no_filter_and_no_payload_make_the_router_filter_step_raise(
    filters: list[str | None], payload: Any
) -> None:
    subscriptions = [_subscription(n, f) for n, f in enumerate(filters)]
    passed, filtered_out, failures = apply_filters(subscriptions, payload)
    assert len(passed) + filtered_out == len(subscriptions)
    assert len(failures) <= filtered_out
    passed_ids = {s.id for s in passed}
    assert all(s.id in passed_ids for s in subscriptions if not s.filter)
    for failure in failures:
        assert failure.error and len(failure.error) <= 200


@FAST
@given(expression=EXPRESSIONS | st.text(max_size=60), payload=PAYLOADS)
def test_validate_raises_only_invalid_filter_and_evaluate_never_raises(
    expression: str, payload: Any
) -> None:
    try:
        validate(expression)
    except InvalidFilter as exc:
        assert str(exc)
    outcome = evaluate(expression, payload)
    assert outcome.matched in (True, False)
    assert outcome.error is None or not outcome.matched
