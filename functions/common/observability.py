"""Logging, tracing and metrics in one place.

Powertools reads ``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_LOG_LEVEL`` and friends from the
environment the CDK app sets; locally the embedded stack sets the same variables. The metric namespace
is the platform's own and fixed here, so metrics never depend on import order or a missing variable
(dashboards and alarms read ``embedrec``).

The ``Tracer`` is built on first use (``get_tracer``), not at import: creating it imports the X-Ray
SDK, whose recorder builds two botocore clients for its sampling rules — 0.4–0.6 s of serving's
import on the loaded benchmark machine, for a tracer no request path calls yet. Lambda's active tracing
still records each invocation's segment without it.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

METRICS_NAMESPACE = "embedrec"

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)


@cache
def get_tracer() -> Tracer:
    """The process's X-Ray tracer (Powertools), created at its first use."""
    return Tracer()


__all__ = ["METRICS_NAMESPACE", "MetricUnit", "get_tracer", "logger", "metrics"]
