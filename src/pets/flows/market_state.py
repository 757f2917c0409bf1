"""market_state: md.book (raw market-channel frames) -> L2 books per market -> md.tob and TimescaleDB.

    md_book_in -> parse -> split_dead_letters -> key_by_market --------------------+
    md_markets_in -> route_market_infos -> split_market_dead_letters -> merge_market_infos
        -> book_state -> drop_market_key
        tops                      -> md_tob_out (Kafka md.tob, key market); top_of_book_rows -> db_out
        book deltas, last trades  -> book_delta_rows -> db_out (TimescaleDB book_deltas, trades)
        dead letters              -> dlq_out (Kafka dlq.market_data, with the reason and the raw frame)
        market_resolved events    -> md_markets_out (Kafka md.markets: the market closed, its winner)

Bytewax keeps the md.book offsets and every market's book state in its recovery store, so after a
crash the flow resumes from the last snapshot and replays the frames since then: the books are
rebuilt exactly, the top-of-book `seq` numbers come out the same, and the database ignores the
rows it already has (unique keys). md.tob is at-least-once: consumers deduplicate on
(asset_id, seq).

md.book is keyed by market (topics.yaml) so that the frames of a market's two tokens stay in order on
one partition: the grouping of mirrored updates depends on it. md.tob is keyed by market too, with as
many partitions: a market's tops land on the partition index of its frames and its signals, so in a
bots cluster a market's two tokens' tops reach its bot instances in the order they were made.

The market universe states each market's YES/NO pair and tick size: at start the open markets of
the `markets` table (when a database is configured), then md.markets (compacted, read from the
beginning on a first start) while running. Frames name their market by condition id live, by Gamma
market id in the recordings, so a MarketInfo is routed to both keys (and to "", the state of frames
that name no market, which takes it for the tokens it holds). A MarketInfo publishes nothing: the
next top of book of its tokens carries the new tick. A `market_resolved` frame publishes the market's
final state on md.markets, as `pets run` does: risk and the bots settle on it as the executor does
on the frame itself. After a crash the two inputs replay from one
snapshot but may interleave differently: only a MarketInfo that changed a market within the replayed
epoch can move which of that market's frames see the change.

`run_embedded` is the same pipeline as a plain in-process loop (pets.pipelines.market_data.embedded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeGuard, TypeVar

import msgspec
from bytewax import operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, Sink, StatelessSinkPartition
from bytewax.recovery import RecoveryConfig

from pets.execution.portfolio import resolved_market
from pets.flows.kafka_source import SINK_CONFIG
from pets.flows.recovery import freeze, recovery_store, thaw
from pets.flows.timescale_sink import DbRow, TimescaleSink
from pets.flows.trading_io import TopicDecoder, log_dead_letter, oversize, venue_time_fault
from pets.observability import metrics
from pets.pipelines.market_data.embedded import BOOK_SOURCE, AssetQuote, ReplaySummary, run_embedded
from pets.pipelines.market_data.features import DEFAULT_DEPTH_LEVELS
from pets.pipelines.market_data.market import MarketBooks, info_lookup
from pets.pipelines.market_data.parser import BookEvent, FrameParser, LevelDeltas, Snapshot
from pets.pipelines.tables import MARKETS, ts_from_ms
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import LastTradePrice, MarketInfo, MarketResolved, TopOfBook
from pets.schemas.topics import TopicRegistry, load_topic_registry
from pets.settings import DEFAULT_CLOCK_TOLERANCE_S, DEFAULT_MAX_MESSAGE_BYTES, Settings
from pets.venue.units import BadValue, price_decimal, size_decimal, tick_units

__all__ = ["AssetQuote", "ReplaySummary", "build_flow", "recovery_config", "run_embedded"]

FLOW_NAME = "market_state"
INPUT_TOPICS = ("md.book", "md.markets")
PARSE_SOURCE = "market_state.parse"
MARKETS_SOURCE = "market_state.markets"



class ParsedFrame(NamedTuple):
    """One parsed event with where it came from (its Kafka position, the raw frame for dead letters)."""

    frame_seq: int
    raw: bytes
    topic: str | None
    partition: int | None
    event: BookEvent


class MarketUpdate(NamedTuple):
    """A MarketInfo of md.markets for the book state of `market` (a key its frames may use)."""

    market: str
    info: MarketInfo
    tick: int  # the stated tick size in price units


class BookOutput(NamedTuple):
    """What the book step emits: a top of book, a dead letter, database rows, or a resolved market."""

    top: TopOfBook | None = None
    dead: DeadLetter | None = None
    rows: tuple[DbRow, ...] = ()
    market: MarketInfo | None = None


def build_flow(
    settings: Settings,
    source: Source[Any] | None = None,
    sink: Sink[TopOfBook] | None = None,
    *,
    dlq_sink: Sink[DeadLetter] | None = None,
    db_sink: Sink[DbRow] | None = None,
    markets_source: Source[Any] | None = None,
    markets_sink: Sink[MarketInfo] | None = None,
    market_infos: Iterable[MarketInfo] | None = None,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
    tail: bool = True,
) -> Dataflow:
    """The market_state dataflow. Defaults: Kafka md.book and md.markets in, Kafka md.tob /
    dlq.market_data out, TimescaleDB out when `settings.postgres_dsn` is set, and the open markets of
    its `markets` table as the starting universe. Tests inject TestingSource/TestingSink (md.markets
    is read only when `markets_source` is given) and `market_infos`."""
    registry = load_topic_registry(settings.config_dir)

    def topic(name: str) -> str:
        return registry.get(name).full_name(settings.topic_prefix)

    if source is None:
        from pets.flows.kafka_source import MultiPartitionKafkaSource
        from pets.pipelines.kafka_io import ensure_topics

        ensure_topics(settings, ["md.book", "md.markets"])  # a first start before market_ingest's
        cluster = settings.flow_workers > 1  # one Bytewax partition per Kafka partition index
        source = MultiPartitionKafkaSource(
            [settings.require_kafka()], [topic("md.book")], tail=tail, split=cluster
        )
        if markets_source is None:
            markets_source = MultiPartitionKafkaSource(
                [settings.require_kafka()], [topic("md.markets")], tail=tail, split=cluster
            )
        if market_infos is None and settings.postgres_dsn:
            market_infos = load_open_markets(settings.postgres_dsn)
    tob_sink: Sink[TopOfBook] = sink or _KafkaMessageSink[TopOfBook](
        settings, topic("md.tob"), "market", metrics.observe_tops
    )
    dead_sink: Sink[DeadLetter] = dlq_sink or _KafkaMessageSink[DeadLetter](
        settings, topic("dlq.market_data"), "source", metrics.observe_dead_letters("dlq.market_data")
    )
    if markets_sink is None and sink is None:
        markets_sink = _KafkaMessageSink[MarketInfo](
            settings, topic("md.markets"), "condition_id", _unobserved
        )
    if db_sink is None and settings.postgres_dsn:
        db_sink = TimescaleSink(settings.postgres_dsn)
    infos = info_lookup(market_infos or ())

    flow = Dataflow(FLOW_NAME)
    messages = op.input("md_book_in", flow, source)
    parse = partial(
        _parse_message,
        max_bytes=settings.max_message_bytes,
        tolerance_ms=int(settings.clock_tolerance_s * 1000),
    )
    parsed = op.flat_map("parse", messages, parse)
    split = op.branch("split_dead_letters", parsed, _is_parsed)
    keyed_frames = op.key_on("key_by_market", split.trues, lambda item: item.event.market or "")
    keyed: Stream[tuple[str, ParsedFrame | MarketUpdate]] = keyed_frames
    dead_streams: list[Stream[Any]] = [split.falses]  # the falses of each branch are its dead letters
    if markets_source is not None:
        route = MarketRouter(registry, settings.topic_prefix, settings.max_message_bytes)
        market_messages = op.input("md_markets_in", flow, markets_source)
        routed = op.flat_map("route_market_infos", market_messages, route)
        market_split = op.branch("split_market_dead_letters", routed, _is_update)
        keyed = op.merge("merge_market_infos", keyed, market_split.trues)
        dead_streams.append(market_split.falses)
    books = op.stateful_batch(
        "book_state",
        keyed,
        lambda resume: BookStateLogic(thaw(resume), infos, depth_levels, store_rows=db_sink is not None),
    )
    outputs = op.map("drop_market_key", books, lambda key_output: key_output[1])
    tops = op.filter_map("tops", outputs, lambda out: out.top)
    op.output("md_tob_out", tops, tob_sink)
    if markets_sink is not None:
        resolved = op.filter_map("resolved_markets", outputs, lambda out: out.market)
        op.output("md_markets_out", resolved, markets_sink)
    book_dead = op.filter_map("book_dead_letters", outputs, lambda out: out.dead)
    dead: Stream[DeadLetter] = op.merge("all_dead_letters", *dead_streams, book_dead)
    op.output("dlq_out", op.inspect("log_dead_letters", dead, log_dead_letter), dead_sink)
    if db_sink is not None:
        top_rows = op.map("top_of_book_rows", tops, top_of_book_row)
        delta_rows = op.flat_map("book_delta_rows", outputs, lambda out: out.rows)
        op.output("db_out", op.merge("all_db_rows", top_rows, delta_rows), db_sink)
    return flow


def recovery_config(settings: Settings, workers: int = 1, db_dir: Path | None = None) -> RecoveryConfig:
    """The flow's recovery store (created and initialised with `workers` partitions on first use)."""
    return recovery_store(db_dir or settings.recovery_dir / FLOW_NAME, workers)


