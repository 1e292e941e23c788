"""Retry countdown policies and schedule validation (DESIGN §3 retry fields)."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_webhooks.delivery.retry import policies, schedule
from oms_webhooks.delivery.retry.policies import (
    MAX_INT,
    MIN_COUNTDOWN_SECONDS,
    CountdownPolicy,
    IntField,
    countdown_for,
    register_policy,
)
from oms_webhooks.delivery.retry.schedule import (
    DEFAULT_COUNTDOWN_CONFIG,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETENTION_SECONDS,
    MAX_RETRIES_LIMIT,
    CountdownConfigError,
    parse_countdown_config,
    parse_max_retries,
    validate_schedule,
    worst_case_total,
)
from oms_webhooks.errors import ValidationFailed

RETENTION = DEFAULT_RETENTION_SECONDS
CONFIG = "retry_countdown_config"


def cfg(choice: str, **kwargs: Any) -> dict[str, Any]:
    return {"choice": choice, "kwargs": kwargs}


def errors_of(raw_config: object, max_retries: object = 5) -> dict[str, list[str]]:
    with pytest.raises(CountdownConfigError) as caught:
        validate_schedule(raw_config, max_retries, retention_seconds=RETENTION)
    return caught.value.errors


# --- defaults -----------------------------------------------------------------


def test_defaults() -> None:
    assert DEFAULT_COUNTDOWN_CONFIG == {"choice": "exponential", "kwargs": {"base": 2}}
    assert DEFAULT_MAX_RETRIES == 18
    assert MAX_RETRIES_LIMIT == 50
    assert RETENTION == 2_592_000


def test_none_means_default_and_factor_is_filled_in() -> None:
    config, retries = validate_schedule(None, None, retention_seconds=RETENTION)
    assert config == {"choice": "exponential", "kwargs": {"base": 2, "factor": 1}}
    assert retries == 18
    assert validate_schedule(DEFAULT_COUNTDOWN_CONFIG, 18, retention_seconds=RETENTION) == (
        config,
        18,
    )


def test_default_schedule_numbers() -> None:
    assert [countdown_for(DEFAULT_COUNTDOWN_CONFIG, n) for n in range(5)] == [1, 2, 4, 8, 16]
    assert countdown_for(DEFAULT_COUNTDOWN_CONFIG, 17) == 131_072
    assert worst_case_total(DEFAULT_COUNTDOWN_CONFIG, 18, cap=RETENTION) == 2**18 - 1


# --- each policy's numbers ------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 49])
def test_fixed(n: int) -> None:
    assert countdown_for(cfg("fixed", seconds=30), n) == 30
    assert countdown_for(cfg("fixed", seconds=0), n) == 1  # raised to the 1 s floor


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"base": 10}, [1, 10, 20, 30, 100]),  # n = 0 gives 0: raised to the 1 s floor
        ({"base": 10, "limit": 25}, [1, 10, 20, 25, 25]),
        ({"base": 0}, [1, 1, 1, 1, 1]),
        ({"base": 7, "limit": 0}, [1, 1, 1, 1, 1]),
    ],
)
def test_linear(kwargs: dict[str, int], expected: list[int]) -> None:
    assert [countdown_for(cfg("linear", **kwargs), n) for n in (0, 1, 2, 3, 10)] == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"base": 2}, [1, 2, 4, 8, 1024]),
        ({"base": 3, "factor": 5}, [5, 15, 45, 135, 5 * 3**10]),
        ({"base": 2, "factor": 60, "limit": 300}, [60, 120, 240, 300, 300]),
        ({"base": 10, "limit": 50}, [1, 10, 50, 50, 50]),
        ({"base": 0}, [1, 1, 1, 1, 1]),  # 0^0 = 1, then 0: raised to the 1 s floor
        ({"base": 1, "factor": 9}, [9, 9, 9, 9, 9]),
        ({"base": 2, "factor": 7, "limit": 3}, [3, 3, 3, 3, 3]),
    ],
)
def test_exponential(kwargs: dict[str, int], expected: list[int]) -> None:
    assert [countdown_for(cfg("exponential", **kwargs), n) for n in (0, 1, 2, 3, 10)] == expected


def test_exponential_without_limit_is_clamped_not_huge() -> None:
    policy = parse_countdown_config(cfg("exponential", base=MAX_INT))
    assert policy.countdown(1_000) == MAX_INT


def test_random_in_range_and_worst_case_is_max() -> None:
    policy = parse_countdown_config(cfg("random", min_value=5, max_value=9))
    rng = random.Random(1)
    values = {policy.countdown(n, rng) for n in range(500)}
    assert values == {5, 6, 7, 8, 9}
    assert policy.worst_case(3) == 9
    assert worst_case_total(policy, 10, cap=RETENTION) == 90
    assert 5 <= countdown_for(cfg("random", min_value=5, max_value=9), 0) <= 9


def test_random_is_reproducible_with_a_seeded_rng() -> None:
    config = cfg("random", min_value=0, max_value=1000)
    first = [countdown_for(config, n, random.Random(42)) for n in range(5)]
    assert first == [countdown_for(config, n, random.Random(42)) for n in range(5)]


@pytest.mark.parametrize("n", [-1, 1.0, True, "1"])
def test_bad_retry_number(n: Any) -> None:
    with pytest.raises(ValueError, match="retry number"):
        countdown_for(DEFAULT_COUNTDOWN_CONFIG, n)


def test_as_config_round_trips() -> None:
    for raw in (
        cfg("fixed", seconds=3),
        cfg("linear", base=2, limit=9),
        cfg("exponential", base=2, factor=3, limit=100),
        cfg("random", min_value=1, max_value=2),
    ):
        policy = parse_countdown_config(raw)
        assert policy.as_config() == raw
        assert parse_countdown_config(policy.as_config()) == policy


def test_null_optional_kwarg_means_absent() -> None:
    config, _ = validate_schedule(cfg("linear", base=2, limit=None), 3, retention_seconds=RETENTION)
    assert config == cfg("linear", base=2)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        (cfg("fixed", seconds=-1), f"{CONFIG}.kwargs.seconds", "from 0"),
        (cfg("fixed", seconds=1.5), f"{CONFIG}.kwargs.seconds", "integer"),
        (cfg("fixed", seconds=2.0), f"{CONFIG}.kwargs.seconds", "integer"),
        (cfg("fixed", seconds=True), f"{CONFIG}.kwargs.seconds", "boolean"),
        (cfg("fixed", seconds="10"), f"{CONFIG}.kwargs.seconds", "string"),
        (cfg("fixed", seconds=[1]), f"{CONFIG}.kwargs.seconds", "array"),
        (cfg("fixed"), f"{CONFIG}.kwargs.seconds", "required"),
        (cfg("fixed", seconds=None), f"{CONFIG}.kwargs.seconds", "required"),
        (cfg("fixed", seconds=MAX_INT + 1), f"{CONFIG}.kwargs.seconds", str(MAX_INT)),
        (cfg("fixed", seconds=1, base=2), f"{CONFIG}.kwargs.base", "unknown field"),
        (cfg("linear", limit=5), f"{CONFIG}.kwargs.base", "required"),
        (cfg("linear", base=1, limit=-5), f"{CONFIG}.kwargs.limit", "from 0"),
        (cfg("exponential", base=2, factor=0), f"{CONFIG}.kwargs.factor", "from 1"),
        (cfg("exponential", base=False), f"{CONFIG}.kwargs.base", "boolean"),
        (cfg("exponential", base=2, seconds=1), f"{CONFIG}.kwargs.seconds", "unknown field"),
        (cfg("random", min_value=5, max_value=5), f"{CONFIG}.kwargs.min_value", "less than"),
        (cfg("random", min_value=6, max_value=5), f"{CONFIG}.kwargs.min_value", "less than"),
        (cfg("random", min_value=1), f"{CONFIG}.kwargs.max_value", "required"),
        (cfg("nope", x=1), f"{CONFIG}.choice", "unknown choice 'nope'"),
        ({"choice": 3, "kwargs": {}}, f"{CONFIG}.choice", "unknown choice"),
        ({"kwargs": {"base": 2}}, f"{CONFIG}.choice", "required"),
        ({"choice": "fixed", "kwargs": [1]}, f"{CONFIG}.kwargs", "must be an object"),
        ({"choice": "fixed", "kwargs": "x"}, f"{CONFIG}.kwargs", "must be an object"),
        ({"choice": "fixed", "kwargs": None}, f"{CONFIG}.kwargs", "must be an object"),
        ({"choice": "fixed", "kwargs": {"seconds": 1}, "x": 1}, f"{CONFIG}.x", "unknown field"),
        ([], CONFIG, "must be an object"),
        ("exponential", CONFIG, "must be an object"),
        (5, CONFIG, "must be an object"),
        (True, CONFIG, "must be an object"),
    ],
)
def test_bad_config(raw: object, path: str, message: str) -> None:
    errors = errors_of(raw)
    assert path in errors, errors
    assert any(message in m for m in errors[path]), errors


def test_all_bad_fields_reported_at_once() -> None:
    errors = errors_of({"choice": "exponential", "kwargs": {"base": -1, "factor": 0, "z": 1}}, -1)
    assert set(errors) == {
        f"{CONFIG}.kwargs.base",
        f"{CONFIG}.kwargs.factor",
        f"{CONFIG}.kwargs.z",
        "max_retries",
    }


@pytest.mark.parametrize("value", [-1, 51, "3", True, False, 3.0, [3], {}])
def test_bad_max_retries(value: object) -> None:
    errors = errors_of(None, value)
    assert list(errors) == ["max_retries"]


@pytest.mark.parametrize("value", [0, 1, 18, 50])
def test_good_max_retries(value: int) -> None:
    assert parse_max_retries(value) == value
    config = cfg("fixed", seconds=1)
    assert validate_schedule(config, value, retention_seconds=RETENTION)[1] == value


def test_error_is_a_400_validation_error_with_field_paths() -> None:
    with pytest.raises(CountdownConfigError) as caught:
        parse_countdown_config(cfg("fixed", seconds=-1))
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, ValidationFailed)
    assert error.status == 400
    body = error.as_body()
    assert body["code"] == "invalid"
    assert body["errors"] == {
        f"{CONFIG}.kwargs.seconds": [f"must be an integer from 0 to {MAX_INT}"]
    }
    assert f"{CONFIG}.kwargs.seconds" in str(error)


# --- the retention boundary -------------------------------------------------------


def test_schedule_exactly_at_retention_passes() -> None:
    # 10 retries of 259,200 s = 2,592,000 s = 30 days, exactly the retention
    assert validate_schedule(cfg("fixed", seconds=259_200), 10, retention_seconds=RETENTION)


def test_schedule_one_second_over_retention_fails() -> None:
    config = cfg("random", min_value=0, max_value=259_200)
    assert validate_schedule(config, 10, retention_seconds=RETENTION)
    errors = errors_of(cfg("random", min_value=0, max_value=259_201), 10)
    assert set(errors) == {"max_retries", CONFIG}
    assert "2592000" in errors["max_retries"][0]


def test_retention_is_a_parameter() -> None:
    config = cfg("fixed", seconds=10)
    assert validate_schedule(config, 3, retention_seconds=30)
    with pytest.raises(CountdownConfigError):
        validate_schedule(config, 3, retention_seconds=29)


def test_exponential_no_limit_50_retries_is_a_clean_error_fast() -> None:
    started = time.monotonic()
    errors = errors_of(cfg("exponential", base=2), 50)
    assert set(errors) == {"max_retries", CONFIG}
    errors = errors_of(cfg("exponential", base=MAX_INT, factor=MAX_INT), 50)
    assert set(errors) == {"max_retries", CONFIG}
    # (2**50 s or MAX_INT**50 would never finish if summed step by step; the bound
    # leaves room for a loaded 2-core machine)
    assert time.monotonic() - started < 5


def test_exponential_with_limit_can_run_50_retries() -> None:
    config = cfg("exponential", base=2, factor=60, limit=3600)
    normalised, retries = validate_schedule(config, 50, retention_seconds=RETENTION)
    assert normalised == config and retries == 50


def test_worst_case_total_stops_past_the_cap() -> None:
    total = worst_case_total(cfg("fixed", seconds=MAX_INT), 50, cap=100)
    assert 100 < total <= 2 * MAX_INT
    assert worst_case_total(cfg("fixed", seconds=7), 0, cap=100) == 0


# --- registry -----------------------------------------------------------------------


class StepPolicy(CountdownPolicy):
    """A custom policy: ``first`` then ``then`` seconds."""

    fields: ClassVar[Mapping[str, IntField]] = {
        "first": IntField(),
        "then": IntField(required=False, default=60),
    }

    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        return self.params["first"] if n == 0 else self.params["then"]


def test_custom_policy_can_be_registered() -> None:
    register_policy("step-test", StepPolicy)
    try:
        config, _ = validate_schedule(
            {"choice": "step-test", "kwargs": {"first": 5}}, 3, retention_seconds=RETENTION
        )
        assert config == {"choice": "step-test", "kwargs": {"first": 5, "then": 60}}
        assert [countdown_for(config, n) for n in range(3)] == [5, 60, 60]
        errors = errors_of({"choice": "step-test", "kwargs": {"first": 1, "x": 2}})
        assert f"{CONFIG}.kwargs.x" in errors
        with pytest.raises(ValueError, match="already registered"):
            register_policy("step-test", StepPolicy)
    finally:
        policies._POLICIES.pop("step-test", None)


def test_register_policy_rejects_non_policies() -> None:
    with pytest.raises(TypeError):
        register_policy("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        register_policy("", StepPolicy)


def test_registered_policies_lists_builtins() -> None:
    assert {"fixed", "linear", "exponential", "random"} <= set(policies.registered_policies())


# --- properties ---------------------------------------------------------------------

small = st.integers(min_value=0, max_value=10**6)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
kwarg_names = st.sampled_from(
    ["seconds", "base", "factor", "limit", "min_value", "max_value", "other"]
)
config_like = st.fixed_dictionaries(
    {
        "choice": st.sampled_from(["fixed", "linear", "exponential", "random", "x"]) | json_scalars,
        "kwargs": st.dictionaries(kwarg_names, json_scalars | json_values, max_size=4)
        | json_values,
    }
)
valid_configs = st.one_of(
    st.builds(lambda s: cfg("fixed", seconds=s), small),
    st.builds(lambda b: cfg("linear", base=b), small),
    st.builds(lambda b, lim: cfg("linear", base=b, limit=lim), small, small),
    st.builds(lambda b, f: cfg("exponential", base=b, factor=f), small, small.map(lambda x: x + 1)),
    st.builds(
        lambda b, f, lim: cfg("exponential", base=b, factor=f, limit=lim),
        small,
        small.map(lambda x: x + 1),
        small,
    ),
    st.builds(
        lambda lo, d: cfg("random", min_value=lo, max_value=lo + d),
        small,
        small.map(lambda x: x + 1),
    ),
)


@given(config=valid_configs, n=st.integers(min_value=0, max_value=200), seed=st.integers())
def test_countdowns_never_negative_and_never_over_limit(
    config: dict[str, Any], n: int, seed: int
) -> None:
    policy = parse_countdown_config(config)
    value = policy.countdown(n, random.Random(seed))
    assert 0 <= value <= MAX_INT
    assert value <= policy.worst_case(n)
    limit = config["kwargs"].get("limit")
    if limit is not None:
        assert value <= limit
    if config["choice"] == "random":
        assert config["kwargs"]["min_value"] <= value <= config["kwargs"]["max_value"]


@given(config=valid_configs, retries=st.integers(min_value=0, max_value=50))
def test_schedule_accepted_iff_worst_case_fits(config: dict[str, Any], retries: int) -> None:
    policy = parse_countdown_config(config)
    exact = sum(max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n)) for n in range(retries))
    try:
        validate_schedule(config, retries, retention_seconds=RETENTION)
    except CountdownConfigError:
        assert exact > RETENTION
    else:
        assert exact <= RETENTION


@settings(max_examples=300)
@given(
    config=json_values | config_like,
    retries=json_values | st.integers(min_value=-5, max_value=60),
    cap=st.integers(min_value=0, max_value=10**9),
)
def test_worst_case_total_only_raises_config_errors(config: Any, retries: Any, cap: int) -> None:
    try:
        total = worst_case_total(config, retries, cap=cap)
    except CountdownConfigError as exc:
        assert exc.errors
        assert all(isinstance(m, list) and m for m in exc.errors.values())
    else:
        assert 0 <= total <= cap + MAX_INT


@settings(max_examples=300)
@given(config=json_values | config_like, retries=json_values)
def test_validate_schedule_only_raises_config_errors(config: Any, retries: Any) -> None:
    try:
        normalised, count = validate_schedule(config, retries, retention_seconds=RETENTION)
    except CountdownConfigError:
        return
    assert parse_countdown_config(normalised).as_config() == normalised
    assert 0 <= count <= MAX_RETRIES_LIMIT


def test_a_saved_config_is_not_validated_again() -> None:
    # GIVEN a config as validate_schedule saved it, and no validator built yet
    saved, _ = validate_schedule(cfg("linear", base=5, limit=20), 3, retention_seconds=RETENTION)
    schedule._config_adapter.cache_clear()
    # WHEN the dispatcher asks for countdowns THEN they come without building the validator
    assert [countdown_for(saved, n) for n in range(6)] == [1, 5, 10, 15, 20, 20]
    assert schedule._config_adapter.cache_info().currsize == 0


@pytest.mark.parametrize(
    "config",
    [cfg("fixed", seconds="1"), cfg("fixed"), {"choice": "fixed"}, cfg("nope", seconds=1)],
)
def test_a_config_not_shaped_as_saved_is_validated(config: dict[str, Any]) -> None:
    with pytest.raises(CountdownConfigError):
        countdown_for(config, 0)
