"""Fault injection at the SDK boundary: make chosen AWS operations fail like a throttled or broken service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError


class Faults:
    """Counts and raises: each armed operation fails ``times`` times, then succeeds again."""

    def __init__(self) -> None:
        self.remaining: dict[str, int] = {}
        self.raised: dict[str, int] = {}

    def __call__(self, model: Any, **_: Any) -> None:
        name = model.name
        if self.remaining.get(name, 0) > 0:
            self.remaining[name] -= 1
            self.raised[name] = self.raised.get(name, 0) + 1
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException"
                        if name != "GetObject"
                        else "InternalError",
                        "Message": "injected fault",
                    }
                },
                name,
            )


@contextmanager
def failing(client: BaseClient, operations: dict[str, int]) -> Iterator[Faults]:
    """While active, each of ``operations`` fails that many times on ``client``."""
    faults = Faults()
    faults.remaining.update(operations)
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}", faults, unique_id="embedrec-faults")
    try:
        yield faults
    finally:
        client.meta.events.unregister(f"before-call.{service}", unique_id="embedrec-faults")


# The serving app and a synthetic catalogue, shared with the serving tier's tests.
from tests.functional.serving.conftest import serving, world  # noqa: E402

__all__ = ["Faults", "failing", "serving", "world"]
