"""The PynamoDB models of every table, by table and item (one import path for all of them).

Tables and their layout: :mod:`oms_webhooks.storage.specs`.
"""

from oms_webhooks.storage.models.deliveries import (
    DELIVERY_LOG_ATTRIBUTES,
    AttemptModel,
    DeliveryByTenant,
    DeliveryModel,
)
from oms_webhooks.storage.models.events import EventPayloadModel, KeptEventByTypeTime
from oms_webhooks.storage.models.operator_slots import OperatorSlotModel
from oms_webhooks.storage.models.recoveries import RecoveryModel
from oms_webhooks.storage.models.subscriptions import (
    BasicAuthAttribute,
    HealthModel,
    SubscriptionByEventType,
    SubscriptionModel,
    TargetGuardModel,
    TenantCounterModel,
)
from oms_webhooks.storage.models.targets import TargetStateModel
from oms_webhooks.storage.models.tokens import TokenById, TokenModel

__all__ = [
    "DELIVERY_LOG_ATTRIBUTES",
    "AttemptModel",
    "BasicAuthAttribute",
    "DeliveryByTenant",
    "DeliveryModel",
    "EventPayloadModel",
    "HealthModel",
    "KeptEventByTypeTime",
    "OperatorSlotModel",
    "RecoveryModel",
    "SubscriptionByEventType",
    "SubscriptionModel",
    "TargetGuardModel",
    "TargetStateModel",
    "TenantCounterModel",
    "TokenById",
    "TokenModel",
]
