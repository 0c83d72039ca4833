"""A day's totals are spread over shard rows; every reader sums them, rows from before sharding included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from embedrec_local.provision import LocalNames
from functions.analytics import keys
from functions.analytics.ab_tests import variant_totals
from functions.analytics.domain import AbTest, CounterDelta, Variant
from functions.analytics.impressions import ImpressionBuffer
from functions.analytics.reports import analytics_summary
from functions.analytics.store.counters import AnalyticsCounters
from functions.common import resources

TENANT = "t_shards"
NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)


def test_many_flushes_spread_over_shards_and_the_summary_sums_them_with_a_legacy_row(
    aws_env: LocalNames,
) -> None:
    # Given 40 flushes of 3 responses each (as 40 containers would send them) and a day row written
    # before sharding, with one A/B test's variant counters in both
    counters = AnalyticsCounters(boto3.client("dynamodb"), aws_env.table(resources.ANALYTICS))
    for _flush in range(40):
        buffer = ImpressionBuffer(counters, inline=False)
        for _response in range(3):
            buffer.add(TENANT, ["a", "b"], variant="control", test_id="ab_1", now=NOW)
        buffer.flush()
    legacy = CounterDelta()
    legacy.add("responses", 5)
    legacy.add("impressions", 7)
    legacy.add(keys.variant_attribute("ab_1", "control", "impressions"), 7)
    counters.apply(TENANT, {"day#2025-01-10": legacy})
    counters.apply(TENANT, {keys.day_key("2025-01-09", 4): legacy})  # the day before: not summed in

    # When the summary of the day and the test's variant totals are read
    rows = [row.key for row in counters.rows(TENANT, *keys.day_range("2025-01-10", "2025-01-10"))]
    summary = analytics_summary(counters, TENANT, days=1, now=NOW)
    test = AbTest(
        "ab_1",
        "t",
        (Variant("control", "m_v1", 50), Variant("treatment", "m_v2", 50)),
        "click_through_rate",
        7,
        NOW - timedelta(hours=1),
        NOW + timedelta(days=6),
        NOW - timedelta(hours=1),
    )
    control = variant_totals(counters, TENANT, test, NOW)["control"]

    # Then the writes went to several rows, and every figure is the sum over them
    assert len(rows) > 5 and "day#2025-01-10" in rows
    assert (summary.totals.responses, summary.totals.impressions) == (40 * 3 + 5, 40 * 3 * 2 + 7)
    assert [(d.day, d.totals.responses) for d in summary.daily] == [("2025-01-10", 125)]
    assert (control.responses, control.impressions) == (120, 240 + 7)
