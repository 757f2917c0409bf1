"""The market_state Bytewax flow: exact output, crash recovery, end to end through Kafka and PostgreSQL."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from kafka_support import consume_until
from pets.flows.market_state import DbRow, build_flow, recovery_config, run_embedded
from pets.pipelines.market_data.market import MarketBooks, MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser
from pets.pipelines.polymarket.universe import market_from_row, market_row
from pets.pipelines.simulator import MarketSimulator, SimParams
from pets.pipelines.tables import MARKETS
from pets.schemas.codec import decode, encode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.settings import Settings

YES, NO, MARKET = "yes-token", "no-token", "0xcondition"
D = Decimal
PETS = str(Path(sys.executable).parent / "pets")  # the installed CLI
INFO = MarketInfo(
    condition_id=MARKET,
    market_id="1",
    question="q",
    slug="s",
    category="c",
    token_ids=(YES, NO),
    outcomes=("Yes", "No"),
    neg_risk=False,
    tick_size=D("0.01"),
    min_order_size=D(5),
    active=True,
    closed=False,
    accepting_orders=True,
)


def _book(
    asset: str, ts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], market: str = MARKET
) -> bytes:
    return json.dumps(
        {
            "event_type": "book",
            "asset_id": asset,
            "market": market,
            "timestamp": str(ts),
            "hash": f"h{ts}",
            "bids": [{"price": p, "size": s} for p, s in bids],
            "asks": [{"price": p, "size": s} for p, s in asks],
        }
    ).encode()


def _change(asset: str, ts: int, side: str, price: str, size: str, market: str = MARKET) -> bytes:
    return json.dumps(
        {
            "event_type": "price_change",
            "asset_id": asset,
            "market": market,
            "timestamp": str(ts),
            "hash": "x",
            "changes": [{"side": side, "price": price, "size": size}],
        }
    ).encode()


def _messages(frames: list[bytes], topic: str = "md.book") -> list[KafkaSourceMessage[Any, Any]]:
    return [
        KafkaSourceMessage(key=None, value=f, topic=topic, offset=i, partition=0)
        for i, f in enumerate(frames)
    ]


def _top(
    asset: str, ts: int, seq: int, bid: tuple[str, int], ask: tuple[str, int], **features: str
) -> TopOfBook:
    values = {k: D(v) for k, v in features.items()}
    return TopOfBook(
        asset_id=asset,
        market=MARKET,
        ts_ms=ts,
        best_bid=D(bid[0]),
        best_ask=D(ask[0]),
        best_bid_size=D(bid[1]),
        best_ask_size=D(ask[1]),
        mid=values["mid"],
        microprice=values["microprice"],
        spread=values["spread"],
        imbalance=values["imbalance"],
        tick_size=D("0.01"),
        stale=False,
        paired_asset_id=NO if asset == YES else YES,
        ask_sum=values["ask_sum"],
        bid_sum=values["bid_sum"],
        seq=seq,
    )


def test_the_flow_publishes_exactly_the_expected_messages(settings: Settings) -> None:
    frames = [
        _book(YES, 1000, [("0.44", "80"), ("0.45", "100")], [("0.47", "200")]),  # best last
        _book(NO, 1000, [("0.53", "200")], [("0.56", "80"), ("0.55", "100")]),
        b'{"event_type":"book","asset_id"',  # truncated
        _change(YES, 2000, "BUY", "0.46", "40"),  # a mirrored update: two frames, one timestamp
        _change(NO, 2000, "SELL", "0.54", "40"),
        _change(YES, 3000, "BUY", "0.455", "5"),  # off the stated 0.01 grid
        json.dumps(
            {
                "event_type": "last_trade_price",
                "asset_id": YES,
                "market": MARKET,
                "price": "0.47",
                "size": "12.5",
                "side": "BUY",
                "fee_rate_bps": "0",
                "timestamp": "3500",
                "transaction_hash": "0xabc",
            }
        ).encode(),
    ]
    tops: list[TopOfBook] = []
    dead: list[DeadLetter] = []
    rows: list[DbRow] = []
    flow = build_flow(
        settings,
        TestingSource(_messages(frames)),
        TestingSink(tops),
        dlq_sink=TestingSink(dead),
        db_sink=TestingSink(rows),
        market_infos=[INFO],
        depth_levels=1,
    )
    run_main(flow)
    # microprice = (bid x ask size + ask x bid size) / (bid size + ask size); imbalance over the best level
    assert tops == [
        _top(
            YES,
            1000,
            1,
            ("0.45", 100),
            ("0.47", 200),
            mid="0.46",
            spread="0.02",
            microprice="0.456667",
            imbalance="-0.333333",
            ask_sum="1.02",
            bid_sum="0.98",
        ),
        _top(
            NO,
            1000,
            1,
            ("0.53", 200),
            ("0.55", 100),
            mid="0.54",
            spread="0.02",
            microprice="0.543333",
            imbalance="0.333333",
            ask_sum="1.02",
            bid_sum="0.98",
        ),
        _top(
            YES,
            2000,
            2,
            ("0.46", 40),
            ("0.47", 200),
            mid="0.465",
            spread="0.01",
            microprice="0.461667",
            imbalance="-0.666667",
            ask_sum="1.01",
            bid_sum="0.99",
        ),
        _top(
            NO,
            2000,
            2,
            ("0.53", 200),
            ("0.54", 40),
            mid="0.535",
            spread="0.01",
            microprice="0.538333",
            imbalance="0.666667",
            ask_sum="1.01",
            bid_sum="0.99",
        ),
    ]
    assert sorted((d.source, d.offset, d.reason.split(":")[0]) for d in dead) == [
        ("market_state.book", 5, f"price 0.455 is off the tick grid 0.01 of asset {YES}"),
        ("market_state.parse", 2, "malformed JSON"),
    ]
    assert next(d for d in dead if d.offset == 5).raw_bytes() == frames[5]
    deltas = sorted(row for table, row in rows if table == "book_deltas")
    assert len(deltas) == 8 and len([r for t, r in rows if t == "top_of_book"]) == 4
    yes_change = next(r for r in deltas if r[3] == 3)
    assert yes_change[1:] == (YES, MARKET, 3, "x", "BUY", D("0.46"), D(40), False)
    assert yes_change[0].timestamp() == 2.0
    ((trade_ts, *trade),) = [row for table, row in rows if table == "trades"]
    assert trade == [YES, MARKET, D("0.47"), D("12.5"), "BUY", D(0), "0xabc"] and trade_ts.timestamp() == 3.5


def _synthetic(frames: int = 3000) -> tuple[list[bytes], list[MarketInfo]]:
    sim = MarketSimulator(SimParams.feed(2, 5, "changes"))
    return sim.take(frames), sim.markets


def test_the_flow_publishes_what_the_embedded_loop_publishes(settings: Settings) -> None:
    frames, infos = _synthetic()
    expected: list[TopOfBook] = []
    run_embedded(frames, market_infos=infos, on_top_of_book=expected.append)
    tops: list[TopOfBook] = []
    dead: list[DeadLetter] = []
    flow = build_flow(
        settings,
        TestingSource(_messages(frames), batch_size=100),
        TestingSink(tops),
        dlq_sink=TestingSink(dead),
        db_sink=TestingSink([]),
        market_infos=infos,
    )
    run_main(flow)
    assert dead == []
    for asset in {t.asset_id for t in expected}:  # per asset the order is the same too
        assert [t for t in tops if t.asset_id == asset] == [t for t in expected if t.asset_id == asset]
    assert len(tops) == len(expected)


def _run_with_abort(
    settings: Settings,
    frames: list[bytes],
    infos: list[MarketInfo],
    recovery_dir: Path,
    db_sink: Any,
    epoch: timedelta = timedelta(0),
) -> tuple[list[TopOfBook], list[TopOfBook]]:
    """Run, crash at 55% of the input, run again from the recovery store: (outputs run 1, outputs run 2).

    With epoch 0 every batch is snapshotted (the resume restores the books mid-way); with a long
    epoch nothing is, and the second run replays the input from the start."""
    cut = len(frames) * 55 // 100
    messages = _messages(frames)
    source = TestingSource([*messages[:cut], TestingSource.ABORT(), *messages[cut:]], batch_size=40)
    recovery = recovery_config(settings, db_dir=recovery_dir)
    runs: list[list[TopOfBook]] = []
    for _ in range(2):
        tops: list[TopOfBook] = []
        flow = build_flow(
            settings, source, TestingSink(tops), dlq_sink=TestingSink([]), db_sink=db_sink, market_infos=infos
        )
        run_main(flow, epoch_interval=epoch, recovery_config=recovery)
        runs.append(tops)
    return runs[0], runs[1]


def test_the_flow_resumes_after_a_crash_from_its_recovery_store(settings: Settings, tmp_path: Path) -> None:
    frames, infos = _synthetic()
    expected: list[TopOfBook] = []
    run_embedded(frames, market_infos=infos, on_top_of_book=expected.append)
    first, second = _run_with_abort(settings, frames, infos, tmp_path / "recovery", TestingSink([]))
    assert 0 < len(first) < len(expected)  # it really stopped half way
    assert len(second) < len(expected)  # and did not start over
    assert set(first) | set(second) == set(expected)  # resumed with the restored books: nothing missing


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    env = {**os.environ, "PETS_POSTGRES_DSN": fresh_db}
    subprocess.run([PETS, "db", "migrate"], env=env, check=True, capture_output=True)
    return fresh_db


def _db_tops(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT asset_id, (extract(epoch FROM ts) * 1000)::bigint, seq, best_bid, best_ask, microprice, "
            "imbalance, ask_sum FROM top_of_book ORDER BY asset_id, seq"
        ).fetchall()


def _expected_rows(tops: list[TopOfBook]) -> list[tuple[Any, ...]]:
    return sorted(
        (t.asset_id, t.ts_ms, t.seq, t.best_bid, t.best_ask, t.microprice, t.imbalance, t.ask_sum)
        for t in tops
    )


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.integration
@pytest.mark.parametrize("epoch", [timedelta(0), timedelta(seconds=30)], ids=["resume_mid_way", "replay_all"])
def test_a_crash_adds_no_gaps_or_duplicates_in_the_database(
    settings: Settings, migrated_db: str, tmp_path: Path, epoch: timedelta
) -> None:
    from pets.flows.market_state import TimescaleSink

    frames, infos = _synthetic()
    expected: list[TopOfBook] = []
    run_embedded(frames, market_infos=infos, on_top_of_book=expected.append)
    uninterrupted: list[DbRow] = []
    run_main(
        build_flow(
            settings,
            TestingSource(_messages(frames)),
            TestingSink([]),
            dlq_sink=TestingSink([]),
            db_sink=TestingSink(uninterrupted),
            market_infos=infos,
        )
    )
    first, second = _run_with_abort(
        settings, frames, infos, tmp_path / "recovery", TimescaleSink(migrated_db), epoch
    )
    # resumed mid-way: the second run publishes the rest; nothing snapshotted: it publishes all again
    assert len(second) == (len(expected) - len(first) if epoch == timedelta(0) else len(expected))
    assert _db_tops(migrated_db) == _expected_rows(expected)
    assert _count(migrated_db, "book_deltas") == sum(
        1 for table, _ in uninterrupted if table == "book_deltas"
    )


def _shard_by_market(frames: list[bytes]) -> Iterator[tuple[bytes | None, bytes]]:
    """md.book is keyed by market: a market's two tokens stay in order on one partition."""
    for raw in frames:
        try:
            yield json.loads(raw)["market"].encode(), raw
        except ValueError:
            yield None, raw


