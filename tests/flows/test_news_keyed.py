"""The news flow keyed by market: one matcher key matches each item to its markets, the market keys keep
the mids and attention and forecast; one worker, two workers and `NewsSignaller.process` over the same
input in order (the embedded path of `pets run`) publish the same signal.news and features.news."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from pets.deploy.description import load_deploy, worker_errors
from pets.flows.news import build_flow
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed
from pets.pipelines.news.feeds import load_feeds
from pets.pipelines.news.forecaster import BaselineForecaster
from pets.pipelines.news.signals import NewsSignaller
from pets.schemas.codec import encode
from pets.schemas.market_data import LastTradePrice, MarketInfo, TopOfBook
from pets.schemas.signals import NewsAttention, NewsItem, Signal
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings, project_root
from venue_factories import MS, T0, market, tob

D = Decimal
MARKETS = [
    market("m_sotu", ("yes_s", "no_s"), category="politics",
           question="Will Trump call for unity in the State of the Union address?"),
    market("m_fbi", ("yes_f", "no_f"), category="politics",
           question="Will Trump release the FBI memo on surveillance?"),
    market("m_btc", ("yes_b", "no_b"), category="crypto", question="Will Bitcoin reach $100k this year?"),
    market("m_fed", ("yes_r", "no_r"), category="economics",
           question="Will the Fed cut interest rates in March?"),
]  # fmt: skip
THRESHOLD = 1.0  # the default is tuned on thousands of markets
BATCH = 500  # a Kafka fetch's worth: the matched records and the tops reach the market keys apart
Event = MarketInfo | TopOfBook | LastTradePrice | NewsItem


def _item(n: int, at_ms: int, title: str, story: str, sighting: int = 1) -> NewsItem:
    return NewsItem(
        item_id=f"i{n}", source="bbc_world" if sighting == 1 else "nyt_world", feed_url="http://feed",
        title=title, summary="", link=f"http://feed/{n}", published_ms=at_ms - 5_000, received_ns=at_ms * MS,
        story_id=story, sighting=sighting,
    )  # fmt: skip


def _tops(at_ms: int, mid_cents: int) -> list[TopOfBook]:
    """Every market's two tops at `at_ms`, the YES mid `mid_cents` (+ the market's rank), the NO its
    complement."""
    out = []
    for rank, m in enumerate(MARKETS):
        yes = mid_cents + rank
        for asset, cents in zip(m.token_ids, (yes, 100 - yes), strict=True):
            bid, ask = f"0.{cents - 1:02d}", f"0.{cents + 1:02d}"
            out.append(tob(asset, m.condition_id, bid, ask, ts_ms=at_ms))
    return out


def _trade(m: MarketInfo, at_ms: int, size: str) -> LastTradePrice:
    return LastTradePrice(asset_id=m.token_ids[0], market=m.condition_id, price="0.5", size=size, side="BUY",
                          timestamp=str(at_ms))  # fmt: skip


def _events() -> list[Event]:
    """Markets, then a minute of tops (every 5 s, the mids rising a cent each time) and trades with the
    items among them in time order: three first sightings and a later sighting of the first story."""
    items = [
        _item(1, T0 + 12_000, "Trump to call for unity in State of the Union, FBI memo release", "s1"),
        _item(2, T0 + 22_000, "Bitcoin surges as traders eye $100k this year", "s2"),
        _item(3, T0 + 33_000, "Trump unity call expected in State of the Union", "s1", 2),
        _item(4, T0 + 47_000, "Fed likely to cut interest rates in March", "s4"),
    ]
    events: list[tuple[int, Event]] = [(i.received_ns // MS, i) for i in items]
    for step in range(12):
        at = T0 + 5_000 * step
        events += [(at, t) for t in _tops(at, 30 + step)]
        events += [(at, _trade(m, at, str(step + 1))) for m in MARKETS[::2]]
    return [*MARKETS, *(event for _, event in sorted(events, key=lambda e: e[0]))]


def _message(event: Event) -> KafkaSourceMessage[Any, Any]:
    topic = {MarketInfo: "md.markets", TopOfBook: "md.tob", LastTradePrice: "md.book", NewsItem: "news.item"}
    return KafkaSourceMessage(key=None, value=encode(event), topic=topic[type(event)])


def _settings() -> Settings:
    return Settings(config_dir=project_root() / "config", topic_prefix="")


def _by_market(routed: list[Routed]) -> dict[str, list[Signal | NewsAttention]]:
    """Each market's signal.news and features.news messages, in the order published."""
    out: dict[str, list[Signal | NewsAttention]] = {}
    for r in routed:
        assert r.topic in ("signal.news", "features.news") and r.key == r.message.market, r
        out.setdefault(r.key, []).append(r.message)
    return out


