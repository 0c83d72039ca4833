"""The serving function's metrics (Powertools EMF), named in one place.

Per-request metrics go into the shared ``metrics`` set, which the Lambda handler flushes once per
invocation (``metrics.log_metrics``). Rare events — a model version that cannot be loaded — are
written at once with the tenant as a dimension, so an alarm can name the tenant.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from aws_lambda_powertools.metrics import single_metric
from aws_lambda_powertools.metrics.base import SingleMetric
from aws_lambda_powertools.metrics.exceptions import MetricValueError, SchemaValidationError

from functions.common.observability import MetricUnit, logger, metrics

DEFAULT_NAMESPACE = "embedrec"
REQUEST_LATENCY = "RecommendationLatency"
CACHE_HIT = "RecommendationCacheHit"
CACHE_MISS = "RecommendationCacheMiss"
ANN_SEARCH_TIME = "AnnSearchTime"
RECOMMENDATIONS_SERVED = "RecommendationsServed"
POPULAR_FALLBACK = "PopularFallback"
MODEL_LOAD_FAILURES = "ModelLoadFailures"
MODEL_LOAD_TIME = "ModelLoadTime"
IMPRESSIONS_WRITE_TIME = "ImpressionsWriteTime"


def _add(name: str, unit: MetricUnit, value: float) -> None:
    """Record a value; a metrics problem is logged, never raised into a reader's request."""
    if not metrics.namespace:
        # Powertools refuses to serialise (and flushes every 100 values) without a namespace; a missing
        # POWERTOOLS_METRICS_NAMESPACE must not turn into a 500.
        metrics.namespace = DEFAULT_NAMESPACE
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
    except (MetricValueError, SchemaValidationError) as exc:
        logger.warning("metric not recorded", extra={"metric": name, "error": str(exc)})


def _at_once(name: str, unit: MetricUnit, value: float) -> AbstractContextManager[SingleMetric]:
    """One metric written as its own EMF document when the block ends (the block may add dimensions),
    in the configured namespace or the default one: a metric outside the flush must never be lost."""
    return single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace or DEFAULT_NAMESPACE)


def impressions_written(elapsed_ms: float, *, now: bool = False) -> None:
    """The part of an invocation spent handing off its impressions (one SQS SendMessage; the direct
    writes when that failed), after the answer was built. ``now``: written at once, on its own (after
    the response, the invocation's metrics have been flushed already)."""
    if not now:
        _add(IMPRESSIONS_WRITE_TIME, MetricUnit.Milliseconds, elapsed_ms)
        return
    with _at_once(IMPRESSIONS_WRITE_TIME, MetricUnit.Milliseconds, elapsed_ms):
        pass  # written as the block ends


def request_served(*, latency_ms: float, cache_hit: bool, items: int, popular: bool) -> None:
    """One answered recommendation or similar-items request."""
    _add(REQUEST_LATENCY, MetricUnit.Milliseconds, latency_ms)
    _add(CACHE_HIT if cache_hit else CACHE_MISS, MetricUnit.Count, 1)
    _add(RECOMMENDATIONS_SERVED, MetricUnit.Count, items)
    if popular:
        _add(POPULAR_FALLBACK, MetricUnit.Count, 1)


def ann_searched(elapsed_ms: float) -> None:
    """Time spent in FAISS for one request."""
    _add(ANN_SEARCH_TIME, MetricUnit.Milliseconds, elapsed_ms)


def model_loaded(elapsed_ms: float) -> None:
    """A version was fetched, verified and built."""
    _add(MODEL_LOAD_TIME, MetricUnit.Milliseconds, elapsed_ms)


def model_load_failed(tenant_id: str, version: str, reason: str) -> None:
    """A version could not be loaded (missing, corrupt, unreadable or S3 down): emitted immediately."""
    with _at_once(MODEL_LOAD_FAILURES, MetricUnit.Count, 1) as metric:
        metric.add_dimension(name="tenant_id", value=tenant_id)
        metric.add_dimension(name="reason", value=reason)
        metric.add_metadata(key="version", value=version)
