"""The versioned artifact set of a model and its publication to S3 (manifest written last).

Under the version's prefix (``contract.layout.version_prefix``): ``user_tower.onnx`` (its tables in
``user_tower.onnx.data``), ``items.faiss``,
``items.parquet``, ``popular.json``, ``lookup.npz`` and finally ``manifest.json`` holding the sha256 and
size of every other file. A version exists for readers only once its manifest does.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contract.layout import ITEM_INDEX, ITEMS_TABLE, LOOKUP, MANIFEST, POPULAR, USER_TOWER, USER_TOWER_DATA
from contract.manifest import Manifest
from contract.popular import PopularDocument, PopularEntry
from training_jobs.config import TrainingConfig
from training_jobs.errors import ArtifactError
from training_jobs.export import (
    ONNX_INPUTS,
    ONNX_OUTPUT,
    build_faiss_index,
    json_bytes,
    lookup_npz,
    serialize_faiss_index,
    user_tower_files,
)
from training_jobs.models.base import UserTowerTables
from training_jobs.snapshot import PreparedData
from training_jobs.storage import S3ObjectStore, utc_now

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    USER_TOWER: "application/octet-stream",
    USER_TOWER_DATA: "application/octet-stream",
    ITEM_INDEX: "application/octet-stream",
    ITEMS_TABLE: "application/vnd.apache.parquet",
    POPULAR: "application/json",
    LOOKUP: "application/octet-stream",
    MANIFEST: "application/json",
}
METRIC_NAMES = ("ndcg_10", "recall_10", "precision_10", "ndcg_20", "recall_20", "precision_20")


@dataclass(frozen=True)
class ArtifactSet:
    """File contents by name, plus the manifest document (serialised last, with the file hashes)."""

    files: dict[str, bytes]
    manifest: Manifest

    def manifest_bytes(self) -> bytes:
        """The manifest with ``files`` {name: {sha256, bytes}} for every other file."""
        return json_bytes(self.manifest.with_files(self.files).document())


def items_parquet(data: PreparedData) -> bytes:
    """``items.parquet``: item_index, item_id, title, category, brand, price (index order)."""
    cat = data.catalogue
    table = pa.table(
        {
            "item_index": pa.array(np.arange(cat.item_ids.size, dtype=np.int64)),
            "item_id": pa.array(cat.item_ids.tolist(), pa.string()),
            "title": pa.array(cat.titles.tolist(), pa.string()),
            "category": pa.array(cat.categories.tolist(), pa.string()),
            "brand": pa.array(cat.brands.tolist(), pa.string()),
            "price": pa.array(cat.prices, pa.float64(), from_pandas=True),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def popular_document(data: PreparedData, top_n: int) -> PopularDocument:
    """``popular.json``: top items overall and per category by weighted interaction count (best first).

    Scores are shares of the most popular item's count, in [0, 1], like the ingestion-side document
    (``functions/ingestion/popularity.py``), so a cold-start answer's scores read the same either way.
    """
    counts = data.item_popularity.astype(np.float64)
    scores = counts / counts.max() if counts.size and counts.max() > 0 else counts
    ids = data.catalogue.item_ids

    cat = data.catalogue

    def top(indices: np.ndarray) -> list[PopularEntry]:
        ranked = indices[np.lexsort((ids[indices], -scores[indices]))][:top_n]
        return [
            PopularEntry(
                item_id=str(ids[i]),
                score=round(float(scores[i]), 6),
                title=str(cat.titles[i]),
                category=str(cat.categories[i]),
                brand=str(cat.brands[i]),
                price=float(cat.prices[i]) if np.isfinite(cat.prices[i]) else None,
            )
            for i in ranked
        ]

    categories = cat.categories
    by_category = {
        str(category): top(np.flatnonzero(categories == category))
        for category in np.unique(categories)
        if category
    }
    return PopularDocument(overall=top(np.arange(ids.size)), by_category=by_category)


def build_artifacts(
    *,
    tenant_id: str,
    version: str,
    config: TrainingConfig,
    data: PreparedData,
    tables: UserTowerTables,
    val_metrics: dict[str, float],
    popularity_metrics: dict[str, float],
    training: dict[str, Any],
    gate: dict[str, Any] | None = None,
) -> ArtifactSet:
    """Export every file in memory (nothing is written here); ``gate`` is the promotion gate's record."""
    item_vectors = tables.item_vectors.detach().cpu().float().numpy()
    index, spec = build_faiss_index(
        item_vectors,
        exact_max_items=config.exact_index_max_items,
        large_type=config.large_index_type,
        hnsw_m=config.hnsw_m,
        hnsw_ef_construction=config.hnsw_ef_construction,
        hnsw_ef_search=config.hnsw_ef_search,
        ivf_nprobe=config.ivf_nprobe,
    )
    cat = data.catalogue
    files = {
        **user_tower_files(tables),
        ITEM_INDEX: serialize_faiss_index(index),
        ITEMS_TABLE: items_parquet(data),
        POPULAR: json_bytes(popular_document(data, config.popular_top_n).document()),
        LOOKUP: lookup_npz(
            {
                "item_ids": cat.item_ids,
                "titles": cat.titles,
                "categories": cat.categories,
                "brands": cat.brands,
                "prices": cat.prices,
                "user_ids": data.user_ids,
                # The ids' sort orders: serving looks ids up by binary search without sorting at load.
                "item_order": np.argsort(cat.item_ids, kind="stable"),
                "user_order": np.argsort(data.user_ids, kind="stable"),
                "history_indptr": data.history.indptr,
                "history_items": data.history.items,
                "history_types": data.history.types,
            }
        ),
    }
    manifest = Manifest(
        schema_version=1,
        tenant_id=tenant_id,
        version=version,
        model_type=config.model_type,
        created_at=utc_now(),
        config=config.model_dump(mode="json"),
        data_window=data.data_window,
        counts=data.stats,
        metrics={name: round(float(val_metrics.get(name, 0.0)), 6) for name in METRIC_NAMES},
        baseline_metrics={name: round(float(popularity_metrics.get(name, 0.0)), 6) for name in METRIC_NAMES},
        training=training,
        embedding_dim=int(item_vectors.shape[1]),
        n_users=int(data.user_ids.size),
        n_items=int(cat.item_ids.size),
        index=spec.to_manifest(),
        onnx={
            "inputs": list(ONNX_INPUTS),
            "output": ONNX_OUTPUT,
            "unknown_user_index": -1,
            "padding_item_index": -1,
            "foldin_scale": round(tables.foldin_scale, 6),
            "blend": tables.blend,
        },
        similarity="inner_product",
    )
    if gate is not None:
        manifest = manifest.model_copy(update={"gate": gate})
    return ArtifactSet(files=files, manifest=manifest)


def publish_artifacts(store: S3ObjectStore, bucket: str, prefix: str, artifacts: ArtifactSet) -> None:
    """Upload the files, then the manifest; on a failure remove what was uploaded and raise.

    An existing manifest under ``prefix`` is never overwritten (versions are immutable).
    """
    if store.exists(bucket, prefix + MANIFEST):
        raise ArtifactError(f"model version already published at s3://{bucket}/{prefix}")
    manifest = artifacts.manifest_bytes()
    written: list[str] = []
    try:
        for name, data in artifacts.files.items():
            store.put_bytes(bucket, prefix + name, data, CONTENT_TYPES.get(name, "application/octet-stream"))
            written.append(prefix + name)
        store.put_bytes(bucket, prefix + MANIFEST, manifest, CONTENT_TYPES[MANIFEST])
    except ArtifactError:
        for key in written:
            try:
                store.delete(bucket, key)
            except ArtifactError:
                logger.warning("could not remove partial artifact s3://%s/%s", bucket, key)
        raise
