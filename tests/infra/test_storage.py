"""Tables: built from ``oms_webhooks.storage.specs.table_specs()``, one per spec."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from oms_webhooks.storage.specs import TableSpec, table_specs
from oms_webhooks_infra.storage import logical_name, settings_env_var
from tests.infra.conftest import Synthesized

SPECS = table_specs()


def _table(synthesized: Synthesized, spec: TableSpec) -> dict:
    """The table resource whose key schema is ``spec``'s."""
    for resource in synthesized.resources("AWS::DynamoDB::Table").values():
        keys = {k["KeyType"]: k["AttributeName"] for k in resource["Properties"]["KeySchema"]}
        if keys.get("HASH") == spec.hash_key[0] and keys.get("RANGE") == (
            spec.range_key[0] if spec.range_key else None
        ):
            return resource
    raise AssertionError(f"no table for {spec.settings_field}")


def test_one_table_per_spec(synthesized: Synthesized) -> None:
    # GIVEN the table definitions WHEN synthesized THEN one table each
    synthesized.template.resource_count_is("AWS::DynamoDB::Table", len(SPECS))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.settings_field)
def test_table_keys_and_indexes_match_the_spec(synthesized: Synthesized, spec: TableSpec) -> None:
    props = _table(synthesized, spec)["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types[spec.hash_key[0]] == spec.hash_key[1]
    if spec.range_key:
        assert types[spec.range_key[0]] == spec.range_key[1]
    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {i.name for i in spec.indexes}
    for index in spec.indexes:
        gsi = indexes[index.name]
        keys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
        assert keys["HASH"] == index.hash_key[0]
        assert types[index.hash_key[0]] == index.hash_key[1]
        assert keys.get("RANGE") == (index.range_key[0] if index.range_key else None)
        expected: dict[str, Any] = {"ProjectionType": index.projection}
        if index.non_key_attributes is not None:
            expected["NonKeyAttributes"] = list(index.non_key_attributes)
        assert gsi["Projection"] == expected


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.settings_field)
def test_table_is_on_demand_encrypted_recoverable_and_retained(
    synthesized: Synthesized, spec: TableSpec
) -> None:
    resource = _table(synthesized, spec)
    props = resource["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.settings_field)
def test_ttl_where_the_spec_declares_one(synthesized: Synthesized, spec: TableSpec) -> None:
    props = _table(synthesized, spec)["Properties"]
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    else:
        assert "TimeToLiveSpecification" not in props


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.settings_field)
def test_every_function_gets_the_table_name_from_its_settings_field(
    synthesized: Synthesized, spec: TableSpec
) -> None:
    assert settings_env_var(spec) == f"OMS_WEBHOOKS_{spec.settings_field.upper()}"
    synthesized.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({settings_env_var(spec): {"Ref": Match.any_value()}})
            }
        },
    )
    synthesized.template.has_output(f"{logical_name(spec)}Name", {"Value": Match.any_value()})


def test_partner_secrets_are_sealed_with_a_rotating_kms_key(synthesized: Synthesized) -> None:
    keys = synthesized.resources("AWS::KMS::Key")
    assert len(keys) == 1
    (key_id, key) = next(iter(keys.items()))
    assert key["Properties"]["EnableKeyRotation"] is True
    functions = synthesized.resources("AWS::Lambda::Function")
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["OMS_WEBHOOKS_SECRETS_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_only_the_api_and_dispatcher_may_decrypt_secrets(synthesized: Synthesized) -> None:
    decrypting_roles = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            if "kms:Decrypt" in actions:
                decrypting_roles.update(r["Ref"] for r in policy["Properties"]["Roles"])
    names = {role.split("Role")[0] for role in decrypting_roles}
    assert any("Api" in n for n in names) and any("Dispatcher" in n for n in names)
    assert not any("Router" in n or "Authorizer" in n for n in names), names
