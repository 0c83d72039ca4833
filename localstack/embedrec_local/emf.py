"""Embedded-metric-format (EMF) lines become CloudWatch metrics locally, as CloudWatch Logs does in AWS.

Powertools writes each flush of metrics as one JSON line on stdout; in AWS, CloudWatch Logs extracts
the metrics from the function's log. The local stack swaps that substrate: its processes' stdout is
wrapped so EMF lines still print and are also sent to the embedded CloudWatch (moto) by
``PutMetricData`` from a background thread, once a second. ``embedrec metrics`` then reads them.

Each second's values are grouped before they are sent: every value of one metric series (namespace,
name, dimensions, unit) within the same second travels in one datum as ``Values`` (the distinct
values) and ``Counts`` (how often each occurred), instead of one datum per value. moto, on the same
cores as the functions, expands them back into the same data points, so the statistics are unchanged
while it parses a few datums a second rather than thousands.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple, TextIO
from urllib.parse import quote

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_FLUSH_SECONDS = 1.0
_MAX_DATA_PER_CALL = 500  # CloudWatch accepts 1,000 datums per call; half leaves room
_MAX_VALUES_PER_DATUM = 150  # CloudWatch's limit on a datum's distinct Values
# CloudWatch rejects a PutMetricData body over 1 MB. Sizes are estimated for the bulkiest protocol
# botocore may speak (query: a ``MetricData.member.N.Values.member.M=`` key per number), and a call
# is closed at half the limit so that the estimate never has to be exact.
_MAX_BYTES_PER_CALL = 512 * 1024
_QUERY_KEY_BYTES = len("&MetricData.member.1000.Dimensions.member.30.Value=")
_NUMBER_BYTES = 25  # the longest repr of a float ("-1.2345678901234567e-100")
_TIMESTAMP_BYTES = 40  # "2025-01-10T12%3A00%3A00.000000Z", with room


class _MetricValues(NamedTuple):
    """The values of one metric, for one of its dimension sets, in one EMF document."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # (name, value) in the document's order
    timestamp: datetime
    unit: str
    values: list[Any]  # as written (numbers, in a valid document); never empty


# namespace, metric name, dimensions (a set: their order does not make another series), unit, second
_SeriesSecond = tuple[str, str, frozenset[tuple[str, str]], str, datetime]


def _emf_metric_values(lines: Iterable[str]) -> Iterator[_MetricValues]:
    """The metrics of every EMF document among ``lines``; other lines are skipped."""
    for line in lines:
        try:
            document = json.loads(line)
        except ValueError:
            continue  # not EMF: ordinary log output
        if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
            continue
        timestamp = datetime.fromtimestamp(document["_aws"].get("Timestamp", 0) / 1000, tz=UTC)
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive.get("Metrics", []):
                raw = document.get(metric["Name"])
                values = [v for v in (raw if isinstance(raw, list) else [raw]) if v is not None]
                if not values:
                    continue  # nothing to send, so its namespace and dimensions are never read (as before)
                for dimension_names in dimension_sets:
                    yield _MetricValues(
                        directive["Namespace"],
                        metric["Name"],
                        tuple((d, str(document[d])) for d in dimension_names),
                        timestamp,
                        metric.get("Unit", "None"),
                        values,
                    )


def _dimension_list(dimensions: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in dimensions]


