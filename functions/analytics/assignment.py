"""Deterministic variant assignment: the same (tenant, test, user) always lands in the same variant.

A user's bucket is the first 8 bytes of ``sha256(tenant \\x1f test \\x1f user)`` modulo 10 000; the
variants own consecutive bucket ranges in their listed order, each ``traffic × 100`` wide (traffic is
a percentage and the variants' traffic sums to 100). Salting by test id reshuffles users between
tests, so one test's treatment group is not the next test's treatment group too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from functions.analytics.domain import AbTest, Assignment, Variant

BUCKETS = 10_000
_PER_PERCENT = BUCKETS // 100


def bucket_of(tenant_id: str, test_id: str, user_id: str) -> int:
    """The user's bucket in ``[0, BUCKETS)`` for one test."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{test_id}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant_for_bucket(variants: Sequence[Variant], bucket: int) -> Variant:
    """The variant owning ``bucket`` (the last one absorbs any rounding remainder)."""
    upper = 0
    for variant in variants:
        upper += variant.traffic * _PER_PERCENT
        if bucket < upper:
            return variant
    return variants[-1]


def assign(test: AbTest, tenant_id: str, user_id: str) -> Assignment:
    """The user's variant in ``test`` (whether the test runs is the caller's question)."""
    variant = variant_for_bucket(test.variants, bucket_of(tenant_id, test.test_id, user_id))
    return Assignment(test_id=test.test_id, variant=variant.id, model_version=variant.model_version)