def _produce(settings: Settings, frames: list[bytes]) -> None:
    from pets.pipelines.kafka_io import producer

    topic = f"{settings.topic_prefix}md.book"
    kafka = producer(settings, linger_ms=5)
    try:
        for key, raw in _shard_by_market(frames):
            kafka.send(topic, key=key, value=raw)
        kafka.flush()
    finally:
        kafka.close()


@pytest.fixture
def kafka_settings(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, migrated_db: str
) -> Iterator[Settings]:
    from pets.pipelines.kafka_io import delete_topics, ensure_topics

    scoped = dataclasses.replace(
        settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, postgres_dsn=migrated_db
    )
    names = ["md.book", "md.markets", "md.tob", "dlq.market_data"]
    ensure_topics(scoped, names)
    yield scoped
    delete_topics(scoped, [f"{topic_prefix}{n}" for n in names])


@pytest.mark.integration
def test_end_to_end_through_kafka_and_postgres(kafka_settings: Settings) -> None:
    frames, infos = _synthetic(1500)
    expected: list[TopOfBook] = []
    run_embedded(frames, market_infos=infos, on_top_of_book=expected.append)
    trade = {
        "event_type": "last_trade_price",
        "asset_id": infos[0].token_ids[0],
        "market": infos[0].condition_id,
        "price": "0.5",
        "size": "10",
        "side": "SELL",
        "timestamp": "1750000000001",
    }
    _produce(kafka_settings, [*frames, json.dumps(trade).encode(), b"PONG"])
    run_main(build_flow(kafka_settings, market_infos=infos, tail=False))
    published = consume_until(kafka_settings, "md.tob", lambda got: len(got) >= len(expected))
    assert sorted((decode("md.tob", v) for v in published), key=_order) == sorted(expected, key=_order)
    (dead,) = consume_until(kafka_settings, "dlq.market_data", lambda got: len(got) >= 1)
    assert decode("dlq.market_data", dead).raw_bytes() == b"PONG"
    assert _db_tops(kafka_settings.postgres_dsn or "") == _expected_rows(expected)
    assert _count(kafka_settings.postgres_dsn or "", "book_deltas") > len(frames)
    trades = sum(json.loads(f)["event_type"] == "last_trade_price" for f in frames)  # the simulator's
    assert _count(kafka_settings.postgres_dsn or "", "trades") == trades + 1


