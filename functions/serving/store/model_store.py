"""The container's warm models: a bounded LRU over tenants, refreshed from the registry pointer.

Each tenant has one immutable ``TenantModel`` snapshot that requests read without locks. At most every
``refresh_seconds`` a request re-reads the tenant's ACTIVE pointer; when it names another version, that
version is built completely and only then replaces the snapshot (one reference assignment), so no
request ever sees a half-loaded version. The check is a time comparison per request and the refresh
runs on the request that finds it due (no background thread: a Lambda container is frozen between
invocations, so a refresh left to a thread would wait for the next request anyway); while one
request loads, the others of the container keep answering from the current snapshot. A version
that cannot be loaded leaves the previous one live — or, with none, the
tenant's popular items — and is logged and counted (``ModelLoadFailures``); it is retried at the next
refresh.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from contract import layout
from functions.common import aws
from functions.common.errors import NotFoundError, ServiceUnavailableError
from functions.common.observability import logger
from functions.serving import telemetry
from functions.serving.bundle import ModelBundle
from functions.serving.errors import ArtifactError
from functions.serving.loader import load_bundle
from functions.serving.popular import PopularLists
from functions.serving.store.storage import ObjectReader, RegistryReader
from functions.training.store.model_registry import ActivePointer

Loader = Callable[[ObjectReader, str, ActivePointer], ModelBundle]


@dataclass(frozen=True)
class TenantModel:
    """What a request of one tenant ranks with: a model bundle, or popular items only."""

    bundle: ModelBundle | None
    popular: PopularLists
    degraded: bool = False  # the active version could not be loaded; serving an older one or popular
    # Set when rebased on the current catalogue (functions.serving.catalog): available items this
    # version cannot rank (no vector), best first, and the ETag of the catalogue it was rebased on.
    newcomers: PopularLists = field(default_factory=PopularLists)
    catalog_tag: str = ""

    @property
    def version(self) -> str | None:
        """The loaded version, if any."""
        return self.bundle.version if self.bundle is not None else None


@dataclass
class _TenantSlot:
    model: TenantModel | None = None
    checked_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelStore:
    """Loads, caches and refreshes tenants' models."""

    def __init__(
        self,
        registry: RegistryReader,
        artifacts: ObjectReader,
        catalog: ObjectReader,
        *,
        refresh_seconds: float,
        max_tenants: int,
        max_bytes: int | None = None,
        loader: Loader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._artifacts = artifacts
        self._catalog = catalog
        self._refresh_seconds = refresh_seconds
        self._max_tenants = max_tenants
        self._max_bytes = max_bytes
        self._loader: Loader = loader or load_bundle
        self._clock = clock
        self._slots: OrderedDict[str, _TenantSlot] = OrderedDict()
        self._slots_lock = threading.Lock()
        # A/B variants pin versions other than the active one; artifacts are immutable, so a pinned
        # version never needs refreshing (None remembers a version that failed to load).
        self._pinned: OrderedDict[tuple[str, str], TenantModel | None] = OrderedDict()
        self._pinned_lock = threading.Lock()

    def get(self, tenant_id: str) -> TenantModel:
        """The tenant's current model (loading or refreshing it when due). Never raises for artifacts."""
        slot = self._slot(tenant_id)
        current = slot.model
        if current is not None and self._clock() - slot.checked_at < self._refresh_seconds:
            return current
        # A first load waits for the lock; a refresh does not: someone else is already on it. Neither
        # runs on the event loop: the request is refused there and runs again on a worker thread,
        # where it refreshes before answering (one registry read per refresh_seconds).
        if current is None:
            aws.refuse_blocking("a first model load")
        elif aws.blocking_refused():
            if slot.lock.locked():
                return current  # another request of this container is refreshing
            aws.refuse_blocking("a due model refresh")
        if not slot.lock.acquire(blocking=current is None):
            return current  # type: ignore[return-value]  # not None: only first loads block
        return self._refresh_slot(tenant_id, slot)

    def _refresh_slot(self, tenant_id: str, slot: _TenantSlot) -> TenantModel:
        """Refresh the slot if still due; the caller holds ``slot.lock``, released here."""
        try:
            if slot.model is None or self._clock() - slot.checked_at >= self._refresh_seconds:
                previous = slot.model.bundle if slot.model is not None else None
                slot.model = self._refresh(tenant_id, slot.model)
                slot.checked_at = self._clock()
                if previous is not None and previous is not slot.model.bundle:
                    # One version per tenant: the replaced one's files go now, its memory as soon as
                    # the requests still answering from it finish.
                    previous.release()
                    self._within_budget(keep=tenant_id)
                elif previous is None and slot.model.bundle is not None:
                    self._within_budget(keep=tenant_id)
            return slot.model
        finally:
            slot.lock.release()

    def get_version(self, tenant_id: str, version: str) -> TenantModel | None:
        """A specific version of the tenant (an A/B variant's); None when it cannot be loaded."""
        key = (tenant_id, version)
        with self._pinned_lock:
            if key in self._pinned:
                self._pinned.move_to_end(key)
                return self._pinned[key]
        pointer = ActivePointer(version, layout.manifest_key(tenant_id, version), revision=0)
        try:
            bundle = self._loader(self._artifacts, tenant_id, pointer)
            model: TenantModel | None = TenantModel(bundle, bundle.popular)
        except (ArtifactError, ServiceUnavailableError) as exc:
            logger.error(
                "pinned model version could not be loaded; serving the active one",
                extra={"tenant_id": tenant_id, "version": version, "error": exc.message},
            )
            telemetry.model_load_failed(tenant_id, version, "pinned")
            model = None
        with self._pinned_lock:
            self._pinned[key] = model
            while len(self._pinned) > self._max_tenants:
                _release(self._pinned.popitem(last=False)[1])
        if model is not None:
            self._within_budget(keep=tenant_id, pinned=key)
        return model

    def loaded_bytes(self) -> int:
        """What the loaded versions (active and pinned) may keep resident: their local files."""
        with self._slots_lock:
            models = [slot.model for slot in self._slots.values()]
        with self._pinned_lock:
            models += list(self._pinned.values())
        return sum(m.bundle.footprint_bytes() for m in models if m is not None and m.bundle is not None)

    def _within_budget(self, *, keep: str, pinned: tuple[str, str] | None = None) -> None:
        """Evict least recently used pinned versions, then tenants, until the loaded versions fit
        ``max_bytes``; ``keep`` (the tenant just loaded) and ``pinned`` stay whatever their size."""
        if self._max_bytes is None:
            return
        while self.loaded_bytes() > self._max_bytes:
            with self._pinned_lock:
                victim_key = next((k for k in self._pinned if k != pinned and self._pinned[k]), None)
                if victim_key is not None:
                    _release(self._pinned.pop(victim_key))
                    logger.info("pinned model evicted for memory", extra={"version": victim_key[1]})
                    continue
            with self._slots_lock:
                victim = next((t for t, s in self._slots.items() if t != keep and _loaded(s.model)), None)
                if victim is None:
                    return
                evicted = self._slots.pop(victim)
            _release(evicted.model)
            logger.info("tenant model evicted for memory", extra={"tenant_id": victim})

    def loaded_tenants(self) -> list[str]:
        """Tenants with a warm slot, least recently used first."""
        with self._slots_lock:
            return list(self._slots)

    def _slot(self, tenant_id: str) -> _TenantSlot:
        with self._slots_lock:
            slot = self._slots.get(tenant_id)
            if slot is None:
                slot = self._slots[tenant_id] = _TenantSlot()
                while len(self._slots) > self._max_tenants:
                    evicted, old = self._slots.popitem(last=False)
                    _release(old.model)
                    logger.info("tenant model evicted", extra={"tenant_id": evicted})
            else:
                self._slots.move_to_end(tenant_id)
            return slot

    def _refresh(self, tenant_id: str, current: TenantModel | None) -> TenantModel:
        try:
            pointer = self._registry.active(tenant_id)
        except ServiceUnavailableError:
            logger.warning(
                "model registry unavailable; keeping the current model", extra={"tenant_id": tenant_id}
            )
            return current if current is not None else TenantModel(None, PopularLists(), degraded=True)
        if pointer is None:
            return TenantModel(None, self._catalog_popular(tenant_id, current))
        bundle = current.bundle if current is not None else None
        if bundle is not None and (bundle.version, bundle.manifest_key) == (
            pointer.version,
            pointer.manifest_key,
        ):
            return (
                current
                if current is not None and not current.degraded
                else TenantModel(bundle, bundle.popular)
            )
        return self._load(tenant_id, pointer, current)

    def _load(self, tenant_id: str, pointer: ActivePointer, current: TenantModel | None) -> TenantModel:
        started = time.perf_counter()
        try:
            bundle = self._loader(self._artifacts, tenant_id, pointer)
        except (ArtifactError, ServiceUnavailableError) as exc:
            reason = exc.reason if isinstance(exc, ArtifactError) else "unavailable"
            previous = current.bundle if current is not None else None
            logger.error(
                "model version could not be loaded; keeping the previous one",
                extra={
                    "tenant_id": tenant_id,
                    "version": pointer.version,
                    "reason": reason,
                    "error": exc.message,
                    "serving_version": previous.version if previous else None,
                },
            )
            telemetry.model_load_failed(tenant_id, pointer.version, reason)
            if previous is not None:
                return TenantModel(previous, previous.popular, degraded=True)
            return TenantModel(None, self._catalog_popular(tenant_id, current), degraded=True)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "model version loaded",
            extra={
                "tenant_id": tenant_id,
                "version": pointer.version,
                "revision": pointer.revision,
                "items": bundle.search.size,
                "index": bundle.search.kind,
                "load_ms": round(elapsed_ms, 1),
            },
        )
        telemetry.model_loaded(elapsed_ms)
        return TenantModel(bundle, bundle.popular)

    def _catalog_popular(self, tenant_id: str, current: TenantModel | None) -> PopularLists:
        """Popular items from ingestion (no model yet); an absent file is an empty list, not an error."""
        try:
            return PopularLists.parse(self._catalog.get_json(layout.popular_key(tenant_id)))
        except NotFoundError:
            return PopularLists()
        except (ValueError, ServiceUnavailableError) as exc:
            logger.warning(
                "catalogue popular list unreadable", extra={"tenant_id": tenant_id, "error": str(exc)}
            )
            return current.popular if current is not None and current.bundle is None else PopularLists()


def _loaded(model: TenantModel | None) -> bool:
    return model is not None and model.bundle is not None


def _release(model: TenantModel | None) -> None:
    """Let a dropped model's version go (its local files now, its memory with its last reader)."""
    if model is not None and model.bundle is not None:
        model.bundle.release()
