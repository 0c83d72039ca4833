"""``embedrec metrics``: EMF written by the functions, forwarded to (moto) CloudWatch and printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.serialize import create_serializer

from embedrec_local.cli import main
from embedrec_local.emf import emf_metric_data, grouped_metric_data, put_metric_data_calls
from embedrec_local.provision import LocalNames
from functions.analytics import metric_names as emf
from functions.analytics import telemetry


def test_emf_from_a_log_is_forwarded_and_printed(
    aws_env: LocalNames, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a log in which the analytics hook wrote its EMF document, among other output
    telemetry.interactions_attributed(stored=12, attributed=3, clicks=2, purchases=1, revenue=399.99)
    log = tmp_path / "stack.log"
    log.write_text("INFO starting\n" + capsys.readouterr().out + "not json {\n")
    data = list(emf_metric_data(log.read_text().splitlines()))
    assert {datum["MetricName"] for _ns, datum in data} == {
        "InteractionsStored",
        "RecommendationsAttributed",
        "RecommendationClicks",
        "RecommendationPurchases",
        "RecommendationRevenue",
    }
    assert all(ns == "embedrec" for ns, _datum in data)

    # When `embedrec metrics --emf stack.log` runs
    assert main(["metrics", "--emf", str(log), "--minutes", "30"]) == 0

    # Then each metric is printed with its service dimension and sum
    out = capsys.readouterr().out
    assert "forwarded 5 EMF metric(s)" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert "InteractionsStored" in lines, out
    assert lines["InteractionsStored"][1] == "service=embedrec-analytics"
    assert float(lines["InteractionsStored"][3]) == 12
    assert float(lines["RecommendationRevenue"][3]) == pytest.approx(399.99)


def test_nothing_to_print_is_said_plainly(aws_env: LocalNames, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--namespace", "nothing-here"]) == 0
    assert "no metrics in namespace 'nothing-here'" in capsys.readouterr().out
    assert main(["metrics", "--minutes", "0"]) == 2


# --- the local stack's stdout forwarder (embedrec_local.emf): grouped values, same statistics ------------

_STATISTICS = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"]
_REQUESTS_PER_SECOND = 320  # latencies: 320 distinct values a second, so 150 + 150 + 20 per datum


def _served_request(at: datetime, request: int) -> str:
    """The EMF line the serving function prints for one request, as Powertools serialises it."""
    batch = EphemeralMetrics(namespace="embedrec", service=emf.SERVING_SERVICE)
    batch.set_timestamp(at)
    batch.add_metric(
        name=emf.RECOMMENDATION_LATENCY, unit=MetricUnit.Milliseconds, value=12.5 + request * 0.037
    )
    batch.add_metric(name=emf.CACHE_HIT if request % 3 else emf.CACHE_MISS, unit=MetricUnit.Count, value=1)
    batch.add_metric(name=emf.RECOMMENDATIONS_SERVED, unit=MetricUnit.Count, value=10 if request % 2 else 20)
    batch.add_metric(name=emf.ANN_SEARCH_TIME, unit=MetricUnit.Milliseconds, value=0.25 * (request % 40 + 1))
    return json.dumps(batch.serialize_metric_set())


def _model_load_failure(at: datetime, dimension_order: list[str]) -> str:
    """A rare two-dimension metric; the order of its dimensions does not make another series."""
    values = {"tenant_id": "t-1", "reason": "corrupt"}
    document = {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "embedrec",
                    "Dimensions": [dimension_order],
                    "Metrics": [{"Name": "ModelLoadFailures", "Unit": "Count"}],
                }
            ],
        },
        **values,
        "ModelLoadFailures": 1.0,
    }
    return json.dumps(document)


def _three_seconds_of_traffic(start: datetime) -> list[str]:
    """320 served requests a second for three seconds, a few failures, and ordinary log output."""
    lines = ["INFO starting", "not json {", "[1, 2]", '{"_aws": 3}']
    for second in range(3):
        for request in range(_REQUESTS_PER_SECOND):
            at = start + timedelta(seconds=second, milliseconds=request * 3)  # 0 to 957 ms past it
            lines.append(_served_request(at, request))
    lines.append(_model_load_failure(start, ["tenant_id", "reason"]))
    lines.append(_model_load_failure(start + timedelta(milliseconds=500), ["reason", "tenant_id"]))
    return lines


def _statistics(region: str, start: datetime) -> dict[tuple[str, frozenset[tuple[str, str]]], dict[str, Any]]:
    """GetMetricStatistics of every metric of the namespace, as ``embedrec metrics`` asks for them."""
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    found: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, Any]] = {}
    for metric in cloudwatch.list_metrics(Namespace="embedrec")["Metrics"]:
        points = cloudwatch.get_metric_statistics(
            Namespace="embedrec",
            MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"],
            StartTime=start - timedelta(minutes=1),
            EndTime=start + timedelta(minutes=1),
            Period=120,
            Statistics=_STATISTICS,
        )["Datapoints"]
        assert len(points) == 1, metric
        dimensions = frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"])
        found[(metric["MetricName"], dimensions)] = points[0]
    return found


def _compared(point: dict[str, Any]) -> dict[str, Any]:
    """The statistics and unit of a datapoint; not its timestamp, the first value's, which is truncated.

    Exact equality holds for ``_three_seconds_of_traffic``: moto adds grouped values up distinct value by
    distinct value rather than in arrival order, which its values (each latency once a second, ANN times
    in quarters of a millisecond) leave unchanged to the last bit; arbitrary floats could differ there.
    """
    return {key: point[key] for key in [*_STATISTICS, "Unit"]}


def test_grouped_forwarding_reports_the_same_statistics_with_far_fewer_datums(aws_env: LocalNames) -> None:
    # Given three seconds of serving traffic as the local stack's stdout carries it
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    lines = _three_seconds_of_traffic(start)

    # When it is forwarded one datum per value (as before) into one region, grouped into another
    per_value = [datum for _ns, datum in emf_metric_data(lines)]
    before = boto3.client("cloudwatch", region_name="us-east-1")
    for first in range(0, len(per_value), 500):
        before.put_metric_data(Namespace="embedrec", MetricData=per_value[first : first + 500])
    calls = list(put_metric_data_calls(lines))
    after = boto3.client("cloudwatch", region_name="eu-west-1")
    for namespace, data in calls:
        after.put_metric_data(Namespace=namespace, MetricData=data)

    # Then every metric has the same statistics either way, to the last bit
    expected, actual = _statistics("us-east-1", start), _statistics("eu-west-1", start)
    assert set(actual) == set(expected)
    for series, point in expected.items():
        assert _compared(actual[series]) == _compared(point), series
    latency = (emf.RECOMMENDATION_LATENCY, frozenset({("service", emf.SERVING_SERVICE)}))
    assert expected[latency]["SampleCount"] == 3 * _REQUESTS_PER_SECOND
    failures = ("ModelLoadFailures", frozenset({("tenant_id", "t-1"), ("reason", "corrupt")}))
    assert expected[failures]["SampleCount"] == 2  # one series, whichever order the dimensions came in

    # And far fewer datums travel: per second 3 latency datums (150 + 150 + 20 distinct values), one for
    # each other serving metric (hit, miss, served, ANN time), and one for both failures, in one call
    assert len(per_value) == 3 * _REQUESTS_PER_SECOND * 4 + 2
    assert [len(data) for _ns, data in calls] == [3 * (3 + 4) + 1]
    # carrying the distinct values (all 320 latencies, 40 ANN times, 1, 1, 10 and 20, the failure's 1)
    # and how often each occurred
    grouped = [datum for _ns, data in calls for datum in data]
    assert sum(len(datum["Values"]) for datum in grouped) == 3 * (_REQUESTS_PER_SECOND + 40 + 1 + 1 + 2) + 1
    assert sum(sum(datum["Counts"]) for datum in grouped) == len(per_value)


def test_a_series_with_more_than_150_distinct_values_in_a_second_is_split() -> None:
    at = int(datetime(2025, 1, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)
    lines = [
        json.dumps(
            {
                "_aws": {
                    "Timestamp": at + offset,
                    "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], "Metrics": [{"Name": "M"}]}],
                },
                "M": [float(value) for value in range(offset, offset + 100)],
            }
        )
        for offset in (0, 100, 200, 300, 0)  # 400 distinct values; the first hundred twice
    ]

    data = [datum for _ns, datum in grouped_metric_data(lines)]

    assert [len(datum["Values"]) for datum in data] == [150, 150, 100]
    assert all(len(datum["Counts"]) == len(datum["Values"]) for datum in data)
    assert sum(sum(datum["Counts"]) for datum in data) == 500
    assert {datum["Timestamp"] for datum in data} == {datetime(2025, 1, 10, 12, 0, tzinfo=UTC)}
    assert {datum["Unit"] for datum in data} == {"None"}


def _body_bytes(protocol: str, namespace: str, data: list[dict[str, Any]]) -> int:
    """Size of a PutMetricData body as botocore would send it in ``protocol``."""
    operation = boto3.client("cloudwatch", region_name="us-east-1").meta.service_model.operation_model(
        "PutMetricData"
    )
    request = create_serializer(protocol).serialize_to_request(
        {"Namespace": namespace, "MetricData": data}, operation
    )
    body = request["body"]
    return len(urlencode(body, doseq=True)) if isinstance(body, dict) else len(body)


def test_forwarding_calls_stay_within_cloudwatch_request_limits() -> None:
    # Given one second of 80 busy series, each with 150 distinct, long values and a long dimension
    at = int(datetime(2025, 1, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)
    names = [f"Metric{index:02d}" for index in range(80)]
    lines = [
        json.dumps(
            {
                "_aws": {
                    "Timestamp": at + half,
                    "CloudWatchMetrics": [
                        {"Namespace": "n", "Dimensions": [["route"]], "Metrics": [{"Name": n} for n in names]}
                    ],
                },
                "route": "/v1/recommendations?tenant=ü&k=10 " * 8,
                **{n: [1 / 3 + half + value for value in range(75)] for n in names},
            }
        )
        for half in (0, 75)
    ]

    # When the forwarder turns them into calls
    calls = list(put_metric_data_calls(lines))

    # Then no call breaks CloudWatch's limits (1 MB, 1,000 datums, 150 values a datum) in any protocol
    assert len(calls) > 1  # 80 datums fit the datum limit of one call; it is the bytes that split them
    assert sum(len(data) for _ns, data in calls) == 80
    for namespace, data in calls:
        assert len(data) <= 1000
        assert all(len(datum["Values"]) <= 150 for datum in data)
        for protocol in ("query", "json", "smithy-rpc-v2-cbor"):
            assert _body_bytes(protocol, namespace, data) < 1_000_000, protocol
    # (the same data as one call would have been refused)
    everything = [datum for _ns, data in calls for datum in data]
    assert _body_bytes("query", "n", everything) > 1_000_000
