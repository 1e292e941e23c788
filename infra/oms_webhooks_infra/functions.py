"""The four Lambda functions, each with its own least-privilege role and log group."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    RECOVERY_QUEUE,
)
from oms_webhooks.storage.specs import table_specs
from oms_webhooks_infra import constants as c
from oms_webhooks_infra.bundling import code_asset
from oms_webhooks_infra.config import DeploymentConfig
from oms_webhooks_infra.messaging import MessagingConstruct
from oms_webhooks_infra.storage import StorageConstruct

RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Lambda's application log level for each Powertools log level (``logLevel`` context).
APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
    "CRITICAL": lambda_.ApplicationLogLevel.FATAL,
}


class FunctionsConstruct(Construct):
    """Authorizer, API, router and dispatcher; the queue consumers with their mappings.

    Attributes:
        functions: every function by logical name (``Authorizer``, ``Api``, …).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        storage: StorageConstruct,
        messaging: MessagingConstruct,
    ) -> None:
        super().__init__(scope, id_)
        self._config = config
        self._storage = storage
        self._messaging = messaging
        self._code = code_asset(self, skip_bundling=config.skip_bundling)
        self.functions: dict[str, lambda_.Function] = {
            "Authorizer": self._build_function("Authorizer", c.AUTHORIZER_TIMEOUT_SECONDS),
            "Api": self._build_function("Api", c.API_TIMEOUT_SECONDS),
            "Router": self._build_function("Router", INGRESS_QUEUE.function_timeout),
            "Dispatcher": self._build_function("Dispatcher", DELIVERY_QUEUE.function_timeout),
            "Recoverer": self._build_function("Recoverer", RECOVERY_QUEUE.function_timeout),
        }
        self._grant_tables()
        self._grant_secrets_key()
        self._build_queue_access()
        self._grant_operational_events()
        self._build_recovery_access()

    @property
    def authorizer(self) -> lambda_.Function:
        """The REQUEST authorizer of the REST API."""
        return self.functions["Authorizer"]

    @property
    def api(self) -> lambda_.Function:
        """The REST API's proxy integration."""
        return self.functions["Api"]

    def _environment(self) -> dict[str, str]:
        return {
            "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": self._config.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": self._config.metrics_namespace,
            f"{c.SETTINGS_ENV_PREFIX}ALLOW_PRIVATE_TARGETS": "false",
            **self._storage.table_environment(),
            **self._messaging.environment(self._config.event_source),
            f"{c.SETTINGS_ENV_PREFIX}OPERATIONAL_SOURCE": self._config.operational_source,
        }

    def _build_function(self, name: str, timeout_seconds: int) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{name}LogGroup",
            retention=self._config.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{c.SERVICE_NAME} {name} function (least privilege)",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy: only this log group.
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=c.HANDLERS[name],
            code=self._code,
            memory_size=c.MEMORY_MB[name],
            timeout=Duration.seconds(timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            # JSON logs let Lambda drop its own START/END/REPORT lines (INFO) at the
            # source: about 300 bytes per invocation, i.e. per delivery at batches of
            # one (issue 16). The application's level is Powertools' (kept in sync:
            # Lambda sets AWS_LAMBDA_LOG_LEVEL, which Powertools then follows).
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=APPLICATION_LOG_LEVELS[self._config.log_level],
            environment=self._environment(),
            description=f"{c.SERVICE_NAME}: {c.HANDLERS[name]}",
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray active tracing: xray:PutTraceSegments and "
                "xray:PutTelemetryRecords support no resource-level permissions.",
            )
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=f"Pinned to {RUNTIME.name}: the asset's wheels are built for "
                f"Python {c.PYTHON_VERSION}; moving runtimes is a deliberate change.",
            )
        )
        return function

    def _grant_tables(self) -> None:
        indexed = {spec.settings_field for spec in table_specs() if spec.indexes}
        for name, access in c.TABLE_ACCESS.items():
            function = self.functions[name]
            for settings_field, mode in access.items():
                table = self._storage.tables.get(settings_field)
                if (
                    table is None
                ):  # declared in the access map, not yet in oms_webhooks.storage.models
                    continue
                self._grant_table(table, function, mode, indexed=settings_field in indexed)

    def _grant_table(
        self, table: dynamodb.Table, function: lambda_.Function, mode: str, *, indexed: bool
    ) -> None:
        if mode == c.READ:
            table.grant_read_data(function)
        elif mode == c.WRITE:
            table.grant_write_data(function)
        else:
            table.grant_read_write_data(function)
        if indexed:
            Validations.of(function.role).acknowledge(  # type: ignore[arg-type]
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{_ref(table)}.Arn>/index/*]",
                    reason="Queries go through this table's GSIs; the wildcard covers "
                    "only the indexes of this one table.",
                )
            )

    def _grant_secrets_key(self) -> None:
        """The API seals secrets (Encrypt) and resends (Decrypt); the dispatcher signs (Decrypt).

        The authorizer and the router never touch partner secrets.
        """
        key = self._storage.secrets_key
        key.grant(self.functions["Api"], "kms:Encrypt", "kms:Decrypt")
        key.grant_decrypt(self.functions["Dispatcher"])

    def _grant_operational_events(self) -> None:
        """The dispatcher and the API (a manual resend) put operational events on the bus."""
        for name in ("Dispatcher", "Api"):
            self._messaging.bus.grant_put_events_to(self.functions[name])

    def _build_recovery_access(self) -> None:
        """API → recovery queue → recoverer, which enqueues deliveries (DESIGN §10, recover)."""
        recoverer, recovery = self.functions["Recoverer"], self._messaging.recovery_queue
        recoverer.add_event_source(
            sources.SqsEventSource(
                recovery,
                batch_size=RECOVERY_QUEUE.batch_size,
                report_batch_item_failures=True,
                max_concurrency=c.RECOVERER_MAX_CONCURRENCY,
            )
        )
        # The API starts recoveries; the recoverer re-queues one to resume it.
        for function in (self.functions["Api"], recoverer):
            recovery.grant_send_messages(function)
        self._messaging.delivery_queue.grant_send_messages(recoverer)

    def _build_queue_access(self) -> None:
        router, dispatcher = self.functions["Router"], self.functions["Dispatcher"]
        ingress, delivery = self._messaging.ingress_queue, self._messaging.delivery_queue
        router.add_event_source(
            sources.SqsEventSource(
                ingress,
                batch_size=INGRESS_QUEUE.batch_size,
                report_batch_item_failures=True,
                max_concurrency=c.ROUTER_MAX_CONCURRENCY,
            )
        )
        # The consumer grant covers ReceiveMessage, DeleteMessage and
        # ChangeMessageVisibility (the dispatcher's countdown).
        dispatcher.add_event_source(
            sources.SqsEventSource(
                delivery,
                batch_size=DELIVERY_QUEUE.batch_size,
                report_batch_item_failures=True,
                max_concurrency=self._config.dispatcher_max_concurrency,
            )
        )
        # The slow lane (DESIGN §9): the same function under a second mapping
        # with its own maximum concurrency, so slow targets' attempts never
        # take the main lane's invocations.
        slow = self._messaging.delivery_slow_queue
        dispatcher.add_event_source(
            sources.SqsEventSource(
                slow,
                batch_size=DELIVERY_SLOW_QUEUE.batch_size,
                report_batch_item_failures=True,
                max_concurrency=self._config.dispatcher_slow_max_concurrency,
            )
        )
        # Router fans out; dispatcher re-sends before SQS retention expires;
        # the API re-sends manually.
        for function in (router, dispatcher, self.functions["Api"]):
            delivery.grant_send_messages(function)
        # The dispatcher moves slow targets' deliveries and re-sends held ones.
        slow.grant_send_messages(dispatcher)
        # Malformed delivery messages go straight to the DLQ (not 1,000 receives later).
        self._messaging.delivery_dead_letter_queue.grant_send_messages(dispatcher)


def _ref(table: dynamodb.Table) -> str:
    return Stack.of(table).get_logical_id(table.node.default_child)  # type: ignore[arg-type]
