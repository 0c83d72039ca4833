"""``CatalogViews`` on moto S3: the per-tenant check interval and what one check costs."""

from __future__ import annotations

import boto3
import pytest

from contract import catalog_view
from embedrec_local.provision import LocalNames
from functions.common import resources
from functions.serving.catalog import CatalogViews
from functions.serving.store.storage import ObjectReader

TENANT = "tenant_views"


class CountingReader(ObjectReader):
    """The real S3 reader, counting its conditional GETs and the bodies they returned."""

    def __init__(self, bucket: str) -> None:
        super().__init__(boto3.client("s3"), bucket)
        self.requests = 0
        self.bodies = 0

    def get_if_changed(self, key: str, etag: str | None) -> tuple[bytes, str] | None:
        self.requests += 1
        changed = super().get_if_changed(key, etag)
        self.bodies += changed is not None
        return changed


def _columns(price: float, *, available: bool = True) -> catalog_view.CatalogColumns:
    return catalog_view.CatalogColumns(
        item_id=["a", "b/c"],
        title=["A", "Bé"],
        category=["X", "Y"],
        brand=["b", "b"],
        price=[price, None],
        available=[available, True],
        popularity=[3.0, 0.0],
    )


@pytest.fixture
def bucket(aws_env: LocalNames) -> str:
    return str(aws_env.bucket(resources.DATA_BUCKET))


def _put(bucket: str, columns: catalog_view.CatalogColumns) -> None:
    boto3.client("s3").put_object(
        Bucket=bucket, Key=catalog_view.catalog_view_key(TENANT), Body=catalog_view.encode(columns)
    )


def test_the_view_is_rechecked_at_most_every_interval_and_reread_only_when_changed(bucket: str) -> None:
    now = [100.0]
    reader = CountingReader(bucket)
    views = CatalogViews(reader, check_seconds=10.0, max_tenants=4, clock=lambda: now[0])
    _put(bucket, _columns(5.0))

    first = views.current(TENANT)
    now[0] += 9.9
    within = views.current(TENANT)
    now[0] += 0.2
    unchanged = views.current(TENANT)
    _put(bucket, _columns(7.0, available=False))
    now[0] += 10.0
    changed = views.current(TENANT)

    assert first is not None and within is first and unchanged is first
    assert changed is not None and changed is not first
    assert (float(changed.prices[0]), bool(changed.available[0])) == (7.0, False)
    assert (reader.requests, reader.bodies) == (3, 2)  # the unchanged check was a body-less 304


def test_a_tenant_without_a_catalogue_has_no_view_and_is_not_reread_within_the_interval(bucket: str) -> None:
    reader = CountingReader(bucket)
    views = CatalogViews(reader, check_seconds=10.0, max_tenants=4, clock=lambda: 0.0)

    assert views.current(TENANT) is None
    assert views.current(TENANT) is None
    assert reader.requests == 1


def test_the_document_round_trips_odd_ids_and_unknown_prices() -> None:
    decoded = catalog_view.decode(catalog_view.encode(_columns(float("inf"))))

    assert list(decoded.item_id) == ["a", "b/c"] and list(decoded.title) == ["A", "Bé"]
    assert list(decoded.price) == [None, None]
    assert catalog_view.encode(_columns(1.0)) == catalog_view.encode(_columns(1.0))  # same bytes, same ETag
    with pytest.raises(ValueError, match="not a catalogue view"):
        catalog_view.decode(b"{}")
