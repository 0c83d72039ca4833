"""moto's SQS queue counts at the cost of one clock read, not one per message.

moto decides whether each message is visible or delayed by reading the clock inside the message's
``visible``/``delayed`` properties, and ``SendMessage`` builds the queue's whole attribute set (three
counts over every message) only to read ``ContentBasedDeduplication``: each send, receive and count
cost several clock reads per message in the queue. With a few hundred messages queued (serving's
hand-offs during a burst, the consumer's batching window) a send took tens of milliseconds of the
moto process's CPU, on the cores the functions share with it. Here the counts and the list of
deliverable messages read the clock once and compare each message's own timestamps, which is what
moto's properties compare; the answers are the same.
"""

from __future__ import annotations

from moto.core.utils import unix_time_millis
from moto.sqs.models import Message, Queue

_installed = False


def _visible(message: Message, now: float) -> bool:
    return now > message.visible_at


def _delayed(message: Message, now: float) -> bool:
    return now < message.delayed_until


def _messages(queue: Queue) -> list[Message]:
    now = unix_time_millis()
    return [m for m in queue._messages if _visible(m, now) and not _delayed(m, now)]


def _not_visible(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in queue._messages if not _visible(m, now))


def _number_delayed(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in queue._messages if _delayed(m, now))


def _number(queue: Queue) -> int:
    return len(_messages(queue))


def install() -> None:
    """Replace the four properties of moto's ``Queue`` (idempotent)."""
    global _installed
    if _installed:
        return
    Queue.messages = property(_messages)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages = property(_number)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_not_visible = property(_not_visible)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_delayed = property(_number_delayed)  # type: ignore[method-assign,assignment]
    _installed = True
