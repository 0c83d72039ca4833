"""The model store: lazy load, bounded LRU over tenants, refresh interval, atomic swap, failures."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from functions.common import aws
from functions.common.errors import ServiceUnavailableError
from functions.serving.bundle import ModelBundle
from functions.serving.errors import ArtifactIntegrityError
from functions.serving.popular import PopularLists
from functions.serving.store.model_store import ModelStore
from functions.training.store.model_registry import ActivePointer
from tests.unit.serving.conftest import MemoryObjects


@dataclass
class Registry:
    pointers: dict[str, ActivePointer] = field(default_factory=dict)
    reads: int = 0
    down: bool = False

    def active(self, tenant_id: str) -> ActivePointer | None:
        self.reads += 1
        if self.down:
            raise ServiceUnavailableError("registry down")
        return self.pointers.get(tenant_id)

    def point(self, tenant_id: str, version: str) -> None:
        revision = self.pointers[tenant_id].revision + 1 if tenant_id in self.pointers else 1
        self.pointers[tenant_id] = ActivePointer(
            version, f"models/{tenant_id}/{version}/manifest.json", revision
        )


class FakeBundle:
    """Stands in for a ModelBundle: the store only reads version, manifest_key and popular."""

    def __init__(self, pointer: ActivePointer, size: int = 100) -> None:
        self.version = pointer.version
        self.manifest_key = pointer.manifest_key
        self.popular = PopularLists()
        self.search = SimpleNamespace(size=10, kind="flat_ip")
        self.size = size
        self.released = False

    def footprint_bytes(self) -> int:
        return 0 if self.released else self.size

    def release(self) -> None:
        self.released = True


@dataclass
class Loader:
    broken: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # bytes per tenant (default 100)
    loaded: list[FakeBundle] = field(default_factory=list)

    def __call__(self, _artifacts: object, tenant_id: str, pointer: ActivePointer) -> ModelBundle:
        self.calls.append(f"{tenant_id}/{pointer.version}")
        if pointer.version in self.broken:
            raise ArtifactIntegrityError("sha256 mismatch")
        bundle = FakeBundle(pointer, self.sizes.get(tenant_id, 100))
        self.loaded.append(bundle)
        return bundle  # type: ignore[return-value]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _store(
    registry: Registry,
    loader: Loader,
    clock: Clock,
    max_tenants: int = 2,
    catalog: MemoryObjects | None = None,
    max_bytes: int | None = None,
):
    return ModelStore(
        registry,  # type: ignore[arg-type]
        MemoryObjects(),  # type: ignore[arg-type]
        catalog or MemoryObjects(),  # type: ignore[arg-type]
        refresh_seconds=30,
        max_tenants=max_tenants,
        max_bytes=max_bytes,
        loader=loader,
        clock=clock,
    )


def test_the_pointer_is_read_at_most_once_per_interval_and_a_new_version_is_swapped_in() -> None:
    registry, loader, clock = Registry(), Loader(), Clock()
    registry.point("a", "lightgcn_v1")
    store = _store(registry, loader, clock)

    first = store.get("a")
    registry.point("a", "lightgcn_v2")
    clock.now = 29.0
    still = store.get("a")
    clock.now = 30.0
    swapped = store.get("a")

    assert (first.version, still.version, swapped.version) == ("lightgcn_v1", "lightgcn_v1", "lightgcn_v2")
    assert registry.reads == 2
    assert loader.calls == ["a/lightgcn_v1", "a/lightgcn_v2"]


def test_a_corrupt_new_version_keeps_the_previous_one_and_counts_the_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, loader, clock = Registry(), Loader(broken={"lightgcn_v2"}), Clock()
    registry.point("a", "lightgcn_v1")
    store = _store(registry, loader, clock)
    store.get("a")
    registry.point("a", "lightgcn_v2")
    clock.now = 31.0

    model = store.get("a")

    assert model.version == "lightgcn_v1" and model.degraded
    assert '"ModelLoadFailures"' in capsys.readouterr().out
    clock.now = 62.0  # retried at the next refresh, and still failing
    assert store.get("a").version == "lightgcn_v1"
    assert loader.calls == ["a/lightgcn_v1", "a/lightgcn_v2", "a/lightgcn_v2"]


def test_a_corrupt_first_version_falls_back_to_the_catalogue_popular_items() -> None:
    registry, loader, clock = Registry(), Loader(broken={"lightgcn_v1"}), Clock()
    registry.point("a", "lightgcn_v1")
    catalog = MemoryObjects({"catalog/a/popular.json": b'{"overall": [{"item_id": "i1", "score": 1}]}'})

    model = _store(registry, loader, clock, catalog=catalog).get("a")

    assert model.bundle is None and model.degraded
    assert [entry.item_id for entry in model.popular.overall] == ["i1"]


def test_a_tenant_without_model_or_popular_list_gets_an_empty_popular_list() -> None:
    model = _store(Registry(), Loader(), Clock()).get("nobody")

    assert model.bundle is None and model.popular.is_empty and not model.degraded


def test_the_registry_being_down_keeps_what_is_loaded() -> None:
    registry, loader, clock = Registry(), Loader(), Clock()
    registry.point("a", "lightgcn_v1")
    store = _store(registry, loader, clock)
    store.get("a")
    registry.down = True
    clock.now = 40.0

    assert store.get("a").version == "lightgcn_v1"


def test_only_max_tenants_stay_warm_least_recently_used_first_out() -> None:
    registry, loader, clock = Registry(), Loader(), Clock()
    for tenant in "abc":
        registry.point(tenant, "lightgcn_v1")
    store = _store(registry, loader, clock, max_tenants=2)

    store.get("a")
    store.get("b")
    store.get("a")
    store.get("c")

    assert store.loaded_tenants() == ["a", "c"]
    store.get("b")  # evicted: loaded again
    assert loader.calls.count("b/lightgcn_v1") == 2


def test_requests_during_a_refresh_are_answered_from_the_current_version() -> None:
    registry, clock = Registry(), Clock()
    registry.point("a", "lightgcn_v1")
    started, release = threading.Event(), threading.Event()

    class SlowLoader(Loader):
        def __call__(self, artifacts: object, tenant_id: str, pointer: ActivePointer) -> ModelBundle:
            if pointer.version == "lightgcn_v2":
                started.set()
                release.wait(5)
            return super().__call__(artifacts, tenant_id, pointer)

    store = _store(registry, SlowLoader(), clock)
    store.get("a")
    registry.point("a", "lightgcn_v2")
    clock.now = 31.0
    loading = threading.Thread(target=store.get, args=("a",))
    loading.start()
    started.wait(5)

    during = store.get("a")  # never half-loaded: the old version answers
    release.set()
    loading.join(5)

    assert during.version == "lightgcn_v1"
    assert store.get("a").version == "lightgcn_v2"


def test_on_the_event_loop_a_first_load_and_a_due_refresh_are_refused_and_run_on_the_retry() -> None:
    registry, loader, clock = Registry(), Loader(), Clock()
    registry.point("a", "lightgcn_v1")
    store = ModelStore(
        registry,  # type: ignore[arg-type]
        MemoryObjects(),  # type: ignore[arg-type]
        MemoryObjects(),  # type: ignore[arg-type]
        refresh_seconds=30,
        max_tenants=2,
        loader=loader,
        clock=clock,
    )
    with aws.no_blocking_calls(), pytest.raises(aws.WouldBlockError):
        store.get("a")  # nothing loaded yet: the caller must retry on a worker thread
    assert store.get("a").version == "lightgcn_v1"
    with aws.no_blocking_calls():
        assert store.get("a").version == "lightgcn_v1"  # warm and not due: answered on the loop

    registry.point("a", "lightgcn_v2")
    clock.now = 31.0
    with aws.no_blocking_calls(), pytest.raises(aws.WouldBlockError):
        store.get("a")  # due: no thread is left to refresh later, the retry refreshes
    assert registry.reads == 1
    assert store.get("a").version == "lightgcn_v2" and registry.reads == 2  # the retry, inline


def test_a_refresh_releases_the_replaced_version_and_a_failed_one_keeps_it() -> None:
    registry, loader, clock = Registry(), Loader(broken={"lightgcn_v3"}), Clock()
    registry.point("a", "lightgcn_v1")
    store = _store(registry, loader, clock)
    store.get("a")
    registry.point("a", "lightgcn_v2")
    clock.now = 31.0

    store.get("a")
    v1, v2 = loader.loaded
    assert (v1.released, v2.released) == (True, False)

    registry.point("a", "lightgcn_v3")  # cannot be loaded: v2 keeps answering, so it is not released
    clock.now = 62.0
    assert store.get("a").version == "lightgcn_v2" and not v2.released


def test_tenants_evicted_by_count_release_their_version() -> None:
    registry, loader, clock = Registry(), Loader(), Clock()
    for tenant in "abc":
        registry.point(tenant, "lightgcn_v1")
    store = _store(registry, loader, clock, max_tenants=2)

    for tenant in "abc":
        store.get(tenant)

    assert [bundle.released for bundle in loader.loaded] == [True, False, False]


def test_the_loaded_versions_stay_within_the_byte_budget_least_recently_used_out() -> None:
    registry, clock = Registry(), Clock()
    loader = Loader(sizes={"a": 400, "b": 400, "c": 300, "big": 5000})
    for tenant in ("a", "b", "c", "big"):
        registry.point(tenant, "lightgcn_v1")
    store = _store(registry, loader, clock, max_tenants=8, max_bytes=1000)

    store.get("a")
    store.get("b")
    store.get("a")  # b is now the least recently used
    store.get("c")  # 1100 bytes: b goes

    assert store.loaded_tenants() == ["a", "c"] and store.loaded_bytes() == 700
    assert [bundle.released for bundle in loader.loaded] == [False, True, False]

    store.get("big")  # larger than the budget alone: it stays, every other tenant goes

    assert store.loaded_tenants() == ["big"] and store.get("big").version == "lightgcn_v1"


def test_pinned_versions_count_against_the_budget_and_go_first() -> None:
    registry, clock = Registry(), Clock()
    loader = Loader(sizes={"a": 400})
    registry.point("a", "lightgcn_v3")
    store = _store(registry, loader, clock, max_tenants=8, max_bytes=1000)
    store.get("a")
    store.get_version("a", "lightgcn_v1")
    store.get_version("a", "lightgcn_v2")  # 1200 bytes: the oldest pinned version goes, the active stays

    active, pinned_v1, pinned_v2 = loader.loaded
    assert (active.released, pinned_v1.released, pinned_v2.released) == (False, True, False)
    assert store.loaded_bytes() == 800
