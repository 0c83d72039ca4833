"""The serving logic behind the routes: recommendations, similar items and model health.

Knows nothing of HTTP. It takes the tenant from the caller's principal (resolved by the route's
dependency), the model from the ``ModelStore``, the user's newest events from the recent-events table,
and remembers answers in the ``ResponseCache``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from contract.interactions import PURCHASE
from functions.analytics.domain import Assignment
from functions.analytics.impressions import ImpressionBuffer
from functions.analytics.serving_hooks import assign_variant
from functions.analytics.store.ab_tests import AbTestRepository
from functions.common.errors import InvalidInputError, NotFoundError, ServiceUnavailableError
from functions.common.observability import logger
from functions.serving import telemetry
from functions.serving.cache import ResponseCache
from functions.serving.catalog import CatalogViews, top_up
from functions.serving.domain import (
    POPULAR,
    ModelHealth,
    Ranking,
    RecommendationQuery,
    Recommendations,
    UserEvent,
    UserFeed,
)
from functions.serving.filters import ItemFilters, resolve_categories
from functions.serving.popular import rank_popular
from functions.serving.ranking import rank_for_user, rank_similar
from functions.serving.store.model_store import ModelStore, TenantModel
from functions.serving.store.storage import RecentEventsReader


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _fingerprint(events: list[UserEvent]) -> str:
    """Every event the answer used: an upload can add older events without changing the newest one."""
    if not events:
        return ""
    return hashlib.blake2b("\n".join(e.event_key for e in events).encode(), digest_size=12).hexdigest()


def new_recommendation_id() -> str:
    """An id for a served list that is not counted (similar items, or no impression buffer)."""
    return f"rec_{secrets.token_hex(8)}"


class RecommendationService:
    """Answers the serving routes for one container."""

    def __init__(
        self,
        models: ModelStore,
        events: RecentEventsReader,
        cache: ResponseCache[Ranking],
        *,
        recent_events_limit: int,
        fold_in_half_life_hours: float,
        ab_tests: AbTestRepository | None = None,
        impressions: ImpressionBuffer | None = None,
        catalogs: CatalogViews | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.models = models
        self._catalogs = catalogs
        self._ab_tests = ab_tests
        self._impressions = impressions
        self.cache = cache
        self._events = events
        self._recent_limit = recent_events_limit
        self._half_life_hours = fold_in_half_life_hours
        self._clock = clock

    @property
    def answers_on_event_loop(self) -> bool:
        """Whether a warm answer needs no blocking call at all (see ``functions.serving.routes``).

        Every blocking call of ``recommend`` comes before its first side effect except an impression
        buffer that writes inline; with one, the first attempt could not be safely retried.
        """
        return self._impressions is None or not self._impressions.writes_inline

    @property
    def impressions_pending(self) -> bool:
        """Whether served responses wait for ``flush_impressions``."""
        return self._impressions is not None and self._impressions.pending

    def flush_impressions(self) -> None:
        """Write the impressions of the responses served so far (called after every request)."""
        if self._impressions is not None:
            self._impressions.flush()

    def recommend(self, tenant_id: str, query: RecommendationQuery) -> Recommendations:
        """The user's recommendations; ``InvalidInputError`` for an unknown category."""
        started = time.perf_counter()
        model = self.models.get(tenant_id)
        assignment = self._assignment(tenant_id, query.user_id)
        if assignment is not None and assignment.model_version != model.version:
            pinned = self.models.get_version(tenant_id, assignment.model_version)
            model, assignment = (pinned, assignment) if pinned is not None else (model, None)
        model, filters = self._current_with_filters(tenant_id, model, query.filters)
        query = replace(query, filters=filters)
        feed, fingerprint = self._newest_events(tenant_id, query.user_id)
        key = (
            "recommend",
            tenant_id,
            query.user_id,
            query.filters.cache_key(),
            query.count,
            query.exclude_purchased,
            model.version,
            model.catalog_tag,
        )
        ranking = self.cache.get(key, fingerprint) if fingerprint is not None else None
        cache_hit = ranking is not None
        if ranking is None:
            ranking = self._rank(model, query, feed)
            if fingerprint is not None:
                self.cache.put(key, fingerprint, ranking)
        arm = (assignment.test_id, assignment.variant) if assignment is not None else None
        if self._impressions is not None:
            recommendation_id = self._impressions.add(
                tenant_id,
                [item.item_id for item in ranking.items],
                variant=arm[1] if arm else None,
                test_id=arm[0] if arm else None,
                now=self._clock(),
            )
        else:
            recommendation_id = new_recommendation_id()
        return self._answer(model, ranking, cache_hit, started, arm, recommendation_id)

    def _assignment(self, tenant_id: str, user_id: str) -> Assignment | None:
        """The user's arm of the tenant's running A/B test; no test (or an unreadable one) is None."""
        if self._ab_tests is None:
            return None
        try:
            return assign_variant(self._ab_tests, tenant_id, user_id, self._clock())
        except ServiceUnavailableError:
            logger.warning("A/B tests unavailable; serving the active model", extra={"tenant_id": tenant_id})
            return None

    def similar(self, tenant_id: str, item_id: str, count: int) -> Recommendations:
        """Items similar to ``item_id``; ``NotFoundError`` if the tenant's model does not know it."""
        started = time.perf_counter()
        model = self._current(tenant_id, self.models.get(tenant_id))
        key = ("similar", tenant_id, item_id, count, model.version, model.catalog_tag)
        ranking = self.cache.get(key, "")
        cache_hit = ranking is not None
        if ranking is None:
            ranking = self._similar(model, item_id, count)
            self.cache.put(key, "", ranking)
        return self._answer(model, ranking, cache_hit, started)

    def health(self, tenant_id: str) -> ModelHealth:
        """The tenant's model as this container holds it (loading it if needed)."""
        model = self.models.get(tenant_id)
        bundle = model.bundle
        return ModelHealth(
            status="degraded" if model.degraded else "healthy",
            model_loaded=bundle is not None,
            model_version=model.version,
            index_loaded=bundle is not None,
            index_size=bundle.search.size if bundle is not None else 0,
            cache_connected=True,  # the response cache lives in this container: it cannot be disconnected
        )

    def _current(self, tenant_id: str, model: TenantModel, *, recheck: bool = False) -> TenantModel:
        """The model judged by the tenant's current catalogue (prices, availability, new items)."""
        if self._catalogs is None:
            return model
        return self._catalogs.current_model(tenant_id, model, recheck=recheck)

    def _current_with_filters(
        self, tenant_id: str, loaded: TenantModel, filters: ItemFilters
    ) -> tuple[TenantModel, ItemFilters]:
        """The current model and the filters in its spelling; a category it does not know makes the
        catalogue be checked again first (a category uploaded a moment ago is known at once)."""
        model = self._current(tenant_id, loaded)
        try:
            return model, self._resolve_filters(model, filters)
        except InvalidInputError:
            fresher = self._current(tenant_id, loaded, recheck=True)
            if fresher is model:
                raise
            return fresher, self._resolve_filters(fresher, filters)

    def _newest_events(self, tenant_id: str, user_id: str) -> tuple[UserFeed, str | None]:
        """The user's feed and the cache fingerprint (None: unknown, so neither read nor write)."""
        try:
            feed = self._events.feed(tenant_id, user_id, self._recent_limit)
        except ServiceUnavailableError as exc:
            logger.warning(
                "recent events unavailable; answering without them",
                extra={"tenant_id": tenant_id, "error": exc.message},
            )
            return UserFeed([]), None
        fingerprint = _fingerprint(feed.events)
        # An erasure must miss every answer cached before it, even for a user with no events.
        return feed, f"erased#{fingerprint}" if feed.erased else fingerprint

    def _resolve_filters(self, model: TenantModel, filters: ItemFilters) -> ItemFilters:
        if not filters.categories:
            return filters
        if model.bundle is not None:
            known: tuple[str, ...] = model.bundle.catalog.category_names
        else:
            known = tuple(model.popular.categories() | model.newcomers.categories())
        if not known:
            return filters  # nothing known about this shop yet: the answer is empty, not an error
        return resolve_categories(filters, known)

    def _rank(self, model: TenantModel, query: RecommendationQuery, feed: UserFeed) -> Ranking:
        purchased = frozenset(
            event.item_id
            for event in feed.events
            if event.interaction_type == PURCHASE and query.exclude_purchased
        )
        if model.bundle is not None:
            ranking = rank_for_user(
                model.bundle,
                query,
                feed.events,
                now=self._clock(),
                half_life_hours=self._half_life_hours,
                erased=feed.erased,
            )
        else:
            items = rank_popular(model.popular, query.filters, excluded=purchased, count=query.count)
            ranking = Ranking(tuple(items), algorithm=POPULAR)
        return top_up(ranking, model.newcomers, query.filters, purchased, query.count)

    def _similar(self, model: TenantModel, item_id: str, count: int) -> Ranking:
        if model.bundle is not None:
            return rank_similar(model.bundle, item_id, count)
        # No model yet: the most popular items of the item's category, if popularity knows the item.
        for entries in (model.popular.overall, *model.popular.by_category.values()):
            for entry in entries:
                if entry.item_id == item_id:
                    filters = ItemFilters(categories=(entry.category,) if entry.category else ())
                    items = rank_popular(model.popular, filters, excluded=frozenset({item_id}), count=count)
                    return Ranking(tuple(items), algorithm=POPULAR)
        raise NotFoundError(f"item '{item_id}' not found: this shop has no active model yet")

    def _answer(
        self,
        model: TenantModel,
        ranking: Ranking,
        cache_hit: bool,
        started: float,
        arm: tuple[str, str] | None = None,
        recommendation_id: str | None = None,
    ) -> Recommendations:
        latency_ms = (time.perf_counter() - started) * 1000
        if not cache_hit and ranking.search_ms:
            telemetry.ann_searched(ranking.search_ms)
        telemetry.request_served(
            latency_ms=latency_ms,
            cache_hit=cache_hit,
            items=len(ranking.items),
            popular=ranking.algorithm == POPULAR,
        )
        return Recommendations(
            items=ranking.items,
            model_version=model.version,
            algorithm=ranking.algorithm,
            cache_hit=cache_hit,
            recommendation_id=recommendation_id or new_recommendation_id(),
            latency_ms=round(latency_ms, 3),
            ab_test=arm,
        )
