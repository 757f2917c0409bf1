"""Whale ranking: per-wallet P&L over resolved markets, in polars with exact decimals.

One code path for the Dagster ``whale_rankings`` asset, ``pets whales rank`` and ``pets bench
rankings``. Inputs are normalized trades (``TRADE_SCHEMA``: one row per fill of one wallet) and
resolutions (``RESOLUTION_SCHEMA``: the payout of each outcome of a resolved market, 1 for the
winner and 0 otherwise). Per wallet and resolved market::

    pnl = USDC from sells - USDC paid for buys + sum over outcomes(shares still held x payout)

Money columns are ``Decimal(38, 12)``: sums and the 0/1 payout products are exact; only win rate
and ROI are divisions, rounded half-even to 6 places in Python ``Decimal``.

Input is parsed strictly: a trade row with a side other than buy/sell, a size or amount that is
empty, not a number or negative, a price outside [0, 1], or a bad timestamp becomes a
`RejectedTrade` naming ``file:line`` and the problem (`read_trades_checked`); so does a trade on
a resolved market whose outcome the resolution does not list (`split_unknown_outcomes`), instead
of being paid 0. `read_trade_files` (the CLI's reader) raises on the first one.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

MONEY = pl.Decimal(38, 12)
MONEY_PLACES = Decimal("1e-12")
USDC_UNIT = Decimal("0.000001")  # USDC has 6 decimals on chain
RATIO_PLACES = Decimal("0.000001")
DEFAULT_MIN_TRADES = 5
# AMM-era markets (before the CLOB) report final pool prices such as 0.9999987 / 0.0000013 rather
# than an exact 1 / 0: one outcome at or above this price, the prices summing to 1 within
# RESOLVED_SUM_TOLERANCE, is that market's resolution.
LEGACY_WIN_PRICE = Decimal("0.99")
RESOLVED_SUM_TOLERANCE = Decimal("0.001")

TRADE_SCHEMA: dict[str, Any] = {
    "source": pl.String,
    "trade_id": pl.String,
    "wallet": pl.String,
    "market": pl.String,
    "outcome": pl.String,
    "side": pl.String,
    "shares": MONEY,
    "usdc": MONEY,
    "price": MONEY,
    "ts_ms": pl.Int64,
}
RESOLUTION_SCHEMA: dict[str, Any] = {"market": pl.String, "outcome": pl.String, "payout": MONEY}
RANKING_COLUMNS = ("rank", "wallet", "pnl", "volume", "trades", "markets", "win_rate", "roi")
WHERE = "where"  # provenance column of checked trades: "file:line" (or "source:trade_id")
SIDES = ("BUY", "SELL")


class TradeInputError(ValueError):
    """Unusable trade or resolution input: names the file, the row or column and what is wrong."""


@dataclass(frozen=True, slots=True)
class RejectedTrade:
    """A trade row that cannot be used: where it is ("file:line"), why, and the row as read."""

    where: str
    reason: str
    record: Mapping[str, Any]

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class CheckedTrades(NamedTuple):
    trades: pl.DataFrame  # TRADE_SCHEMA columns plus WHERE
    rejected: list[RejectedTrade]


def plain(value: Decimal) -> Decimal:
    """Drop trailing zeros without exponent notation (Decimal("1E+2") -> Decimal("100"))."""
    normalized = value.normalize()
    if normalized == 0:
        return Decimal(0)
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral_value() else normalized


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    if denominator == 0:
        return Decimal(0)
    return plain((numerator / denominator).quantize(RATIO_PLACES, rounding=ROUND_HALF_EVEN))


def empty_trades() -> pl.DataFrame:
    return pl.DataFrame(schema=TRADE_SCHEMA)


def _trade_frame(raw: pl.DataFrame, columns: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """Evaluate one expression per normalized column over a raw frame, in TRADE_SCHEMA order."""
    return raw.select([columns[name].cast(dtype).alias(name) for name, dtype in TRADE_SCHEMA.items()])


def resolutions_frame(rows: Iterable[tuple[str, str, Decimal]]) -> pl.DataFrame:
    data = list(rows)
    return pl.DataFrame(
        {
            "market": [r[0] for r in data],
            "outcome": [r[1] for r in data],
            "payout": [r[2] for r in data],
        },
        schema=RESOLUTION_SCHEMA,
    )


def winner_takes_all(
    market: str, outcomes: Sequence[str], winning_outcome: str
) -> list[tuple[str, str, Decimal]]:
    """Resolution rows of one market: payout 1 for the winning outcome, 0 for every other one."""
    if winning_outcome not in outcomes:
        raise TradeInputError(
            f"market {market}: winning outcome {winning_outcome!r} is not one of {list(outcomes)}"
        )
    return [(market, o, Decimal(1) if o == winning_outcome else Decimal(0)) for o in outcomes]


def resolved_outcome(
    *,
    closed: bool,
    outcomes: Sequence[str],
    token_ids: Sequence[str],
    outcome_prices: Sequence[Decimal] | None,
    winning_asset_id: str | None,
) -> str | None:
    """The winning outcome of a market of the universe, None while (or when not cleanly) unresolved."""
    if not closed:
        return None
    if winning_asset_id and winning_asset_id in token_ids and len(token_ids) == len(outcomes):
        return outcomes[list(token_ids).index(winning_asset_id)]
    if not outcome_prices or len(outcome_prices) != len(outcomes):
        return None
    winners = [i for i, p in enumerate(outcome_prices) if p >= LEGACY_WIN_PRICE]
    if len(winners) != 1 or abs(sum(outcome_prices, Decimal(0)) - 1) > RESOLVED_SUM_TOLERANCE:
        return None
    return outcomes[winners[0]]


def resolutions_from_markets(markets: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Resolution rows keyed by condition id from market rows (the ``markets`` table's columns;
    outcome prices as Decimals or decimal strings)."""
    rows: list[tuple[str, str, Decimal]] = []
    for m in markets:
        outcomes = list(m["outcomes"] or ())
        prices = m["outcome_prices"]
        winner = resolved_outcome(
            closed=bool(m["closed"]),
            outcomes=outcomes,
            token_ids=list(m["token_ids"] or ()),
            outcome_prices=None if prices is None else [Decimal(str(p)) for p in prices],
            winning_asset_id=m["winning_asset_id"],
        )
        if winner is not None:
            rows.extend(winner_takes_all(m["condition_id"], outcomes, winner))
    return resolutions_frame(rows)


