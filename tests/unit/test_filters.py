"""Payload filters (DESIGN §11): validation, JMESPath truthiness, errors as no match, budget.

Plain unit tests of :mod:`oms_webhooks.routing.filters` on the sample OMS events of
``tests/cases/events`` (no network, no AWS).
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from oms_webhooks.routing import filters
from oms_webhooks.routing.filters import (
    MAX_EVALUATION_STEPS,
    MAX_FILTER_CHARS,
    MAX_FILTER_NODES,
    InvalidFilter,
    count_nodes,
    evaluate,
    is_truthy,
    matches,
    validate,
)

EVENTS = Path(__file__).resolve().parents[1] / "cases" / "events"


def _event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


PACKAGE = _event("package.created")
SHIPMENT = _event("shipment.status.updated")
TRANSFER = _event("transfer.status.in_transit")


# --- truthiness ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, False, "", [], {}])
def test_jmespath_falsy_values_are_not_truthy(value: Any) -> None:
    assert is_truthy(value) is False


@pytest.mark.parametrize("value", [0, 0.0, -1, True, "0", " ", [None], [False], {"a": None}])
def test_zero_and_other_values_are_truthy_unlike_python_bool(value: Any) -> None:
    assert is_truthy(value) is True


@pytest.mark.parametrize(
    ("expression", "payload", "expected"),
    [
        ("count", {"count": 0}, True),  # 0 is truthy in JMESPath
        ("count", {"count": 0.0}, True),
        ("flag", {"flag": False}, False),
        ("name", {"name": ""}, False),
        ("items", {"items": []}, False),
        ("extra", {"extra": {}}, False),
        ("shipment", {"shipment": None}, False),
        ("`0`", {}, True),
        ("!count", {"count": 0}, False),  # JMESPath: !0 is false
    ],
)
def test_result_is_judged_by_jmespath_truthiness(
    expression: str, payload: dict[str, Any], expected: bool
) -> None:
    # GIVEN a valid filter
    validate(expression)
    # WHEN it runs on the payload
    outcome = evaluate(expression, payload)
    # THEN it matches exactly when the result is truthy, without an error
    assert outcome.matched is expected
    assert outcome.error is None


# --- the README's OMS examples on the sample events ------------------------------------


@pytest.mark.parametrize(
    ("expression", "payload", "expected"),
    [
        ("stock_location.id == `12`", PACKAGE, True),
        ("stock_location.id == `13`", PACKAGE, False),
        ("contains(['sample-cargo', 'other-cargo'], carrier)", SHIPMENT, True),
        ("contains(['other-cargo'], carrier)", SHIPMENT, False),
        ("status == 'in_transit'", SHIPMENT, True),
        ("status == 'delivered'", SHIPMENT, False),
        ("sum(items[].quantity) >= `3`", PACKAGE, True),
        ("sum(items[].quantity) >= `4`", PACKAGE, False),
        ("invoice_number != `null`", PACKAGE, False),
        ("order_number != `null`", PACKAGE, True),
        # a bare null is a field named "null" (missing: null), not the literal
        ("order_number != null", {"order_number": "x", "null": "x"}, False),
        ("shipment.awb_number", _event("package.shipment.awb_number"), True),
        ("shipment.awb_number", PACKAGE, False),  # shipment is null: no error, no match
        ("target_location.id == `3` && status == 'in_transit'", TRANSFER, True),
    ],
)
def test_oms_examples_on_the_sample_events(
    expression: str, payload: dict[str, Any], expected: bool
) -> None:
    validate(expression)
    assert evaluate(expression, payload) == filters.FilterOutcome(expected)


def test_missing_fields_are_null_not_errors() -> None:
    outcome = evaluate("warehouse.address.city == 'İzmir'", PACKAGE)
    assert outcome == filters.FilterOutcome(False)


def test_unicode_in_values_and_quoted_identifiers() -> None:
    # GIVEN Turkish text in the payload, in a raw string literal and in a quoted key
    payload = {"şehir": "İzmir", **PACKAGE}
    # THEN it compares code point by code point (no case folding)
    assert matches("city == 'İzmir'", payload)
    assert not matches("city == 'izmir'", payload)
    assert matches('"şehir" == `"İzmir"`', payload)
    assert matches("contains(items[].sku, 'SKU-ÇAY-500')", payload)
    assert matches("stock_location.address.country.name == 'Türkiye'", payload)


def test_no_filter_matches_everything() -> None:
    assert matches(None, {})
    assert matches("", {"anything": 1})


# --- evaluation errors are no match, never an exception --------------------------------


@pytest.mark.parametrize(
    ("expression", "payload", "error_start"),
    [
        # comparing a string with a number: Python's TypeError inside jmespath
        ("items[0].sku < `1`", PACKAGE, "TypeError"),
        # a function given the wrong type (the message must not quote the value)
        ("length(id)", PACKAGE, "JMESPathTypeError: invalid type for length(): got number"),
        ("sum(items[].price) > `100`", PACKAGE, "JMESPathTypeError"),  # prices are strings
        ("ceil(`1e400`) > `0`", {}, "OverflowError"),
        ("sort(items[].[sku, quantity][]) | length(@) > `0`", PACKAGE, "JMESPathTypeError"),
        ("items[?quantity > '1']", PACKAGE, "TypeError"),
    ],
)
def test_evaluation_errors_are_no_match_with_a_reason(
    expression: str, payload: dict[str, Any], error_start: str
) -> None:
    validate(expression)
    outcome = evaluate(expression, payload)
    assert outcome.matched is False
    assert outcome.error is not None
    assert outcome.error.startswith(error_start), outcome.error
    assert "SKU-" not in outcome.error and "4102" not in outcome.error  # no payload values
    assert matches(expression, payload) is False


def test_a_stored_expression_that_no_longer_compiles_is_no_match() -> None:
    # (the API refuses it; a record written another way must not break the router)
    outcome = evaluate("a ||| b", {"a": 1})
    assert outcome.matched is False
    assert outcome.error is not None and outcome.error.startswith("ParseError")


@pytest.mark.parametrize("payload", [[], "text", 0, None, [1, 2], {"a": [{"b": None}]}])
def test_any_json_payload_is_evaluated(payload: Any) -> None:
    assert evaluate("a.b", payload).error is None


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("foo bar", 'Unexpected token: bar: Parse error at column 4, token "bar"'),
        ("", "Invalid JMESPath expression: cannot be empty"),
        ("items[?", "Incomplete expression"),
        ('`{"a": }`', 'Bad token {"a": }'),
        ("nosuchfn(@)", "Unknown function: nosuchfn()"),
        ("length(a, b)", "Expected 1 argument for function length(), received 2"),
        ("merge()", "Expected at least 1 argument"),
        ("(" * 700 + "a" + ")" * 400, "at most 1024 characters"),
        ("(" * 511 + "a" + ")" * 511, "nested too deeply"),
        ("!" * 1000 + "a", "nested too deeply"),
        ("a\ud800", "lone surrogate"),
    ],
)
def test_validate_refuses_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        validate(expression)
    assert reason in str(caught.value)


def test_parse_errors_carry_the_parsers_message_and_column() -> None:
    with pytest.raises(InvalidFilter) as caught:
        validate("status == 'shipped' || stock_location.id == 12")
    # (a bare number is the common mistake: JMESPath literals need backticks)
    assert 'Parse error at column 44, token "12" (NUMBER)' in str(caught.value)


def test_length_limit_is_in_characters() -> None:
    # GIVEN a valid expression of exactly the limit, in non-ASCII characters
    literal = "'" + "ş" * (MAX_FILTER_CHARS - 10) + "'"
    exact = f"city == {literal}"
    assert len(exact) == MAX_FILTER_CHARS
    # THEN it is accepted, and one character more is not
    assert validate(exact) == exact
    with pytest.raises(InvalidFilter, match=f"at most {MAX_FILTER_CHARS} characters"):
        validate(exact + " ")


def test_node_limit_counts_the_parsed_tree() -> None:
    # GIVEN `a == `1`` is 3 nodes and each `||` adds one more
    def chain(terms: int) -> str:
        return " || ".join(f"a == `{n}`" for n in range(terms))

    assert count_nodes(filters.compile_filter(chain(1)).parsed) == 3
    assert count_nodes(filters.compile_filter(chain(16)).parsed) == 16 * 3 + 15 == 63
    # THEN 63 nodes pass, 67 do not, with the count in the message
    validate(chain(16))
    with pytest.raises(InvalidFilter, match=f"at most {MAX_FILTER_NODES} nodes.*67"):
        validate(chain(17))


def test_a_slices_integers_are_not_nodes() -> None:
    # projection(index_expression(field, slice), identity): 5 nodes, not 8
    assert count_nodes(filters.compile_filter("items[1:5:2]").parsed) == 5


def test_compiled_filters_are_cached_per_text() -> None:
    filters.compile_filter.cache_clear()
    first = filters.compile_filter("status == 'shipped'")
    assert filters.compile_filter("status == 'shipped'") is first
    assert filters.compile_filter.cache_info().hits == 1


# --- the evaluation budget -------------------------------------------------------------


def _big_package(items: int) -> dict[str, Any]:
    return {
        **PACKAGE,
        "items": [
            {"id": n, "sku": f"SKU-{n:06d}", "quantity": n % 7, "price": f"{n % 500}.90"}
            for n in range(items)
        ],
    }


def test_a_doubling_filter_stops_at_the_budget() -> None:
    # GIVEN a filter whose every stage doubles a list (256 × the items after 8 stages)
    doubling = " | ".join(["[@,@][]"] * 8)
    expression = f"items | {doubling} | length(@) > `0`"
    validate(expression)
    # WHEN it runs on a package of 300 items
    outcome = evaluate(expression, _big_package(300))
    # THEN it stops at the budget: no match, a reason, no huge list built
    assert outcome.matched is False
    assert outcome.error is not None and "budget" in outcome.error


def test_a_filter_within_the_budget_runs_on_a_large_payload() -> None:
    # GIVEN a per-item comparison on 2,000 items (3 steps per item)
    payload = _big_package(2000)
    assert MAX_EVALUATION_STEPS > 3 * 2000
    # THEN it evaluates
    assert evaluate("items[?quantity > `5`]", payload) == filters.FilterOutcome(True)
    # AND the same per-item work with a function call each goes over
    outcome = evaluate("items[*].to_number(price)", payload)
    assert outcome.error is not None and "budget" in outcome.error


def test_to_string_of_one_large_value_many_times_stops_before_serialising() -> None:
    # GIVEN a filter that serialises a 250 KB string 55 times over (15 MB of
    # JSON; an attack run measured 45 ms per evaluation, the budget ran out
    # only once the text was written)
    expression = "to_string([" + ",".join(["s"] * 55) + "]) == ''"
    validate(expression)
    payload = {"s": "y" * 250_000}
    # WHEN it runs, its memory traced
    tracemalloc.start()
    try:
        outcome = evaluate(expression, payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN it stops at the budget without writing the text
    assert outcome.error is not None and "budget" in outcome.error
    assert peak < 1_000_000, f"{peak} bytes traced: the argument was serialised"
    # ... while to_string of a payload within the budget still runs
    assert evaluate("length(to_string(@)) > `0`", _big_package(50)).error is None


def test_the_budget_is_counted_not_timed() -> None:
    # The same filter on the same payload gives the same answer every time.
    payload = _big_package(2000)
    outcomes = {evaluate("length(to_string(@)) > `0`", payload) for _ in range(5)}
    assert len(outcomes) == 1


# --- the documented examples -----------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
#: Each OpenAPI/README example → (a sample event it is delivered for, one it is not).
EXAMPLE_CASES = {
    "stock_location.id == `12`": ("package.created", "stock_location.updated"),
    "contains(['sample-cargo', 'other-cargo'], carrier)": (
        "shipment.status.updated",
        "package.created",
    ),
    "status == 'in_transit'": ("transfer.status.in_transit", "stock_location.updated"),
    "sum(items[].quantity) >= `10`": ("transfer.status.in_transit", "package.created"),
    "shipment.awb_number != `null`": ("package.shipment.awb_number", "package.created"),
}


def test_the_documented_examples_hold_on_the_sample_events() -> None:
    from oms_webhooks.api.schemas import FILTER_EXAMPLES

    readme = README.read_text(encoding="utf-8")
    assert set(FILTER_EXAMPLES) == set(EXAMPLE_CASES)
    for expression, (delivered, not_delivered) in EXAMPLE_CASES.items():
        assert expression in readme, expression
        validate(expression)
        assert evaluate(expression, _event(delivered)) == filters.FilterOutcome(True)
        assert evaluate(expression, _event(not_delivered)) == filters.FilterOutcome(False)


def test_a_deeply_nested_payload_is_evaluated_or_no_match_never_an_exception() -> None:
    # GIVEN a payload nested 900 levels deep (json.loads and the router's parser accept it)
    deep: Any = 1
    for _ in range(900):
        deep = {"a": deep}
    payload = json.loads(json.dumps({"d": deep}))
    # THEN whole-payload functions and comparisons either run or are no match
    for expression in ("to_string(@) == to_string(@)", "d == d", "merge(d, d) != `null`"):
        outcome = evaluate(expression, payload)
        assert outcome.matched or outcome.error is not None
    assert matches("d.a.a.a", payload)


# --- one tenant's filters together (the router's filter step) --------------------------


def _subscription(tenant: str, number: int, expression: str | None) -> Any:
    from datetime import UTC, datetime

    from oms_webhooks.storage.models import SubscriptionModel

    now = datetime.now(UTC)
    return SubscriptionModel(
        tenant,
        f"{tenant}-{number:02d}",
        event_type="package.created",
        target_url="https://partner.example/",
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
        max_retries=1,
        is_active=True,
        filter=expression,
        created_date=now,
        modified_date=now,
    )


def test_one_tenants_heavy_filters_share_one_budget_per_event() -> None:
    from oms_webhooks.routing.fanout import apply_filters
    from oms_webhooks.routing.filters import MAX_TENANT_STEPS_PER_EVENT

    # GIVEN a filter costing 9,002 steps on this payload (3 per item, none matching)
    payload = {"items": [{"quantity": 1}] * 3000, "id": 1}
    heavy = "items[?quantity > `5`] || id == `1`"
    assert evaluate(heavy, payload).steps > 9000
    # AND a tenant with 12 subscriptions using it, another tenant with one, one unfiltered
    greedy = [_subscription("greedy", n, heavy) for n in range(12)]
    other = _subscription("other", 0, heavy)
    plain = _subscription("greedy", 99, None)
    # WHEN the router's filter step runs on the event
    passed, filtered_out, failures = apply_filters([*greedy, plain, other], payload)
    # THEN the greedy tenant's first 11 filters ran (99,022 steps), the 12th did not
    assert MAX_TENANT_STEPS_PER_EVENT == 100_000
    assert [s.id for s in passed] == [*(s.id for s in greedy[:11]), plain.id, other.id]
    assert filtered_out == 1
    (failure,) = failures
    assert failure.subscription_id == greedy[11].id and failure.tenant == "greedy"
    assert "this tenant's filters used their 100000 steps" in failure.error


def test_a_tenant_with_its_budget_spent_gets_no_more_evaluations() -> None:
    from oms_webhooks.routing.fanout import apply_filters

    payload = {"items": [{"quantity": 1}] * 3000}
    doubling = "items | " + " | ".join(["[@,@][]"] * 8) + " | length(@) > `0`"
    # GIVEN filters that each run into their own budget of 10,000 steps (and a bit past it:
    # the step that crosses the line is counted whole)
    subscriptions = [_subscription("t", n, doubling) for n in range(15)]
    # WHEN the router's filter step runs
    passed, filtered_out, failures = apply_filters(subscriptions, payload)
    # THEN at most ten ran before the tenant's 100,000 were spent; the rest did not run
    assert passed == [] and filtered_out == 15 == len(failures)
    ran = [f for f in failures if "evaluation budget exceeded" in f.error]
    assert 5 <= len(ran) <= 10
    assert failures[: len(ran)] == ran
    assert all("this tenant's filters" in f.error for f in failures[len(ran) :])
