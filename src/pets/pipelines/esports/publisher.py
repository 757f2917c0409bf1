"""The live feed into Kafka: poll a game's live stats and produce its events to esports.event (key: the
match). One log line per game start, end, stall and recovery; the feed lag rides on every event; a
window that cannot be read goes to dlq.signals with the reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pets.pipelines.esports.lol_livestats import LiveStatsPoller
from pets.pipelines.kafka_io import ensure_topics, producer
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.settings import Settings

log = logging.getLogger(__name__)
LOGGED = frozenset({"game_start", "game_end", "stall", "recovered", "pause", "resume"})


def publish_feed(
    settings: Settings,
    poller: LiveStatsPoller,
    *,
    interval_s: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    until_game_end: bool = True,
) -> int:
    """Poll every `interval_s` and produce the events until `stop()` (or the game's end); returns how
    many events were produced."""
    topic = f"{settings.topic_prefix}esports.event"
    ensure_topics(settings, ["esports.event", "dlq.signals"])
    kafka = producer(settings)
    sent = 0
    try:
        while not stop():
            events = poller.poll()
            for reason, raw in poller.bad:  # unreadable windows: dlq.signals with the reason
                dead = DeadLetter.from_bytes("esports.feed", reason, raw, ts_ns=time.time_ns())
                kafka.send(f"{settings.topic_prefix}dlq.signals", key=b"esports.feed", value=encode(dead))
                log.warning("esports feed: dead letter: %s", reason)
            poller.bad.clear()
            for event in events:
                kafka.send(topic, key=event.match_id.encode(), value=encode(event))
                if event.event_type in LOGGED:
                    log.info("esports %s game %d: %s (feed lag %s ms)", event.match_id, event.game_number,
                             event.event_type, event.feed_lag_ms)  # fmt: skip
            sent += len(events)
            if events:
                kafka.flush()
            if until_game_end and any(e.event_type == "game_end" for e in events):
                break
            time.sleep(interval_s)
    finally:
        kafka.flush()
        kafka.close()
    return sent
