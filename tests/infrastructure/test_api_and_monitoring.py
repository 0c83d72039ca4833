"""HTTP API routing/throttling/logging, and alarms wired to the SNS topic."""

from __future__ import annotations

from typing import Any

from cdk import names
from functions.common import deployment
from functions.common.routes import SERVING_ROUTES
from tests.infrastructure.helpers import Synth, function_logical_id, render


def _integration_targets(synth: Synth) -> dict[str, str]:
    """Integration logical id → the handler of the function it invokes (directly or via an alias)."""
    handlers = {
        logical_id: props["Properties"].get("Handler", "")
        for logical_id, props in synth.of_type("AWS::Lambda::Function").items()
    }
    aliases = {
        logical_id: alias["Properties"]["FunctionName"]["Ref"]
        for logical_id, alias in synth.of_type("AWS::Lambda::Alias").items()
    }
    targets = {}
    for logical_id, integration in synth.of_type("AWS::ApiGatewayV2::Integration").items():
        uri = integration["Properties"]["IntegrationUri"]
        function = aliases[uri["Ref"]] if "Ref" in uri else uri["Fn::GetAtt"][0]
        targets[logical_id] = handlers[function]
    return targets


def _routes(synth: Synth) -> dict[str, str]:
    """Route key → handler of the function behind it."""
    targets = _integration_targets(synth)
    routes = {}
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        target = render(route["Properties"]["Target"])  # "integrations/<IntegrationId>"
        integration_id = target.split("<")[1].rstrip(">")
        routes[route["Properties"]["RouteKey"]] = targets[integration_id]
    return routes


def test_serving_paths_go_to_serving_and_the_rest_to_api(synth: Synth) -> None:
    expected: dict[str, str] = {
        f"ANY {path}": deployment.SERVING.handler for path in dict.fromkeys(p for _m, p in SERVING_ROUTES)
    }
    expected["ANY /api/{proxy+}"] = deployment.API.handler
    expected["GET /docs"] = deployment.API.handler
    expected["GET /openapi.json"] = deployment.API.handler
    assert _routes(synth) == expected


def test_snap_start_functions_are_invoked_through_their_alias(synth: Synth) -> None:
    uris = [
        i["Properties"]["IntegrationUri"] for i in synth.of_type("AWS::ApiGatewayV2::Integration").values()
    ]
    serving_id = function_logical_id(synth, deployment.SERVING.handler)
    assert deployment.SERVING.snap_start
    assert {"Fn::GetAtt": [serving_id, "Arn"]} not in uris  # $LATEST is never restored from a snapshot
    assert {"Ref": synth.logical_id(synth.stack.api.serving_alias)} in uris


def test_stage_is_throttled_and_access_logged(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    properties: dict[str, Any] = stage["Properties"]
    assert properties["StageName"] == "$default"
    assert set(properties["DefaultRouteSettings"]) == {"ThrottlingBurstLimit", "ThrottlingRateLimit"}
    assert "$context.requestId" in properties["AccessLogSettings"]["Format"]
    assert "DestinationArn" in properties["AccessLogSettings"]


def test_every_alarm_notifies_the_topic(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.monitoring.alarm_topic)}
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == len(synth.stack.monitoring.alarms) >= 3
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [topic]
        assert alarm["Properties"]["OKActions"] == [topic]


def _alarm(synth: Synth, name: str) -> dict[str, Any]:
    alarm = synth.stack.monitoring.alarms[name]
    properties: dict[str, Any] = synth.resources[synth.logical_id(alarm)]["Properties"]
    return properties


def test_api_latency_alarm_is_p95_above_200_ms(synth: Synth) -> None:
    alarm = _alarm(synth, "api-latency-p95")
    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert alarm["MetricName"] == "Latency"
    assert alarm["ExtendedStatistic"] == "p95"
    assert alarm["Threshold"] == 200
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    dimensions = {item["Name"]: item["Value"] for item in alarm["Dimensions"]}
    assert dimensions["ApiId"] == {"Ref": synth.logical_id(synth.stack.api.http_api)}


def test_api_5xx_alarm_is_an_error_rate_above_one_percent(synth: Synth) -> None:
    alarm = _alarm(synth, "api-5xx-rate")
    assert alarm["Threshold"] == names.API_ERROR_RATE_PERCENT == 1
    metrics = {query.get("MetricStat", {}).get("Metric", {}).get("MetricName") for query in alarm["Metrics"]}
    assert {"5xx", "Count"} <= metrics
    (expression,) = [query for query in alarm["Metrics"] if "Expression" in query]
    assert "errors / requests" in expression["Expression"]


def test_failed_training_executions_alarm(synth: Synth) -> None:
    alarm = _alarm(synth, "training-workflow-failed")
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["MetricName"] == "ExecutionsFailed"
    assert alarm["Threshold"] == 1
    assert alarm["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": synth.logical_id(synth.stack.pipeline.state_machine)}}
    ]


def test_alarm_topic_is_encrypted_and_subscribed(synth: Synth) -> None:
    topic = synth.resources[synth.logical_id(synth.stack.monitoring.alarm_topic)]["Properties"]
    assert "KmsMasterKeyId" in topic
    synth.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "alarms@example.com"}
    )


def test_serving_function_is_behind_the_recommendations_route(synth: Synth) -> None:
    assert _routes(synth)["ANY /api/v1/recommendations"] == deployment.SERVING.handler
    assert function_logical_id(synth, deployment.SERVING.handler)


def test_console_is_served_from_s3_and_everything_else_from_the_api_behind_one_distribution(
    synth: Synth,
) -> None:
    distributions = synth.template.find_resources("AWS::CloudFront::Distribution")
    assert len(distributions) == 1
    config = next(iter(distributions.values()))["Properties"]["DistributionConfig"]
    console = {b["PathPattern"]: b for b in config["CacheBehaviors"]}["/console/*"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert "S3OriginConfig" in origins[console["TargetOriginId"]]
    default_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert default_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    deployments = synth.template.find_resources("Custom::CDKBucketDeployment")
    assert [d["Properties"]["DestinationBucketKeyPrefix"] for d in deployments.values()] == ["console/"]
