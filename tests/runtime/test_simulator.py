"""The market simulator: deterministic, venue-shaped, with the mispricings the arbitrage bots hunt."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import msgspec

from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser
from pets.pipelines.news.forecaster import polarity
from pets.pipelines.news.matching import MarketIndex
from pets.pipelines.news.signals import market_from_info
from pets.pipelines.simulator import AltData, MarketSimulator, SimParams
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketFrame, TopOfBook
from pets.schemas.signals import NewsItem, Signal, WalletFill, WhaleRanking

PARAMS = SimParams(seed=7, binary_markets=10, neg_risk_outcomes=4, duration_ms=300_000, step_ms=100)
_DECODE = msgspec.json.Decoder(MarketFrame)


def _digest(params: SimParams) -> str:
    h = hashlib.sha256()
    for frame in MarketSimulator(params).frames():
        h.update(frame)
    return h.hexdigest()


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    assert _digest(PARAMS) == _digest(PARAMS)
    assert _digest(PARAMS) != _digest(
        SimParams(seed=8, binary_markets=10, neg_risk_outcomes=4, duration_ms=300_000, step_ms=100)
    )
    assert MarketSimulator(PARAMS).markets == MarketSimulator(PARAMS).markets


def _replay(sim: MarketSimulator) -> tuple[list[bytes], list[TopOfBook], int]:
    frames = list(sim.frames())
    parser, engine = FrameParser(), MarketStateEngine(sim.markets)
    tobs: list[TopOfBook] = []
    bad = 0
    for frame in frames:
        for event in parser.parse(frame):
            if isinstance(event, DeadLetter) or engine.on_event(event, tobs) is not None:  # type: ignore[arg-type]
                bad += 1
    engine.flush(tobs)
    return frames, tobs, bad


def test_frames_are_valid_venue_events_on_the_tick_grid() -> None:
    sim = MarketSimulator(PARAMS)
    frames, tobs, bad = _replay(sim)
    assert bad == 0
    kinds = {_DECODE.decode(f).__class__.__name__ for f in frames}
    assert kinds == {"BookSnapshot", "PriceChange", "LastTradePrice", "MarketResolved"}
    ticks = {info.token_ids[0]: info.tick_size for info in sim.markets}
    ticks |= {info.token_ids[1]: info.tick_size for info in sim.markets}
    for tob in tobs:
        assert not (tob.best_bid is not None and tob.best_ask is not None and tob.best_bid >= tob.best_ask)
        for price in (tob.best_bid, tob.best_ask):
            assert price is None or price % ticks[tob.asset_id] == 0
    assert len({i.condition_id for i in sim.markets}) == 14 and sum(i.neg_risk for i in sim.markets) == 4
    assert len({i.neg_risk_market_id for i in sim.markets if i.neg_risk}) == 1


def test_mispricings_tails_and_resolutions_occur() -> None:
    sim = MarketSimulator(PARAMS)
    frames, tobs, _ = _replay(sim)
    binary = {t for i in sim.markets if not i.neg_risk for t in i.token_ids}
    assert any(t.ask_sum is not None and t.ask_sum < 1 for t in tobs if t.asset_id in binary)
    assert any(t.bid_sum is not None and t.bid_sum > 1 for t in tobs if t.asset_id in binary)
    assert any(t.best_ask is not None and t.best_ask <= Decimal("0.05") for t in tobs)  # tail prices
    # the negative-risk event: sum of the YES best asks over all outcomes, after every update
    yes = [i.token_ids[0] for i in sim.markets if i.neg_risk]
    latest: dict[str, Decimal] = {}
    basket_sums = []
    for tob in tobs:
        if tob.asset_id in yes and tob.best_ask is not None:
            latest[tob.asset_id] = tob.best_ask
            if len(latest) == len(yes):
                basket_sums.append(sum(latest.values()))
    assert min(basket_sums) < 1 < max(basket_sums)
    resolved = [_DECODE.decode(f) for f in frames if b'"market_resolved"' in f]
    assert resolved and all(r.winning_asset_id in r.assets_ids for r in resolved)


# ------------------------------------------------------------------ alternative data (AltData)

ALT = SimParams(seed=3, binary_markets=10, neg_risk_outcomes=4, duration_ms=600_000, step_ms=100)


def test_events_carry_exactly_the_frames_plus_signals_deterministically() -> None:
    events = list(MarketSimulator(ALT).events())
    assert [e for e in events if isinstance(e, bytes)] == list(MarketSimulator(ALT).frames())
    signals = [e for e in events if isinstance(e, Signal)]
    assert signals == [e for e in MarketSimulator(ALT).events() if isinstance(e, Signal)]
    assert {s.source for s in signals} == {"esports", "whale", "model"}
    assert len({s.signal_id for s in signals}) == len(signals)
    items = [e for e in events if isinstance(e, NewsItem)]
    assert items and items == [e for e in MarketSimulator(ALT).events() if isinstance(e, NewsItem)]
    assert len({i.item_id for i in items}) == len(items)
    assert all(2_000 <= i.received_ns // 1_000_000 - (i.published_ms or 0) <= 20_000 for i in items)
    assert all(s.model_version == "sim-calibration@1" for s in signals if s.source == "model")
    # in time order with the frames around them
    last_ms = 0
    for event in events:
        if isinstance(event, Signal | NewsItem):
            ts_ms = (event.ts_ns if isinstance(event, Signal) else event.received_ns) // 1_000_000
            assert ts_ms >= last_ms
            last_ms = ts_ms
        elif isinstance(event, WalletFill):
            assert event.ts_ms >= last_ms
            last_ms = event.ts_ms
        elif not isinstance(event, WhaleRanking):
            ts = msgspec.json.decode(event).get("timestamp")
            if ts is not None:
                assert int(ts) >= last_ms
                last_ms = int(ts)


def test_news_and_esports_events_precede_the_moves_they_announce() -> None:
    """Each announcement's token gains at least 3 points of fair probability over the next 10 s,
    measured on an independent run of the same seed."""
    sim = MarketSimulator(ALT)
    fair: dict[tuple[str, int], float] = {}
    yes = {m.condition_id: m.token_ids[0] for m in sim.markets}
    for step, _ in sim._steps():
        for m, prob in sim.probabilities():
            fair[(m.condition_id, step)] = prob
    esports = {m.condition_id for m in sim.markets if m.category == "esports"}
    announced = [e for e in MarketSimulator(ALT).events() if isinstance(e, Signal) and e.source == "esports"]
    assert len(announced) >= 5
    for signal in announced:
        step = (signal.ts_ns // 1_000_000 - ALT.start_ms) // ALT.step_ms
        change = fair[(signal.market, step + 100)] - fair[(signal.market, step)]
        gain = change if signal.asset_id == yes[signal.market] else -change
        assert gain >= 0.03, (signal, change)
        assert (signal.source == "esports") == (signal.market in esports)


def test_news_items_name_their_market_and_favour_the_side_that_rises() -> None:
    """Each news item's headline matches its own market first (at the simulator's scale, as `pets run`
    matches), no other market clears the threshold, and its wording's polarity is the side whose fair
    probability gains at least 3 points over the next 10 s (an independent run of the same seed)."""
    sim = MarketSimulator(ALT)
    fair: dict[tuple[str, int], float] = {}
    for step, _ in sim._steps():
        for m, prob in sim.probabilities():
            fair[(m.condition_id, step)] = prob
    index = MarketIndex([market_from_info(m) for m in sim.markets], AltData.MATCH_THRESHOLD)
    items = [e for e in MarketSimulator(ALT).events() if isinstance(e, NewsItem)]
    assert len(items) >= 5
    esports = {m.condition_id for m in sim.markets if m.category == "esports"}
    for item in items:
        [match] = index.match(item.title, 3)
        assert match.condition_id not in esports and match.question.rstrip("?") in item.title
        step = (item.received_ns // 1_000_000 - ALT.start_ms) // ALT.step_ms
        change = fair[(match.condition_id, step + 100)] - fair[(match.condition_id, step)]
        assert polarity(item) * change >= 0.03, (item.title, change)
