"""The walkthrough's alerts (Step 5.3) as CloudWatch alarms, and the three dashboards (Step 5.2)."""

from __future__ import annotations

from typing import Any

import pytest

from cdk import names
from cdk.constructs import monitoring
from functions.analytics import metric_names as emf
from functions.common import deployment
from tests.infrastructure.helpers import Synth, render


def _alarm(synth: Synth, name: str) -> dict[str, Any]:
    alarm = synth.stack.monitoring.alarms[name]
    properties: dict[str, Any] = synth.resources[synth.logical_id(alarm)]["Properties"]
    return properties


def _metric_stats(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric name → its MetricStat, for a metric-math alarm."""
    return {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


def _dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in metric["Dimensions"]}


# The seed's six alerts → the alarm carrying each (three existed before issue 6 and are reused).
SEED_ALERTS = {
    "Recommendation latency > 200ms (critical)": ("api-latency-p95", 200, "GreaterThanThreshold"),
    "Error rate > 1% (critical)": ("api-5xx-rate", 1, "GreaterThanThreshold"),
    # relative to the tenant's popularity baseline, not an absolute NDCG (see test below)
    "Model quality drops (critical)": ("model-lift", 1.0, "LessThanThreshold"),
    "Cache hit rate < 80% (warning)": ("cache-hit-rate", 80, "LessThanThreshold"),
    "Training job failures (warning)": ("training-workflow-failed", 1, "GreaterThanOrEqualToThreshold"),
    "Data freshness > 24 hours (warning)": ("data-freshness", 1, "LessThanThreshold"),
}


@pytest.mark.parametrize("alert", list(SEED_ALERTS))
def test_each_seed_alert_has_an_alarm_with_its_threshold_and_the_topic_as_action(
    synth: Synth, alert: str
) -> None:
    name, threshold, comparison = SEED_ALERTS[alert]
    alarm = _alarm(synth, name)
    topic = {"Ref": synth.logical_id(synth.stack.monitoring.alarm_topic)}
    assert alarm["Threshold"] == pytest.approx(threshold)
    assert alarm["ComparisonOperator"] == comparison
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    severity = "critical" if "critical" in alert else "warning"
    assert severity in alarm["AlarmDescription"]


def test_model_quality_alarm_is_the_lift_over_the_popularity_baseline(synth: Synth) -> None:
    alarm = _alarm(synth, "model-lift")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("embedrec", emf.MODEL_LIFT)
    assert _dimensions(alarm) == {"service": names.service_name("promote-model")}
    assert alarm["Statistic"] == "Minimum"
    assert alarm["Threshold"] == monitoring.MODEL_LIFT_FLOOR == 1.0
    assert alarm["TreatMissingData"] == "ignore"  # keeps its state between promotions
    # no alarm on an absolute NDCG: a healthy sample tenant scores about 0.08
    absolute = [
        a
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == emf.MODEL_NDCG10
    ]
    assert absolute == []


def test_cache_hit_rate_alarm_is_the_fleets_hourly_hits_over_lookups_with_traffic(synth: Synth) -> None:
    alarm = _alarm(synth, "cache-hit-rate")
    stats = _metric_stats(alarm)
    assert set(stats) == {emf.CACHE_HIT, emf.CACHE_MISS}
    for stat in stats.values():
        # summed over every container (one dimension: the function, not the container), per hour
        assert stat["Metric"]["Namespace"] == "embedrec" and stat["Stat"] == "Sum"
        assert stat["Period"] == 3600
        assert _dimensions(stat["Metric"]) == {"service": names.service_name(deployment.SERVING.name)}
    (expression,) = [query["Expression"] for query in alarm["Metrics"] if "Expression" in query]
    assert "100 * hits / (hits + misses)" in expression
    assert f"hits + misses >= {monitoring.CACHE_MIN_LOOKUPS_PER_HOUR}" in expression
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"]) == (
        3,
        3,
        "notBreaching",
    )


def test_data_freshness_alarm_is_a_day_without_stored_interactions(synth: Synth) -> None:
    alarm = _alarm(synth, "data-freshness")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("embedrec", emf.INTERACTIONS_STORED)
    assert _dimensions(alarm) == {"service": emf.ANALYTICS_SERVICE}
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 3600)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 24
    assert alarm["TreatMissingData"] == "breaching"


def test_training_failures_alarm_is_reused_not_duplicated(synth: Synth) -> None:
    failed = [
        a
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") in ("ExecutionsFailed", emf.TRAINING_FAILURES)
    ]
    assert len(failed) == 1
    latency = [
        a
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Latency"
    ]
    assert len(latency) == 1


def test_three_dashboards_show_the_walkthroughs_figures(synth: Synth) -> None:
    dashboards = synth.stack.monitoring.dashboards
    assert set(dashboards) == {"api", "ml-engine", "business"}
    assert len(synth.of_type("AWS::CloudWatch::Dashboard")) == 3
    bodies = {
        key: render(synth.resources[synth.logical_id(dashboard)]["Properties"]["DashboardBody"])
        for key, dashboard in dashboards.items()
    }
    expected = {
        "api": ['"Count"', '"Latency"', '"5xx"', '"p95"', emf.RECOMMENDATION_LATENCY],
        "ml-engine": [
            emf.MODEL_NDCG10,
            emf.MODEL_LIFT,
            emf.CACHE_HIT,
            emf.CACHE_MISS,
            emf.ANN_SEARCH_TIME,
            "ExecutionsFailed",
            emf.TRAINING_FAILURES,
        ],
        "business": [
            emf.RECOMMENDATIONS_SERVED,
            emf.RECOMMENDATION_CLICKS,
            emf.RECOMMENDATION_PURCHASES,
            emf.RECOMMENDATION_REVENUE,
            emf.INTERACTIONS_STORED,
        ],
    }
    for key, needles in expected.items():
        for needle in needles:
            assert needle in bodies[key], (key, needle)


def test_metric_services_are_the_functions_service_names() -> None:
    assert emf.SERVING_SERVICE == names.service_name(deployment.SERVING.name)
    assert emf.PROMOTE_SERVICE == names.service_name("promote-model")
    assert emf.RECORD_FAILURE_SERVICE == names.service_name("record-failure")
    assert {spec.name for spec in deployment.PIPELINE_STEPS} >= {"promote-model", "record-failure"}
    assert emf.NAMESPACE == names.METRICS_NAMESPACE
