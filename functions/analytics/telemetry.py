"""The business metrics of analytics (Powertools EMF), flushed at once.

The metrics are written as one EMF document per call rather than into the function's shared
``metrics`` set: the api function has no ``log_metrics`` flush of its own, and a fixed ``service``
dimension (``ANALYTICS_SERVICE``) makes each metric one stream whichever function attributed the
interactions (api or ingest), which is what the dashboards and alarms read.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics.exceptions import MetricValueError, SchemaValidationError

from functions.analytics import metric_names as names
from functions.common.observability import MetricUnit, logger, metrics


def _emit(values: list[tuple[str, MetricUnit, float]]) -> None:
    """Write ``values`` as one EMF document; a metrics problem is logged, never raised."""
    batch = EphemeralMetrics(namespace=metrics.namespace or names.NAMESPACE, service=names.ANALYTICS_SERVICE)
    try:
        for name, unit, value in values:
            batch.add_metric(name=name, unit=unit, value=value)
        batch.flush_metrics()
    except (MetricValueError, SchemaValidationError) as exc:
        logger.warning("analytics metrics not recorded", extra={"error": str(exc)})


def interactions_attributed(
    *, stored: int, attributed: int, clicks: int, purchases: int, revenue: float
) -> None:
    """One stored batch of interactions: all fresh rows, and those that recommendations earned."""
    _emit(
        [
            (names.INTERACTIONS_STORED, MetricUnit.Count, stored),
            (names.RECOMMENDATIONS_ATTRIBUTED, MetricUnit.Count, attributed),
            (names.RECOMMENDATION_CLICKS, MetricUnit.Count, clicks),
            (names.RECOMMENDATION_PURCHASES, MetricUnit.Count, purchases),
            (names.RECOMMENDATION_REVENUE, MetricUnit.NoUnit, revenue),
        ]
    )


def impressions_dropped(items: int) -> None:
    """A response's impressions could not be stored (analytics undercounts; the response was served)."""
    _emit([(names.IMPRESSIONS_DROPPED, MetricUnit.Count, items)])


def impressions_applied_directly(items: int) -> None:
    """SendMessage failed, so serving wrote these impressions itself (still exactly once)."""
    _emit([(names.IMPRESSIONS_APPLIED_DIRECTLY, MetricUnit.Count, items)])


def impression_messages(*, applied: int, failed: int, write_units: int) -> None:
    """One batch of the impressions consumer: messages applied, those left for redelivery, and the
    write units its transactions cost."""
    _emit(
        [
            (names.IMPRESSION_MESSAGES_APPLIED, MetricUnit.Count, applied),
            (names.IMPRESSION_MESSAGES_FAILED, MetricUnit.Count, failed),
            (names.ANALYTICS_WRITE_UNITS, MetricUnit.Count, write_units),
        ]
    )
