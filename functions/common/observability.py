"""Logging, tracing and metrics in one place.

Powertools reads ``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_LOG_LEVEL`` and friends from the
environment the CDK app sets; locally the embedded stack sets the same variables. The metric namespace
is the platform's own and fixed here, so metrics never depend on import order or a missing variable
(dashboards and alarms read ``embedrec``).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

METRICS_NAMESPACE = "embedrec"

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)

__all__ = ["METRICS_NAMESPACE", "MetricUnit", "logger", "metrics", "tracer"]