def _embedded(events: list[Event]) -> dict[str, list[Signal | NewsAttention]]:
    """`NewsSignaller.process` over the events in order, as `pets run` does."""
    reliability = {f.source: f.reliability for f in load_feeds(_settings().config_dir / "news.yaml")}
    s = NewsSignaller(BaselineForecaster(), reliability, THRESHOLD)
    out: dict[str, list[Signal | NewsAttention]] = {}
    for event in events:
        if isinstance(event, MarketInfo):
            s.on_market(event)
        elif isinstance(event, TopOfBook):
            s.on_book(event)
        elif isinstance(event, LastTradePrice):
            s.on_trade(event)
        else:
            signals, features = s.process(event)
            messages: list[Signal | NewsAttention] = [*signals, *features]
            for message in messages:  # per market: an item's signal, then its features
                out.setdefault(message.market, []).append(message)
    return out


def _flow_output(events: list[Any], workers: int, recovery: Path | None = None) -> list[Routed]:
    routed: list[Routed] = []
    messages = [e if isinstance(e, TestingSource.EOF) else _message(e) for e in events]
    flow = build_flow(_settings(), TestingSource(messages, batch_size=BATCH),
                      TestingSink(routed), feeds=TestingSource([]), make_forecaster=BaselineForecaster,
                      threshold=THRESHOLD)  # fmt: skip
    if recovery is not None:
        run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery_store(recovery, 1))
    elif workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return routed


def test_one_and_two_workers_publish_what_the_embedded_signaller_does_per_market() -> None:
    events = _events()
    expected = _embedded(events)
    one, two = _by_market(_flow_output(events, 1)), _by_market(_flow_output(events, 2))
    assert one == expected
    assert two == expected
    # the matches themselves, independent of the code: each item's own market signalled, at its mid
    signals = {m.signal_id: m for messages in one.values() for m in messages if isinstance(m, Signal)}
    assert {s.market for s in signals.values()} >= {"m_sotu", "m_btc", "m_fed"}
    [btc] = [s for s in signals.values() if s.market == "m_btc"]
    # item 2 at T0 + 22 s: the tops of T0 + 20 s (step 4) hold, YES mid 0.30 + 0.04 + rank 2 = 0.36;
    # "surges" favours YES: q = 0.36 + 0.10 -> buy YES at p 0.46, its mid the reference
    assert (btc.asset_id, btc.probability, btc.reference_mid, btc.ts_ns) == ("yes_b", D("0.46"), D("0.36"),
                                                                             (T0 + 22_000) * MS)  # fmt: skip