def emf_metric_data(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) for every value of every metric of every EMF document."""
    for metric in _emf_metric_values(lines):
        for value in metric.values:
            yield (
                metric.namespace,
                {
                    "MetricName": metric.metric_name,
                    "Dimensions": _dimension_list(metric.dimensions),
                    "Timestamp": metric.timestamp,
                    "Value": float(value),
                    "Unit": metric.unit,
                },
            )


def grouped_metric_data(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, datum) with all the values of one series and second as ``Values`` and ``Counts``.

    A series is a namespace, metric name, set of dimensions (in any order) and unit; timestamps are
    truncated to the second, CloudWatch's finest resolution. A series with more than 150 distinct
    values in a second is sent as several datums.
    """
    series: dict[_SeriesSecond, tuple[_MetricValues, dict[float, int]]] = {}
    for metric in _emf_metric_values(lines):
        second = metric.timestamp.replace(microsecond=0)
        key = (metric.namespace, metric.metric_name, frozenset(metric.dimensions), metric.unit, second)
        if key not in series:
            series[key] = (metric._replace(timestamp=second), {})
        counts = series[key][1]
        for value in map(float, metric.values):
            counts[value] = counts.get(value, 0) + 1
    for first, counts in series.values():
        distinct = list(counts.items())
        for start in range(0, len(distinct), _MAX_VALUES_PER_DATUM):
            chunk = distinct[start : start + _MAX_VALUES_PER_DATUM]
            yield (
                first.namespace,
                {
                    "MetricName": first.metric_name,
                    "Dimensions": _dimension_list(first.dimensions),
                    "Timestamp": first.timestamp,
                    "Values": [value for value, _count in chunk],
                    "Counts": [float(count) for _value, count in chunk],
                    "Unit": first.unit,
                },
            )


def _estimated_bytes(datum: dict[str, Any]) -> int:
    """An upper bound of the datum's share of a PutMetricData body, in any protocol botocore speaks."""
    texts = [datum["MetricName"], datum["Unit"]]
    texts += [text for dimension in datum["Dimensions"] for text in (dimension["Name"], dimension["Value"])]
    numbers = len(datum.get("Values", ())) + len(datum.get("Counts", ())) + ("Value" in datum)
    return (
        (len(texts) + numbers + 1) * _QUERY_KEY_BYTES
        + sum(len(quote(text, safe="")) for text in texts)  # percent-encoding at worst
        + numbers * _NUMBER_BYTES
        + _TIMESTAMP_BYTES
    )


def put_metric_data_calls(lines: Iterable[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(Namespace, MetricData) of each PutMetricData call that forwards the EMF among ``lines``.

    The values are grouped (``grouped_metric_data``) and each call stays within CloudWatch's limits
    on datums and bytes, so that no call is rejected for its size.
    """
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for namespace, datum in grouped_metric_data(lines):
        by_namespace.setdefault(namespace, []).append(datum)
    for namespace, data in by_namespace.items():
        call: list[dict[str, Any]] = []
        call_bytes = 0
        for datum in data:
            size = _estimated_bytes(datum)
            if call and (len(call) == _MAX_DATA_PER_CALL or call_bytes + size > _MAX_BYTES_PER_CALL):
                yield namespace, call
                call, call_bytes = [], 0
            call.append(datum)
            call_bytes += size
        if call:
            yield namespace, call


class EmfForwardingStream:
    """A text stream that writes through and forwards the EMF lines it sees to CloudWatch."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._partial = ""
        self._lines: queue.Queue[str] = queue.Queue()
        self._cloudwatch = boto3.client("cloudwatch")
        threading.Thread(target=self._forward_forever, name="emf-forwarder", daemon=True).start()

    def write(self, text: str) -> int:
        """Write through; queue each complete line that looks like EMF."""
        written = self._target.write(text)
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            if line.startswith('{"_aws"'):
                self._lines.put(line)
        return written

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _forward_forever(self) -> None:
        while True:
            lines = [self._lines.get()]
            threading.Event().wait(_FLUSH_SECONDS)  # gather a second's worth into few calls and datums
            while not self._lines.empty():
                lines.append(self._lines.get_nowait())
            for namespace, data in put_metric_data_calls(lines):
                try:
                    self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
                except (BotoCoreError, ClientError) as exc:  # metrics are best effort locally
                    self._target.write(f"embedrec local: metrics not forwarded: {exc}\n")


def forward_stdout_metrics() -> None:
    """Wrap this process's stdout (idempotent)."""
    if not isinstance(sys.stdout, EmfForwardingStream):
        sys.stdout = EmfForwardingStream(sys.stdout)  # type: ignore[assignment]
