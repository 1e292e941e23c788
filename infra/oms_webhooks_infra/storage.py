"""DynamoDB tables, built generically from :func:`oms_webhooks.storage.specs.table_specs`."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from oms_webhooks.resources import SECRETS_KEY_ALIAS
from oms_webhooks.storage.specs import TableSpec, table_specs
from oms_webhooks_infra import constants as c

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def logical_name(spec: TableSpec) -> str:
    """``subscriptions_table`` → ``SubscriptionsTable`` (construct id and output prefix)."""
    return "".join(part.capitalize() for part in spec.settings_field.split("_"))


def settings_env_var(spec: TableSpec) -> str:
    """The environment variable the functions read the table's name from."""
    return f"{c.SETTINGS_ENV_PREFIX}{spec.settings_field.upper()}"


def _attribute(key: tuple[str, str]) -> dynamodb.Attribute:
    name, type_letter = key
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[type_letter])


class StorageConstruct(Construct):
    """Every table of the service: on demand, PITR, encryption, TTL where declared.

    Attributes:
        tables: the tables by ``settings_field`` (``"subscriptions_table"`` …).
        secrets_key: the KMS key that seals partner secrets field by field
            (``oms_webhooks.subscriptions.sealing``): only the functions granted Decrypt
            on it can read a ``secret_key`` or password, whoever reads the table.
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        self.tables: dict[str, dynamodb.Table] = {
            spec.settings_field: self._build_table(spec, removal_policy) for spec in table_specs()
        }
        self.secrets_key = self._build_secrets_key(removal_policy)

    def _build_secrets_key(self, removal_policy: RemovalPolicy) -> kms.Key:
        alias = SECRETS_KEY_ALIAS.replace("alias/", f"alias/{Stack.of(self).stack_name}-", 1)
        return kms.Key(
            self,
            "SecretsKey",
            description="oms-webhooks: seals partner secrets (secret_key, basic-auth passwords)",
            enable_key_rotation=True,
            alias=alias,
            removal_policy=removal_policy,
        )

    def table_environment(self) -> dict[str, str]:
        """``OMS_WEBHOOKS_<FIELD>`` → table name, for every table, and the secrets key."""
        return {
            **{
                settings_env_var(spec): self.tables[spec.settings_field].table_name
                for spec in table_specs()
            },
            f"{c.SETTINGS_ENV_PREFIX}SECRETS_KMS_KEY_ID": self.secrets_key.key_arn,
        }

    def _build_table(self, spec: TableSpec, removal_policy: RemovalPolicy) -> dynamodb.Table:
        name = logical_name(spec)
        table = dynamodb.Table(
            self,
            name,
            partition_key=_attribute(spec.hash_key),
            sort_key=_attribute(spec.range_key) if spec.range_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.hash_key),
                sort_key=_attribute(index.range_key) if index.range_key else None,
                projection_type=dynamodb.ProjectionType(index.projection),
                non_key_attributes=None
                if index.non_key_attributes is None
                else list(index.non_key_attributes),
            )
        CfnOutput(
            self,
            f"{name}Name",
            value=table.table_name,
            description=f"DynamoDB table; set {settings_env_var(spec)} to this name",
        ).override_logical_id(f"{name}Name")
        return table
