"""The seam the serving function calls: A/B assignment before ranking, impressions after it.

How serving calls these (the whole contract; both are cheap and safe on the request path)::

    # once per container (cached factories, like every warm resource):
    tests = AbTestRepository(aws.dynamodb_resource().Table(settings.ab_tests_table), cache_ttl_s=15)
    impressions = ImpressionBuffer(counters, handoff=ImpressionHandoff(queue, writer))

    # per POST /api/v1/recommendations, before choosing the model:
    now = datetime.now(UTC)
    assignment = assign_variant(tests, tenant_id, body.user_id, now)   # None: no test runs
    version = assignment.model_version if assignment else active_version
    ... rank with ``version`` ...
    recommendation_id = impressions.add(   # no I/O; ``impressions.flush()`` after the request
        tenant_id, [r.item_id for r in recommendations],
        variant=assignment.variant if assignment else None,
        test_id=assignment.test_id if assignment else None,
        now=now,
    )
    metadata = {..., "recommendation_id": recommendation_id,
                "ab_test": {"test_id": ..., "variant": ...} if assignment else None}

Rules serving must keep:

- The recommendation id comes from the impression buffer (``rec_{batch}_{n}``: it names the stored
  row and entry), matches the interaction id pattern, and is returned as ``metadata.recommendation_id``
  so shops can send it back with clicks and purchases (``context.recommendation_id``) for exact
  attribution.
- Count only responses actually returned to a shop, once each; not ``/api/v1/items/{id}/similar``.
- If the assigned variant's model cannot be loaded, serve the active model and pass
  ``variant=None, test_id=None`` (the response did not come from the variant).
- Neither hook raises for a storage failure that a response should survive: ``assign_variant`` lets
  ``ServiceUnavailableError`` through (serving treats it as "no test") and the buffer logs and counts
  what it could not write (``ImpressionsDropped``).

Cost: ``assign_variant`` is one GetItem per tenant per ``cache_ttl_s`` (0 reads on a warm container);
the buffer's writes are described in ``functions.analytics.impressions``.
Items above ``MAX_ITEMS`` per response are not counted individually (still in the day totals).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from functions.analytics import keys
from functions.analytics.assignment import assign
from functions.analytics.domain import Assignment, CounterDelta, RecommendationRecord
from functions.analytics.store.ab_tests import AbTestRepository

RECOMMENDATION_TTL = timedelta(days=7)
MAX_ITEMS = 100


def assign_variant(
    tests_repo: AbTestRepository, tenant_id: str, user_id: str, now: datetime
) -> Assignment | None:
    """The user's variant of the tenant's running A/B test, or None when no test runs.

    Deterministic: the same (tenant, test, user) always gets the same variant, in every container.
    """
    test = tests_repo.running(tenant_id, now)
    return assign(test, tenant_id, user_id) if test is not None else None


def impression_deltas(
    item_ids: Sequence[str], day: str, *, variant: str | None, test_id: str | None, shard: int = 0
) -> dict[str, CounterDelta]:
    """The counter increments of one response, its day totals in day row ``shard`` (pure)."""
    items = list(dict.fromkeys(item_ids))
    day_row = CounterDelta()
    day_row.add("responses", 1)
    day_row.add("impressions", len(items))
    if variant is not None and test_id is not None:
        day_row.add(keys.variant_attribute(test_id, variant, "responses"), 1)
        day_row.add(keys.variant_attribute(test_id, variant, "impressions"), len(items))
    deltas = {keys.day_key(day, shard): day_row}
    for item_id in items[:MAX_ITEMS]:
        deltas[keys.item_key(day, item_id)] = CounterDelta({"impressions": Decimal(1)})
    return deltas


def response_impressions(
    recommendation_id: str,
    item_ids: Sequence[str],
    *,
    variant: str | None,
    test_id: str | None,
    now: datetime,
) -> tuple[RecommendationRecord, dict[str, CounterDelta]]:
    """One served response's attribution record and counter increments (pure)."""
    day = keys.day_of(now)
    unique = list(dict.fromkeys(item_ids))
    paired = variant is not None and test_id is not None
    record = RecommendationRecord(
        recommendation_id=recommendation_id,
        day=day,
        items=frozenset(unique[:MAX_ITEMS]),
        variant=variant if paired else None,
        test_id=test_id if paired else None,
        expires_at=int((now + RECOMMENDATION_TTL).timestamp()),
    )
    # The responses of one response row (one container's flush window) share a day row: a flush adds
    # to one shard, and the containers of a busy tenant spread over all of them.
    row = keys.parse_recommendation_id(recommendation_id)
    shard = keys.day_shard(row[0] if row is not None else recommendation_id)
    deltas = impression_deltas(unique, day, variant=record.variant, test_id=record.test_id, shard=shard)
    return record, deltas
