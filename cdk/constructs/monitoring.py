"""Monitoring: the alarm topic, alarms and the three dashboards (API performance, ML engine, business).

Every alarm goes through ``add_alarm`` so that it notifies the one SNS topic; dashboards are kept by
name in ``dashboards``. The API thresholds live in ``cdk.names``; the others (the walkthrough's Step
5.3) are the constants below. Custom metrics are named in ``functions.analytics.metric_names``, the
module the emitting code uses too.

Alarms and severities (the severity is the first word after the dash in each alarm's description):

- critical: API p95 latency > 200 ms, API 5xx rate > 1 %, a promoted model that recommends no better
  than the tenant's popularity baseline (``ModelLiftOverPopularity`` < 1: its validation NDCG@10 over
  the popularity ranking's on the same split);
- warning: the fleet's recommendation cache hit rate < 80 % for three hours with traffic, training
  workflow failed or timed out, no interactions stored for 24 hours (data freshness), dead letters in
  the drop folder, in the impressions queue (served responses not yet counted) and in the events queue
  (accepted real-time events not yet stored): they wait in the dead-letter queue for 14 days, to be
  redriven once the cause is fixed.

Model quality is relative on purpose: absolute NDCG@10 depends on catalogue size and data (a healthy
sample tenant scores ≈ 0.08), so a fixed 0.30 fired on every good promotion. The absolute NDCG stays on
the dashboard. The response cache lives in each serving container, so every cold container starts at
0 %: the alarm reads hits and misses summed over all containers per hour, only when the hour had at
least ``CACHE_MIN_LOOKUPS_PER_HOUR`` lookups, and only after three such hours.

Data freshness is measured as "hours without a stored interaction", platform-wide: every fresh
interaction batch emits ``InteractionsStored`` (API and drop folder alike), and the alarm fires after
24 consecutive hourly periods without one (missing data counts as breaching). A per-tenant freshness
would need a scheduled job reading each tenant's newest upload; it is not built.
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
from functions.analytics import metric_names as emf

PERIOD = Duration.minutes(5)
HOUR = Duration.hours(1)
MODEL_LIFT_FLOOR = 1.0  # a promoted model must beat "most popular" on its own validation split
CACHE_HIT_RATE_MIN_PERCENT = 80
CACHE_MIN_LOOKUPS_PER_HOUR = 1000  # below this the hour's hit rate is mostly cold containers
DATA_FRESHNESS_HOURS = 24


def custom_metric(
    name: str, service: str, statistic: str, *, period: Duration = PERIOD, label: str | None = None
) -> cloudwatch.Metric:
    """One of embedrec's own (EMF) metrics: namespace ``embedrec``, dimension ``service``."""
    return cloudwatch.Metric(
        namespace=emf.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=label,
    )


