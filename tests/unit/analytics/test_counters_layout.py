"""The analytics key layout, the increments of one response, and attribution planning (pure)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from functions.analytics import keys, metric_names
from functions.analytics.assignment import assign
from functions.analytics.attribution import plan_attribution
from functions.analytics.domain import AbTest, CounterDelta, RecommendationRecord, Totals, Variant
from functions.analytics.serving_hooks import MAX_ITEMS, impression_deltas

DAY = "2025-01-07"
NOON = datetime(2025, 1, 7, 12, tzinfo=UTC)


def test_key_layout() -> None:
    assert keys.day_key(DAY, 3) == "day#2025-01-07#03"
    assert keys.day_of_key(keys.day_key(DAY, 15)) == keys.day_of_key("day#2025-01-07") == DAY
    shards = {keys.day_shard(f"rec#{n:016x}") for n in range(400)}
    assert shards == set(range(keys.DAY_SHARDS))  # work spreads over every shard
    assert keys.day_shard("rec#0123456789abcdef") == keys.day_shard("rec#0123456789abcdef")
    assert keys.item_key(DAY, "item_0001") == "item#2025-01-07#item_0001"
    served = keys.recommendation_id("0123456789abcdef", 41)
    assert served == "rec_0123456789abcdef_41"
    assert keys.parse_recommendation_id(served) == ("rec#0123456789abcdef", "41")
    for foreign in ("rec_ab12", "rec_0123456789abcdef_", "rec_0123456789ABCDEF_1", "x" + served):
        assert keys.parse_recommendation_id(foreign) is None
    assert keys.variant_attribute("ab_1", "control", "clicks") == "ab#ab_1#control#clicks"
    assert keys.parse_variant_attribute("ab#ab_1#control#clicks") == ("ab_1", "control", "clicks")
    assert keys.parse_variant_attribute("clicks") is None
    assert keys.item_of_key("item#2025-01-07#shop/sku:1-2") == ("2025-01-07", "shop/sku:1-2")


def test_ranges_cover_exactly_the_window() -> None:
    low, high = keys.item_range("2025-01-01", "2025-01-07")
    inside = [keys.item_key("2025-01-01", "0"), keys.item_key("2025-01-07", "zzz_~"), keys.item_key(DAY, "Z")]
    outside = [keys.item_key("2024-12-31", "z"), keys.item_key("2025-01-08", "0"), keys.day_key(DAY, 0)]
    assert all(low <= key <= high for key in inside)
    assert not any(low <= key <= high for key in outside)
    days_low, days_high = keys.day_range("2025-01-01", DAY)
    days_in = [keys.day_key("2025-01-01", 0), keys.day_key(DAY, keys.DAY_SHARDS - 1), "day#2025-01-07"]
    days_out = [keys.day_key("2024-12-31", 15), keys.day_key("2025-01-08", 0), "day#2025-01-08"]
    assert all(days_low <= key <= days_high for key in days_in)
    assert not any(days_low <= key <= days_high for key in days_out)
    assert keys.window(date(2025, 1, 7), 3) == ["2025-01-05", "2025-01-06", "2025-01-07"]
    assert keys.day_of(datetime(2025, 1, 7, 23, 30, tzinfo=UTC) + timedelta(hours=1)) == "2025-01-08"


def test_one_response_costs_two_writes_plus_one_per_item() -> None:
    deltas = impression_deltas(["a", "b", "a", "c"], DAY, variant="treatment", test_id="ab_1")
    # the day row (totals and the variant's counters together) and one row per distinct item
    assert set(deltas) == {keys.day_key(DAY, 0), *(keys.item_key(DAY, i) for i in "abc")}
    assert deltas[keys.day_key(DAY, 0)].counters == {
        "responses": 1,
        "impressions": 3,
        "ab#ab_1#treatment#responses": 1,
        "ab#ab_1#treatment#impressions": 3,
    }
    assert deltas[keys.item_key(DAY, "a")].counters == {"impressions": 1}
    many = impression_deltas([f"i{n}" for n in range(MAX_ITEMS + 50)], DAY, variant=None, test_id=None)
    assert len(many) == 1 + MAX_ITEMS
    assert many[keys.day_key(DAY, 0)].counters == {"responses": 1, "impressions": MAX_ITEMS + 50}


def _day_totals(deltas: Mapping[str, CounterDelta], day: str) -> dict[str, Decimal]:
    """A day's counters summed over its shards (as reports read them)."""
    totals: dict[str, Decimal] = {}
    for key, delta in deltas.items():
        if key.startswith(keys.DAY_PREFIX) and keys.day_of_key(key) == day:
            for name, value in delta.counters.items():
                totals[name] = totals.get(name, Decimal(0)) + value
    return totals


