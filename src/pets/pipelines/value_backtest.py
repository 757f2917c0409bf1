"""Walk-forward backtest of Bots 9 and 10 on real resolved markets (`pets backtest value`).

Data: the calibration set (shared data `calibration/`: election markets priced 6 months, 1 month, 1 week
and 1 day before they became certain, with the outcome), joined to the Gamma universe
(`polymarket/gamma/markets_compact_*.csv.gz`, on event id + question) for the market's tick size and
end date where the market is there (665 of 1,479 markets).

Walk-forward: the events are replayed in time order; at each retrain cut (the first day of every month,
`month_start`) the calibration model is fitted on the rows of the markets resolved before the cut, and
the bot picks it up through its model source, exactly as live. `assert_no_leak` checks, for every
fill, that the model the intent names was trained only on markets resolved before the fill's time; the
run raises LeakageError otherwise.

The bots are the live classes (`_on_book` decisions, `kelly_stake` sizing, equity bankroll). What they
see is built from each historical price, with these assumptions:
- the book: one tick around the price on the market's grid (bid = price rounded down, ask = bid + one
  tick; the NO token mirrors it: bid 1 - ask, ask 1 - bid), both levels deep enough for any order
  (the bots' sizes are small beside these markets' volume); the tick is Gamma's when the market is
  there, else 0.001 below 0.04 and above 0.96 (where the venue narrows the tick) and 0.01 between;
- the category is `politics` (these are election markets), so the fee is the venue's politics
  feeRate today (pets.yaml, 0.04), though these markets charged no fee when they traded;
- the end date: Gamma's endDate, else the time the outcome became certain;
- a FAK order fills in full at its limit price as a taker (fee = size x feeRate x p x (1 - p));
- at resolution the winning token pays 1 (the calibration outcome), the others 0.
Baseline "buy at price, no model": at the same events, the first time each token's ask lies in the
bot's price range, buy `min_position_usdc` of it at the ask and hold it to resolution. Brier scores:
the walk-forward model's probability vs the price itself, on every row a model existed for.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

from pets.bots.kelly_value_betting import KellyValueBetting
from pets.bots.long_term_value import LongTermValue
from pets.pipelines.calibration import CalibrationModel, brier, fit, read_calibration_dir
from pets.pipelines.forecasts import FixedModelSource, NoFairValues, probability
from pets.schemas.config import BotConfig, KellyValueBettingParams, VenueConfig
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ExecutionReport, OrderIntent
from pets.venue.fees import taker_fee
from pets.venue.precision import fee_rate as venue_fee_rate
from pets.venue.precision import round_price, round_size

CATEGORY = "politics"
DEPTH = Decimal(1_000_000)
MIN_TRAIN_ROWS = 100
GAMMA_FILES = ("markets_compact_2024.csv.gz", "markets_compact_2020_2022.csv.gz")
ZERO = Decimal(0)
ONE = Decimal(1)
FINE_TICK, COARSE_TICK = Decimal("0.001"), Decimal("0.01")


class LeakageError(AssertionError):
    """A model saw a market that resolved after the trade it was used for."""


def assert_no_leak(train_resolved_s: Iterable[int], trade_s: int, version: str) -> None:
    """Every market a model was trained on resolved before the trade: raises LeakageError otherwise."""
    latest = max(train_resolved_s, default=None)
    if latest is not None and latest >= trade_s:
        raise LeakageError(
            f"model {version} was trained on a market resolved at {latest}, not before the trade at {trade_s}"
        )


def month_start(ts_s: int) -> int:
    """The retrain cut for a trade at `ts_s`: the first instant of its month (UTC)."""
    t = datetime.fromtimestamp(ts_s, UTC)
    return int(datetime(t.year, t.month, 1, tzinfo=UTC).timestamp())


def load_value_data(shared_data_dir: Path) -> pl.DataFrame:
    """The calibration rows with `tick` and `end_s` from Gamma where the market is there (else null)."""
    data = read_calibration_dir(shared_data_dir / "calibration")
    gamma_dir = shared_data_dir / "polymarket" / "gamma"
    frames = [
        pl.read_csv(
            gamma_dir / name, infer_schema_length=0, columns=["event_id", "question", "tick_size", "end_date"]
        )
        for name in GAMMA_FILES
        if (gamma_dir / name).exists()
    ]
    if not frames:
        return data.with_columns(tick=pl.lit(None, pl.String), end_s=pl.lit(None, pl.Int64))
    gamma = (
        pl.concat(frames)
        .select(
            market=pl.col("event_id") + ":" + pl.col("question").str.strip_chars(),
            tick=pl.col("tick_size"),
            end_s=pl.col("end_date").str.to_datetime(time_zone="UTC", strict=False).dt.epoch("s"),
        )
        .unique("market", keep="first", maintain_order=True)
    )
    return data.join(gamma, on="market", how="left")


def one_tick_book(
    asset_id: str, market: str, bid: Decimal, ask: Decimal, tick: Decimal, ts_ms: int
) -> TopOfBook:
    mid = (bid + ask) / 2
    return TopOfBook(
        asset_id,
        market,
        ts_ms,
        bid,
        ask,
        DEPTH,
        DEPTH,
        mid,
        mid,
        ask - bid,
        ZERO,
        tick,
        False,
        None,
        None,
        None,
        1,
    )


def tick_for(price: Decimal, gamma_tick: str | None) -> Decimal:
    if gamma_tick:
        return Decimal(gamma_tick)
    return FINE_TICK if price < Decimal("0.04") or price > Decimal("0.96") else COARSE_TICK


class Side(msgspec.Struct, kw_only=True):
    """One strategy's results (the bot's, or the baseline's)."""

    trades: int = 0
    positions: int = 0
    wins: int = 0
    hit_rate: Decimal = ZERO
    cost: Decimal = ZERO  # spent on buys, fees included
    pnl: Decimal = ZERO
    roi: Decimal = ZERO