def _per_served(
    name: str, numerator: cloudwatch.IMetric, served: cloudwatch.IMetric, label: str
) -> cloudwatch.MathExpression:
    """100 × ``numerator`` / items served (0 where nothing was served); ``name`` is the numerator's id."""
    return cloudwatch.MathExpression(
        expression=f"IF(served > 0, 100 * {name} / served, 0)",
        using_metrics={name: numerator, "served": served},
        label=label,
        period=PERIOD,
    )


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
        recommendation_latency = custom_metric(
            emf.RECOMMENDATION_LATENCY, emf.SERVING_SERVICE, "p95", label="recommendations p95 (ms)"
        )
        dashboard = cloudwatch.Dashboard(self, "ApiDashboard", default_interval=Duration.hours(6))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests (per 5 minutes)", left=[requests], width=8),
            cloudwatch.GraphWidget(
                title="Latency p95 (ms)",
                left=[latency, recommendation_latency],
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
        """Messages parked in a dead-letter queue (something was not ingested or not counted)."""
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

    def monitor_ml_engine(self, state_machine: sfn.StateMachine) -> None:
        """Model quality and cache hit rate alarms, and the ML engine dashboard.

        Training failures alarm through ``monitor_workflow`` (the workflow ends in a Fail state after
        RecordFailure, so ``ExecutionsFailed`` counts every failed training); the dashboard shows both.
        """
        ndcg = custom_metric(emf.MODEL_NDCG10, emf.PROMOTE_SERVICE, "Minimum", period=HOUR)
        lift = custom_metric(emf.MODEL_LIFT, emf.PROMOTE_SERVICE, "Minimum", period=HOUR)
        hits = custom_metric(emf.CACHE_HIT, emf.SERVING_SERVICE, "Sum", period=HOUR)
        misses = custom_metric(emf.CACHE_MISS, emf.SERVING_SERVICE, "Sum", period=HOUR)
        hit_rate = cloudwatch.MathExpression(
            expression=f"IF(hits + misses >= {CACHE_MIN_LOOKUPS_PER_HOUR}, "
            "100 * hits / (hits + misses), 100)",
            using_metrics={"hits": hits, "misses": misses},
            label="cache hit rate, all containers (%)",
            period=HOUR,
        )
        self.add_alarm(
            "model-lift",
            cloudwatch.Alarm(
                self,
                "ModelLiftOverPopularity",
                alarm_description="Model quality - critical: a promoted model recommends no better than "
                "the tenant's popularity baseline (validation NDCG@10 / popularity NDCG@10 < "
                f"{MODEL_LIFT_FLOOR:g})",
                metric=lift,
                threshold=MODEL_LIFT_FLOOR,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=1,
                # emitted once per promotion: between promotions the alarm keeps its state
                treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            ),
        )
        self.add_alarm(
            "cache-hit-rate",
            cloudwatch.Alarm(
                self,
                "CacheHitRate",
                alarm_description=f"Cache - warning: recommendation cache hit rate over all serving "
                f"containers below {CACHE_HIT_RATE_MIN_PERCENT} % for 3 hours (hours with at least "
                f"{CACHE_MIN_LOOKUPS_PER_HOUR} lookups)",
                metric=hit_rate,
                threshold=CACHE_HIT_RATE_MIN_PERCENT,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        )
        dashboard = cloudwatch.Dashboard(self, "MlEngineDashboard", default_interval=Duration.days(7))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Model quality: lift over popularity (left) and NDCG@10 (right) of promoted models",
                left=[lift],
                right=[ndcg],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=MODEL_LIFT_FLOOR)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Cache hit rate (%)",
                left=[hit_rate],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=CACHE_HIT_RATE_MIN_PERCENT)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="ANN search time p95 (ms)",
                left=[custom_metric(emf.ANN_SEARCH_TIME, emf.SERVING_SERVICE, "p95")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Training jobs",
                left=[
                    state_machine.metric_started(period=HOUR, statistic="Sum"),
                    state_machine.metric_succeeded(period=HOUR, statistic="Sum"),
                    state_machine.metric_failed(period=HOUR, statistic="Sum"),
                    custom_metric(emf.TRAINING_FAILURES, emf.RECORD_FAILURE_SERVICE, "Sum", period=HOUR),
                ],
                right=[custom_metric(emf.TRAINING_DURATION, emf.EVALUATE_SERVICE, "Maximum", period=HOUR)],
                width=12,
            ),
        )
        self.dashboards["ml-engine"] = dashboard

    def monitor_business(self) -> None:
        """The data freshness alarm and the business dashboard (served, CTR, conversion, revenue)."""
        served = custom_metric(emf.RECOMMENDATIONS_SERVED, emf.SERVING_SERVICE, "Sum", label="served")
        clicks = custom_metric(emf.RECOMMENDATION_CLICKS, emf.ANALYTICS_SERVICE, "Sum", label="clicks")
        purchases = custom_metric(
            emf.RECOMMENDATION_PURCHASES, emf.ANALYTICS_SERVICE, "Sum", label="purchases"
        )
        revenue = custom_metric(emf.RECOMMENDATION_REVENUE, emf.ANALYTICS_SERVICE, "Sum", label="revenue")
        stored = custom_metric(emf.INTERACTIONS_STORED, emf.ANALYTICS_SERVICE, "Sum", period=HOUR)
        self.add_alarm(
            "data-freshness",
            cloudwatch.Alarm(
                self,
                "DataFreshness",
                alarm_description=f"Data freshness - warning: no interactions stored for "
                f"{DATA_FRESHNESS_HOURS} hours",
                metric=stored,
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=DATA_FRESHNESS_HOURS,
                datapoints_to_alarm=DATA_FRESHNESS_HOURS,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
        )
        dashboard = cloudwatch.Dashboard(self, "BusinessDashboard", default_interval=Duration.days(7))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Recommendations served (items)", left=[served], width=12),
            cloudwatch.GraphWidget(
                title="Click-through and conversion rate (% of items served)",
                left=[
                    _per_served("clicks", clicks, served, "click-through rate (%)"),
                    _per_served("purchases", purchases, served, "conversion rate (%)"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Revenue from recommendations", left=[revenue], width=12),
            cloudwatch.GraphWidget(
                title="Interactions stored and attributed",
                left=[
                    stored,
                    custom_metric(emf.RECOMMENDATIONS_ATTRIBUTED, emf.ANALYTICS_SERVICE, "Sum", period=HOUR),
                ],
                width=12,
            ),
        )
        self.dashboards["business"] = dashboard