def _order(top: TopOfBook) -> tuple[str, int]:
    return top.asset_id, top.seq


def _published_without_final_flush(frames: list[bytes], infos: list[MarketInfo]) -> list[TopOfBook]:
    """What a tailing flow has published after these frames (the last group of a market still waits)."""
    parser, engine, tops = FrameParser(), MarketStateEngine(infos), list[TopOfBook]()
    for raw in frames:
        for event in parser.parse(raw):
            assert not isinstance(event, DeadLetter)
            engine.on_event(event, tops)
    return tops


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.integration
def test_a_killed_flow_process_resumes_from_kafka_without_gaps_or_duplicates(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    frames, _ = _synthetic(2000)  # no MarketInfo: pairs learned from the frames, as with the recordings
    half = len(frames) // 2
    dsn = kafka_settings.postgres_dsn or ""
    env = {
        **os.environ,
        "PETS_STATE_DIR": str(tmp_path / "state"),  # recovery store under state/recovery/market_state
        "PETS_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap or "",
        "PETS_POSTGRES_DSN": dsn,
        "PETS_TOPIC_PREFIX": kafka_settings.topic_prefix,
    }
    command = [PETS, "flow", "run", "market_state", "--epoch-ms", "300"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    _produce(kafka_settings, frames[:half])
    first_half = _published_without_final_flush(frames[:half], [])
    process = start()
    try:
        _wait_for(lambda: _count(dsn, "top_of_book") >= len(first_half))
        time.sleep(1.0)  # a few 300 ms epochs: the recovery store holds the books and md.book offsets
        process.kill()  # SIGKILL: no clean shutdown
        process.wait(10)
        _produce(kafka_settings, frames[half:])
        expected = _published_without_final_flush(frames, [])
        process = start()
        _wait_for(lambda: _count(dsn, "top_of_book") >= len(expected))
        time.sleep(1.0)  # anything extra (a duplicate, a phantom) would arrive now
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert _db_tops(dsn) == _expected_rows(expected)  # seq continues after the restart: books were restored
    published = consume_until(kafka_settings, "md.tob", lambda got: len(got) >= len(expected))
    assert {(t.asset_id, t.seq) for t in (decode("md.tob", v) for v in published)} == {
        (t.asset_id, t.seq) for t in expected
    }  # md.tob is at-least-once: a replay may repeat a message, never skip one
    assert len(published) < len(expected) + len(first_half) // 2  # resumed from the stored offsets


@pytest.mark.shared_data
def test_the_flow_on_a_real_recording(settings: Settings, shared_data: Path) -> None:
    path = shared_data / "polymarket" / "l2" / "20250624_mlb-lad-col-2025-06-24.jsonl.gz"
    with gzip.open(path) as lines:
        frames = [line.rstrip(b"\n") for line in lines if line.strip()]
    expected: list[TopOfBook] = []
    run_embedded(frames, on_top_of_book=expected.append)
    tops: list[TopOfBook] = []
    run_main(
        build_flow(
            settings,
            TestingSource(_messages(frames)),
            TestingSink(tops),
            dlq_sink=TestingSink([]),
            db_sink=TestingSink([]),
        )
    )
    assert sorted(tops, key=_order) == sorted(expected, key=_order)


# -- the market universe: the markets table at start, md.markets while running ----------------------

OTHER = "other-token"


def _market(**changes: Any) -> MarketInfo:
    return msgspec.structs.replace(INFO, **changes)


def _market_message(settings: Settings, info: MarketInfo, offset: int) -> KafkaSourceMessage[Any, Any]:
    topic = f"{settings.topic_prefix}md.markets"
    return KafkaSourceMessage(key=info.condition_id.encode(), value=encode(info), topic=topic, offset=offset)


def _run_in_phases(
    settings: Settings, book_items: list[Any], market_items: list[Any], recovery_dir: Path, phases: int
) -> tuple[list[TopOfBook], list[DeadLetter]]:
    """Runs resumed from the recovery store; an EOF in a source ends that source's part of a run, so
    the order of md.markets and md.book across runs is fixed (within one run it is not)."""
    book, markets = TestingSource(book_items), TestingSource(market_items)
    recovery = recovery_config(settings, db_dir=recovery_dir)
    tops: list[TopOfBook] = []
    dead: list[DeadLetter] = []
    for _ in range(phases):
        flow = build_flow(
            settings,
            book,
            TestingSink(tops),
            dlq_sink=TestingSink(dead),
            db_sink=TestingSink([]),
            markets_source=markets,
        )
        run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    return tops, dead


@pytest.mark.parametrize("market", [MARKET, INFO.market_id], ids=["condition_id_live", "gamma_id_recorded"])
def test_a_market_info_on_md_markets_states_the_pair_and_the_tick_of_the_books(
    settings: Settings, tmp_path: Path, market: str
) -> None:
    before = [
        _book(OTHER, 1000, [("0.30", "10")], [("0.40", "10")], market),  # a third token under the market
        _book(YES, 2000, [("0.45", "100")], [("0.47", "200")], market),
        _book(NO, 2000, [("0.53", "200")], [("0.55", "100")], market),
        _change(YES, 3000, "BUY", "0.455", "5", market),  # off the stated 0.01 grid
    ]
    after = [_change(YES, 4000, "BUY", "0.455", "5", market)]  # on the 0.001 grid stated since
    finer = _market(tick_size=D("0.001"))
    book_items = [TestingSource.EOF(), *_messages(before), TestingSource.EOF(), TestingSource.EOF()]
    book_items += [KafkaSourceMessage(key=None, value=f, topic="md.book", offset=9) for f in after]
    market_items = [_market_message(settings, INFO, 0), TestingSource.EOF(), TestingSource.EOF()]
    market_items += [_market_message(settings, finer, 1), TestingSource.EOF()]
    # runs: 1 MarketInfo (0.01) | 2 frames | 3 MarketInfo (0.001) | 4 the frame on the finer grid
    tops, dead = _run_in_phases(settings, book_items, market_items, tmp_path / "recovery", 4)

    assert [(d.source, d.offset, d.reason) for d in dead] == [
        ("market_state.book", 3, f"price 0.455 is off the tick grid 0.01 of asset {YES}")
    ]
    assert dead[0].raw_bytes() == before[3]
    pairs = {(t.asset_id, t.paired_asset_id) for t in tops}
    assert pairs == {(OTHER, None), (YES, NO), (NO, YES)}  # the universe's pair, not the first two seen
    assert {t.tick_size for t in tops if t.ts_ms < 4000} == {D("0.01")}
    (later,) = [t for t in tops if t.asset_id == YES and t.ts_ms == 4000]
    assert (later.best_bid, later.tick_size) == (D("0.455"), D("0.001"))
    assert {t.market for t in tops} == {market}

    # the same frames without the universe: the first two tokens pair up, and the books judge 0.455 by
    # the same rule on the default 0.01 grid (not a tail price: no tail tick implied)
    alone: list[TopOfBook] = []
    alone_dead: list[DeadLetter] = []
    run_main(
        build_flow(
            settings,
            TestingSource(_messages(before)),
            TestingSink(alone),
            dlq_sink=TestingSink(alone_dead),
            db_sink=TestingSink([]),
        )
    )
    assert [d.reason for d in alone_dead] == [dead[0].reason]
    assert {t.paired_asset_id for t in alone} == {None} and {t.tick_size for t in alone} == {D("0.01")}


def test_frames_that_name_no_market_take_a_market_info_only_for_the_tokens_they_hold() -> None:
    parser, books, out = FrameParser(), MarketBooks(""), list[TopOfBook]()
    books.on_universe_info(INFO, 100)  # nothing held yet: not kept (the state may mix markets)
    frames = [
        _book(OTHER, 1000, [("0.30", "10")], [("0.40", "10")], ""),
        _book("another-token", 1000, [("0.60", "10")], [("0.70", "10")], ""),
        _book(YES, 2000, [("0.45", "100")], [("0.47", "200")], ""),
    ]
    for raw in frames:
        for event in parser.parse(raw):
            assert not isinstance(event, DeadLetter)
            books.on_event(event, out)
    assert books.pair == {}  # three tokens: no pair can be learned
    books.on_universe_info(INFO, 10)
    assert books.pair == {YES: NO, NO: YES}
    assert (books.books[YES].tick, books.books[YES].stated_tick) == (10, 10)
    assert books.books[OTHER].stated_tick == 100  # another market's book keeps the default grid
    books.on_universe_info(_market(condition_id="0xelse", market_id="2", token_ids=("x", "y")), 10)
    assert books.pair == {YES: NO, NO: YES}


def test_a_markets_table_row_reads_back_as_the_market_info_it_was_written_from() -> None:
    info = _market(
        neg_risk=True,
        neg_risk_market_id="0xgroup",
        end_date_ms=1_750_000_000_123,
        outcome_prices=(D("0.25"), D("0.75")),
        fee_rate=D("0.02"),
    )
    row = market_row(info, datetime(2026, 1, 1, tzinfo=UTC))
    assert market_from_row(dict(zip(MARKETS.column_names, row, strict=True))) == info


def _produce_markets(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    from pets.pipelines.kafka_io import producer

    kafka = producer(settings)
    try:
        for key, value in messages:
            kafka.send(f"{settings.topic_prefix}md.markets", key=key, value=value)
        kafka.flush()
    finally:
        kafka.close()


@pytest.mark.integration
def test_the_flow_learns_markets_from_the_markets_table_and_md_markets_through_kafka(
    prefixed_settings: Settings, migrated_db: str, tmp_path: Path
) -> None:
    from pets.pipelines.kafka_io import ensure_topics
    from pets.pipelines.timescale import TimescaleWriter

    settings = dataclasses.replace(prefixed_settings, postgres_dsn=migrated_db)
    ensure_topics(settings, ["md.book", "md.markets", "md.tob", "dlq.market_data"])
    in_table = _market(
        condition_id="0xtable", market_id="10", token_ids=("t-yes", "t-no"), tick_size=D("0.001")
    )
    closed = _market(
        condition_id="0xclosed",
        market_id="11",
        token_ids=("c-yes", "c-no"),
        tick_size=D("0.001"),
        closed=True,
    )
    with TimescaleWriter(migrated_db) as writer:
        writer.write(MARKETS, [market_row(m, datetime(2026, 1, 1, tzinfo=UTC)) for m in (in_table, closed)])
    on_stream = _market(condition_id="0xstream", market_id="12", token_ids=("s-yes", "s-no"))
    _produce_markets(settings, [(b"0xstream", encode(on_stream)), (b"0xbad", b'{"condition_id": 1}')])
    recovery = recovery_config(settings, db_dir=tmp_path / "recovery")
    # run 1 reads md.markets (md.book is empty); run 2 resumes it at its end and reads the frames
    run_main(build_flow(settings, tail=False), epoch_interval=timedelta(0), recovery_config=recovery)
    frames = [
        _book("t-yes", 1000, [("0.45", "10")], [("0.46", "10")], "0xtable"),  # live: the condition id
        _change("t-yes", 2000, "BUY", "0.4515", "5", "0xtable"),  # off the table's 0.001 grid
        _book("c-yes", 1000, [("0.4515", "10")], [("0.46", "10")], "0xclosed"),  # closed: the 0.01 default
        _book("s-yes", 1000, [("0.45", "10")], [("0.47", "10")], "12"),  # recorded: the Gamma id
        _book("s-no", 1000, [("0.53", "10")], [("0.55", "10")], "12"),
        _change("s-yes", 2000, "BUY", "0.455", "5", "12"),  # off md.markets' 0.01 grid
    ]
    _produce(settings, frames)
    run_main(build_flow(settings, tail=False), epoch_interval=timedelta(0), recovery_config=recovery)

    published = [decode("md.tob", v) for v in consume_until(settings, "md.tob", lambda got: len(got) >= 3)]
    assert sorted((t.asset_id, t.tick_size, t.paired_asset_id) for t in published) == [
        ("s-no", D("0.01"), "s-yes"),
        ("s-yes", D("0.01"), "s-no"),
        ("t-yes", D("0.001"), None),  # stated by the table (its prices alone would say 0.01)
    ]
    raw = consume_until(settings, "dlq.market_data", lambda got: len(got) >= 4)
    letters = [decode("dlq.market_data", v) for v in raw]
    assert sorted((d.source, d.raw_bytes()) for d in letters) == sorted(
        [
            ("market_state.markets", b'{"condition_id": 1}'),
            ("market_state.book", frames[1]),
            ("market_state.book", frames[2]),
            ("market_state.book", frames[5]),
        ]
    )
    assert {d.reason for d in letters if d.source == "market_state.book"} == {
        "price 0.4515 is off the tick grid 0.001 of asset t-yes",
        "price 0.4515 is off the tick grid 0.01 of asset c-yes",
        "price 0.455 is off the tick grid 0.01 of asset s-yes",
    }


def test_a_recovery_store_written_without_md_markets_resumes_with_it(
    settings: Settings, tmp_path: Path
) -> None:
    first = _messages(
        [
            _book(YES, 1000, [("0.45", "100")], [("0.47", "200")]),
            _book(NO, 1000, [("0.53", "200")], [("0.55", "100")]),
        ]
    )
    then = _messages([_change(YES, 2000, "BUY", "0.46", "5"), _change(NO, 2000, "SELL", "0.54", "5")])
    book = TestingSource([*first, TestingSource.EOF(), *then])
    recovery = recovery_config(settings, db_dir=tmp_path / "recovery")
    tops: list[TopOfBook] = []
    for markets in (None, TestingSource([_market_message(settings, INFO, 0)])):  # before / after the upgrade
        flow = build_flow(
            settings,
            book,
            TestingSink(tops),
            dlq_sink=TestingSink([]),
            db_sink=TestingSink([]),
            markets_source=markets,
        )
        run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    assert [(t.asset_id, t.ts_ms, t.seq) for t in tops] == [
        (YES, 1000, 1),
        (NO, 1000, 1),
        (YES, 2000, 2),
        (NO, 2000, 2),
    ]


@pytest.mark.integration
def test_an_unmigrated_database_is_named_as_the_problem_at_start(fresh_db: str) -> None:
    from pets.flows.market_state import load_open_markets

    with pytest.raises(RuntimeError, match="no `markets` table: run `pets db migrate` first"):
        load_open_markets(fresh_db)


def test_a_market_resolved_frame_publishes_the_closed_market_on_md_markets(settings: Settings) -> None:
    """Risk and the bots learn of a resolution from md.markets, as `pets run` tells them (they do not
    read md.book): the flow publishes the market it knows, closed, with the winner."""
    resolved = json.dumps(
        {"event_type": "market_resolved", "id": "1", "market": MARKET, "assets_ids": [YES, NO],
         "winning_asset_id": YES, "timestamp": "5000"}
    ).encode()  # fmt: skip
    frames = [_book(YES, 1000, [("0.45", "100")], [("0.47", "200")]), resolved]
    published: list[MarketInfo] = []
    flow = build_flow(
        settings, TestingSource(_messages(frames)), TestingSink([]), dlq_sink=TestingSink([]),
        db_sink=TestingSink([]), markets_sink=TestingSink(published), market_infos=[INFO],
    )  # fmt: skip
    run_main(flow)
    final = _market(active=False, closed=True, accepting_orders=False, winning_asset_id=YES)
    assert published == [final]
