"""Event-id claims on moto: 100 ids per conditional transaction, ids held elsewhere reported, none lost."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from embedrec_local.provision import LocalNames
from functions.common import aws, resources
from functions.common.errors import ServiceUnavailableError
from functions.ingestion.store.events import EventIdRepository
from tests.functional.faults.conftest import failing

NOW = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def claims(aws_env: LocalNames) -> EventIdRepository:
    return EventIdRepository(aws.dynamodb_client(), aws_env.table(resources.EVENT_IDS), timedelta(days=30))


@pytest.fixture
def calls() -> Counter[str]:
    """The DynamoDB operations called while the test runs."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    client = aws.dynamodb_client()
    client.meta.events.register("before-call.dynamodb", count, unique_id="claims-count")
    yield seen
    client.meta.events.unregister("before-call.dynamodb", unique_id="claims-count")


def _ids(start: int, stop: int) -> list[str]:
    return [f"evt-{n}" for n in range(start, stop)]


def test_fresh_ids_are_claimed_a_hundred_per_request(claims: EventIdRepository, calls: Counter[str]) -> None:
    held = claims.claim("shop", _ids(0, 250), "upload_a", NOW)

    assert held == set()
    assert calls["TransactWriteItems"] == 3 and calls["PutItem"] == 0


def test_ids_held_by_an_earlier_upload_are_returned_and_the_rest_claimed(
    claims: EventIdRepository,
) -> None:
    claims.claim("shop", _ids(0, 150), "upload_a", NOW)

    held = claims.claim("shop", _ids(100, 400), "upload_b", NOW)

    assert held == set(_ids(100, 150))
    # Everything upload_b claimed is now its own: a third upload finds all of it held.
    assert claims.claim("shop", _ids(0, 400), "upload_c", NOW) == set(_ids(0, 400))


def test_an_upload_that_runs_again_keeps_its_own_claims(claims: EventIdRepository) -> None:
    claims.claim("shop", _ids(0, 120), "upload_a", NOW)

    assert claims.claim("shop", _ids(0, 120), "upload_a", NOW) == set()


def test_claims_are_per_tenant_and_released_claims_can_be_taken(claims: EventIdRepository) -> None:
    claims.claim("shop", _ids(0, 10), "upload_a", NOW)

    assert claims.claim("other-shop", _ids(0, 10), "upload_x", NOW) == set()
    claims.release("shop", _ids(0, 10), "upload_a")
    assert claims.claim("shop", _ids(0, 10), "upload_b", NOW) == set()


def test_a_repeated_id_in_one_call_is_claimed_once(claims: EventIdRepository) -> None:
    assert claims.claim("shop", ["evt-1", "evt-1", "evt-2"], "upload_a", NOW) == set()
    assert claims.claim("shop", ["evt-1", "evt-2"], "upload_b", NOW) == {"evt-1", "evt-2"}


def test_a_failing_event_store_is_unavailable_not_a_duplicate(claims: EventIdRepository) -> None:
    with failing(aws.dynamodb_client(), {"TransactWriteItems": 1}), pytest.raises(ServiceUnavailableError):
        claims.claim("shop", _ids(0, 50), "upload_a", NOW)

    assert claims.claim("shop", _ids(0, 50), "upload_b", NOW) == set()