class Trade(msgspec.Struct, kw_only=True):
    time: str
    market: str
    token: str  # YES | NO
    side: str
    price: Decimal
    size: Decimal
    fee: Decimal
    probability: Decimal | None
    model_version: str | None
    horizon_days: Decimal
    won: bool  # the token paid 1 at resolution (for a sell too: what holding it would have paid)


class BrierScores(msgspec.Struct, kw_only=True):
    rows: int
    model: Decimal
    price: Decimal


class BacktestReport(msgspec.Struct, kw_only=True):
    bot: str
    strategy: str
    markets: int
    rows: int
    retrains: int
    first_model: str | None
    bot_result: Side
    baseline: Side
    brier: BrierScores
    final_cash: Decimal
    assumptions: str
    trades: list[Trade]


@dataclass
class _Book:
    """Positions of one strategy: token -> [shares, cost, proceeds]."""

    positions: dict[str, list[Decimal]] = field(default_factory=dict)
    trades: int = 0

    def fill(self, token: str, side: str, price: Decimal, size: Decimal, fee: Decimal) -> None:
        position = self.positions.setdefault(token, [ZERO, ZERO, ZERO])
        if side == "BUY":
            position[0] += size
            position[1] += price * size + fee
        else:
            position[0] -= size
            position[2] += price * size - fee
        self.trades += 1

    def result(self, winners: set[str]) -> Side:
        side = Side(trades=self.trades, positions=len(self.positions))
        for token, (shares, cost, proceeds) in self.positions.items():
            pnl = proceeds + (shares if token in winners else ZERO) - cost
            side.cost += cost
            side.pnl += pnl
            side.wins += pnl > 0
        if side.positions:
            side.hit_rate = (Decimal(side.wins) / side.positions).quantize(Decimal("0.0001"))
        if side.cost:
            side.roi = (side.pnl / side.cost).quantize(Decimal("0.0001"))
        side.cost, side.pnl = side.cost.quantize(Decimal("0.01")), side.pnl.quantize(Decimal("0.01"))
        return side


def _token_ids(market: str) -> tuple[str, str]:
    return f"{market}|YES", f"{market}|NO"