def _row(item: str, kind: str, **extra: Any) -> dict[str, Any]:
    row = {"user_id": "user_0001", "item_id": item, "interaction_type": kind, "timestamp": NOON}
    return {"source": None, "revenue": None, "recommendation_id": None, **row, **extra}


def test_attribution_plan_counts_clicks_purchases_and_revenue() -> None:
    record = RecommendationRecord("rec_1", DAY, frozenset({"item_b"}), "treatment", "ab_1", 0)
    rows = [
        _row("item_a", "click", source="recommendations"),
        _row("item_a", "purchase", source="Recommendations", revenue=399.99),
        _row(
            "item_b", "purchase", recommendation_id="rec_1", revenue=0.1
        ),  # exact: 0.1 not 0.1000000000000000055
        _row("item_c", "click", recommendation_id="rec_1"),  # item not in that response, no source: not ours
        _row("item_a", "click", source="search"),
    ]
    plan = plan_attribution("tenant_a", rows, {"rec_1": record}, [])
    assert (plan.attributed, plan.clicks, plan.purchases, plan.revenue) == (3, 1, 2, Decimal("400.09"))
    day = _day_totals(plan.deltas, DAY)
    assert day["clicks"] == 1 and day["conversions"] == 2 and day["revenue"] == Decimal("400.09")
    assert day["ab#ab_1#treatment#conversions"] == 1
    assert day["ab#ab_1#treatment#revenue"] == Decimal("0.1")
    assert day["ab#ab_1#treatment#revenue_sq"] == Decimal("0.01")
    assert plan.deltas[keys.item_key(DAY, "item_a")].counters == {
        "clicks": 1,
        "conversions": 1,
        "revenue": Decimal("399.99"),
    }
    assert keys.item_key(DAY, "item_c") not in plan.deltas


def test_attribution_without_a_record_uses_the_users_assigned_variant() -> None:
    test = AbTest(
        "ab_1",
        "t",
        (Variant("control", "m_v1", 50), Variant("treatment", "m_v2", 50)),
        "click_through_rate",
        7,
        NOON - timedelta(days=1),
        NOON + timedelta(days=6),
        NOON - timedelta(days=1),
    )
    expected = assign(test, "tenant_a", "user_0001").variant
    plan = plan_attribution("tenant_a", [_row("item_a", "click", source="recommendations")], {}, [test])
    assert _day_totals(plan.deltas, DAY)[f"ab#ab_1#{expected}#clicks"] == 1
    before = _row("item_a", "click", source="recommendations", timestamp=NOON - timedelta(days=2))
    plan = plan_attribution("tenant_a", [before], {}, [test])
    assert not any(name.startswith("ab#") for delta in plan.deltas.values() for name in delta.counters)


def test_totals_rates_never_divide_by_zero() -> None:
    empty = Totals()
    assert (empty.click_through_rate, empty.conversion_rate, empty.revenue_per_impression) == (0, 0, 0)
    totals = Totals.of({"impressions": 8, "clicks": 2, "conversions": 1, "revenue": 10.0, "other": 3})
    assert (totals.click_through_rate, totals.conversion_rate, totals.revenue_per_impression) == (
        0.25,
        0.125,
        1.25,
    )


def test_dashboard_metric_names_match_what_serving_emits() -> None:
    try:
        serving = importlib.import_module("functions.serving.telemetry")
    except ImportError:  # pragma: no cover - the serving function is being written alongside
        pytest.skip("functions.serving.telemetry is not there yet")
    assert serving.RECOMMENDATIONS_SERVED == metric_names.RECOMMENDATIONS_SERVED
    assert serving.REQUEST_LATENCY == metric_names.RECOMMENDATION_LATENCY
    assert serving.CACHE_HIT == metric_names.CACHE_HIT
    assert serving.CACHE_MISS == metric_names.CACHE_MISS
    assert serving.ANN_SEARCH_TIME == metric_names.ANN_SEARCH_TIME


def test_dashboard_metric_names_match_what_the_training_workflow_emits() -> None:
    source = (Path(__file__).parents[3] / "functions" / "training" / "handlers.py").read_text()
    for constant in ("MODEL_NDCG10", "MODEL_LIFT", "TRAINING_FAILURES"):
        value = getattr(metric_names, constant)
        assert f'name="{value}"' in source or f"name=names.{constant}" in source, constant
