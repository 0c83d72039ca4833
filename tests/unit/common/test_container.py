"""Objects built once per container, and the one reset that forgets them all."""

from __future__ import annotations

from functions.common.container import on_reset, per_container, reset_container_state


def test_a_factory_builds_once_at_first_use_and_again_only_after_a_reset() -> None:
    built: list[object] = []

    @per_container
    def thing() -> object:
        built.append(object())
        return built[-1]

    assert built == []  # nothing at definition (import) time
    first = thing()
    assert thing() is first and len(built) == 1

    reset_container_state()

    second = thing()
    assert second is not first and len(built) == 2


def test_the_reset_reaches_every_factory_and_hook() -> None:
    calls: list[str] = []
    factories = [per_container(lambda name=name: calls.append(name) or name) for name in ("a", "b")]
    on_reset(lambda: calls.append("hook"))
    for factory in factories:
        factory()

    reset_container_state()
    for factory in factories:
        factory()

    assert calls == ["a", "b", "hook", "a", "b"]
