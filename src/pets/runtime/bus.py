"""The embedded bus: the Kafka topics of PETS as in-process queues, for the single-process main job.

Topic names are the registry's (md.book, md.tob, order.intent, order.exec, ...). `publish` appends
to one FIFO queue and `drain` delivers until it is empty, each message to the subscribers of its
topic in subscription order, so one input frame is carried through every flow before the next one
(breadth first, no recursion) and a run is deterministic. Counts per topic are kept for the report.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], None]


class EmbeddedBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._queue: deque[tuple[str, Any]] = deque()
        self.published: Counter[str] = Counter()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, topic: str, message: Any) -> None:
        self._queue.append((topic, message))

    def publish_all(self, topic: str, messages: list[Any]) -> None:
        for message in messages:
            self._queue.append((topic, message))

    def drain(self) -> None:
        """Deliver every queued message (and whatever the handlers publish meanwhile)."""
        queue, handlers, published = self._queue, self._handlers, self.published
        while queue:
            topic, message = queue.popleft()
            published[topic] += 1
            for handler in handlers.get(topic, ()):
                handler(message)
