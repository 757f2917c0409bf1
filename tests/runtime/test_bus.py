"""The embedded bus: `dispatch` hands messages straight to the subscribers only when that is the
order the queue would have delivered them in."""

from __future__ import annotations

from pets.runtime.bus import EmbeddedBus


def _recording_bus(log: list[str]) -> EmbeddedBus:
    bus = EmbeddedBus()

    def on_tob(message: str) -> None:
        log.append(f"tob {message}")
        bus.publish("order.intent", f"{message}.intent")

    def on_intent(message: str) -> None:
        log.append(f"intent {message}")

    bus.subscribe("md.tob", on_tob)
    bus.subscribe("order.intent", on_intent)
    return bus


def test_dispatch_delivers_in_the_queue_order() -> None:
    queued: list[str] = []
    bus = _recording_bus(queued)
    bus.publish_all("md.tob", ["a", "b"])
    bus.drain()
    direct: list[str] = []
    other = _recording_bus(direct)
    other.dispatch("md.tob", ["a", "b"])
    assert direct == queued == ["tob a", "tob b", "intent a.intent", "intent b.intent"]
    assert other.published == bus.published


def test_dispatch_behind_queued_messages_waits_its_turn() -> None:
    log: list[str] = []
    bus = _recording_bus(log)
    bus.publish("order.intent", "early")
    bus.dispatch("md.tob", ["a"])
    assert log == ["intent early", "tob a", "intent a.intent"]
    assert bus.published == {"order.intent": 2, "md.tob": 1}


def test_dispatch_of_nothing_still_drains() -> None:
    log: list[str] = []
    bus = _recording_bus(log)
    bus.publish("order.intent", "x")
    bus.dispatch("md.tob", [])
    assert log == ["intent x"] and "md.tob" not in bus.published