# --- readers -------------------------------------------------------------------------------------


def read_resolutions_csv(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """Resolutions CSV -> (resolution rows, trade file name -> market id).

    Columns: ``winning_outcome``, ``outcomes`` ("A|B"), the market as ``gamma_market_id`` or
    ``market``, and optionally ``file`` (the trades CSV of that market, midterms layout).
    """
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or ())
        key = "gamma_market_id" if "gamma_market_id" in header else "market"
        missing = {key, "outcomes", "winning_outcome"} - header
        if missing:
            raise TradeInputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows: list[tuple[str, str, Decimal]] = []
        files: dict[str, str] = {}
        for line, record in enumerate(reader, start=2):
            market = (record[key] or "").strip()
            if not market:
                raise TradeInputError(f"{path}:{line}: empty {key}")
            outcomes = [o.strip() for o in (record["outcomes"] or "").split("|") if o.strip()]
            try:
                rows.extend(winner_takes_all(market, outcomes, (record["winning_outcome"] or "").strip()))
            except TradeInputError as exc:
                raise TradeInputError(f"{path}:{line}: {exc}") from None
            if record.get("file"):
                files[record["file"].strip()] = market
    return resolutions_frame(rows), files


def read_midterms_csv(path: Path, market: str) -> CheckedTrades:
    """One midterms-2022 trades file (Timestamp, Account, Type, Outcome, Amount, Shares, Price).

    Price "NA" (the data set's zero-share fills) is kept as a missing price; P&L does not use it.
    """
    raw = _raw_csv(path)
    _require_columns(path, raw, ("", "Timestamp", "Account", "Type", "Outcome", "Amount", "Shares", "Price"))
    raw = raw.with_columns(pl.col("Price").replace("NA", None))
    timestamp = pl.col("Timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
    return _checked_trades(
        raw,
        problems=[
            _text_problem("Account"),
            _text_problem("Outcome"),
            _side_problem("Type"),
            _amount_problem("Shares"),
            _amount_problem("Amount"),
            _price_problem("Price"),
            _time_problem("Timestamp", timestamp, "YYYY-MM-DD HH:MM:SS"),
        ],
        columns={
            "source": pl.lit(f"midterms:{path.name}"),
            "trade_id": pl.lit(f"{path.stem}:") + pl.col(""),
            "wallet": pl.col("Account").str.to_lowercase(),
            "market": pl.lit(market),
            "outcome": pl.col("Outcome"),
            "side": pl.col("Type").str.to_uppercase(),
            "shares": _number("Shares"),
            "usdc": _number("Amount"),
            "price": _number("Price"),
            "ts_ms": timestamp.dt.epoch("ms"),
        },
    )


def data_api_trade_id(record: Mapping[str, Any]) -> str:
    """Stable id of a Data-API trade (the API has none): hash of what identifies the fill."""
    parts = (
        record.get("transactionHash"),
        record.get("proxyWallet"),
        record.get("asset"),
        record.get("side"),
        record.get("size"),
        record.get("price"),
        record.get("timestamp"),
    )
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=12).hexdigest()


