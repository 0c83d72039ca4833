"""Embedded-metric-format (EMF) lines become CloudWatch metrics locally, as CloudWatch Logs does in AWS.

Powertools writes each flush of metrics as one JSON line on stdout; in AWS, CloudWatch Logs extracts
the metrics from the function's log. The local stack swaps that substrate: its processes' stdout is
wrapped so EMF lines still print and are also sent to the embedded CloudWatch (moto) by
``PutMetricData`` from a background thread, once a second. ``embedrec metrics`` then reads them.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import product
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_FLUSH_SECONDS = 1.0
_MAX_DATA_PER_CALL = 500


def emf_metric_data(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) for every metric of every EMF document among ``lines``."""
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
                for dimensions, value in product(dimension_sets, values):
                    yield (
                        directive["Namespace"],
                        {
                            "MetricName": metric["Name"],
                            "Dimensions": [{"Name": d, "Value": str(document[d])} for d in dimensions],
                            "Timestamp": timestamp,
                            "Value": float(value),  # one datum per value: moto's statistics skip "Values"
                            "Unit": metric.get("Unit", "None"),
                        },
                    )


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
            threading.Event().wait(_FLUSH_SECONDS)  # gather a second's worth into few calls
            while not self._lines.empty():
                lines.append(self._lines.get_nowait())
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            for namespace, datum in emf_metric_data(lines):
                by_namespace.setdefault(namespace, []).append(datum)
            for namespace, data in by_namespace.items():
                for start in range(0, len(data), _MAX_DATA_PER_CALL):
                    try:
                        self._cloudwatch.put_metric_data(
                            Namespace=namespace, MetricData=data[start : start + _MAX_DATA_PER_CALL]
                        )
                    except (BotoCoreError, ClientError) as exc:  # metrics are best effort locally
                        self._target.write(f"embedrec local: metrics not forwarded: {exc}\n")


def forward_stdout_metrics() -> None:
    """Wrap this process's stdout (idempotent)."""
    if not isinstance(sys.stdout, EmfForwardingStream):
        sys.stdout = EmfForwardingStream(sys.stdout)  # type: ignore[assignment]
