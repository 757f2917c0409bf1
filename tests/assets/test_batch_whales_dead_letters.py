"""Unusable trade rows never reach the ranking: they go to dlq.signals with the reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import msgspec
import psycopg
from batch_support import MakeResources, read_topic

from pets.assets.whales.assets import WALLET_TRADES, wallet_trades, whale_rankings
from pets.pipelines.polymarket.universe import market_row
from pets.pipelines.tables import MARKETS, ts_from_ms
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo

CONDITION = "0x" + "12" * 32
RESOLVED = MarketInfo(
    condition_id=CONDITION,
    market_id="77",
    question="?",
    slug="race",
    category="politics",
    token_ids=("1", "2"),
    outcomes=("Yes", "No"),
    neg_risk=False,
    tick_size=Decimal("0.01"),
    min_order_size=Decimal("5"),
    active=False,
    closed=True,
    accepting_orders=False,
    outcome_prices=(Decimal(1), Decimal(0)),
    winning_asset_id="1",
)


def _dead_letters(kafka_bootstrap: str, topic_prefix: str) -> list[tuple[str, DeadLetter]]:
    return [
        ((key or b"").decode(), msgspec.json.decode(value, type=DeadLetter))
        for key, value in read_topic(kafka_bootstrap, f"{topic_prefix}dlq.signals")
    ]


def test_bad_file_rows_and_unknown_outcomes_are_dead_lettered_not_used(
    make_resources: MakeResources, migrated_db: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    resources = make_resources()
    resources["postgres"].write(MARKETS, [market_row(RESOLVED, ts_from_ms(0))])
    trades = tmp_path / "race.csv"
    trades.write_text(
        '"","Timestamp","Account","Type","Outcome","Amount","Shares","Price"\n'
        + "".join(f'"{i}",2022-11-08 10:00:0{i},"0xA","Buy","Yes",4,10,0.4\n' for i in range(1, 6))
        + '"6",2022-11-08 10:00:06,"0xB","Foo","Yes",4,10,0.4\n'
    )
    resolutions = tmp_path / "res.csv"
    resolutions.write_text("file,gamma_market_id,outcomes,winning_outcome\nrace.csv,77,Yes|No,Yes\n")
    config = {
        "trade_files": [str(trades)],
        "resolutions_file": str(resolutions),
        "recent_resolved_days": 0,
        "include_chain_fills": False,
    }
    result = dg.materialize(
        [wallet_trades], run_config={"ops": {"wallet_trades": {"config": config}}}, resources=resources
    )
    assert result.success
    assert result.asset_materializations_for_node("wallet_trades")[0].metadata["dead_lettered"].value == 1
    [(key, letter)] = _dead_letters(kafka_bootstrap, topic_prefix)
    assert (key, letter.source, letter.reason) == (
        f"{trades}:7",
        "wallet_trades",
        "Type Foo is not buy or sell",
    )
    assert msgspec.json.decode(letter.raw_bytes())["Account"] == "0xB"

    # a stored trade naming an outcome the resolution does not list: not ranked, dead-lettered
    resources["postgres"].write(
        WALLET_TRADES,
        [
            WALLET_TRADES.row(
                {
                    "source": "t",
                    "trade_id": "maybe",
                    "wallet": "0xc",
                    "market": CONDITION,
                    "outcome": "Maybe",
                    "side": "BUY",
                    "shares": Decimal("10"),
                    "usdc": Decimal("1"),
                    "price": Decimal("0.1"),
                    "ts": ts_from_ms(0),
                }
            )
        ],
    )
    run_config = {"ops": {"whale_rankings": {"config": {"ranking_date": "2022-12-01", "min_trades": 1}}}}
    result = dg.materialize([whale_rankings], run_config=run_config, resources=resources)
    assert result.success
    letters = _dead_letters(kafka_bootstrap, topic_prefix)[1:]
    assert [(k, d.source, d.reason) for k, d in letters] == [
        ("t:maybe", "whale_rankings", f"outcome 'Maybe' of market {CONDITION} is not in its resolution")
    ]
    with psycopg.connect(migrated_db) as conn:
        ranked = conn.execute(
            "SELECT wallet, pnl FROM whale_rankings WHERE ranking_date = %s", (date(2022, 12, 1),)
        ).fetchall()
    assert ranked == [("0xa", Decimal("30"))]  # 5 buys of 10 Yes for 4 each, Yes won: 50 - 20
