"""SignalGate: duplicates and expired signals are dropped and counted; a signal whose market has no
fresh book waits at most book_wait_ms for one, then is dropped with the reason."""

from __future__ import annotations

from pets.bots.signal_gate import SignalGate, dead_letter
from pets.schemas.codec import decode
from pets.schemas.config import SignalsConfig
from pets.schemas.signals import Signal
from signal_bots import signal
from venue_factories import MS, T0, market, tob


def gate(wait_ms: int = 2_000) -> SignalGate:
    g = SignalGate(SignalsConfig(book_wait_ms=wait_ms))
    g.on_market(market("m1", ("yes1", "no1")))
    return g


def test_a_signal_with_a_fresh_book_passes_at_once() -> None:
    g = gate()
    g.on_book(tob("yes1", "m1", ts_ms=T0))
    s = signal()
    assert g.offer(s) == ([s], [])
    assert g.counts["passed"] == 1


def test_a_repeated_signal_id_is_dropped_and_counted() -> None:
    g = gate()
    g.on_book(tob("yes1", "m1", ts_ms=T0))
    first = signal(1)
    again = signal(1, rationale="re-delivered")
    assert g.offer(first) == ([first], [])
    assert g.offer(again) == ([], [(again, "duplicate signal id s1")])
    assert (g.counts["passed"], g.counts["duplicate"]) == (1, 1)


def test_an_expired_signal_is_dropped_and_counted() -> None:
    g = gate()
    g.on_book(tob("yes1", "m1", ts_ms=T0 + 5_000))  # the clock is at T0 + 5 s
    late = signal(expires_ns=(T0 + 5_000) * MS)
    ready, dropped = g.offer(late)
    assert ready == [] and [s for s, _ in dropped] == [late]
    assert "expired" in dropped[0][1]
    assert g.counts["expired"] == 1
    fresh = signal(2, expires_ns=(T0 + 5_001) * MS)
    assert g.offer(fresh) == ([fresh], [])


def test_a_signal_without_a_book_waits_for_one() -> None:
    g = gate(wait_ms=2_000)
    s = signal()
    assert g.offer(s) == ([], [])  # no book of yes1 yet
    assert g.counts["waited"] == 1
    assert g.on_book(tob("no1", "m1", ts_ms=T0 + 500)) == ([], [])  # the other token: still waiting
    assert g.on_book(tob("yes1", "m1", ts_ms=T0 + 1_999)) == ([s], [])
    assert g.waiting == {} and g.counts["passed"] == 1


def test_a_stale_book_makes_the_signal_wait_then_drop_after_book_wait_ms() -> None:
    g = gate(wait_ms=2_000)
    g.on_book(tob("yes1", "m1", ts_ms=T0, stale=True))  # continuity lost
    s = signal()
    assert g.offer(s) == ([], [])
    assert g.on_book(tob("yes1", "m1", ts_ms=T0 + 2_000, stale=True)) == ([], [])  # exactly at the limit
    ready, dropped = g.on_book(tob("yes1", "m1", ts_ms=T0 + 2_001, stale=True))
    assert ready == [] and dropped == [(s, "no fresh book for market m1 within 2000 ms")]
    assert g.counts["stale_book"] == 1 and g.waiting == {}


def test_a_signal_naming_no_asset_waits_for_the_markets_first_token() -> None:
    g = gate()
    s = signal(asset_id=None, side=None)
    assert g.offer(s) == ([], [])
    assert g.on_book(tob("yes1", "m1", ts_ms=T0 + 1)) == ([s], [])


def test_a_waiting_signal_that_expires_is_dropped_as_expired() -> None:
    g = gate(wait_ms=10_000)
    s = signal(expires_ns=(T0 + 1_000) * MS)
    assert g.offer(s) == ([], [])
    ready, dropped = g.on_book(tob("yes1", "m1", ts_ms=T0 + 1_000))
    assert ready == [] and [d for d, _ in dropped] == [s] and g.counts["expired"] == 1


def test_a_dropped_signal_becomes_a_dead_letter_holding_the_signal() -> None:
    s = signal()
    dead = dead_letter((s, "duplicate signal id s1"), "test")
    assert (dead.reason, dead.topic, dead.key) == ("duplicate signal id s1", "signal.news", "m1")
    assert decode(Signal, dead.raw_bytes()) == s


def test_books_of_a_market_the_gate_was_not_told_about_do_not_count() -> None:
    g = SignalGate(SignalsConfig(book_wait_ms=2_000))
    g.on_book(tob("yes1", "m1", ts_ms=T0))  # before its MarketInfo: a bot would ignore it too
    g.on_market(market("m1", ("yes1", "no1")))
    s = signal()
    assert g.offer(s) == ([], [])
    assert g.on_book(tob("yes1", "m1", ts_ms=T0 + 1)) == ([s], [])
