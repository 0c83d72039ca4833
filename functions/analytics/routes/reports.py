"""What recommendations earn: the summary (walkthrough Step 5.1) and top products (Step 6.3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from functions.analytics.dependencies import Counters
from functions.analytics.reports import MAX_DAYS, MAX_TOP_PRODUCTS, analytics_summary, top_products
from functions.analytics.schemas import DayFigures, Figures, SummaryOut, TopProduct, TopProductsOut
from functions.http.dependencies import ClockDep
from functions.http.principal import Reader
from functions.ingestion.dependencies import Data

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="the last N days, today included")]
Limit = Annotated[int, Query(ge=1, le=MAX_TOP_PRODUCTS)]


@router.get("/summary", response_model=SummaryOut)
def get_summary(principal: Reader, now: ClockDep, counters: Counters, days: Days = 30) -> SummaryOut:
    """Recommendations served, click-through and conversion rates, and attributed revenue."""
    summary = analytics_summary(counters, principal.tenant_id, days=days, now=now)
    return SummaryOut(
        **Figures.of(summary.totals).model_dump(),
        days=summary.days,
        start_date=summary.start,
        end_date=summary.end,
        daily=[DayFigures(date=day.day, **Figures.of(day.totals).model_dump()) for day in summary.daily],
    )


@router.get("/top-products", response_model=TopProductsOut)
def get_top_products(
    principal: Reader, now: ClockDep, counters: Counters, data: Data, days: Days = 30, limit: Limit = 10
) -> TopProductsOut:
    """The most recommended items of the window, with their rates and attributed revenue."""
    products = top_products(counters, data, principal.tenant_id, days=days, limit=limit, now=now)
    return TopProductsOut(
        top_products=[
            TopProduct(
                item_id=product.item_id,
                title=product.title,
                recommendation_count=product.totals.impressions,
                click_through_rate=round(product.totals.click_through_rate, 6),
                conversion_rate=round(product.totals.conversion_rate, 6),
                revenue=round(product.totals.revenue, 2),
            )
            for product in products
        ]
    )
