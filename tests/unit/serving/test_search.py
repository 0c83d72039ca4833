"""Filtered index search: every result passes the filter, exactly k when k pass, best first, exact."""

from __future__ import annotations

import numpy as np
import pytest

from embedrec_local import synthetic_models as synthetic
from functions.serving.search import AllowedSet, VectorSearch


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return synthetic.make_world(10_000, 0, seed=3, with_histories=False).item_vectors


_BUILT: dict[tuple[object, ...], VectorSearch] = {}


def _search(vectors: np.ndarray, kind: str, **params: int) -> VectorSearch:
    key = (id(vectors), kind, tuple(sorted(params.items())))
    if key not in _BUILT:
        _BUILT[key] = _build(vectors, kind, **params)
    return _BUILT[key]


def _build(vectors: np.ndarray, kind: str, **params: int) -> VectorSearch:
    index, doc = synthetic.build_index(vectors, kind, **params)
    return VectorSearch(
        index, kind, nprobe=doc["params"].get("nprobe"), ef_search=doc["params"].get("efSearch")
    )  # type: ignore[arg-type]


def _exact(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    scores = np.where(mask, vectors @ query, -np.inf)
    top = np.argsort(-scores, kind="stable")[:k]
    return top[np.isfinite(scores[top])]


def test_allowed_set_membership_and_removal() -> None:
    mask = np.zeros(20, dtype=bool)
    mask[[1, 3, 8, 9, 19]] = True
    allowed = AllowedSet.from_mask(mask)

    smaller = allowed.without([3, 3, 4, 19, 25, -1])

    assert allowed.count == 5 and smaller.count == 3
    assert allowed.contains([1, 3, 4, 19, 20, -2]).tolist() == [True, True, False, True, False, False]
    assert np.flatnonzero(smaller.contains(np.arange(20))).tolist() == [1, 8, 9]
    assert allowed.contains(np.arange(20)).tolist() == mask.tolist()  # the original is untouched


@pytest.mark.parametrize(
    ("kind", "params"), [("flat_ip", {}), ("ivf", {"nprobe": 8}), ("hnsw", {"M": 32, "efConstruction": 200})]
)
@pytest.mark.parametrize("selectivity", [1.0, 0.3, 0.06, 0.01, 0.0005])
def test_filtered_search_returns_k_allowed_items_best_first(
    vectors: np.ndarray, kind: str, params: dict[str, int], selectivity: float
) -> None:
    search = _search(vectors, kind, **params)
    rng = np.random.default_rng(int(selectivity * 1e4))
    mask = rng.random(vectors.shape[0]) < selectivity
    allowed = AllowedSet.from_mask(mask)
    k = 20
    recalls = []
    for query in vectors[rng.choice(vectors.shape[0], 10)]:
        result = search.search(query, allowed, k)

        assert result.indices.size == min(k, allowed.count)
        assert mask[result.indices].all()
        assert np.all(np.diff(result.scores) <= 1e-6)
        expected = _exact(vectors, query, mask, k)
        recalls.append(len(set(result.indices.tolist()) & set(expected.tolist())) / max(1, expected.size))
    # Exact for flat and selective filters; ANN otherwise, which must still find nearly all.
    assert np.mean(recalls) >= (1.0 if kind == "flat_ip" or selectivity < 0.05 else 0.9)


def test_search_with_fewer_allowed_than_k_returns_all_of_them(vectors: np.ndarray) -> None:
    search = _search(vectors, "ivf", nprobe=4)
    mask = np.zeros(vectors.shape[0], dtype=bool)
    mask[[5, 500, 5000]] = True

    result = search.search(vectors[0], AllowedSet.from_mask(mask), 10)

    assert sorted(result.indices.tolist()) == [5, 500, 5000]


def test_nothing_allowed_returns_nothing(vectors: np.ndarray) -> None:
    search = _search(vectors, "flat_ip")

    result = search.search(vectors[0], AllowedSet.from_mask(np.zeros(vectors.shape[0], dtype=bool)), 10)

    assert result.indices.size == 0


def test_vectors_are_shared_with_the_index_not_copied(vectors: np.ndarray) -> None:
    for kind in ("flat_ip", "hnsw", "ivf"):
        search = _search(vectors, kind)
        assert search.vectors.shape == vectors.shape
        assert np.allclose(search.vectors[123], vectors[123])
