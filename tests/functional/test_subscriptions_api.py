"""The subscription API over real HTTP on the local stack (DESIGN §3).

Every request goes through the local gateway, the real authorizer and the
real api handler, to moto's DynamoDB over HTTP. Each test gets its own
tenant, so tests never see each other's subscriptions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from oms_webhooks.api.tokens import create_token
from oms_webhooks.routing.event_types import EVENT_TYPES
from oms_webhooks.settings import get_settings
from oms_webhooks.subscriptions.service import get_subscription
from tests.dns import fake_dns

SEED_BODY = (Path(__file__).parents[2] / "tests" / "cases" / "seed-subscribe-body.txt").read_bytes()


class Client:
    """A partner's HTTP client: base URL plus ``Authorization: Token ...``."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Token {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        return self.session.request(method, url, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def subscribe(self, **fields: Any) -> dict[str, Any]:
        body = {"event_type": "package.created", "target_url": "https://partner.example/hook"}
        body.update(fields)
        response = self.post("/whisperer/hooks/", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


def _new_client(stack: Any) -> Client:
    _, token = create_token(f"tenant-{uuid.uuid4().hex[:12]}")
    return Client(stack.api_url, token)


@pytest.fixture
def partner(stack: Any) -> Iterator[Client]:
    """A fresh tenant's client; public partner hostnames resolve to a public address."""
    with fake_dns({"partner.example": ["93.184.215.14"], "other.example": ["93.184.215.15"]}):
        yield _new_client(stack)


@pytest.fixture
def other_partner(stack: Any) -> Client:
    return _new_client(stack)


@pytest.fixture
def private_targets_refused(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with ``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=false``, as in a deployment."""
    monkeypatch.setenv("OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false")
    get_settings.cache_clear()
    assert get_settings().allow_private_targets is False
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _errors(response: requests.Response) -> dict[str, list[str]]:
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}, body
    return dict(body["errors"])


# --- the OMS documentation's example ---------------------------------------------


def test_documentation_example_verbatim_says_where_the_json_broke(partner: Client) -> None:
    # GIVEN the OMS documentation's subscribe body, byte for byte (trailing comma)
    # WHEN it is posted as the documentation's curl does
    response = partner.post(
        "/whisperer/hooks/", data=SEED_BODY, headers={"Content-Type": "application/json"}
    )
    # THEN a 400 says where the JSON broke, and nothing is stored
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_json"
    assert "line 2 column" in body["detail"]
    assert partner.get("/whisperer/hooks/").json()["results"] == []


def test_documentation_example_without_trailing_comma_subscribes(partner: Client) -> None:
    fixed = SEED_BODY.replace(b",  }", b"}")
    assert fixed != SEED_BODY
    response = partner.post(
        "/whisperer/hooks/", data=fixed, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["event_type"] == "package.created"
    assert created["target_url"] == "http://example.com/"
    countdown = created["retry_countdown_config"]
    assert countdown["choice"] == "exponential"
    assert countdown["kwargs"] == {"base": 2, "factor": 1}  # the default, its defaults filled in
    assert created["max_retries"] == 18
    assert created["has_secret_key"] is True
    assert created["is_active"] is True
    assert "secret_key" not in created and '"secret"' not in response.text
    uuid.UUID(created["id"])


# --- create and read ----------------------------------------------------------------


def test_subscription_round_trip_never_returns_secrets(partner: Client) -> None:
    created = partner.subscribe(
        secret_key="whsec_c2VjcmV0",
        additional_headers={"X-Partner": "ascii only"},
        config={"auth": {"auth_type": "basic", "username": "carrier", "password": "pa55word"}},
        retry_countdown_config={"choice": "linear", "kwargs": {"base": 60, "limit": 600}},
        max_retries=5,
    )
    fetched = partner.get(f"/whisperer/hooks/{created['id']}/")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert created["config"]["auth"] == {
        "auth_type": "basic",
        "username": "carrier",
        "has_password": True,
    }
    assert created["additional_headers"] == {"X-Partner": "ascii only"}
    assert "pa55word" not in fetched.text and "whsec_c2VjcmV0" not in fetched.text


def test_duplicate_target_and_event_type_is_409(partner: Client) -> None:
    partner.subscribe()
    response = partner.post(
        "/whisperer/hooks/",
        json={"event_type": "package-created", "target_url": "https://partner.example/hook"},
    )
    assert response.status_code == 409
    assert "target_url" in _errors(response)
    # another event type to the same URL is a different subscription
    partner.subscribe(event_type="shipment.created")


def test_same_target_in_two_tenants_is_allowed(partner: Client, other_partner: Client) -> None:
    partner.subscribe()
    with fake_dns({"partner.example": ["93.184.215.14"]}):
        other_partner.subscribe()


def test_registry_lists_the_catalogue(partner: Client) -> None:
    response = partner.get("/whisperer/hooks/registry/")
    assert response.status_code == 200
    assert response.json()["event_types"] == list(EVENT_TYPES)
    assert len(EVENT_TYPES) == 18


# --- validation: each rule, each bad input -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event_type": "package.exploded"}, "event_type"),
        ({"event_type": 7}, "event_type"),
        ({"target_url": "ftp://partner.example/"}, "target_url"),
        ({"target_url": "/relative/path"}, "target_url"),
        ({"target_url": "https://partner.example/" + "a" * 2048}, "target_url"),
        ({"target_url": "https://user:pw@partner.example/"}, "target_url"),
        ({"target_url": "http://169.254.169.254/latest/meta-data/"}, "target_url"),
        ({"target_url": "http://0.0.0.0/"}, "target_url"),
        (
            {"retry_countdown_config": {"choice": "fibonacci", "kwargs": {}}},
            "retry_countdown_config",
        ),
        (
            {"retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": -1}}},
            "retry_countdown_config",
        ),
        (
            {
                "retry_countdown_config": {
                    "choice": "random",
                    "kwargs": {"min_value": 9, "max_value": 3},
                }
            },
            "retry_countdown_config",
        ),
        ({"retry_countdown_config": "exponential"}, "retry_countdown_config"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 51}, "max_retries"),
        ({"max_retries": "3"}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"is_active": "yes"}, "is_active"),
        ({"additional_headers": {f"X-H{i}": "v" for i in range(21)}}, "additional_headers"),
        ({"additional_headers": {"Bad Name": "v"}}, "additional_headers"),
        ({"additional_headers": {"X-Ok": "a\r\nInjected: 1"}}, "additional_headers"),
        ({"additional_headers": {"Content-Type": "text/plain"}}, "additional_headers"),
        ({"additional_headers": {"X-Whisperer-Signature": "forged"}}, "additional_headers"),
        ({"additional_headers": {"webhook-id": "forged"}}, "additional_headers"),
        ({"additional_headers": {"Host": "evil.example"}}, "additional_headers"),
        ({"additional_headers": {"X-Num": 5}}, "additional_headers"),
        ({"secret_key": ""}, "secret_key"),
        ({"secret_key": 12345}, "secret_key"),
        ({"config": {"auth": {"auth_type": "bearer", "username": "u"}}}, "config"),
        ({"config": {"auth": {"auth_type": "basic"}}}, "config"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_field_is_400_naming_the_field(
    partner: Client, fields: dict[str, Any], field: str
) -> None:
    body = {"event_type": "package.created", "target_url": "https://partner.example/hook", **fields}
    response = partner.post("/whisperer/hooks/", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid"
    errors = _errors(response)
    assert any(name == field or name.startswith(f"{field}.") for name in errors), errors
    assert partner.get("/whisperer/hooks/").json()["results"] == []


def test_unknown_event_type_lists_the_valid_ones(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/", json={"event_type": "nope", "target_url": "https://partner.example/"}
    )
    assert response.status_code == 400
    assert "package.status.packed_for_refund" in " ".join(_errors(response)["event_type"])


def test_unbounded_exponential_schedule_is_400_naming_both_fields(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "https://partner.example/hook",
            "retry_countdown_config": {"choice": "exponential", "kwargs": {"base": 10}},
            "max_retries": 50,
        },
    )
    assert response.status_code == 400
    errors = _errors(response)
    assert "max_retries" in errors and "retry_countdown_config" in errors


def test_every_countdown_choice_is_accepted(partner: Client) -> None:
    configs = [
        {"choice": "fixed", "kwargs": {"seconds": 30}},
        {"choice": "linear", "kwargs": {"base": 10}},
        {"choice": "exponential", "kwargs": {"base": 2, "factor": 3, "limit": 3600}},
        {"choice": "random", "kwargs": {"min_value": 1, "max_value": 60}},
    ]
    for n, config in enumerate(configs):
        created = partner.subscribe(
            target_url=f"https://partner.example/{n}", retry_countdown_config=config
        )
        assert created["retry_countdown_config"]["choice"] == config["choice"]


def test_authorization_header_clashes_with_basic_auth(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "https://partner.example/hook",
            "additional_headers": {"Authorization": "Bearer x"},
            "config": {"auth": {"auth_type": "basic", "username": "u", "password": "p"}},
        },
    )
    assert response.status_code == 400
    assert "additional_headers" in _errors(response)
    # without basic auth, an Authorization header of the partner's own is fine
    partner.subscribe(additional_headers={"Authorization": "Bearer x"})


def test_additional_headers_null_means_none(partner: Client) -> None:
    assert partner.subscribe(additional_headers=None)["additional_headers"] is None


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_non_object_body_is_400(partner: Client, body: bytes) -> None:
    response = partner.post(
        "/whisperer/hooks/", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_empty_body_is_400(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/", data=b"", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "body" in _errors(response)


def test_wrong_content_type_is_415(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/",
        data=b"event_type=package.created",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_body_over_256_kib_is_413(partner: Client) -> None:
    body = json.dumps({"event_type": "package.created", "target_url": "x" * (256 * 1024)})
    response = partner.post(
        "/whisperer/hooks/", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


# --- SSRF at subscription time ----------------------------------------------------


@pytest.mark.usefixtures("private_targets_refused")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::1]/",
        "http://localhost/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://[fc00::1]/",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://internal.example/",
    ],
)
def test_private_targets_are_refused_in_a_deployment(partner: Client, url: str) -> None:
    with fake_dns({"internal.example": ["10.1.2.3"]}):
        response = partner.post(
            "/whisperer/hooks/", json={"event_type": "package.created", "target_url": url}
        )
    assert response.status_code == 400, response.text
    assert "target_url" in _errors(response)


def test_local_stack_allows_loopback_but_never_metadata(partner: Client) -> None:
    partner.subscribe(target_url="http://127.0.0.1:9000/hook")
    response = partner.post(
        "/whisperer/hooks/",
        json={"event_type": "package.created", "target_url": "http://169.254.169.254/"},
    )
    assert response.status_code == 400


def test_unresolvable_host_is_accepted(partner: Client) -> None:
    # The guard runs again at every send; a name that does not resolve yet is fine.
    partner.subscribe(target_url="https://not-yet-live.example/hook")


# --- change and remove ------------------------------------------------------------


def test_patch_keeps_omitted_secrets_and_null_removes_them(partner: Client) -> None:
    created = partner.subscribe(
        secret_key="s3cret",
        config={"auth": {"auth_type": "basic", "username": "u", "password": "p"}},
    )
    path = f"/whisperer/hooks/{created['id']}/"
    kept = partner.request("PATCH", path, json={"is_active": False})
    assert kept.status_code == 200, kept.text
    assert kept.json()["has_secret_key"] is True
    assert kept.json()["is_active"] is False
    assert kept.json()["config"]["auth"]["has_password"] is True
    renamed = partner.request("PATCH", path, json={"config": {"auth": {"username": "v"}}})
    assert renamed.json()["config"]["auth"] == {
        "auth_type": "basic",
        "username": "v",
        "has_password": True,
    }
    removed = partner.request(
        "PATCH",
        path,
        json={"secret_key": None, "config": {"auth": {"username": "v", "password": None}}},
    )
    assert removed.json()["has_secret_key"] is False
    assert removed.json()["config"]["auth"]["has_password"] is False


def test_put_replaces_fields_but_keeps_the_secret(partner: Client) -> None:
    created = partner.subscribe(secret_key="s3cret", max_retries=3)
    response = partner.request(
        "PUT",
        f"/whisperer/hooks/{created['id']}/",
        json={"event_type": "shipment-created", "target_url": "https://partner.example/v2"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["event_type"] == "shipment.created"
    assert updated["max_retries"] == 18  # a PUT resets what it omits to the defaults
    assert updated["has_secret_key"] is True
    assert updated["created_date"] == created["created_date"]
    assert updated["modified_date"] > created["modified_date"]
    # the old (target, type) is free again; the new one is taken
    partner.subscribe()
    clash = partner.post(
        "/whisperer/hooks/",
        json={"event_type": "shipment.created", "target_url": "https://partner.example/v2"},
    )
    assert clash.status_code == 409


def test_patch_onto_an_existing_target_is_409(partner: Client) -> None:
    first = partner.subscribe()
    second = partner.subscribe(target_url="https://partner.example/other")
    response = partner.request(
        "PATCH", f"/whisperer/hooks/{second['id']}/", json={"target_url": first["target_url"]}
    )
    assert response.status_code == 409
    assert partner.get(f"/whisperer/hooks/{second['id']}/").json() == second


def test_patch_validates_like_create(partner: Client) -> None:
    created = partner.subscribe()
    path = f"/whisperer/hooks/{created['id']}/"
    for body, field in [
        ({"max_retries": 99}, "max_retries"),
        ({"event_type": "nope"}, "event_type"),
        ({"target_url": "http://169.254.169.254/"}, "target_url"),
        (
            {
                "retry_countdown_config": {"choice": "exponential", "kwargs": {"base": 9}},
                "max_retries": 50,
            },
            "max_retries",
        ),
    ]:
        response = partner.request("PATCH", path, json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in _errors(response)
    assert partner.get(path).json() == created


def test_delete_then_gone_and_target_free(partner: Client) -> None:
    created = partner.subscribe()
    path = f"/whisperer/hooks/{created['id']}/"
    assert partner.request("DELETE", path).status_code == 204
    assert partner.get(path).status_code == 404
    assert partner.request("DELETE", path).status_code == 404
    partner.subscribe()


# --- tenant isolation and unknown ids -----------------------------------------------


def test_another_tenants_subscription_is_404_on_every_method(
    partner: Client, other_partner: Client
) -> None:
    created = partner.subscribe()
    path = f"/whisperer/hooks/{created['id']}/"
    assert other_partner.get(path).status_code == 404
    assert other_partner.request("PATCH", path, json={"is_active": False}).status_code == 404
    put = other_partner.request(
        "PUT", path, json={"event_type": "package.created", "target_url": "http://127.0.0.1/"}
    )
    assert put.status_code == 404
    assert other_partner.request("DELETE", path).status_code == 404
    assert other_partner.get("/whisperer/hooks/").json()["results"] == []
    assert partner.get(path).json() == created


@pytest.mark.parametrize(
    "bad_id", ["nope", "0" * 32, "5f0c6c0e-1d2b-4e8a-9c3f-2a7b9e4d1c00", "x" * 300, "%00"]
)
def test_unknown_ids_are_404(partner: Client, bad_id: str) -> None:
    assert partner.get(f"/whisperer/hooks/{bad_id}/").status_code == 404


# --- listing --------------------------------------------------------------------------


def test_pagination_walks_every_subscription_once_in_order(partner: Client) -> None:
    ids = [partner.subscribe(target_url=f"https://partner.example/{n}")["id"] for n in range(5)]
    seen: list[str] = []
    next_path: str | None = "/whisperer/hooks/?limit=2"
    pages = 0
    while next_path:
        page = partner.get(next_path)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"results", "next"}
        assert len(body["results"]) <= 2
        seen += [s["id"] for s in body["results"]]
        next_path = body["next"]
        assert next_path is None or next_path.startswith("/whisperer/hooks/?")
        pages += 1
    assert seen == ids
    assert pages == 3


def test_filters(partner: Client) -> None:
    a = partner.subscribe(target_url="https://partner.example/a")
    b = partner.subscribe(target_url="https://partner.example/b", event_type="shipment.created")
    c = partner.subscribe(target_url="https://partner.example/c", is_active=False)

    def ids(query: str) -> list[str]:
        response = partner.get(f"/whisperer/hooks/?{query}")
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["results"]]

    assert ids("event_type=shipment.created") == [b["id"]]
    assert ids("event_type=package-created") == [a["id"], c["id"]]
    assert ids("target_url=https://partner.example/b") == [b["id"]]
    assert ids("is_active=false") == [c["id"]]
    assert ids("is_active=true&event_type=package.created") == [a["id"]]
    assert ids("is_active=true&limit=1") == [a["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("event_type=nope", "event_type"),
        ("is_active=maybe", "is_active"),
    ],
)
def test_bad_list_parameters_are_400(partner: Client, query: str, field: str) -> None:
    response = partner.get(f"/whisperer/hooks/?{query}")
    assert response.status_code == 400, response.text
    assert field in _errors(response)


# --- the OpenAPI document -----------------------------------------------------------


def test_openapi_document_lists_what_the_api_answers(stack: Any) -> None:
    response = requests.get(f"{stack.api_url}/whisperer/openapi.json", timeout=10)
    assert response.status_code == 200
    doc = response.json()
    assert "/whisperer/hooks/" in doc["paths"]
    assert "/whisperer/hooks/{subscription_id}/" in doc["paths"]
    post = doc["paths"]["/whisperer/hooks/"]["post"]["responses"]
    assert {"201", "400", "401", "409", "413", "415"} <= set(post)
    assert "422" not in json.dumps(doc)
    docs = requests.get(f"{stack.api_url}/whisperer/docs", timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# --- found by attacking the API (each kind of bad input stays a test) ----------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"event_type": "package.created", "max_retries": ' + b"9" * 5000 + b"}",
        b'{"event_type": "package.created", "max_retries": NaN}',
        b'{"event_type": "package.created", "max_retries": Infinity}',
    ],
    ids=["deep-array", "deep-object", "5000-digits", "nan", "infinity"],
)
def test_pathological_json_is_400_not_5xx(partner: Client, body: bytes) -> None:
    response = partner.post(
        "/whisperer/hooks/", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] == "invalid_json"


def test_media_type_is_case_insensitive(partner: Client) -> None:
    body = json.dumps({"event_type": "package.created", "target_url": "https://partner.example/"})
    response = partner.post(
        "/whisperer/hooks/", data=body, headers={"Content-Type": "APPLICATION/JSON; Charset=UTF-8"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/merge-patch+json"}, b"{}"),
        ({"Content-Type": "text/plain"}, b"{}"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00\xff"),
        ({"Content-Type": "application/json"}, "{}".encode("utf-16")),
    ],
    ids=["merge-patch", "text", "gzip", "utf-16"],
)
def test_unsupported_bodies_are_415_in_the_error_shape(
    partner: Client, headers: dict[str, str], body: bytes
) -> None:
    response = partner.post("/whisperer/hooks/", data=body, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert "body" in _errors(response)


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "€uro"}, {"X-A": "emoji 😀"}, {"X" * 300: "v"}],
    ids=["non-latin", "emoji", "long-name"],
)
def test_header_values_must_be_sendable(partner: Client, headers: dict[str, str]) -> None:
    response = partner.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "https://partner.example/",
            "additional_headers": headers,
        },
    )
    assert response.status_code == 400, response.text
    assert "additional_headers" in _errors(response)


def test_credential_headers_are_never_echoed_and_survive_updates(partner: Client) -> None:
    created = partner.subscribe(
        additional_headers={"Authorization": "Bearer s3cr3t", "X-Api-Key": "k3y", "X-Plain": "v"}
    )
    assert created["additional_headers"] == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Plain": "v",
    }
    path = f"/whisperer/hooks/{created['id']}/"
    for response in (partner.get(path), partner.get("/whisperer/hooks/")):
        assert "s3cr3t" not in response.text and "k3y" not in response.text
    # sending the redacted view back keeps the stored values
    kept = partner.request(
        "PATCH",
        path,
        json={"additional_headers": {**created["additional_headers"], "X-Plain": "w"}},
    )
    assert kept.status_code == 200, kept.text
    from oms_webhooks.api.tokens import authenticate

    info = authenticate(partner.session.headers["Authorization"])
    assert info is not None
    stored = get_subscription(info.tenant, created["id"]).additional_headers
    assert stored == {"Authorization": "Bearer s3cr3t", "X-Api-Key": "k3y", "X-Plain": "w"}
    # the marker cannot be a value of its own
    invented = partner.request(
        "PATCH", path, json={"additional_headers": {"X-Token": "[redacted]"}}
    )
    assert invented.status_code == 400


@pytest.mark.parametrize(
    "spelling",
    [
        "HTTPS://partner.example/hook",
        "https://PARTNER.example/hook",
        "https://partner.example:443/hook",
        "https://partner.example./hook",
        "https://partner.example/hook#fragment",
    ],
)
def test_equivalent_target_urls_are_one_target(partner: Client, spelling: str) -> None:
    partner.subscribe(target_url="https://partner.example/hook")
    response = partner.post(
        "/whisperer/hooks/", json={"event_type": "package.created", "target_url": spelling}
    )
    assert response.status_code == 409, response.text


def test_target_url_is_stored_normalised(partner: Client) -> None:
    created = partner.subscribe(target_url="HTTPS://Partner.Example:443")
    assert created["target_url"] == "https://partner.example/"


def test_aws_ipv6_metadata_is_refused_even_on_the_local_stack(partner: Client) -> None:
    response = partner.post(
        "/whisperer/hooks/",
        json={"event_type": "package.created", "target_url": "http://[fd00:ec2::254]/"},
    )
    assert response.status_code == 400
    assert "metadata" in " ".join(_errors(response)["target_url"])


@pytest.mark.parametrize("field", ["event_type", "target_url", "is_active"])
def test_patch_cannot_null_a_required_field(partner: Client, field: str) -> None:
    created = partner.subscribe()
    response = partner.request("PATCH", f"/whisperer/hooks/{created['id']}/", json={field: None})
    assert response.status_code == 400
    assert field in _errors(response)


def test_additional_headers_are_limited_in_total_size(client: Any) -> None:
    headers = {f"X-H{n}": "v" * 4000 for n in range(2)}
    response = client.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "http://127.0.0.1:9/",
            "additional_headers": headers,
        },
    )
    assert response.status_code == 400
    assert "additional_headers" in response.json()["errors"]
