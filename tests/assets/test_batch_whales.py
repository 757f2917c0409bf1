"""Market universe -> wallet trades -> whale rankings, materialized against the real PostgreSQL and Kafka.

Gamma and the Data API are local servers speaking their protocols over real recorded data; the
ranking stored in whale_rankings is compared with an independent computation written here
(csv + Decimal) from the midterms trades and the resolutions file.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import msgspec
import psycopg
import pytest
from batch_support import MIDTERMS_END_DAYS, DataApiServer, MakeResources, export_rows_as_trades, read_topic

from pets.assets.markets.assets import market_universe
from pets.assets.whales.assets import wallet_trades, whale_rankings
from pets.assets.whales.checks import rankings_ordered_and_unique, wallet_trades_checks
from pets.pipelines.venue_sim.gamma_server import serve_gamma
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import WhaleRanking

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

TRUMP_2024 = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
TRUMP_END_DAY = "2024-11-05"
RANKING_DATE = "2024-12-31"


def gamma_subset(shared_data: Path) -> list[dict[str, Any]]:
    """Real Gamma markets ending on the midterms days (2020-2022 file) and on the 2024 election day."""
    markets = []
    for name, days in (
        ("markets_raw_2020_2022.jsonl.gz", MIDTERMS_END_DAYS),
        ("markets_raw_2024.jsonl.gz", (TRUMP_END_DAY,)),
    ):
        with gzip.open(shared_data / "polymarket" / "gamma" / name, "rt") as f:
            markets += [m for m in map(json.loads, f) if str(m.get("endDate", ""))[:10] in days]
    return markets


def independent_midterms_ranking(shared_data: Path, min_trades: int) -> list[tuple[Any, ...]]:
    """Plain csv + Decimal over the midterms files.

    Rows: (rank, wallet, pnl, volume, trades, markets, win rate, roi)."""
    res = list(csv.DictReader((shared_data / "trades" / "midterms2022_resolutions.csv").open()))
    winner = {r["file"]: r["winning_outcome"] for r in res}
    per_market: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    bought: dict[str, Decimal] = defaultdict(Decimal)
    volume: dict[str, Decimal] = defaultdict(Decimal)
    count: dict[str, int] = defaultdict(int)
    for path in sorted((shared_data / "trades" / "midterms2022").glob("*.csv")):
        for r in csv.DictReader(path.open()):
            wallet, amount, shares = r["Account"].lower(), Decimal(r["Amount"]), Decimal(r["Shares"])
            value = shares if r["Outcome"] == winner[path.name] else Decimal(0)
            sign = 1 if r["Type"] == "Buy" else -1
            per_market[wallet, path.name] += sign * (value - amount)
            bought[wallet] += amount if sign == 1 else 0
            volume[wallet] += amount
            count[wallet] += 1
    pnl: dict[str, Decimal] = defaultdict(Decimal)
    wins: dict[str, list[bool]] = defaultdict(list)
    for (wallet, _), value in per_market.items():
        pnl[wallet] += value
        wins[wallet].append(value > 0)
    six = Decimal("0.000001")
    ranked = sorted((w for w in count if count[w] >= min_trades), key=lambda w: (-pnl[w], -volume[w], w))
    return [
        (
            i,
            w,
            pnl[w],
            volume[w],
            count[w],
            len(wins[w]),
            (Decimal(sum(wins[w])) / len(wins[w])).quantize(six, ROUND_HALF_EVEN),
            (pnl[w] / bought[w]).quantize(six, ROUND_HALF_EVEN) if bought[w] else Decimal(0),
        )
        for i, w in enumerate(ranked, start=1)
    ]


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, str(e.description)) for e in result.get_asset_check_evaluations()}


def test_universe_trades_and_rankings_on_real_data(
    shared_data: Path,
    make_resources: MakeResources,
    migrated_db: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    trades_json = shared_data / "polymarket" / "rest_examples" / "trades.json"
    api_trades = json.loads(trades_json.read_text()) + export_rows_as_trades(
        shared_data / "trades" / "jamesbayly_polymarket_trades.csv"
    )
    subset = gamma_subset(shared_data)
    with serve_gamma(subset) as gamma, DataApiServer(api_trades) as data_api:
        resources = make_resources(gamma_url=gamma.url, data_api_url=data_api.url)

        # 1. the market universe, one daily partition at a time
        published = 0
        for day in (*MIDTERMS_END_DAYS, TRUMP_END_DAY):
            result = dg.materialize([market_universe], partition_key=day, resources=resources)
            assert result.success
            checks = check_results(result)
            assert checks and all(ok for ok, _ in checks.values()), checks
            meta = result.asset_materializations_for_node("market_universe")[0].metadata
            published += int(meta["published"].value)  # type: ignore[arg-type]
        with psycopg.connect(migrated_db) as conn:
            stored = conn.execute("SELECT count(*), count(*) FILTER (WHERE closed) FROM markets").fetchone()
        assert stored == (len({m["conditionId"] for m in subset}), len({m["conditionId"] for m in subset}))
        messages = read_topic(kafka_bootstrap, f"{topic_prefix}md.markets")
        assert len(messages) == published >= len(subset)
        decoded = [msgspec.json.decode(v, type=MarketInfo) for _, v in messages]
        trump = next(m for m in decoded if m.condition_id == TRUMP_2024)
        assert trump.closed and trump.winning_asset_id == trump.token_ids[0]  # "Yes" won

        # re-running a partition changes nothing (idempotent upsert)
        again = dg.materialize([market_universe], partition_key=TRUMP_END_DAY, resources=resources)
        assert again.asset_materializations_for_node("market_universe")[0].metadata["rows_changed"].value == 0

        # 2. wallet trades (files + Data API) and the ranking, with their checks
        midterm_files = sorted(str(p) for p in (shared_data / "trades" / "midterms2022").glob("*.csv"))
        run_config = {
            "ops": {
                "wallet_trades": {
                    "config": {
                        "trade_files": midterm_files,
                        "resolutions_file": str(shared_data / "trades" / "midterms2022_resolutions.csv"),
                        "data_api_markets": [TRUMP_2024, "426", "754"],
                        "recent_resolved_days": 0,
                    }
                },
                "whale_rankings": {"config": {"ranking_date": RANKING_DATE, "top": 10}},
            }
        }
        result = dg.materialize(
            [
                market_universe,
                wallet_trades,
                whale_rankings,
                wallet_trades_checks,
                rankings_ordered_and_unique,
            ],
            selection=[wallet_trades, whale_rankings],
            run_config=run_config,
            resources=resources,
        )
        assert result.success
        checks = check_results(result)
        assert set(checks) >= {
            "trade_sides_valid",
            "trade_sizes_not_negative",
            "trade_prices_in_range",
            "traded_outcomes_known",
            "rankings_ordered_and_unique",
        }
        assert all(ok for ok, _ in checks.values()), checks
        trades_meta = result.asset_materializations_for_node("wallet_trades")[0].metadata
        assert trades_meta["trades_files"].value == 28_005
        # the Trump market's 4 trades plus every trade of the two exported markets
        assert trades_meta["trades_data_api"].value == 4 + sum(
            t["conditionId"] in ("426", "754") for t in api_trades
        )
        assert any("market=" in r for r in data_api.requests)

        # collecting the same trades again inserts nothing
        again = dg.materialize(
            [wallet_trades],
            run_config={"ops": {"wallet_trades": run_config["ops"]["wallet_trades"]}},
            resources=resources,
        )
        assert again.asset_materializations_for_node("wallet_trades")[0].metadata["inserted"].value == 0

    # 3. the stored ranking equals the independent computation (the Data-API wallets have < 5 trades
    #    on resolved markets: only the Trump market is resolved among theirs)
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute(
            "SELECT rank, wallet, pnl, volume, trades, markets, win_rate, roi FROM whale_rankings"
            " WHERE ranking_date = %s ORDER BY rank",
            (date.fromisoformat(RANKING_DATE),),
        ).fetchall()
        midterm_markets = conn.execute(
            "SELECT count(*) FROM wallet_trades WHERE source LIKE 'midterms:%%' AND market LIKE '0x%%'"
        ).fetchone()
    assert midterm_markets == (28_005,)  # every midterms trade mapped to its condition id via Gamma
    expected = independent_midterms_ranking(shared_data, min_trades=5)
    assert len(rows) == len(expected) > 300
    assert [tuple(r) for r in rows] == expected

    # 4. the top 10 on whale.rankings, keyed by wallet
    top = [
        msgspec.json.decode(v, type=WhaleRanking)
        for _, v in read_topic(kafka_bootstrap, f"{topic_prefix}whale.rankings")
    ]
    assert [(t.rank, t.wallet, t.pnl) for t in top] == [(r[0], r[1], r[2]) for r in expected[:10]]
    assert all(t.ranking_date == RANKING_DATE for t in top)


def test_blocking_trade_check_fails_on_a_corrupted_row_and_names_the_expectation(
    make_resources: MakeResources, migrated_db: str
) -> None:
    from pets.assets.whales.assets import WALLET_TRADES
    from pets.pipelines.tables import ts_from_ms

    resources = make_resources()
    good = {
        "source": "t",
        "wallet": "0xa",
        "market": "m",
        "outcome": "Yes",
        "side": "BUY",
        "shares": Decimal("10"),
        "usdc": Decimal("4"),
        "price": Decimal("0.4"),
        "ts": ts_from_ms(0),
    }
    resources["postgres"].write(
        WALLET_TRADES,
        [
            WALLET_TRADES.row({**good, "trade_id": "1"}),
            WALLET_TRADES.row({**good, "trade_id": "2", "side": "HOLD", "shares": Decimal("-3")}),
        ],
    )
    result = dg.materialize(
        [wallet_trades, wallet_trades_checks],
        selection=dg.AssetSelection.checks_for_assets(wallet_trades),
        resources=resources,
        raise_on_error=False,
    )
    checks = check_results(result)
    assert checks["trade_sides_valid"][0] is False
    assert (
        "expect_column_values_to_be_in_set(side): 1 unexpected, e.g. ['HOLD']"
        in checks["trade_sides_valid"][1]
    )
    assert checks["trade_sizes_not_negative"][0] is False
    assert "expect_column_values_to_be_between(shares)" in checks["trade_sizes_not_negative"][1]
    assert checks["trade_prices_in_range"][0] is True


def test_unparseable_gamma_market_goes_to_the_dead_letter_topic(
    shared_data: Path,
    make_resources: MakeResources,
    migrated_db: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    good = next(m for m in gamma_subset(shared_data) if m["conditionId"] == TRUMP_2024)
    broken = {**good, "id": "999999", "conditionId": None}
    with serve_gamma([good, broken]) as gamma:
        result = dg.materialize(
            [market_universe], partition_key=TRUMP_END_DAY, resources=make_resources(gamma_url=gamma.url)
        )
    assert result.success
    assert result.asset_materializations_for_node("market_universe")[0].metadata["dead_letters"].value == 1
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT condition_id FROM markets").fetchall() == [(TRUMP_2024,)]
    [(key, value)] = read_topic(kafka_bootstrap, f"{topic_prefix}dlq.market_data")
    letter = msgspec.json.decode(value, type=DeadLetter)
    assert key == b"999999" and letter.reason == "gamma market 999999: conditionId missing"
    assert json.loads(letter.raw_bytes())["id"] == "999999"  # the raw market, kept whole


def test_chain_fills_become_trades_on_condition_id_and_outcome(
    shared_data: Path, make_resources: MakeResources, migrated_db: str
) -> None:
    from pets.pipelines.tables import WALLET_FILLS, ts_from_ms

    trump = next(m for m in gamma_subset(shared_data) if m["conditionId"] == TRUMP_2024)
    yes_token, no_token = json.loads(trump["clobTokenIds"])
    with serve_gamma([trump]) as gamma:
        resources = make_resources(gamma_url=gamma.url)
        assert dg.materialize([market_universe], partition_key=TRUMP_END_DAY, resources=resources).success

    def fill(i: int, wallet: str, asset: str, side: str, shares: str, usdc: str) -> tuple[object, ...]:
        return WALLET_FILLS.row(
            {
                "ts": ts_from_ms(1_730_000_000_000 + i),
                "tx_hash": f"0x{i:064x}",
                "log_index": i,
                "block_number": 1,
                "exchange": "ctf_v1",
                "wallet": wallet,
                "counterparty": None,
                "asset_id": asset,
                "side": side,
                "price": Decimal(usdc) / Decimal(shares),
                "shares": Decimal(shares),
                "usdc": Decimal(usdc),
                "fee": Decimal(0),
            }
        )

    resources["postgres"].write(
        WALLET_FILLS,
        [
            fill(1, "0xAAA", yes_token, "BUY", "100", "52"),
            fill(2, "0xaaa", no_token, "BUY", "10", "4.8"),
            fill(3, "0xbbb", "123456789", "SELL", "5", "1"),  # a token the universe does not know
        ],
    )
    config = {"ops": {"wallet_trades": {"config": {"recent_resolved_days": 0}}}}
    result = dg.materialize([wallet_trades], run_config=config, resources=resources)
    metadata = result.asset_materializations_for_node("wallet_trades")[0].metadata
    assert metadata["trades_chain"].value == 2 and metadata["unmapped_chain_fills"].value == 1
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute(
            "SELECT source, wallet, market, outcome, side, shares, usdc FROM wallet_trades ORDER BY trade_id"
        ).fetchall()
    assert rows == [
        ("chain", "0xaaa", TRUMP_2024, "Yes", "BUY", Decimal("100"), Decimal("52")),
        ("chain", "0xaaa", TRUMP_2024, "No", "BUY", Decimal("10"), Decimal("4.8")),
    ]
