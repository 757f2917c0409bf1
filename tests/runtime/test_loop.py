"""The trading loop's hot path: tops of book that change nothing, and bot timers on the venue clock."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import msgspec

from pets.runtime import sources
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config
from pets.schemas.market_data import mark_price
from pets.settings import project_root

CONFIG = load_config(project_root() / "config")


def _loop_after(seconds: float, seed: int = 5) -> tuple[TradingLoop, list[bytes]]:
    source = sources.simulated(CONFIG, seed=seed, duration_s=seconds)
    return TradingLoop(CONFIG, source.markets), list(source.frames)


def test_a_top_that_only_moved_seq_and_time_reaches_neither_risk_nor_the_bots() -> None:
    loop, frames = _loop_after(30)
    for frame in frames:
        loop.on_frame(frame)
    asset, seen = next((a, t) for a, t in loop.risk.books.items() if t.best_bid is not None)
    watching = [bot for bot in loop.bots if bot.books.get(asset) is seen]
    assert watching, "some bot should follow the simulated markets"
    same = msgspec.structs.replace(seen, ts_ms=seen.ts_ms + 5, seq=seen.seq + 1)
    loop.bus.dispatch("md.tob", [same])
    assert loop.risk.books[asset] is seen
    assert all(bot.books[asset] is seen for bot in watching)
    assert seen.best_bid_size is not None
    deeper = msgspec.structs.replace(  # a size at the top changed: everyone sees it
        same, ts_ms=same.ts_ms + 5, seq=same.seq + 1, best_bid_size=seen.best_bid_size + Decimal(1)
    )
    loop.bus.dispatch("md.tob", [deeper])
    assert loop.risk.books[asset] is deeper
    assert all(bot.books[asset] is deeper for bot in watching)


def test_the_loop_marks_a_token_as_mark_price_does_one_sided_books_too() -> None:
    loop, frames = _loop_after(30)
    for frame in frames:
        loop.on_frame(frame)
    marks = loop.portfolio.marks
    asset, top = next((a, t) for a, t in loop.risk.books.items() if t.mid is not None)
    assert marks[asset] == top.mid
    tick = top.tick_size
    for changes in (  # the mark from what each top shows, the previous mark held within the side left
        {"mid": None, "best_bid": None, "best_ask": marks[asset] - tick},
        {"mid": None, "best_ask": None, "best_bid": marks[asset] + 3 * tick},
        {"mid": None, "best_ask": None, "best_bid": marks[asset] - 5 * tick},
        {"mid": marks[asset] + tick},
    ):
        previous = marks[asset]
        top = msgspec.structs.replace(top, ts_ms=top.ts_ms + 5, seq=top.seq + 1, **changes)
        loop.bus.dispatch("md.tob", [top])
        assert marks[asset] == mark_price(top, previous), changes
    assert marks[asset] == top.mid


def test_a_bot_instance_fires_its_timers_on_the_venue_time_it_is_handed() -> None:
    """Timers follow each instance's own clock (the venue time of its events), as in the bots flow,
    where an instance sees only its market: never one left due at the instance's own time."""
    loop, frames = _loop_after(60)
    fired = 0
    for frame in frames:
        before = {id(part): part.next_timer_ms for bot in loop.bots for part in bot.timed_parts()}
        loop.on_frame(frame)
        for bot in loop.bots:
            for part in bot.timed_parts():
                due = before.get(id(part))
                fired += due is not None and due <= part.clock_ms and part.next_timer_ms != due
                assert part.next_timer_ms is None or part.next_timer_ms > part.clock_ms, part.clock_ms
    assert fired > 0  # the market makers' requote timers did run
    assert len({bot.bot_id for bot in loop.bots}) < len(loop.bots)  # one instance per market


def test_risk_and_the_portfolio_give_one_answer_for_equity_and_round_trips() -> None:
    """The risk engine's books and the executor's portfolio hold the same lots (risk/lots.py): they agree
    exactly on what each bot is worth, on its realized P&L and on its round trips."""
    source = sources.simulated(CONFIG, seed=7, duration_s=300)
    loop = TradingLoop(CONFIG, source.markets)
    loop.run(source.frames)
    risk = loop.risk.snapshot()["bots"]
    snapshots = loop.portfolio.snapshot(loop.clock_ms * 1_000_000, loop.exchange.open_orders())
    traded = [s for s in snapshots if s.bot_id != "portfolio" and s.trades]
    assert traded
    for snap in traded:
        book = loop.risk.ledger.bot(snap.bot_id)
        assert Decimal(risk[snap.bot_id]["equity"]) == snap.equity, snap.bot_id
        assert book.realized == snap.realized_pnl and book.fees == snap.fees - snap.rebates, snap.bot_id
        assert (book.trips.wins, book.trips.losses) == (snap.wins, snap.losses), snap.bot_id


def test_pets_run_and_the_executor_flow_snapshot_pnl_at_the_same_venue_times() -> None:
    """One cadence (pets.yaml run.snapshot_interval_ms) on one venue clock (every event's time), taken
    before the event that moves the clock, then at the end of input: the same series on both paths."""
    from pets.flows.executor import ExecutorState, Input, PortfolioState, market_key
    from pets.pipelines.market_data.parser import FrameParser
    from pets.runtime.journal import Journal

    idle = msgspec.structs.replace(
        CONFIG, bots=tuple(msgspec.structs.replace(bot, enabled=False) for bot in CONFIG.bots)
    )  # no orders: the executor below sees the frames only, as the loop does
    source = sources.simulated(idle, seed=5, duration_s=60)
    frames = list(source.frames)
    journal = Journal()
    loop = TradingLoop(idle, source.markets, journal=journal)
    loop.run(frames)
    # the flow's keys in one worker: each market's state, their notes to the one portfolio key
    states: dict[str, ExecutorState] = {}
    portfolio = PortfolioState(idle)
    parser = FrameParser("test")

    def handle(item: Input) -> list[Any]:
        outs = states.setdefault(market_key(item), ExecutorState(idle)).on_input(item)
        return outs + portfolio.on_notes([o.note for o in outs if o.note is not None])

    outputs = [out for info in source.markets for out in handle(Input("md.markets", info))]
    for frame in frames:
        events = [e for e in parser.parse(frame) if hasattr(e, "market")]
        for market in dict.fromkeys(e.market for e in events):
            outputs += handle(Input("md.book", [e for e in events if e.market == market]))
    for state in states.values():
        outputs += portfolio.on_notes([o.note for o in state.flush() if o.note is not None])
    outputs += portfolio.snapshot()
    flow_times = [o.routed.message.ts_ns for o in outputs if o.routed and o.routed.topic == "pnl.snapshot"]
    assert sorted({s.ts_ns for s in journal.pnl}) == sorted(set(flow_times))
    interval_ns = idle.system.run.snapshot_interval_ms * 1_000_000
    times = sorted(set(flow_times))
    assert len(times) >= 60_000 // idle.system.run.snapshot_interval_ms  # every interval of the minute
    assert all(b - a >= interval_ns for a, b in pairwise(times[:-1]))  # the last one: the end of input
