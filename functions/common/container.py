"""What a Lambda container builds once and keeps: settings, clients, repositories, warm models.

A factory marked ``per_container`` builds its object at first use and hands the same one to every
later call, so a warm invocation reuses what the cold one built (nothing is built at import, and what
is built is long-lived: ``functions.common.runtime`` moves it out of the collector's sight). Every
such factory, and every ``on_reset`` hook of an object that remembers things (the caller resolver's
warm credentials), is registered here, so ``reset_container_state`` forgets all of them at once, as a
fresh container would start: the one way tests and the local stack begin again from a cold container.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

T = TypeVar("T")

_FACTORIES: list[_lru_cache_wrapper[Any]] = []
_RESET_HOOKS: list[Callable[[], None]] = []


def per_container(build: Callable[[], T]) -> _lru_cache_wrapper[T]:
    """``build`` called once per container, at first use (``cache_clear`` forgets its object)."""
    factory = lru_cache(maxsize=1)(build)
    _FACTORIES.append(factory)
    return factory


def on_reset(hook: Callable[[], None]) -> None:
    """Call ``hook`` whenever the container's state is reset (for state that is not a factory's object)."""
    _RESET_HOOKS.append(hook)


def reset_container_state() -> None:
    """Forget every object built per container and everything remembered, as a cold container would."""
    for factory in _FACTORIES:
        factory.cache_clear()
    for hook in _RESET_HOOKS:
        hook()