def parse_data_api_trades(records: Iterable[Mapping[str, Any]], source: str = "data_api") -> pl.DataFrame:
    """Data-API ``/trades`` objects (numbers parsed as Decimal) -> normalized trades."""
    cols: dict[str, list[Any]] = {name: [] for name in TRADE_SCHEMA}
    for record in records:
        size, price = Decimal(str(record["size"])), Decimal(str(record["price"]))
        cols["source"].append(source)
        cols["trade_id"].append(data_api_trade_id(record))
        cols["wallet"].append(str(record["proxyWallet"]).lower())
        cols["market"].append(str(record["conditionId"]))
        cols["outcome"].append(str(record["outcome"]))
        cols["side"].append(str(record["side"]).upper())
        cols["shares"].append(size.quantize(MONEY_PLACES))
        # The API's price is derived from on-chain integer amounts: size x price, rounded to the
        # USDC unit, is the amount that moved.
        cols["usdc"].append((size * price).quantize(USDC_UNIT, rounding=ROUND_HALF_EVEN))
        cols["price"].append(price.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN))
        timestamp = int(record["timestamp"])
        # The Data API gives seconds; tolerate milliseconds.
        cols["ts_ms"].append(timestamp * 1000 if timestamp < 10**11 else timestamp)
    return pl.DataFrame(cols, schema=TRADE_SCHEMA)


def read_data_api_json(path: Path) -> pl.DataFrame:
    text = path.read_text()
    data = json.loads(text, parse_float=Decimal)
    if not isinstance(data, list):
        raise TradeInputError(f"{path}: expected a JSON list of Data-API /trades objects")
    try:
        return parse_data_api_trades(data, source=f"data_api:{path.name}")
    except (KeyError, ArithmeticError, ValueError) as exc:
        raise TradeInputError(f"{path}: bad Data-API trade: {exc!r}") from None


def read_data_api_export_csv(path: Path) -> CheckedTrades:
    """A flat Data-API export (market_id, trade_id, trade_date, user_id, side, outcome, amount, price);
    ``amount`` is the number of shares."""
    raw = _raw_csv(path)
    _require_columns(
        path, raw, ("market_id", "trade_id", "trade_date", "user_id", "side", "outcome", "amount", "price")
    )
    timestamp = pl.col("trade_date").str.to_datetime(time_zone="UTC", strict=False)
    shares, price = _number("amount"), _number("price")
    return _checked_trades(
        raw,
        problems=[
            _text_problem("market_id"),
            _text_problem("trade_id"),
            _text_problem("user_id"),
            _text_problem("outcome"),
            _side_problem("side"),
            _amount_problem("amount"),
            _text_problem("price"),
            _price_problem("price"),
            _time_problem("trade_date", timestamp, "an ISO date-time"),
        ],
        columns={
            "source": pl.lit(f"data_api:{path.name}"),
            "trade_id": pl.col("trade_id"),
            "wallet": pl.col("user_id").str.to_lowercase(),
            "market": pl.col("market_id"),
            "outcome": pl.col("outcome"),
            "side": pl.col("side").str.to_uppercase(),
            "shares": shares,
            "usdc": (shares * price).round(6),
            "price": price,
            "ts_ms": timestamp.dt.epoch("ms"),
        },
    )


def _raw_csv(path: Path) -> pl.DataFrame:
    """Every column as text (nothing guessed), with the file line of each row (after the header)."""
    raw = pl.read_csv(path, infer_schema=False)
    return raw.with_row_index("_line", offset=2).with_columns(
        pl.format("{}:{}", pl.lit(str(path)), pl.col("_line")).alias(WHERE)
    )


