"""Monitoring: the alarm topic, alarms and dashboards (issue 6 extends this construct).

Every alarm goes through ``add_alarm`` so that it notifies the one SNS topic; dashboards are kept by
name in ``dashboards``. Thresholds live in ``cdk.names``.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk import names

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    """One alarm topic (KMS-encrypted, TLS-only) and the alarms/dashboards that feed it."""

    def __init__(self, scope: Construct, construct_id: str, *, alarm_email: str | None = None) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="embedrec alarm topic encryption (CloudWatch alarms may publish)",
            enable_key_rotation=True,
        )
        # Alarms cannot publish to a topic encrypted with the AWS-managed SNS key: CloudWatch needs
        # a customer key that lets it encrypt.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name="embedrec alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.dashboards: dict[str, cloudwatch.Dashboard] = {}
        self._action = cw_actions.SnsAction(self.alarm_topic)

    def add_alarm(self, name: str, alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
        """Register ``alarm`` under ``name`` and send its ALARM and OK transitions to the topic."""
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
        return alarm

    def monitor_api(self, stage: apigwv2.HttpStage) -> None:
        """p95 latency and 5xx error rate of the HTTP API, and the API performance dashboard."""
        latency = stage.metric_latency(statistic="p95", period=PERIOD)
        requests = stage.metric_count(statistic="Sum", period=PERIOD)
        server_errors = stage.metric_server_error(statistic="Sum", period=PERIOD)
        error_rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"errors": server_errors, "requests": requests},
            label="5xx error rate (%)",
            period=PERIOD,
        )
        self.add_alarm(
            "api-latency-p95",
            cloudwatch.Alarm(
                self,
                "ApiLatencyP95",
                alarm_description=f"API p95 latency above {names.API_LATENCY_P95_MS} ms (critical)",
                metric=latency,
                threshold=names.API_LATENCY_P95_MS,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        )
        self.add_alarm(
            "api-5xx-rate",
            cloudwatch.Alarm(
                self,
                "Api5xxRate",
                alarm_description=f"API 5xx error rate above {names.API_ERROR_RATE_PERCENT} % (critical)",
                metric=error_rate,
                threshold=names.API_ERROR_RATE_PERCENT,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        )
        dashboard = cloudwatch.Dashboard(self, "ApiDashboard", default_interval=Duration.hours(6))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests", left=[requests], width=8),
            cloudwatch.GraphWidget(
                title="Latency p95 (ms)",
                left=[latency],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=names.API_LATENCY_P95_MS)],
                width=8,
            ),
            cloudwatch.GraphWidget(title="5xx error rate (%)", left=[error_rate], width=8),
        )
        self.dashboards["api"] = dashboard

    def monitor_workflow(self, state_machine: sfn.StateMachine) -> None:
        """Failed, timed-out or aborted training workflow executions (warning: serving is untouched)."""
        for name, metric in (
            ("failed", state_machine.metric_failed(period=PERIOD, statistic="Sum")),
            ("timed-out", state_machine.metric_timed_out(period=PERIOD, statistic="Sum")),
        ):
            self.add_alarm(
                f"training-workflow-{name}",
                cloudwatch.Alarm(
                    self,
                    f"TrainingWorkflow{name.title().replace('-', '')}",
                    alarm_description=f"A training workflow execution {name.replace('-', ' ')} (warning)",
                    metric=metric,
                    threshold=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                ),
            )

    def monitor_dead_letters(self, name: str, queue: sqs.IQueue) -> None:
        """Messages parked in a dead-letter queue (something was not ingested)."""
        self.add_alarm(
            f"{name}-dead-letters",
            cloudwatch.Alarm(
                self,
                f"{name.title().replace('-', '')}DeadLetters",
                alarm_description=f"{name}: messages in the dead-letter queue (warning)",
                metric=queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        )
