"""Wallet trades and the whale ranking built on them.

Unusable input is never used and never lost: bad rows of recorded trade files (wallet_trades) and
trades naming an outcome their market's resolution does not list (whale_rankings) go to the
dead-letter topic dlq.signals with the reason; the blocking checks on the stored rows stay.
"""

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import msgspec
import polars as pl
from pydantic import Field

from pets.assets.markets.assets import market_universe
from pets.assets.resources import DataApiResource, KafkaResource, PostgresResource
from pets.assets.streams import WALLET_FILLS_TABLE
from pets.pipelines import whales as w
from pets.pipelines.tables import WHALE_RANKINGS, define_table, ts_from_ms
from pets.schemas.control import DeadLetter
from pets.schemas.signals import WhaleRanking

DEAD_LETTER_TOPIC = "dlq.signals"

WALLET_TRADES = define_table(
    "wallet_trades",
    """ts timestamptz, source text, trade_id text, wallet text, market text, outcome text, side text,
    shares numeric, usdc numeric, price numeric""",
    key=("source", "trade_id"),
)
# outcome_prices as text: AMM-era prices carry 34 decimal places, more than a polars Decimal holds.
MARKET_COLUMNS = (
    "condition_id, market_id, token_ids, outcomes, outcome_prices::text[], winning_asset_id, closed"
)
MARKET_SCHEMA: dict[str, Any] = {
    "condition_id": pl.String,
    "market_id": pl.String,
    "token_ids": pl.List(pl.String),
    "outcomes": pl.List(pl.String),
    "outcome_prices": pl.List(pl.String),
    "winning_asset_id": pl.String,
    "closed": pl.Boolean,
}


class WalletTradesConfig(dg.Config):
    trade_files: list[str] = Field(
        default=[], description="Recorded trades: midterms CSV, Data-API export CSV or /trades JSON files."
    )
    resolutions_file: str | None = Field(
        default=None, description="CSV mapping midterms trade files to their Gamma market (column `file`)."
    )
    data_api_markets: list[str] = Field(
        default=[], description="Condition ids whose Data-API trades to fetch."
    )
    recent_resolved_days: int = Field(
        default=7, description="Also fetch Data-API trades of closed markets that ended in the last N days."
    )
    include_chain_fills: bool = Field(
        default=True, description="Add the whale fills of the wallet_fills table."
    )


def read_markets(postgres: PostgresResource) -> pl.DataFrame:
    return postgres.frame(f"SELECT {MARKET_COLUMNS} FROM markets", MARKET_SCHEMA)


