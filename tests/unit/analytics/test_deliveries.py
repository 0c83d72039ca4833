"""Handed-off impressions: parts are deterministic and bounded; transactions merge counter rows."""

from __future__ import annotations

from decimal import Decimal

from functions.analytics import keys
from functions.analytics.deliveries import (
    PART_UNITS,
    ImpressionMessage,
    ResponseRow,
    TenantImpressions,
    parts_of,
)
from functions.analytics.store.counters import response_row_item
from functions.analytics.store.deliveries import MAX_ACTIONS, pack, write_units

DAY = keys.day_key("2025-01-10", 0)


def _message(tenants: dict[str, int], delivery_id: str = "a" * 32) -> ImpressionMessage:
    """A message with, per tenant, one response row, the day row and ``n`` item rows."""
    return ImpressionMessage(
        delivery_id=delivery_id,
        tenants={
            tenant: TenantImpressions(
                rows=[ResponseRow(batch_id="0" * 16, expires_at=1, entries='{"0":{"d":"2025-01-10"}}')],
                counters={
                    DAY: {"responses": Decimal(1), "impressions": Decimal(n)},
                    **{
                        keys.item_key("2025-01-10", f"i{k:03d}"): {"impressions": Decimal(1)}
                        for k in range(n)
                    },
                },
            )
            for tenant, n in tenants.items()
        },
    )


def _actions(group: list) -> int:  # type: ignore[type-arg]
    counters = {(part.tenant_id, key) for part in group for key in part.deltas}
    return len(group) + sum(len(part.rows) for part in group) + len(counters)


def test_parts_are_the_same_for_the_same_message_and_hold_every_write_once() -> None:
    message = _message({"t1": 100, "t2": 3})
    again = ImpressionMessage.model_validate_json(message.model_dump_json())  # what the consumer reads

    parts = parts_of(message)

    assert [(p.tenant_id, p.number, p.marker) for p in parts] == [
        (p.tenant_id, p.number, p.marker) for p in parts_of(again)
    ]
    assert [p.tenant_id for p in parts] == ["t1", "t1", "t1", "t2"]
    assert len({p.marker for p in parts}) == len(parts)  # one marker each
    assert all(len(p.rows) + len(p.deltas) <= PART_UNITS for p in parts)
    assert sum(len(p.deltas) for p in parts if p.tenant_id == "t1") == 101  # the day row and 100 items
    assert sum(len(p.rows) for p in parts) == 2


def test_messages_share_transactions_within_dynamodbs_limit_with_counter_rows_merged() -> None:
    # Ten messages, each one response of the same tenant recommending the same five items
    messages = [_message({"t1": 5}, delivery_id=f"{n:032x}") for n in range(10)]
    parts = [part for message in messages for part in parts_of(message)]

    groups = pack(parts)

    # One transaction: 10 markers + 10 response rows + ONE day row and five item rows (not 60 ADDs)
    assert len(groups) == 1 and _actions(groups[0]) == 10 + 10 + 6


def test_a_large_batch_is_split_into_transactions_of_at_most_100_actions() -> None:
    messages = [_message({f"t{n}": 60}, delivery_id=f"{n:032x}") for n in range(8)]
    parts = [part for message in messages for part in parts_of(message)]

    groups = pack(parts)

    assert len(groups) > 1
    assert all(_actions(group) <= MAX_ACTIONS for group in groups)
    assert [part for group in groups for part in group] == parts  # every part once, in order


def test_write_units_are_two_per_kb_of_each_item_a_transaction_writes() -> None:
    marker = {"Put": {"Item": {"tenant_id": {"S": "t1"}, "counter_key": {"S": "msg#x#0"}}}}
    row = {"Put": {"Item": response_row_item("t1", "0" * 16, 1, "x" * 2500)}}  # 2.5 KB of entries
    counter = {"Update": {"Key": {"tenant_id": {"S": "t1"}, "counter_key": {"S": DAY}}}}

    assert write_units([marker]) == 2
    assert write_units([row]) == 2 * 3
    assert write_units([marker, row, counter, counter]) == 2 + 6 + 2 + 2
