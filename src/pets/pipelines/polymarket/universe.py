"""Market discovery: Gamma markets -> MarketInfo -> md.markets (compacted) and the `markets` table.

`discover` reads every market matching the filters and parses it; a market that cannot be parsed
becomes a DeadLetter (reason names the market and field) instead of stopping discovery.
`UniversePublisher` publishes only what changed since its last publish, so a refresh every few
minutes costs nothing when the universe is quiet; the table upsert is idempotent anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from kafka import KafkaProducer

from pets.pipelines.polymarket.gamma import GammaClient, MarketParseError, parse_market
from pets.pipelines.polymarket.http import QueryValue
from pets.pipelines.tables import MARKETS, ts_from_ms, ts_from_ns
from pets.pipelines.timescale import TimescaleWriter
from pets.schemas.codec import encode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo

SOURCE = "market_discovery"
IDS_PER_REQUEST = 100  # Gamma's condition_ids filter takes at most 100 ids
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Discovery(msgspec.Struct, frozen=True):
    markets: tuple[MarketInfo, ...]
    dead_letters: tuple[DeadLetter, ...]


def discover(client: GammaClient, **filters: QueryValue | None) -> Discovery:
    """Every Gamma market matching the filters as MarketInfo; unparseable ones as dead letters."""
    markets: dict[str, MarketInfo] = {}
    dead: list[DeadLetter] = []
    for raw in client.iter_markets(**filters):
        try:
            if not isinstance(raw, dict):
                raise MarketParseError(f"gamma market item {raw!r:.80} is not a JSON object")
            info = parse_market(raw)
        except MarketParseError as exc:
            key = str(raw.get("conditionId") or raw.get("id") or "") if isinstance(raw, dict) else ""
            payload = msgspec.json.encode(raw)
            dead.append(DeadLetter.from_bytes(SOURCE, str(exc), payload, ts_ns=time.time_ns(), key=key))
            continue
        markets[info.condition_id] = info  # Gamma paging can repeat a row when the list shifts
    return Discovery(tuple(markets.values()), tuple(dead))


def discover_closed(client: GammaClient, condition_ids: Iterable[str]) -> Discovery:
    """The current state of markets that left the open list (closed, resolution), 100 ids per request."""
    ids = sorted(set(condition_ids))
    parts = [
        discover(client, condition_ids=ids[i : i + IDS_PER_REQUEST], closed=True)
        for i in range(0, len(ids), IDS_PER_REQUEST)
    ]
    return Discovery(
        tuple(m for part in parts for m in part.markets),
        tuple(d for part in parts for d in part.dead_letters),
    )


def tradable_tokens(markets: Iterable[MarketInfo]) -> list[str]:
    """Tokens worth a market-channel subscription: open markets that accept orders."""
    return [t for m in markets if m.active and not m.closed and m.accepting_orders for t in m.token_ids]


def market_row(market: MarketInfo, observed: datetime) -> tuple[object, ...]:
    """The `markets` table row of one market, observed at `observed`."""
    return MARKETS.row(
        {
            **msgspec.structs.asdict(market),
            "token_ids": list(market.token_ids),
            "outcomes": list(market.outcomes),
            "outcome_prices": None if market.outcome_prices is None else list(market.outcome_prices),
            "end_date": None if market.end_date_ms is None else ts_from_ms(market.end_date_ms),
            "ts": observed,
        }
    )


def market_from_row(row: Mapping[str, Any]) -> MarketInfo:
    """The MarketInfo of a `markets` table row given by column name (the inverse of `market_row`)."""
    end_date: datetime | None = row["end_date"]
    prices = row["outcome_prices"]
    return MarketInfo(
        condition_id=row["condition_id"],
        market_id=row["market_id"],
        question=row["question"],
        slug=row["slug"],
        category=row["category"],
        token_ids=tuple(row["token_ids"]),
        outcomes=tuple(row["outcomes"]),
        neg_risk=row["neg_risk"],
        neg_risk_market_id=row["neg_risk_market_id"],
        tick_size=row["tick_size"],
        min_order_size=row["min_order_size"],
        end_date_ms=None if end_date is None else (end_date - _EPOCH) // timedelta(milliseconds=1),
        active=row["active"],
        closed=row["closed"],
        accepting_orders=row["accepting_orders"],
        outcome_prices=None if prices is None else tuple(prices),
        winning_asset_id=row["winning_asset_id"],
        fee_rate=row["fee_rate"],
    )


class UniversePublisher:
    """Publishes changed markets to md.markets (key condition id) and upserts them into `markets`."""

    def __init__(
        self, producer: KafkaProducer, markets_topic: str, dlq_topic: str, writer: TimescaleWriter | None
    ) -> None:
        self.producer = producer
        self.markets_topic = markets_topic
        self.dlq_topic = dlq_topic
        self.writer = writer
        self._published: dict[str, MarketInfo] = {}
        self._dead_lettered: set[tuple[str | None, str]] = set()  # a broken row is reported once

    def open_markets(self) -> set[str]:
        """Condition ids last published as not closed."""
        return {c for c, m in self._published.items() if not m.closed}

    def publish(self, discovery: Discovery, observed_ns: int) -> list[MarketInfo]:
        """Send what changed and the new dead letters; returns the changed markets."""
        changed = [m for m in discovery.markets if self._published.get(m.condition_id) != m]
        topic = self.markets_topic
        sent = [self.producer.send(topic, key=m.condition_id.encode(), value=encode(m)) for m in changed]
        new_letters = [d for d in discovery.dead_letters if (d.key, d.reason) not in self._dead_lettered]
        sent += [
            self.producer.send(self.dlq_topic, key=SOURCE.encode(), value=encode(d)) for d in new_letters
        ]
        self.producer.flush()
        for future in sent:
            future.get(timeout=30)  # raises the broker's error: a lost market update must be loud
        if self.writer is not None and changed:
            self.writer.write(MARKETS, [market_row(m, ts_from_ns(observed_ns)) for m in changed])
        self._published.update((m.condition_id, m) for m in changed)
        self._dead_lettered.update((d.key, d.reason) for d in new_letters)
        return changed