def load_open_markets(dsn: str) -> list[MarketInfo]:
    """The markets not closed in the `markets` table (written by the universe discovery)."""
    import psycopg

    from pets.pipelines.polymarket.universe import market_from_row

    columns = MARKETS.column_names
    with psycopg.connect(dsn) as conn:
        try:
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM markets WHERE NOT closed").fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise RuntimeError("the database has no `markets` table: run `pets db migrate` first") from exc
    return [market_from_row(dict(zip(columns, row, strict=True))) for row in rows]


class MarketRouter:
    """md.markets message -> a MarketUpdate per key the market's frames may use, or a dead letter.

    Closed markets are dropped: their books get no more frames, and skipping them keeps the universe
    of past markets out of the book state."""

    def __init__(
        self, registry: TopicRegistry, prefix: str, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self._decode = TopicDecoder(registry, prefix, ["md.markets"], MARKETS_SOURCE, max_bytes)

    def __call__(self, message: KafkaSourceMessage[Any, Any]) -> list[tuple[str, MarketUpdate] | DeadLetter]:
        info = self._decode(message)
        if isinstance(info, DeadLetter):
            return [info]
        try:
            tick = tick_units(format(info.tick_size, "f"))
        except BadValue as exc:
            raw = message.value if isinstance(message.value, bytes) else encode(info)
            return [self._decode.dead(message, raw, f"market {info.condition_id}: {exc}")]
        if info.closed:
            return []
        return [
            (key, MarketUpdate(key, info, tick))
            for key in dict.fromkeys((info.condition_id, info.market_id, ""))
        ]


def _is_update(item: tuple[str, MarketUpdate] | DeadLetter) -> TypeGuard[tuple[str, MarketUpdate]]:
    return not isinstance(item, DeadLetter)


_parser = FrameParser(PARSE_SOURCE)


def _is_parsed(item: ParsedFrame | DeadLetter) -> TypeGuard[ParsedFrame]:
    return isinstance(item, ParsedFrame)


def _parse_message(
    message: KafkaSourceMessage[Any, Any],
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    tolerance_ms: int = int(DEFAULT_CLOCK_TOLERANCE_S * 1000),
) -> list[ParsedFrame | DeadLetter]:
    raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
    if len(raw) > max_bytes:  # before parsing: a poison frame costs no parse
        return [_dead(message, raw, oversize(message.topic, len(raw), max_bytes))]
    out: list[ParsedFrame | DeadLetter] = []
    for item in _parser.parse(
        raw, topic=message.topic, key=message.key, partition=message.partition, offset=message.offset
    ):
        if isinstance(item, DeadLetter):
            out.append(item)
            continue
        ts_ms = getattr(item, "ts_ms", None)
        fault = None if ts_ms is None else venue_time_fault(ts_ms, time.time_ns() // 1_000_000, tolerance_ms)
        if fault is not None:  # one such frame would move the book's time (and risk's) decades ahead
            out.append(_dead(message, raw, fault))
            continue
        out.append(ParsedFrame(message.offset or 0, raw, message.topic, message.partition, item))
    return out


def _dead(message: KafkaSourceMessage[Any, Any], raw: bytes, reason: str) -> DeadLetter:
    return DeadLetter.from_bytes(
        PARSE_SOURCE, reason, raw, ts_ns=time.time_ns(), topic=message.topic, key=message.key,
        partition=message.partition, offset=message.offset,
    )  # fmt: skip


class BookStateLogic(StatefulBatchLogic[ParsedFrame | MarketUpdate, BookOutput, bytes]):
    """The books of one market (the key); its snapshot is the whole MarketBooks state. `store_rows`:
    also emit the database rows of book deltas and trades (only when a database sink takes them)."""

    def __init__(
        self,
        resume: MarketBooks | None,
        infos: Mapping[str, MarketInfo],
        depth_levels: int,
        store_rows: bool = True,
    ) -> None:
        self._books = resume
        self._infos = infos
        self._info: MarketInfo | None = None  # the latest md.markets state of this key (not snapshotted)
        self._depth_levels = depth_levels
        self._store_rows = store_rows

    def on_batch(self, values: list[ParsedFrame | MarketUpdate]) -> tuple[Iterable[BookOutput], bool]:
        tops: list[TopOfBook] = []
        outputs: list[BookOutput] = []
        for item in values:
            if isinstance(item, MarketUpdate):
                self._on_market_update(item)
                continue
            event = item.event
            if type(event) is MarketResolved:
                outputs.append(BookOutput(market=self._resolved(event)))
                continue
            books = self._books if self._books is not None else self._start(event.market or "")
            reason = books.on_event(event, tops)
            if tops:
                outputs.extend(BookOutput(top=top) for top in tops)
                tops.clear()
            if reason is not None:
                outputs.append(BookOutput(dead=self._dead_letter(item, reason)))
            elif not self._store_rows:
                continue
            elif type(event) is LevelDeltas or type(event) is Snapshot:
                outputs.append(BookOutput(rows=book_delta_rows(event, item.frame_seq)))
            elif type(event) is LastTradePrice:
                outputs.append(BookOutput(rows=(trade_row(event),)))
        if self._books is None:  # MarketInfo for "" before any of its frames: nothing to keep
            return outputs, StatefulBatchLogic.DISCARD
        return outputs, StatefulBatchLogic.RETAIN

    def _start(self, market: str) -> MarketBooks:
        books = self._books = MarketBooks(market, self._infos.get(market), depth_levels=self._depth_levels)
        return books

    def _on_market_update(self, update: MarketUpdate) -> None:
        books = self._books
        if update.market != "":
            self._info = update.info
        if books is None:
            if update.market == "":
                return  # "" takes a MarketInfo only for the tokens it holds
            books = self._start(update.market)
        books.on_universe_info(update.info, update.tick)

    def _resolved(self, event: MarketResolved) -> MarketInfo:
        """The market's final state for md.markets, where risk, the bots and the executor learn of it
        (as `pets run` publishes it; docs/running.md). Built on the latest MarketInfo this key saw
        since the process started, else on the starting universe's."""
        infos = self._infos
        known = self._info or infos.get(event.market) or (infos.get(event.id) if event.id else None)
        return resolved_market(event, known)

    def on_eof(self) -> tuple[Iterable[BookOutput], bool]:
        tops: list[TopOfBook] = []
        if self._books is not None:
            self._books.flush(tops)
        return [BookOutput(top=top) for top in tops], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return freeze(self._books)

    @staticmethod
    def _dead_letter(item: ParsedFrame, reason: str) -> DeadLetter:
        return DeadLetter.from_bytes(
            BOOK_SOURCE,
            reason,
            item.raw,
            ts_ns=time.time_ns(),
            topic=item.topic,
            partition=item.partition,
            offset=item.frame_seq,
        )


def top_of_book_row(top: TopOfBook) -> DbRow:
    return (
        "top_of_book",
        (
            ts_from_ms(top.ts_ms),
            top.asset_id,
            top.market,
            top.best_bid,
            top.best_ask,
            top.best_bid_size,
            top.best_ask_size,
            top.mid,
            top.microprice,
            top.spread,
            top.imbalance,
            top.tick_size,
            top.stale,
            top.paired_asset_id,
            top.ask_sum,
            top.bid_sum,
            top.seq,
        ),
    )


def trade_row(trade: LastTradePrice) -> DbRow:
    """The venue's last trade (validated by the parser); it has no trade id, the print is the key."""
    return (
        "trades",
        (
            ts_from_ms(int(trade.timestamp)),
            trade.asset_id,
            trade.market,
            Decimal(trade.price),
            Decimal(trade.size),
            trade.side,
            Decimal(trade.fee_rate_bps) if trade.fee_rate_bps else None,
            trade.transaction_hash or "",
        ),
    )


def book_delta_rows(event: LevelDeltas | Snapshot, frame_seq: int) -> tuple[DbRow, ...]:
    """book_deltas rows of one accepted event (one per level; the last change of a level wins)."""
    ts = ts_from_ms(event.ts_ms)
    levels: dict[tuple[str, int], int] = {}
    if type(event) is Snapshot:
        for price, size in event.bids:
            levels["BUY", price] = size
        for price, size in event.asks:
            levels["SELL", price] = size
    else:
        for is_bid, price, size in event.changes:  # type: ignore[union-attr]
            levels["BUY" if is_bid else "SELL", price] = size
    snapshot = type(event) is Snapshot
    return tuple(
        (
            "book_deltas",
            (
                ts,
                event.asset_id,
                event.market,
                frame_seq,
                event.hash,
                side,
                price_decimal(price),
                _size(size),
                snapshot,
            ),
        )
        for (side, price), size in levels.items()
    )


def _size(units: int) -> Decimal:
    return size_decimal(units) if units else Decimal(0)


M = TypeVar("M", bound=msgspec.Struct)


def _unobserved(messages: list[Any]) -> None:
    """No metric for the rare resolved market."""


class _KafkaMessageSink(DynamicSink[M], Generic[M]):
    """Encodes wire messages (msgspec Structs) and produces them keyed by one of their fields;
    `observe` sees each batch first (the Prometheus metrics)."""

    def __init__(
        self, settings: Settings, topic: str, key_field: str, observe: Callable[[list[M]], None]
    ) -> None:
        self._kafka = KafkaSink([settings.require_kafka()], topic, add_config=dict(SINK_CONFIG))
        self._key_field = key_field
        self._observe = observe

    def build(self, step_id: str, worker_index: int, worker_count: int) -> StatelessSinkPartition[M]:
        inner = self._kafka.build(step_id, worker_index, worker_count)
        return _EncodingPartition(inner, self._key_field, self._observe)


class _EncodingPartition(StatelessSinkPartition[M], Generic[M]):
    def __init__(
        self,
        inner: StatelessSinkPartition[KafkaSinkMessage[Any, Any]],
        key_field: str,
        observe: Callable[[list[M]], None],
    ) -> None:
        self._inner = inner
        self._key_field = key_field
        self._observe = observe

    def write_batch(self, items: list[M]) -> None:
        key_field = self._key_field
        self._observe(items)
        self._inner.write_batch(
            [
                KafkaSinkMessage(key=str(getattr(item, key_field)).encode(), value=encode(item))
                for item in items
            ]
        )

    def close(self) -> None:
        self._inner.close()
