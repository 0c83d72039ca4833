"""Names of the CloudWatch metrics that analytics emits or that the dashboards and alarms read.

Dependency-free on purpose: the CDK app imports it (``cdk/constructs/monitoring.py``) so a dashboard
can never name a metric that no function emits. Every metric lives in the namespace ``NAMESPACE``
(``POWERTOOLS_METRICS_NAMESPACE``) with one dimension, ``service``.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "embedrec"

# --- emitted by functions.analytics.telemetry, dimension service=ANALYTICS_SERVICE -----------------
#: The analytics metrics carry one fixed ``service`` value whichever function emits them (the api
#: function for JSON/CSV uploads, the ingest function for the drop folder), so each is one stream.
ANALYTICS_SERVICE: Final = "embedrec-analytics"
INTERACTIONS_STORED: Final = "InteractionsStored"  # fresh interaction rows stored (data freshness)
RECOMMENDATIONS_ATTRIBUTED: Final = "RecommendationsAttributed"  # rows attributed to recommendations
RECOMMENDATION_CLICKS: Final = "RecommendationClicks"
RECOMMENDATION_PURCHASES: Final = "RecommendationPurchases"
RECOMMENDATION_REVENUE: Final = "RecommendationRevenue"
IMPRESSIONS_DROPPED: Final = "ImpressionsDropped"  # responses whose impressions could not be stored
#: Impressions serving wrote to the table itself because SendMessage to the impressions queue failed.
IMPRESSIONS_APPLIED_DIRECTLY: Final = "ImpressionsAppliedDirectly"
#: Handed-off messages the ``impressions`` consumer applied, and those it reported for redelivery.
IMPRESSION_MESSAGES_APPLIED: Final = "ImpressionMessagesApplied"
IMPRESSION_MESSAGES_FAILED: Final = "ImpressionMessagesFailed"
#: Write request units the impressions consumer's transactions cost (DynamoDB's rule: two per KB,
#: rounded up, of each item a transaction writes): what the analytics table bills on demand.
ANALYTICS_WRITE_UNITS: Final = "AnalyticsWriteUnits"

# --- emitted by the serving function (functions/serving/telemetry.py; a unit test checks they match) -
SERVING_SERVICE: Final = "embedrec-serving"
RECOMMENDATIONS_SERVED: Final = "RecommendationsServed"  # items returned, summed per response
RECOMMENDATION_LATENCY: Final = "RecommendationLatency"  # ms, per request
CACHE_HIT: Final = "RecommendationCacheHit"
CACHE_MISS: Final = "RecommendationCacheMiss"
ANN_SEARCH_TIME: Final = "AnnSearchTime"  # ms, per request

# --- emitted by the training workflow's task functions (functions/training/handlers.py) -------------
PROMOTE_SERVICE: Final = "embedrec-promote-model"
MODEL_NDCG10: Final = "ModelNDCG10"  # NDCG@10 of each promoted model
#: A promoted model's validation NDCG@10 over the tenant's popularity baseline on the same split: < 1
#: means the model recommends worse than "most popular". Absolute NDCG depends on the catalogue size.
MODEL_LIFT: Final = "ModelLiftOverPopularity"
RECORD_FAILURE_SERVICE: Final = "embedrec-record-failure"
TRAINING_FAILURES: Final = "TrainingFailures"
EVALUATE_SERVICE: Final = "embedrec-evaluate-candidate"
TRAINING_DURATION: Final = "TrainingDurationSeconds"  # the trainer's loop time of each finished job
