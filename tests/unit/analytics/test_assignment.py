"""Deterministic, traffic-proportional variant assignment."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from functions.analytics.assignment import BUCKETS, assign, bucket_of, variant_for_bucket
from functions.analytics.domain import AbTest, Variant

START = datetime(2025, 1, 1, tzinfo=UTC)


def _test(*traffic: int, test_id: str = "ab_0123456789ab") -> AbTest:
    variants = tuple(Variant(f"v{i}", f"lightgcn_v{i + 1}", share) for i, share in enumerate(traffic))
    return AbTest(test_id, "t", variants, "conversion_rate", 7, START, START + timedelta(days=7), START)


def test_assignment_is_deterministic() -> None:
    test = _test(50, 50)
    first = [assign(test, "tenant_a", f"user_{i}") for i in range(200)]
    again = [assign(test, "tenant_a", f"user_{i}") for i in range(200)]
    assert first == again
    assert {a.model_version for a in first} == {"lightgcn_v1", "lightgcn_v2"}
    assert all(a.test_id == test.test_id for a in first)


@pytest.mark.parametrize("traffic", [(50, 50), (20, 30, 50), (90, 10)])
def test_assignment_follows_traffic_over_10k_users(traffic: tuple[int, ...]) -> None:
    test = _test(*traffic)
    counts = Counter(assign(test, "tenant_a", f"user_{i:05d}").variant for i in range(10_000))
    for index, share in enumerate(traffic):
        # binomial sd at n = 10 000 is at most 0.5 %; 2 points is four of them
        assert counts[f"v{index}"] / 10_000 == pytest.approx(share / 100, abs=0.02)


def test_tests_and_tenants_reshuffle_users() -> None:
    users = [f"user_{i}" for i in range(1000)]
    one = [bucket_of("tenant_a", "ab_1", u) < BUCKETS // 2 for u in users]
    other_test = [bucket_of("tenant_a", "ab_2", u) < BUCKETS // 2 for u in users]
    other_tenant = [bucket_of("tenant_b", "ab_1", u) < BUCKETS // 2 for u in users]
    # independent halves agree on about half of the users, never on (nearly) all of them
    assert 0.4 < sum(a == b for a, b in zip(one, other_test, strict=True)) / 1000 < 0.6
    assert 0.4 < sum(a == b for a, b in zip(one, other_tenant, strict=True)) / 1000 < 0.6


def test_bucket_ranges_follow_listed_order() -> None:
    variants = (Variant("a", "m_v1", 20), Variant("b", "m_v2", 80))
    assert variant_for_bucket(variants, 0).id == "a"
    assert variant_for_bucket(variants, 1999).id == "a"
    assert variant_for_bucket(variants, 2000).id == "b"
    assert variant_for_bucket(variants, BUCKETS - 1).id == "b"