def _require_columns(path: Path, raw: pl.DataFrame, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in raw.columns]
    if missing:
        raise TradeInputError(f"{path}: missing column(s) {', '.join(repr(n) for n in missing)}")


def _number(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_decimal(scale=12)


def _text_problem(column: str) -> pl.Expr:
    return pl.when(pl.col(column).str.strip_chars().fill_null("") == "").then(pl.lit(f"{column} is empty"))


def _side_problem(column: str) -> pl.Expr:
    value = pl.col(column)
    return pl.when(~value.str.to_uppercase().is_in(SIDES) | value.is_null()).then(
        pl.format(f"{column} {{}} is not buy or sell", value.fill_null("(empty)"))
    )


def _amount_problem(column: str) -> pl.Expr:
    """Required, a plain decimal number, not negative."""
    value, number = pl.col(column), _number(column)
    return (
        pl.when(value.is_null())
        .then(pl.lit(f"{column} is empty"))
        .when(number.is_null())
        .then(pl.format(f"{column} {{}} is not a number", value))
        .when(number < 0)
        .then(pl.format(f"{column} {{}} is negative", value))
    )


def _price_problem(column: str) -> pl.Expr:
    """Optional; when given, a plain decimal number in [0, 1]."""
    value, number = pl.col(column), _number(column)
    return (
        pl.when(value.is_not_null() & number.is_null())
        .then(pl.format(f"{column} {{}} is not a number", value))
        .when((number < 0) | (number > 1))
        .then(pl.format(f"{column} {{}} is outside [0, 1]", value))
    )


def _time_problem(column: str, parsed: pl.Expr, expected: str) -> pl.Expr:
    value = pl.col(column)
    return pl.when(parsed.is_null()).then(
        pl.format(f"{column} {{}} is not {expected}", value.fill_null("(empty)"))
    )


def _checked_trades(
    raw: pl.DataFrame, problems: Sequence[pl.Expr], columns: Mapping[str, pl.Expr]
) -> CheckedTrades:
    """Rows without a problem as normalized trades (with WHERE); the others rejected with their first."""
    source = [c for c in raw.columns if c not in ("_line", WHERE)]
    judged = raw.with_columns(pl.coalesce(problems).alias("_reason"))
    bad = judged.filter(pl.col("_reason").is_not_null())
    rejected = [
        RejectedTrade(row[WHERE], row["_reason"], {c: row[c] for c in source})
        for row in bad.iter_rows(named=True)
    ]
    good = judged.filter(pl.col("_reason").is_null())
    trades = good.select(
        *[columns[name].cast(dtype).alias(name) for name, dtype in TRADE_SCHEMA.items()], pl.col(WHERE)
    )
    return CheckedTrades(trades, rejected)


def read_trades_checked(
    paths: Sequence[Path],
    market_of_file: Mapping[str, str],
    on_file: Callable[[int, int], None] | None = None,
) -> CheckedTrades:
    """Trades from files of any supported layout (detected from the header / extension), each with
    its ``file:line`` (WHERE); unusable rows rejected with the reason instead of read. `on_file(done,
    total)` as each file starts (the command's progress)."""
    frames: list[pl.DataFrame] = []
    rejected: list[RejectedTrade] = []
    for done, path in enumerate(paths):
        if on_file is not None:
            on_file(done, len(paths))
        if path.suffix == ".json":
            trades = read_data_api_json(path)
            frames.append(trades.with_columns(pl.format("{}:{}", pl.lit(str(path)), "trade_id").alias(WHERE)))
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as handle:
            header = next(csv.reader(handle), [])
        if "Account" in header:
            if path.name not in market_of_file:
                raise TradeInputError(
                    f"{path}: no market for this trades file in the resolutions file (column 'file')"
                )
            checked = read_midterms_csv(path, market_of_file[path.name])
        elif "user_id" in header:
            checked = read_data_api_export_csv(path)
        else:
            raise TradeInputError(
                f"{path}: unknown trades layout (expected midterms columns Account/Type/Outcome, "
                "a Data-API export with user_id/side/amount, or a .json list of /trades objects)"
            )
        frames.append(checked.trades)
        rejected.extend(checked.rejected)
    trades = pl.concat(frames) if frames else empty_trades().with_columns(pl.lit("").alias(WHERE)).head(0)
    return CheckedTrades(trades, rejected)


def read_trade_files(paths: Sequence[Path], market_of_file: Mapping[str, str]) -> pl.DataFrame:
    """Trades from files; TradeInputError naming ``file:line`` and the problem of the first unusable row."""
    checked = read_trades_checked(paths, market_of_file)
    if checked.rejected:
        raise rejection_error(checked.rejected)
    return checked.trades.drop(WHERE)


def rejection_error(rejected: Sequence[RejectedTrade]) -> TradeInputError:
    """The error for rejected rows: the first one (file:line: problem) and how many more there are."""
    more = len(rejected) - 1
    return TradeInputError(f"{rejected[0]}" + (f" (and {more} more unusable row(s))" if more else ""))


def split_unknown_outcomes(trades: pl.DataFrame, resolutions: pl.DataFrame) -> CheckedTrades:
    """Trades whose outcome the resolution of their (resolved) market does not list, rejected: they
    would otherwise pay nothing. WHERE names them (else ``source:trade_id``)."""
    unknown = unmatched_outcomes(trades, resolutions)
    if unknown.is_empty():
        return CheckedTrades(trades, [])
    marked = trades.join(unknown.with_columns(_unknown=pl.lit(True)), on=["market", "outcome"], how="left")
    bad = marked.filter(pl.col("_unknown").fill_null(False))
    rejected = [
        RejectedTrade(
            str(row[WHERE]) if row.get(WHERE) else f"{row['source']}:{row['trade_id']}",
            f"outcome {row['outcome']!r} of market {row['market']} is not in its resolution",
            {k: v for k, v in row.items() if k not in (WHERE, "_unknown")},
        )
        for row in bad.iter_rows(named=True)
    ]
    return CheckedTrades(marked.filter(~pl.col("_unknown").fill_null(False)).drop("_unknown"), rejected)


# --- ranking -------------------------------------------------------------------------------------


def wallet_stats(trades: pl.DataFrame, resolutions: pl.DataFrame) -> pl.DataFrame:
    """Per wallet over resolved markets: pnl, bought, volume, trades, markets, wins (exact).

    TradeInputError when a traded outcome of a resolved market has no payout in the resolution.
    """
    resolved = resolutions.select("market").unique()
    paid = (  # per wallet, market and outcome: USDC in and out, shares held, the outcome's payout
        trades.lazy()
        .join(resolved.lazy(), on="market", how="semi")
        .with_columns(
            is_buy=pl.col("side") == "BUY",
        )
        .group_by("wallet", "market", "outcome")
        .agg(
            bought=pl.when(pl.col("is_buy")).then(pl.col("usdc")).otherwise(0).sum(),
            sold=pl.when(pl.col("is_buy")).then(0).otherwise(pl.col("usdc")).sum(),
            held=pl.when(pl.col("is_buy")).then(pl.col("shares")).otherwise(-pl.col("shares")).sum(),
            trades=pl.len(),
        )
        .join(resolutions.lazy(), on=["market", "outcome"], how="left")
        .collect()
    )
    unknown = (
        paid.filter(pl.col("payout").is_null()).select("market", "outcome").unique().sort("market", "outcome")
    )
    if not unknown.is_empty():
        market, outcome = unknown.row(0)
        raise TradeInputError(
            f"{unknown.height} traded outcome(s) not in the resolutions, e.g. {outcome!r} of market {market}"
        )
    legs = paid.lazy().with_columns(pnl=pl.col("sold") - pl.col("bought") + pl.col("held") * pl.col("payout"))
    per_market = legs.group_by("wallet", "market").agg(
        pl.col("pnl").sum(), pl.col("bought").sum(), pl.col("sold").sum(), pl.col("trades").sum()
    )
    return (
        per_market.group_by("wallet")
        .agg(
            pnl=pl.col("pnl").sum().cast(MONEY),
            bought=pl.col("bought").sum().cast(MONEY),
            volume=(pl.col("bought") + pl.col("sold")).sum().cast(MONEY),
            trades=pl.col("trades").sum().cast(pl.Int64),
            markets=pl.len().cast(pl.Int64),
            wins=(pl.col("pnl") > 0).sum().cast(pl.Int64),
        )
        .collect()
    )


def rank_wallets(
    trades: pl.DataFrame, resolutions: pl.DataFrame, *, min_trades: int = DEFAULT_MIN_TRADES
) -> pl.DataFrame:
    """Wallets with >= min_trades trades on resolved markets, ranked by P&L desc, volume desc, address asc.

    TradeInputError when a trade names an outcome its market's resolution does not list (reject
    those first with `split_unknown_outcomes`): it would silently pay nothing.
    """
    stats = (
        wallet_stats(trades, resolutions)
        .filter(pl.col("trades") >= min_trades)
        .sort(["pnl", "volume", "wallet"], descending=[True, True, False])
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
    )
    win_rate = [_ratio(Decimal(w), Decimal(m)) for w, m in zip(stats["wins"], stats["markets"], strict=True)]
    roi = [_ratio(p, b) for p, b in zip(stats["pnl"], stats["bought"], strict=True)]
    return stats.with_columns(
        pl.Series("win_rate", win_rate, dtype=pl.Decimal(38, 6)),
        pl.Series("roi", roi, dtype=pl.Decimal(38, 6)),
    ).select(RANKING_COLUMNS)


def ranking_records(rankings: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
    """Rows as plain dicts (decimals without trailing zeros), optionally only the top N."""
    frame = rankings if top is None else rankings.head(top)
    return [
        {k: plain(v) if isinstance(v, Decimal) else v for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def unmatched_outcomes(trades: pl.DataFrame, resolutions: pl.DataFrame) -> pl.DataFrame:
    """Traded (market, outcome) pairs of resolved markets that the resolution does not list."""
    resolved = resolutions.select("market").unique()
    return (
        trades.join(resolved, on="market", how="semi")
        .select("market", "outcome")
        .unique()
        .join(resolutions, on=["market", "outcome"], how="anti")
        .sort("market", "outcome")
    )


def replicate_trades(trades: pl.DataFrame, times: int) -> pl.DataFrame:
    """The same trades `times` times, each copy with fresh wallet ids (for benchmarks)."""
    copies = [
        trades.with_columns(
            wallet=pl.col("wallet") + f"-{i}",
            trade_id=pl.col("trade_id") + f"-{i}",
        )
        for i in range(times)
    ]
    return pl.concat(copies)


def simulate_trades(
    *, seed: int = 7, wallets: int = 2_000, markets: int = 40, trades: int = 30_000
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deterministic binary-market trades and resolutions for runs without recorded data.

    Prices are on the 0.01 tick grid, shares on the 2-decimal grid, USDC = shares x price, a third
    of the trades are sells; wallet activity is Zipf-distributed like real whales'.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    market_ids = [f"sim-{i:04d}" for i in range(markets)]
    winners = rng.integers(0, 2, size=markets)
    resolutions = resolutions_frame(
        row
        for i, market in enumerate(market_ids)
        for row in winner_takes_all(market, ("Yes", "No"), ("Yes", "No")[int(winners[i])])
    )
    wallet_ids = ["0x" + bytes(row).hex() for row in rng.integers(0, 256, size=(wallets, 20), dtype=np.uint8)]
    wallet_ix = rng.zipf(1.6, size=trades) % wallets
    market_ix = rng.integers(0, markets, size=trades)
    outcome_ix = rng.integers(0, 2, size=trades)
    cents = rng.integers(1, 100, size=trades)
    share_cents = rng.integers(100, 200_000, size=trades)
    sells = rng.random(size=trades) < 1 / 3
    start_ms = 1_650_000_000_000
    frame = pl.DataFrame(
        {
            "source": "simulated",
            "trade_id": [f"sim:{i}" for i in range(trades)],
            "wallet": [wallet_ids[i] for i in wallet_ix],
            "market": [market_ids[i] for i in market_ix],
            "outcome": [("Yes", "No")[i] for i in outcome_ix],
            "side": ["SELL" if s else "BUY" for s in sells],
            "shares": [Decimal(int(s)).scaleb(-2) for s in share_cents],
            "price": [Decimal(int(c)).scaleb(-2) for c in cents],
            "ts_ms": start_ms + np.arange(trades, dtype=np.int64) * 60_000,
        }
    )
    frame = frame.with_columns(usdc=(pl.col("shares").cast(MONEY) * pl.col("price").cast(MONEY)))
    return frame.select([pl.col(n).cast(t) for n, t in TRADE_SCHEMA.items()]), resolutions
