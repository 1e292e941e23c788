"""The REST API: ``/whisperer/{proxy+}`` behind the REQUEST authorizer, public docs."""

from __future__ import annotations

import json
from typing import Any, Final

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from oms_webhooks import limits
from oms_webhooks_infra import constants as c

#: API Gateway's payload limit (10 MB): larger requests get REQUEST_TOO_LARGE.
MAX_PAYLOAD_BYTES: Final = limits.API_GATEWAY_MAX_PAYLOAD_BYTES

#: API Gateway's own refusals (Gateway Responses): type → (status, JSON body).
#: The bodies have the API's error shape ``{"code", "detail", "errors"}``
#: (DESIGN §3); the local stack's gateway (``oms_webhooks_local.gateway_responses``)
#: answers with the same bodies, which ``tests/infra/test_api.py`` checks.
GATEWAY_RESPONSES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "UNAUTHORIZED": ("401", c.UNAUTHORIZED_BODY),
    "ACCESS_DENIED": ("403", c.ACCESS_DENIED_BODY),
    "REQUEST_TOO_LARGE": (
        "413",
        {
            "code": "request_too_large",
            "detail": f"The request is larger than API Gateway's {MAX_PAYLOAD_BYTES} byte limit.",
            "errors": {},
        },
    ),
}


class ApiConstruct(Construct):
    """API Gateway REST API over the api function.

    Attributes:
        rest_api: the API (stage ``prod``: throttled, access-logged, traced).
        authorizer: the REQUEST authorizer (``Authorization`` header, cached ≤ 60 s).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        api_function: lambda_.IFunction,
        authorizer_function: lambda_.IFunction,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.rest_api = self._build_rest_api(log_retention)
        self.authorizer = self._build_authorizer(authorizer_function)
        self._build_routes(api_function)
        self._build_gateway_responses()
        self._acknowledge()
        CfnOutput(
            self, "ApiUrl", value=f"{self.rest_api.url}{c.API_PREFIX}/", description="API base URL"
        ).override_logical_id("ApiUrl")

    def _build_rest_api(self, log_retention: logs.RetentionDays) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        return apigw.RestApi(
            self,
            "RestApi",
            description=f"{c.SERVICE_NAME}: the whisperer webhook subscription API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logs need the account's API Gateway → CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=c.API_STAGE_NAME,
                throttling_rate_limit=c.THROTTLING_RATE_LIMIT,
                throttling_burst_limit=c.THROTTLING_BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )

    def _build_authorizer(self, function: lambda_.IFunction) -> apigw.RequestAuthorizer:
        # The function allows the whole API, so one cached policy serves every
        # route; the cache TTL is the delay before a revoked token is refused.
        return apigw.RequestAuthorizer(
            self,
            "TokenAuthorizer",
            handler=function,
            identity_sources=[apigw.IdentitySource.header(c.AUTHORIZATION_HEADER)],
            results_cache_ttl=Duration.seconds(c.AUTHORIZER_CACHE_TTL_SECONDS),
        )

    def _build_routes(self, function: lambda_.IFunction) -> None:
        integration = apigw.LambdaIntegration(function, proxy=True)
        prefix = self.rest_api.root.add_resource(c.API_PREFIX)
        prefix.add_proxy(
            any_method=False,
            default_integration=integration,
        ).add_method(
            "ANY",
            integration,
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
        )
        for path in c.PUBLIC_PATHS:
            resource = prefix.add_resource(path)
            self._add_public_get(resource, integration)
            if path in c.PUBLIC_TREES:
                self._add_public_get(resource.add_resource("{proxy+}"), integration)

    def _add_public_get(
        self, resource: apigw.IResource, integration: apigw.LambdaIntegration
    ) -> None:
        method = resource.add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.NONE
        )
        Validations.of(method).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="The OpenAPI document and its viewer are public by design.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="The OpenAPI document and its viewer are public by design.",
            ),
        )

    def _build_gateway_responses(self) -> None:
        """JSON bodies in the API's error shape for API Gateway's own refusals."""
        for name, (status, body) in GATEWAY_RESPONSES.items():
            self.rest_api.add_gateway_response(
                "".join(part.capitalize() for part in name.split("_")),
                type=getattr(apigw.ResponseType, name),
                status_code=status,
                response_headers={"Content-Type": "'application/json'"},
                templates={"application/json": json.dumps(body)},
            )

    def _acknowledge(self) -> None:
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="The api function validates every body (pydantic) and answers in the "
                "whisperer API's JSON error shape; a gateway validator would not.",
            ),
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="No WAF by default: partners authenticate with tokens and the stage "
                "is throttled; attach a web ACL per deployment if required.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Partners authenticate with whisperer API tokens through the REQUEST "
                "authorizer (API compatibility), not Cognito.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="The account-level role API Gateway needs to write access and "
                "execution logs; AWS's managed policy is the documented one.",
            ),
        )
