"""Property tests of issue 7: signatures, input validators, countdown schedules.

What the other unit tests already hold as properties is not repeated here:
tests/unit/test_signing.py checks the round trip for JSON payloads without
lone surrogates and for well-formed secrets; tests/unit/test_countdown.py
checks countdowns for kwargs up to 10^6 and that ``validate_schedule`` /
``worst_case_total`` raise nothing but :class:`CountdownConfigError` for
arbitrary JSON. This file adds the rest:

* signing: payloads whose strings hold lone surrogate escapes (valid JSON,
  not UTF-8), any text secret (non-ASCII, ``whsec_`` followed by anything),
  two secrets side by side (rotation);
* validators: ``SubscriptionIn`` / ``SubscriptionPatch`` /
  ``validate_target_url`` raise only their validation error for arbitrary
  JSON and for near-valid bodies, and what they accept is usable (secrets
  encode as UTF-8, a normalised URL validates to itself);
* schedules: kwargs up to 2^63-1, retry numbers into the thousands, the
  SQS hold plan of any countdown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from oms_webhooks.api.schemas import SubscriptionIn, SubscriptionPatch
from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.signing import signature_headers, standard_signatures
from oms_webhooks.delivery.request.url_guard import TargetURLRefused, validate_target_url
from oms_webhooks.delivery.retry.policies import MAX_INT, MIN_COUNTDOWN_SECONDS, countdown_for
from oms_webhooks.delivery.retry.schedule import (
    CountdownConfigError,
    parse_countdown_config,
    validate_schedule,
    worst_case_total,
)
from oms_webhooks.delivery.retry.scheduling import SQS_MAX_DELAY_SECONDS, plan_hold
from oms_webhooks.limits import SQS_MAX_VISIBILITY_SECONDS
from oms_webhooks.routing.event_types import EVENT_TYPES
from oms_webhooks.settings import get_settings

FAST = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

# --- strategies -----------------------------------------------------------------------

#: Any character a JSON string can carry, lone surrogates (``"\ud800"``) included.
json_chars = st.characters(exclude_categories=())
json_text = st.text(json_chars, max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=15,
)

_HOSTS = [
    "partner.example",
    "Partner.Example.",
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0",
    "localhost",
    "a.localhost",
    "10.0.0.1",
    "100.100.100.200",
    "169.254.169.254",
    "224.0.0.1",
    "93.184.215.14",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:0:a00:1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[fd00:ec2::254]",
    "[fe80::1%25eth0]",
    "[2606:4700::1111]",
    "[::1",
    "::1]",
    "１２７。０。０。１",
    "例え.テスト",
    "xn--nxasmq6b.example",
    "a..b",
    "-a.example",
    "a_b.example",
    "%31%32%37.0.0.1",
    "",
]
hosts = (
    st.sampled_from(_HOSTS)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda ip: f"[{ip}]")
    | st.text(st.sampled_from("ab0x.-_[]:%1é"), max_size=10)
)
ports = st.sampled_from(
    ["", ":", ":0", ":80", ":443", ":8080", ":65535", ":65536", ":-1", ":x"]
) | (st.integers(min_value=0, max_value=10**6).map(lambda p: f":{p}"))
target_urls = st.builds(
    lambda scheme, sep, userinfo, host, port, path: f"{scheme}{sep}{userinfo}{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP", "hTTps", "ftp", "", "javascript"]),
    st.sampled_from(["://", ":/", ":", "///"]),
    st.sampled_from(["", "", "", "u@", "u:p@", "@"]),
    hosts,
    ports,
    st.sampled_from(["", "/", "/hooks?x=1#frag", "/é", " /", "/\x00", "/" + "a" * 2100])
    | json_text,
)

_ALIASES = [t.replace(".", "-") for t in EVENT_TYPES]
event_types = (
    st.sampled_from([*EVENT_TYPES, *_ALIASES, "", "package", "PACKAGE.CREATED", "package..x"])
    | json_text
)
header_names = st.sampled_from(
    ["X-Partner", "Authorization", "content-type", "X-Whisperer-Event", "webhook-id", "Host", "a b"]
) | st.text(st.sampled_from("Xx-_é:\r\n"), min_size=0, max_size=6)
header_values = st.sampled_from(["v", "[redacted]", "a\r\nb", "é", "\t", ""]) | json_text
countdown_configs = st.fixed_dictionaries(
    {
        "choice": st.sampled_from(["fixed", "linear", "exponential", "random", "x"]) | json_scalars,
        "kwargs": st.dictionaries(
            st.sampled_from(["seconds", "base", "factor", "limit", "min_value", "max_value", "z"]),
            st.integers(min_value=-1, max_value=MAX_INT + 1) | json_scalars,
            max_size=4,
        ),
    }
)
secrets_ = (
    st.none()
    | json_text
    | st.sampled_from(["", "secret", "whsec_", "whsec_AAAA"])
    | st.text(st.characters(categories=["Cs"]) | st.sampled_from("aé"), min_size=1, max_size=3)
)
auth_configs = st.fixed_dictionaries(
    {},
    optional={
        "auth": st.none()
        | st.fixed_dictionaries(
            {"username": st.sampled_from(["user", "", "a:b"]) | json_text},
            optional={
                "auth_type": st.sampled_from(["basic", "digest"]) | json_scalars,
                "password": secrets_,
            },
        )
        | json_values
    },
)
_GOOD_URLS = [
    "https://partner.example/hooks",
    "http://93.184.215.14:8080/x?y=1",
    "https://例え.テスト/",
]
#: A valid subscription body (optional fields sometimes given).
valid_bodies = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from([*EVENT_TYPES, *_ALIASES]),
        "target_url": st.sampled_from(_GOOD_URLS),
    },
    optional={
        "retry_countdown_config": st.sampled_from(
            [
                None,
                {"choice": "exponential", "kwargs": {"base": 2}},
                {"choice": "fixed", "kwargs": {"seconds": 60}},
                {"choice": "random", "kwargs": {"min_value": 1, "max_value": 9}},
            ]
        ),
        "max_retries": st.integers(min_value=0, max_value=18),
        "additional_headers": st.none()
        | st.dictionaries(st.sampled_from(["X-Partner", "X-Api-Key"]), st.sampled_from(["v"])),
        "secret_key": secrets_,
        "is_active": st.booleans(),
        "config": st.sampled_from([{}, {"auth": None}])
        | st.builds(lambda pw: {"auth": {"username": "user", "password": pw}}, secrets_),
    },
)
#: Any value for each field: plausible near-misses and arbitrary JSON.
odd_fields = {
    "event_type": event_types | json_values,
    "target_url": target_urls | json_values,
    "retry_countdown_config": countdown_configs | json_values,
    "max_retries": st.integers(min_value=-5, max_value=60) | json_values,
    "additional_headers": st.dictionaries(header_names, header_values, max_size=4) | json_values,
    "secret_key": secrets_ | json_values,
    "is_active": json_values,
    "config": auth_configs | json_values,
    "unknown": json_values,
}
#: Valid bodies with one or two fields replaced by an odd value. (No ``.filter()`` in this
#: file: a filter's retry describes the strategy, which parses its lambdas' source with
#: ast.parse, and CPython 3.11's AST builder is not thread-safe (gh-106905): beside the
#: local stack's threads in the same worker it raised "AST constructor recursion depth
#: mismatch" at random.)
near_valid_bodies = valid_bodies | st.builds(
    lambda body, changes: {**body, **changes},
    valid_bodies,
    st.lists(st.sampled_from(sorted(odd_fields)), min_size=1, max_size=2, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: odd_fields[name] for name in names})
    ),
)


# --- (b) validators raise nothing but their validation error --------------------------


def _assert_usable(model: SubscriptionIn) -> None:
    """What a validator accepts can be stored, sealed and sent."""
    secrets = [model.secret_key]
    if model.config is not None and model.config.auth is not None:
        secrets.append(model.config.auth.password)
    for secret in secrets:
        if secret is not None:
            secret.get_secret_value().encode("utf-8")
    if model.event_type is not None:
        assert model.event_type in EVENT_TYPES
    if model.target_url is not None:
        # (a local stack running in this test process allows private targets)
        allow = get_settings().allow_private_targets
        assert model.target_url == validate_target_url(model.target_url, allow_private=allow)
    json.dumps(model.model_dump(mode="json")).encode("utf-8")


@pytest.mark.parametrize("model", [SubscriptionIn, SubscriptionPatch])
@FAST
@given(body=json_values | near_valid_bodies)
def test_subscription_models_raise_only_validation_errors(
    model: type[SubscriptionIn], body: Any
) -> None:
    try:
        accepted = model.model_validate(body)
    except ValidationError as exc:
        assert exc.errors()
        return
    _assert_usable(accepted)
    # What subscriptions.py does next with it: only CountdownConfigError (a 400) may come out.
    try:
        validate_schedule(accepted.retry_countdown_config, accepted.max_retries)
    except CountdownConfigError as exc:
        assert exc.errors


@pytest.mark.parametrize("allow_private", [False, True])
@FAST
@given(url=target_urls | json_values)
def test_validate_target_url_raises_only_target_url_refused(url: Any, allow_private: bool) -> None:
    try:
        normalised = validate_target_url(url, allow_private=allow_private)
    except TargetURLRefused as exc:
        assert str(exc).startswith("target_url ")
        return
    assert isinstance(normalised, str)
    # The stored form is a fixed point, and allowing private targets never refuses more.
    assert validate_target_url(normalised, allow_private=allow_private) == normalised
    assert validate_target_url(url, allow_private=True) == normalised


# --- (a) sign → verify with the partners' library -------------------------------------


def _partner_key(secret: str) -> str:
    """The key README tells a partner to give the library: a whsec_ secret as is, else base64."""
    if secret.startswith("whsec_"):
        try:
            Webhook(secret)
        except Exception:  # the library refuses it: README's rule for plain secrets applies
            pass
        else:
            return secret
    return base64.b64encode(secret.encode("utf-8")).decode("ascii")


text_secrets = st.text(min_size=1, max_size=40) | st.builds(
    lambda rest: "whsec_" + rest, st.text(max_size=40)
)
whsec_secrets = st.builds(
    lambda raw, strip, stray: (
        "whsec_"
        + (base64.b64encode(raw).decode().rstrip("=") if strip else base64.b64encode(raw).decode())
        + stray
    ),
    st.binary(min_size=1, max_size=64),
    st.booleans(),
    st.sampled_from(["", " ", "!", "==", "\n"]),
)
payloads = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=20,
)
msg_ids = st.text("0123456789abcdef", min_size=32, max_size=32)


@FAST
@given(payload=payloads, secret=text_secrets | whsec_secrets, msg_id=msg_ids)
def test_any_payload_and_any_secret_verify_with_the_library(
    payload: Any, secret: str, msg_id: str
) -> None:
    body = build_envelope(
        event_type="package.created",
        delivery_uuid=msg_id,
        event_time="2024-01-01T00:00:00Z",
        payload=payload,
    )
    body.decode("utf-8")  # lone surrogates leave as JSON escapes: the body stays UTF-8
    assert json.loads(body)["payload"] == payload
    headers = signature_headers(
        secret=secret, msg_id=msg_id, timestamp=int(time.time()), body=body, event_type="t"
    )
    assert Webhook(_partner_key(secret)).verify(body, headers) == json.loads(body)
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    assert headers["X-Whisperer-Signature"] == f"sha256={expected}"


@FAST
@given(
    new=text_secrets | whsec_secrets,
    old=text_secrets | whsec_secrets,
    payload=payloads,
    msg_id=msg_ids,
)
def test_two_secrets_each_verify(new: str, old: str, payload: Any, msg_id: str) -> None:
    body = build_envelope(event_type="t", delivery_uuid=msg_id, event_time="2024", payload=payload)
    now = int(time.time())
    value = standard_signatures([new, old], msg_id, now, body)
    assert len(value.split(" ")) == 2
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": value}
    for secret in (new, old):
        Webhook(_partner_key(secret)).verify(body, headers)


# --- (c) countdown schedules never overflow or go negative ----------------------------

big = st.integers(min_value=0, max_value=MAX_INT)
big_configs = st.one_of(
    st.builds(lambda s: {"choice": "fixed", "kwargs": {"seconds": s}}, big),
    st.builds(lambda b: {"choice": "linear", "kwargs": {"base": b}}, big),
    st.builds(lambda b, lim: {"choice": "linear", "kwargs": {"base": b, "limit": lim}}, big, big),
    st.builds(
        lambda b, f: {"choice": "exponential", "kwargs": {"base": b, "factor": f}},
        big,
        st.integers(min_value=1, max_value=MAX_INT),
    ),
    st.builds(
        lambda b, f, lim: {
            "choice": "exponential",
            "kwargs": {"base": b, "factor": f, "limit": lim},
        },
        big,
        st.integers(min_value=1, max_value=MAX_INT),
        big,
    ),
    st.integers(min_value=0, max_value=MAX_INT - 1).flatmap(
        lambda lo: st.integers(min_value=lo + 1, max_value=MAX_INT).map(
            lambda hi: {"choice": "random", "kwargs": {"min_value": lo, "max_value": hi}}
        )
    ),
)


@FAST
@given(config=big_configs, n=st.integers(min_value=0, max_value=5_000), seed=st.integers())
def test_countdowns_with_huge_kwargs_stay_in_range_and_grow(
    config: dict[str, Any], n: int, seed: int
) -> None:
    policy = parse_countdown_config(config)
    value = countdown_for(config, n, random.Random(seed))
    assert isinstance(value, int)
    assert MIN_COUNTDOWN_SECONDS <= value <= max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n))
    assert policy.worst_case(n) <= MAX_INT
    # Non-decreasing in n, except exponential base 0 (0^0 = 1, then 0) and random.
    if config["choice"] != "random" and config["kwargs"].get("base") != 0:
        assert policy.countdown(n) <= policy.countdown(n + 1) <= MAX_INT


@FAST
@given(
    config=big_configs,
    retries=st.integers(min_value=0, max_value=50),
    cap=st.integers(min_value=0, max_value=MAX_INT),
)
def test_worst_case_total_is_exact_up_to_the_cap(
    config: dict[str, Any], retries: int, cap: int
) -> None:
    policy = parse_countdown_config(config)
    exact = sum(max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n)) for n in range(retries))
    total = worst_case_total(config, retries, cap=cap)
    assert total == exact if exact <= cap else cap < total <= cap + MAX_INT


@FAST
@given(
    config=big_configs,
    retries=st.integers(min_value=0, max_value=50),
    retention=st.integers(min_value=0, max_value=400 * 86_400),
)
def test_an_accepted_schedule_ends_within_the_retention(
    config: dict[str, Any], retries: int, retention: int
) -> None:
    try:
        normalised, count = validate_schedule(config, retries, retention_seconds=retention)
    except CountdownConfigError:
        return
    policy = parse_countdown_config(normalised)
    assert count == retries
    floored = (max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n)) for n in range(count))
    assert 0 <= sum(floored) <= retention


@FAST
@given(
    delay=st.integers(min_value=-(10**6), max_value=MAX_INT)
    | st.floats(min_value=-1e6, max_value=float(MAX_INT)),
    since_sent=st.integers(min_value=0, max_value=20 * 86_400),
    since_received=st.integers(min_value=0, max_value=2 * SQS_MAX_VISIBILITY_SECONDS),
)
def test_any_countdown_becomes_a_valid_sqs_hold(
    delay: float, since_sent: int, since_received: int
) -> None:
    now = 1_800_000_000.0
    received_at = now - since_received
    hold = plan_hold(delay, now=now, received_at=received_at, sent_at=received_at - since_sent)
    assert (hold.visibility is None) != (hold.resend_delay is None)
    if hold.visibility is not None:
        assert 0 <= hold.visibility <= SQS_MAX_VISIBILITY_SECONDS
        assert hold.visibility <= max(delay, 0)
    else:
        assert hold.resend_delay is not None
        assert 0 <= hold.resend_delay <= SQS_MAX_DELAY_SECONDS
