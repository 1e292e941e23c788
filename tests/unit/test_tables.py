"""One table definition serves the code, the local stack and the CDK app."""

from oms_webhooks.storage.models import SubscriptionModel, TokenModel
from oms_webhooks.storage.specs import table_specs


def test_subscriptions_table_keys_and_fanout_index() -> None:
    specs = {s.settings_field: s for s in table_specs()}
    subs = specs["subscriptions_table"]
    assert subs.hash_key == ("tenant", "S")
    assert subs.range_key == ("id", "S")
    assert [i.name for i in subs.indexes] == ["by-event-type"]
    assert subs.indexes[0].hash_key == ("fanout_event_type", "S")


def test_tokens_table_is_keyed_by_hash() -> None:
    specs = {s.settings_field: s for s in table_specs()}
    assert specs["tokens_table"].hash_key == ("token_hash", "S")
    assert [i.name for i in specs["tokens_table"].indexes] == ["by-token-id"]


def test_every_table_has_a_settings_field() -> None:
    for model in (SubscriptionModel, TokenModel):
        assert model.Meta.settings_field.endswith("_table")  # type: ignore[attr-defined]
