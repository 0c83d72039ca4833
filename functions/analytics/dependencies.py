"""The analytics routes' collaborators in the api function, each built once per container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from functions.analytics.store.ab_tests import AbTestRepository
from functions.analytics.store.counters import AnalyticsCounters
from functions.common import aws
from functions.common.container import per_container
from functions.common.settings import get_api_settings


@per_container
def analytics_counters() -> AnalyticsCounters:
    """The container's analytics counters."""
    return AnalyticsCounters(aws.dynamodb_client(), get_api_settings().analytics_table)


@per_container
def ab_tests_repository() -> AbTestRepository:
    """The container's A/B test store (uncached reads: the api function manages tests)."""
    return AbTestRepository(aws.dynamodb_resource().Table(get_api_settings().ab_tests_table))


Counters = Annotated[AnalyticsCounters, Depends(analytics_counters)]
AbTests = Annotated[AbTestRepository, Depends(ab_tests_repository)]
