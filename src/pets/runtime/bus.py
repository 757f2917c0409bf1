"""The embedded bus: the Kafka topics of PETS as in-process queues, for the single-process main job.

Topic names are the registry's (md.book, md.tob, order.intent, order.exec, ...). `publish` appends
to one FIFO queue and `drain` delivers until it is empty, each message to the subscribers of its
topic in subscription order, so one input frame is carried through every flow before the next one
(breadth first, no recursion) and a run is deterministic. Counts per topic are kept for the report.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[Any], None]


class EmbeddedBus:
    def __init__(self) -> None:
        self._handlers: dict[str, tuple[Handler, ...]] = {}
        self._queue: deque[tuple[str, Any]] = deque()
        self.published: Counter[str] = Counter()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = (*self._handlers.get(topic, ()), handler)

    def publish(self, topic: str, message: Any) -> None:
        self._queue.append((topic, message))

    def publish_all(self, topic: str, messages: Sequence[Any]) -> None:
        if messages:
            self._queue.extend([(topic, message) for message in messages])

    def dispatch(self, topic: str, messages: Sequence[Any]) -> None:
        """`publish_all` then `drain`, for the caller at the top (never from inside a handler). With
        nothing queued the messages go straight to the subscribers, which is the order the queue
        would deliver them in: everything they publish queues up behind the rest of `messages`."""
        if self._queue:
            self.publish_all(topic, messages)
        elif messages:
            self.published[topic] += len(messages)
            handlers = self._handlers.get(topic, ())
            for message in messages:
                for handler in handlers:
                    handler(message)
        self.drain()

    def drain(self) -> None:
        """Deliver every queued message (and whatever the handlers publish meanwhile)."""
        queue, handlers, published = self._queue, self._handlers, self.published
        while queue:
            topic, message = queue.popleft()
            published[topic] += 1
            for handler in handlers.get(topic, ()):
                handler(message)