def run_value_backtest(
    data: pl.DataFrame,
    config: BotConfig,
    venue: VenueConfig,
    *,
    cut_of: Callable[[int], int] = month_start,
    min_train_rows: int = MIN_TRAIN_ROWS,
    train: Callable[[pl.DataFrame], CalibrationModel] = fit,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestReport:
    """Replay `data` (load_value_data's frame) through a fresh instance of the bot of `config`;
    `train` fits the model at each cut (tests hand in a fixed model); `progress(done, total)` after
    each event (the command's progress)."""
    params = config.params_as(KellyValueBettingParams)
    source = FixedModelSource()
    bot: KellyValueBetting
    if config.strategy == "long_term_value":
        bot = LongTermValue(config, venue, model_source=source, fair_values=NoFairValues())
    elif config.strategy == "kelly_value_betting":
        bot = KellyValueBetting(config, venue, model_source=source)
    else:
        raise ValueError(
            f"{config.id} runs {config.strategy!r}, not a value bot (kelly_value_betting, long_term_value)"
        )
    fee_rate = venue_fee_rate(venue, CATEGORY)  # the markets of the data set state no rate of their own
    data = data.sort("resolved_s", "market", "horizon_s")
    rows = data.to_dicts()

    # (time, order, seq, row): a resolution (order 0) comes before any book at the same second
    events: list[tuple[int, int, int, dict[str, Any]]] = []
    winners: set[str] = set()
    resolutions: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        events.append((row["resolved_s"] - row["horizon_s"], 1, i, row))
        resolutions.setdefault(row["market"], row)
        yes, no = _token_ids(row["market"])
        winners.add(yes if row["outcome"] == 1 else no)
    for i, row in enumerate(resolutions.values()):
        events.append((row["resolved_s"], 0, i, row))
    heapq.heapify(events)
    total = len(events)

    trained_until: dict[str, int] = {}  # model version -> latest resolution time of its training rows
    cut: int | None = None
    retrains = 0
    first_model: str | None = None
    infos: dict[str, MarketInfo] = {}
    bot_book, base_book = _Book(), _Book()
    trades: list[Trade] = []
    p_model: list[float] = []
    p_price: list[float] = []
    outcomes: list[float] = []

    while events:
        t, order, _, row = heapq.heappop(events)
        if progress is not None:
            progress(total - len(events), total)
        market = row["market"]
        yes, no = _token_ids(market)
        if order == 0:
            info = infos.get(market)
            if info is not None:
                bot.on_market(
                    msgspec.structs.replace(
                        info,
                        closed=True,
                        active=False,
                        accepting_orders=False,
                        winning_asset_id=yes if row["outcome"] == 1 else no,
                    )
                )
            continue
        # retrain at each new cut, on the markets resolved before it
        this_cut = cut_of(t)
        if this_cut != cut:
            cut = this_cut
            rows_before = data.filter(pl.col("resolved_s") < cut)
            if rows_before.height >= min_train_rows and rows_before["outcome"].n_unique() == 2:
                version = f"wf-{datetime.fromtimestamp(cut, UTC):%Y-%m-%d}"
                trained_until[version] = int(rows_before["resolved_s"].max())  # type: ignore[arg-type]
                source.set(train(rows_before), version)
                retrains += 1
                first_model = first_model or version
        price = Decimal(str(row["price"]))
        horizon_days = row["horizon_s"] / 86_400
        if source.model is not None:
            p_model.append(probability(source.model, row["price"], horizon_days, CATEGORY))
            p_price.append(row["price"])
            outcomes.append(float(row["outcome"]))
        tick = tick_for(price, row.get("tick"))
        bid = round_price(price, tick, "down")
        ask = round_price(bid + tick, tick, "down")
        if bid >= ask:
            bid = ask - tick
        info = infos.get(market)
        if info is None:
            end_s = row.get("end_s") or row["resolved_s"]
            info = infos[market] = MarketInfo(
                condition_id=market, market_id=market, question=market.partition(":")[2], slug=market,
                category=CATEGORY, token_ids=(yes, no), outcomes=("Yes", "No"), neg_risk=False,
                tick_size=tick, min_order_size=Decimal(5), end_date_ms=int(end_s) * 1000, active=True,
                closed=False, accepting_orders=True,
            )  # fmt: skip
            bot.on_market(info)
        ts_ms = t * 1000
        books = (
            one_tick_book(yes, market, bid, ask, tick, ts_ms),
            one_tick_book(no, market, 1 - ask, 1 - bid, tick, ts_ms),
        )
        for tob in books:
            for intent in bot.on_top_of_book(tob):
                _fill(bot, intent, fee_rate, ts_ms, bot_book)
                used = intent.cause.model_version if intent.cause is not None else None
                if used is not None:
                    assert_no_leak([trained_until[used]], t, used)
                trades.append(Trade(
                    time=datetime.fromtimestamp(t, UTC).isoformat(), market=market,
                    token="YES" if intent.asset_id == yes else "NO", side=intent.side, price=intent.price,
                    size=intent.size, fee=taker_fee(intent.size, intent.price, fee_rate),
                    probability=intent.probability, model_version=used,
                    horizon_days=Decimal(row["horizon_s"]) / 86_400, won=intent.asset_id in winners,
                ))  # fmt: skip
            # the baseline: the first time the token's ask is in the bot's range, min_position_usdc of it
            token_ask = tob.best_ask
            if (
                token_ask is not None
                and params.min_price <= token_ask < params.max_price
                and tob.asset_id not in base_book.positions
            ):
                size = round_size(config.min_position_usdc / token_ask)
                base_book.fill(tob.asset_id, "BUY", token_ask, size, taker_fee(size, token_ask, fee_rate))

    y = np.asarray(outcomes)
    return BacktestReport(
        bot=config.id,
        strategy=config.strategy,
        markets=len(resolutions),
        rows=len(rows),
        retrains=retrains,
        first_model=first_model,
        bot_result=bot_book.result(winners),
        baseline=base_book.result(winners),
        brier=BrierScores(
            rows=len(outcomes),
            model=Decimal(f"{brier(np.asarray(p_model), y):.5f}") if outcomes else ZERO,
            price=Decimal(f"{brier(np.asarray(p_price), y):.5f}") if outcomes else ZERO,
        ),
        final_cash=bot.cash.quantize(Decimal("0.01")),
        assumptions="one-tick book around each historical price, unlimited depth, FAK fills at the limit as "
        f"taker, {CATEGORY} feeRate {fee_rate}, monthly walk-forward retrain",
        trades=trades,
    )


def _fill(bot: KellyValueBetting, intent: OrderIntent, fee_rate: Decimal, ts_ms: int, book: _Book) -> None:
    """The whole order fills at its limit price as a taker."""
    fee = taker_fee(intent.size, intent.price, fee_rate)
    book.fill(intent.asset_id, intent.side, intent.price, intent.size, fee)
    bot.on_execution_report(
        ExecutionReport.of_order(
            intent,
            intent.size,
            "fill",
            ts_ns=ts_ms * 1_000_000,
            cum_qty=intent.size,
            last_qty=intent.size,
            last_px=intent.price,
            fee=fee,
            liquidity="taker",
        )
    )
