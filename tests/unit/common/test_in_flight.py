"""One caller claims a re-read; the others see it in flight until it is released."""

from __future__ import annotations

import pytest

from functions.common.in_flight import InFlight


def test_a_key_is_claimed_once_until_released_even_when_the_read_fails() -> None:
    in_flight = InFlight()
    assert in_flight.claim("t1") and "t1" in in_flight
    assert not in_flight.claim("t1") and in_flight.claim("t2")
    in_flight.release("t1")
    assert "t1" not in in_flight and in_flight.claim("t1")

    with pytest.raises(RuntimeError), in_flight.reading("t3"):
        assert "t3" in in_flight
        raise RuntimeError("the store is down")
    assert "t3" not in in_flight