def test_a_later_sighting_gives_attention_only_on_its_first_sightings_markets() -> None:
    events = _events()
    one, two = _by_market(_flow_output(events, 1)), _by_market(_flow_output(events, 2))
    first_ns, later_ns = (T0 + 12_000) * MS, (T0 + 33_000) * MS
    firsts = {m for m, messages in two.items() if any(x.ts_ns == first_ns for x in messages)}
    assert "m_sotu" in firsts
    later = {m: [x for x in messages if x.ts_ns == later_ns] for m, messages in two.items()}
    assert {m for m, xs in later.items() if xs} == firsts  # wherever those markets' keys live
    for m in firsts:
        [feature] = later[m]  # no signal: attention only
        assert isinstance(feature, NewsAttention) and (feature.news_5m, feature.news_24h) == (2, 2)
    sotu = later["m_sotu"][0]
    assert isinstance(sotu, NewsAttention)
    # the YES mid 0.30 at T0 (the first top, within 5 min) to 0.36 at T0 + 30 s; the prints of
    # T0 + 0 .. 30 s, 1 .. 7 shares: 1 + 2 + ... + 7 = 28 within 5 min and 1 h
    assert (sotu.momentum_5m, sotu.volume_5m, sotu.volume_1h) == (D("0.06"), D(28), D(28))
    assert two == one


def test_a_record_reads_the_mids_at_its_items_time_not_the_tops_that_overtook_it() -> None:
    """Tops later than the item right behind it in the input (one step fewer to the market key than the
    matched record): the forecast prices at the mid in force at the item's time, as in one key."""
    at = T0 + 10_000
    item = _item(1, at, "Bitcoin surges as traders eye $100k this year", "s1")
    events: list[Event] = [*MARKETS, *_tops(T0, 40), item, *_tops(at + 1, 70), *_tops(at + 2, 20)]
    expected = _embedded(events)
    [signal] = [m for m in expected["m_btc"] if isinstance(m, Signal)]
    assert (signal.reference_mid, signal.probability) == (D("0.42"), D("0.52"))  # 0.40 + rank 2; + 0.10
    for workers in (1, 2):
        assert _by_market(_flow_output(events, workers)) == expected


def test_a_restored_market_key_keeps_its_mids_and_attention(tmp_path: Path) -> None:
    """Stopped after the first item and resumed from the recovery store: the matcher's markets (no
    md.markets after the restart) and stories, the market keys' mids (no top after it), attention and
    trades carry on as in one uninterrupted run."""
    first_sighting = _item(1, T0 + 12_000, "Trump to call for unity in State of the Union", "s1")
    before = [*MARKETS, *_tops(T0, 30), *_tops(T0 + 5_000, 31), _trade(MARKETS[0], T0, "4"), first_sighting]
    after = [_item(2, T0 + 40_000, "Trump unity call expected in State of the Union", "s1", 2),
             _item(3, T0 + 50_000, "Bitcoin surges as traders eye $100k this year", "s3")]  # fmt: skip
    store = tmp_path / "recovery"
    first = _flow_output([*before, TestingSource.EOF()], 1, store)
    second = _flow_output([*before, TestingSource.EOF(), *after], 1, store)
    expected = _embedded([*before, *after])
    assert _by_market(first + second) == expected
    assert {r.message.ts_ns for r in second} == {(T0 + 40_000) * MS, (T0 + 50_000) * MS}
    [btc] = [m for m in expected["m_btc"] if isinstance(m, Signal)]
    assert btc.reference_mid == D("0.33")  # the tops of T0 + 5 s: 0.31 + rank 2, from before the restart
    [*_, sotu] = expected["m_sotu"]
    assert isinstance(sotu, NewsAttention)  # two items, the mid 0.30 -> 0.31, the 4 shares printed
    assert (sotu.news_24h, sotu.momentum_5m, sotu.volume_5m) == (2, D("0.01"), D(4))


def test_the_news_flows_workers_are_bounded_by_its_market_keyed_input() -> None:
    """Keyed by market: as many workers as md.tob has partitions (news.item, keyed by source, goes to the
    one matcher key anyway)."""
    config = project_root() / "config"
    registry = load_topic_registry(config)
    news = load_deploy(config).flows["news"]
    partitions = registry.get("md.tob").partitions
    assert news.partitioned_by == "md.tob" and partitions == registry.get("md.book").partitions
    assert worker_errors("news", news, partitions, registry) == []
    [(key, problem)] = worker_errors("news", news, partitions + 1, registry)
    assert key == "workers" and f"md.tob has {partitions} partition(s)" in problem