def chain_trades(postgres: PostgresResource, markets: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Fills of the wallet_fills table as trades on (condition id, outcome); fills of tokens the
    universe does not know yet are left for a later run (counted)."""
    fills = postgres.frame(
        "SELECT tx_hash, log_index, wallet, asset_id, side, round(price, 12), shares, usdc,"
        " (extract(epoch from ts) * 1000)::bigint FROM wallet_fills",
        {
            "tx_hash": pl.String,
            "log_index": pl.Int64,
            "wallet": pl.String,
            "asset_id": pl.String,
            "side": pl.String,
            "price": w.MONEY,
            "shares": w.MONEY,
            "usdc": w.MONEY,
            "ts_ms": pl.Int64,
        },
    )
    tokens = (
        markets.select("condition_id", "token_ids", "outcomes")
        .filter(pl.col("token_ids").list.len() == pl.col("outcomes").list.len())
        .explode("token_ids", "outcomes")
        .rename({"token_ids": "asset_id", "outcomes": "outcome", "condition_id": "market"})
    )
    mapped = fills.join(tokens, on="asset_id", how="inner")
    trades = mapped.select(
        source=pl.lit("chain"),
        trade_id=pl.col("tx_hash") + ":" + pl.col("log_index").cast(pl.String) + ":" + pl.col("wallet"),
        wallet=pl.col("wallet").str.to_lowercase(),
        market="market",
        outcome="outcome",
        side="side",
        shares="shares",
        usdc="usdc",
        price="price",
        ts_ms="ts_ms",
    )
    return trades.select([pl.col(n).cast(t) for n, t in w.TRADE_SCHEMA.items()]), fills.height - mapped.height


def file_trades(
    config: WalletTradesConfig, markets: pl.DataFrame
) -> tuple[pl.DataFrame, list[w.RejectedTrade]]:
    """Recorded trade files (markets given by Gamma id mapped to their condition id), and their
    unusable rows."""
    market_of_file: dict[str, str] = {}
    if config.resolutions_file:
        _, market_of_file = w.read_resolutions_csv(Path(config.resolutions_file))
    trades, rejected = w.read_trades_checked([Path(p) for p in config.trade_files], market_of_file)
    by_gamma_id = markets.select(market="market_id", condition_id="condition_id").drop_nulls()
    mapped = (
        trades.join(by_gamma_id, on="market", how="left")
        .with_columns(market=pl.coalesce("condition_id", "market"))
        .select(list(w.TRADE_SCHEMA))
    )
    return mapped, rejected


def dead_letter_trades(
    context: dg.AssetExecutionContext, kafka: KafkaResource, source: str, rejected: Sequence[w.RejectedTrade]
) -> int:
    """Rejected trade rows to dlq.signals (key: where the row is), each with its reason."""
    if not rejected:
        return 0
    letters = [
        (
            r.where,
            DeadLetter.from_bytes(
                source, r.reason, msgspec.json.encode(r.record), ts_ns=time.time_ns(), key=r.where
            ),
        )
        for r in rejected
    ]
    kafka.publish(DEAD_LETTER_TOPIC, letters)
    context.log.warning(f"{len(letters)} unusable trade row(s) to {DEAD_LETTER_TOPIC}, first: {rejected[0]}")
    return len(letters)


@dg.asset(
    group_name="whales",
    kinds={"polars", "postgres"},
    deps=[market_universe, WALLET_FILLS_TABLE],
)
def wallet_trades(
    context: dg.AssetExecutionContext,
    config: WalletTradesConfig,
    postgres: PostgresResource,
    data_api: DataApiResource,
    kafka: KafkaResource,
) -> dg.MaterializeResult:
    """Trades with wallets from the Data API, chain fills and recorded files, into wallet_trades."""
    postgres.migrate()
    markets = read_markets(postgres)
    frames: dict[str, pl.DataFrame] = {}
    wanted = list(config.data_api_markets)
    if config.recent_resolved_days > 0:
        since = datetime.now(UTC) - timedelta(days=config.recent_resolved_days)
        with postgres.connect() as conn:
            rows = conn.execute(
                "SELECT condition_id FROM markets WHERE closed AND end_date >= %s ORDER BY condition_id",
                (since,),
            ).fetchall()
        wanted += [r[0] for r in rows if r[0] not in wanted]
    if wanted:
        frames["data_api"] = w.parse_data_api_trades(data_api.iter_trades(markets=wanted))
    unmapped_fills = 0
    if config.include_chain_fills:
        frames["chain"], unmapped_fills = chain_trades(postgres, markets)
    dead_lettered = 0
    if config.trade_files:
        frames["files"], rejected = file_trades(config, markets)
        dead_lettered = dead_letter_trades(context, kafka, "wallet_trades", rejected)
    trades = pl.concat(frames.values()) if frames else w.empty_trades()
    rows = [WALLET_TRADES.row({**r, "ts": ts_from_ms(r["ts_ms"])}) for r in trades.iter_rows(named=True)]
    inserted = postgres.write(WALLET_TRADES, rows)
    if unmapped_fills:
        context.log.info(
            f"{unmapped_fills} chain fill(s) on tokens not in the universe yet: left for a later run"
        )
    return dg.MaterializeResult(
        metadata={
            **{f"trades_{name}": frame.height for name, frame in frames.items()},
            "data_api_markets": len(wanted),
            "inserted": inserted,
            "unmapped_chain_fills": unmapped_fills,
            "dead_lettered": dead_lettered,
        }
    )


class RankingConfig(dg.Config):
    ranking_date: str | None = Field(default=None, description="YYYY-MM-DD; default: today (UTC).")
    min_trades: int = Field(
        default=w.DEFAULT_MIN_TRADES, description="Rank wallets with at least this many trades."
    )
    top: int = Field(default=50, description="How many of the best wallets to publish to whale.rankings.")


def read_trades(postgres: PostgresResource) -> pl.DataFrame:
    return postgres.frame(
        "SELECT source, trade_id, wallet, market, outcome, side, shares, usdc, price,"
        " (extract(epoch from ts) * 1000)::bigint FROM wallet_trades",
        w.TRADE_SCHEMA,
    )


@dg.asset(group_name="whales", kinds={"polars", "postgres", "kafka"}, deps=[wallet_trades, market_universe])
def whale_rankings(
    context: dg.AssetExecutionContext,
    config: RankingConfig,
    postgres: PostgresResource,
    kafka: KafkaResource,
) -> dg.MaterializeResult:
    """Wallets ranked by P&L over resolved markets, stored per ranking date; the top N published."""
    ranking_date = (
        date.fromisoformat(config.ranking_date) if config.ranking_date else datetime.now(UTC).date()
    )
    postgres.migrate()
    markets = read_markets(postgres).filter(pl.col("closed"))
    resolutions = w.resolutions_from_markets(markets.iter_rows(named=True))
    trades, unknown = w.split_unknown_outcomes(read_trades(postgres), resolutions)
    dead_lettered = dead_letter_trades(context, kafka, "whale_rankings", unknown)
    ranked = w.rank_wallets(trades, resolutions, min_trades=config.min_trades)
    records = w.ranking_records(ranked)
    rows = [WHALE_RANKINGS.row({**r, "ranking_date": ranking_date}) for r in records]
    postgres.replace(WHALE_RANKINGS, "ranking_date = %s", [ranking_date], rows)
    top = [
        (r["wallet"], WhaleRanking(ranking_date=ranking_date.isoformat(), **r)) for r in records[: config.top]
    ]
    published = kafka.publish("whale.rankings", top)
    context.log.info(f"ranked {len(records)} wallets for {ranking_date}; published the top {published}")
    return dg.MaterializeResult(
        metadata={
            "ranking_date": ranking_date.isoformat(),
            "resolved_markets": resolutions["market"].n_unique(),
            "ranked_wallets": len(records),
            "published": published,
            "dead_lettered": dead_lettered,
            "top_wallet": records[0]["wallet"] if records else "",
            "top_pnl": str(records[0]["pnl"]) if records else "",
        }
    )
