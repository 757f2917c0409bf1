"""Whale ranking: hand-computed cases, and the midterms data against an independent computation."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines import whales as w

D = Decimal


def _trades(rows: list[tuple[str, str, str, str, str, str]]) -> pl.DataFrame:
    """(wallet, market, outcome, side, shares, usdc) -> normalized trades."""
    return pl.DataFrame(
        {
            "source": "test",
            "trade_id": [str(i) for i in range(len(rows))],
            "wallet": [r[0] for r in rows],
            "market": [r[1] for r in rows],
            "outcome": [r[2] for r in rows],
            "side": [r[3] for r in rows],
            "shares": [D(r[4]) for r in rows],
            "usdc": [D(r[5]) for r in rows],
            "price": [(D(r[5]) / D(r[4])).quantize(D("1e-6")) if D(r[4]) else None for r in rows],
            "ts_ms": list(range(len(rows))),
        }
    ).select([pl.col(n).cast(t) for n, t in w.TRADE_SCHEMA.items()])


YES_WINS = w.resolutions_frame(w.winner_takes_all("m1", ("Yes", "No"), "Yes"))


def test_pnl_counts_sells_buys_and_shares_held_at_resolution() -> None:
    trades = _trades(
        [
            ("0xa", "m1", "Yes", "BUY", "100", "40"),  # 100 Yes at 0.40
            ("0xa", "m1", "Yes", "SELL", "50", "30"),  # sells half at 0.60
            ("0xa", "m1", "No", "BUY", "10", "5"),  # 10 No at 0.50, expire worthless
        ]
    )
    [row] = w.ranking_records(w.rank_wallets(trades, YES_WINS, min_trades=1))
    # 30 - 40 - 5 + 50 x 1 + 10 x 0 = 35; volume 40 + 30 + 5; ROI 35 / 45
    assert row == {
        "rank": 1,
        "wallet": "0xa",
        "pnl": D("35"),
        "volume": D("75"),
        "trades": 3,
        "markets": 1,
        "win_rate": D("1"),
        "roi": D("0.777778"),
    }


def test_exact_decimals_without_float_drift() -> None:
    trades = _trades([("0xa", "m1", "No", "BUY", "1", "0.1")] * 3 + [("0xa", "m1", "No", "SELL", "3", "0.3")])
    [row] = w.ranking_records(w.rank_wallets(trades, YES_WINS, min_trades=1))
    assert row["pnl"] == D("0") and row["volume"] == D("0.6")


def test_order_is_pnl_then_volume_then_address_and_min_trades_filters() -> None:
    trades = _trades(
        [
            ("0xc", "m1", "Yes", "BUY", "10", "5"),  # pnl +5, volume 5
            ("0xb", "m1", "Yes", "BUY", "10", "5"),  # same pnl and volume: address decides
            ("0xd", "m1", "Yes", "BUY", "20", "15"),  # pnl +5, volume 15: before b and c
            ("0xe", "m1", "No", "BUY", "10", "5"),  # pnl -5
            ("0xf", "m1", "Yes", "BUY", "100", "1"),  # best pnl but below min_trades below
        ]
        + [("0xe", "m1", "No", "SELL", "0", "0")]
        + [(w_, "m1", "Yes", "SELL", "0", "0") for w_ in ("0xb", "0xc", "0xd")]
    )
    ranked = w.ranking_records(w.rank_wallets(trades, YES_WINS, min_trades=2))
    assert [(r["rank"], r["wallet"]) for r in ranked] == [(1, "0xd"), (2, "0xb"), (3, "0xc"), (4, "0xe")]
    assert ranked[3]["win_rate"] == 0 and ranked[3]["roi"] == D("-1")


def test_unresolved_markets_are_left_out() -> None:
    trades = _trades([("0xa", "m1", "Yes", "BUY", "10", "5"), ("0xa", "m2", "Yes", "BUY", "10", "9")])
    [row] = w.ranking_records(w.rank_wallets(trades, YES_WINS, min_trades=1))
    assert (row["trades"], row["markets"], row["pnl"]) == (1, 1, D("5"))


def test_unmatched_outcomes_lists_outcomes_missing_from_the_resolution() -> None:
    trades = _trades([("0xa", "m1", "Maybe", "BUY", "1", "1"), ("0xa", "m1", "Yes", "BUY", "1", "1")])
    assert w.unmatched_outcomes(trades, YES_WINS).rows() == [("m1", "Maybe")]


def test_bad_resolution_names_file_line_and_outcome(tmp_path: Path) -> None:
    path = tmp_path / "res.csv"
    path.write_text("market,outcomes,winning_outcome\nm1,Yes|No,Perhaps\n")
    with pytest.raises(w.TradeInputError, match=r"res\.csv:2: .*'Perhaps'"):
        w.read_resolutions_csv(path)


def test_simulated_trades_are_deterministic_and_rankable() -> None:
    a, res = w.simulate_trades(seed=3, wallets=50, markets=4, trades=500)
    b, _ = w.simulate_trades(seed=3, wallets=50, markets=4, trades=500)
    assert a.equals(b)
    assert w.rank_wallets(a, res, min_trades=1).height > 0


# --- independent computation on the real midterms data ------------------------------------------


def independent_ranking(trade_dir: Path, resolutions_csv: Path, min_trades: int) -> list[dict[str, Any]]:
    """Plain csv + Decimal, written separately from pets.pipelines.whales."""
    winner: dict[str, str] = {}
    market_of: dict[str, str] = {}
    with resolutions_csv.open() as f:
        for r in csv.DictReader(f):
            winner[r["gamma_market_id"]] = r["winning_outcome"]
            market_of[r["file"]] = r["gamma_market_id"]
    cash: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    bought: dict[str, Decimal] = defaultdict(Decimal)
    volume: dict[str, Decimal] = defaultdict(Decimal)
    count: dict[str, int] = defaultdict(int)
    for path in sorted(trade_dir.glob("*.csv")):
        market = market_of[path.name]
        with path.open() as f:
            for r in csv.DictReader(f):
                wallet = r["Account"].lower()
                usdc, shares = Decimal(r["Amount"]), Decimal(r["Shares"])
                payout = Decimal(1) if r["Outcome"] == winner[market] else Decimal(0)
                if r["Type"] == "Buy":
                    cash[wallet, market] += shares * payout - usdc
                    bought[wallet] += usdc
                else:
                    assert r["Type"] == "Sell"
                    cash[wallet, market] += usdc - shares * payout
                volume[wallet] += usdc
                count[wallet] += 1
    pnl: dict[str, Decimal] = defaultdict(Decimal)
    markets: dict[str, int] = defaultdict(int)
    wins: dict[str, int] = defaultdict(int)
    for (wallet, _), value in cash.items():
        pnl[wallet] += value
        markets[wallet] += 1
        wins[wallet] += value > 0
    q = Decimal("0.000001")

    def ratio(a: Decimal, b: Decimal) -> Decimal:
        return (a / b).quantize(q, ROUND_HALF_EVEN) if b else Decimal(0)

    eligible = [x for x in count if count[x] >= min_trades]
    eligible.sort(key=lambda x: x)
    eligible.sort(key=lambda x: (pnl[x], volume[x]), reverse=True)
    out = []
    for i, x in enumerate(eligible, start=1):
        out.append(
            {
                "rank": i,
                "wallet": x,
                "pnl": pnl[x],
                "volume": volume[x],
                "trades": count[x],
                "markets": markets[x],
                "win_rate": ratio(Decimal(wins[x]), Decimal(markets[x])),
                "roi": ratio(pnl[x], bought[x]),
            }
        )
    return out


@pytest.mark.shared_data
def test_midterms_ranking_matches_independent_computation(shared_data: Path) -> None:
    trade_dir = shared_data / "trades" / "midterms2022"
    res_csv = shared_data / "trades" / "midterms2022_resolutions.csv"
    expected = independent_ranking(trade_dir, res_csv, min_trades=5)
    resolutions, files = w.read_resolutions_csv(res_csv)
    got = w.ranking_records(
        w.rank_wallets(w.read_trade_files(sorted(trade_dir.glob("*.csv")), files), resolutions, min_trades=5)
    )
    assert len(got) == len(expected) > 100
    assert got == expected  # Decimal equality: exact values, whatever the trailing zeros


@pytest.mark.shared_data
def test_cli_rank_json_is_the_independent_top(shared_data: Path) -> None:
    trade_files = sorted((shared_data / "trades" / "midterms2022").glob("*.csv"))
    res_csv = shared_data / "trades" / "midterms2022_resolutions.csv"
    result = CliRunner().invoke(
        main,
        [
            "whales",
            "rank",
            "--trades",
            *map(str, trade_files),
            "--resolutions",
            str(res_csv),
            "--min-trades",
            "3",
            "--top",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    expected = independent_ranking(shared_data / "trades" / "midterms2022", res_csv, min_trades=3)[:20]
    assert len(got) == 20
    for g, e in zip(got, expected, strict=True):
        assert isinstance(g["pnl"], str) and isinstance(g["roi"], str)
        assert {k: Decimal(v) if isinstance(v, str) and k != "wallet" else v for k, v in g.items()} == e


@pytest.mark.shared_data
def test_cli_rank_on_data_api_trades_resolved_by_gamma(shared_data: Path, tmp_path: Path) -> None:
    trades_json = shared_data / "polymarket" / "rest_examples" / "trades.json"
    records = json.loads(trades_json.read_text())
    condition = records[0]["conditionId"]
    with gzip.open(shared_data / "polymarket" / "gamma" / "markets_raw_2024.jsonl.gz", "rt") as f:
        market = next(m for m in map(json.loads, f) if m["conditionId"] == condition)
    outcomes, prices = json.loads(market["outcomes"]), json.loads(market["outcomePrices"])
    winning = outcomes[prices.index("1")]
    res_csv = tmp_path / "res.csv"
    res_csv.write_text(f"market,outcomes,winning_outcome\n{condition},{'|'.join(outcomes)},{winning}\n")
    result = CliRunner().invoke(
        main,
        [
            "whales",
            "rank",
            "--trades",
            str(trades_json),
            "--resolutions",
            str(res_csv),
            "--min-trades",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = {r["wallet"]: Decimal(r["pnl"]) for r in json.loads(result.output)}
    expected: dict[str, Decimal] = {}
    for r in records:
        size, price = Decimal(str(r["size"])), Decimal(str(r["price"]))
        payout = Decimal(1) if r["outcome"] == winning else Decimal(0)
        sign = 1 if r["side"] == "BUY" else -1
        expected[r["proxyWallet"]] = sign * (size * payout - size * price)
    assert got == expected


def test_cli_rank_unknown_trades_file_is_a_clean_error(tmp_path: Path) -> None:
    res_csv = tmp_path / "res.csv"
    res_csv.write_text("file,gamma_market_id,outcomes,winning_outcome\nother.csv,1,Yes|No,Yes\n")
    trades = tmp_path / "mine.csv"
    trades.write_text('"","Timestamp","Account","Type","Outcome","Amount","Shares","Price"\n')
    args = ["whales", "rank", "--trades", str(trades), "--resolutions", str(res_csv)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "mine.csv: no market for this trades file" in result.output


MIDTERMS_HEADER = '"","Timestamp","Account","Type","Outcome","Amount","Shares","Price"\n'
GOOD_ROW = '"1",2022-11-08 10:00:00,"0xA","Buy","Yes",4,10,0.4\n'


def _midterms(tmp_path: Path, *rows: str) -> tuple[Path, Path]:
    trades = tmp_path / "race.csv"
    trades.write_text(MIDTERMS_HEADER + GOOD_ROW + "".join(rows))
    resolutions = tmp_path / "res.csv"
    resolutions.write_text("file,gamma_market_id,outcomes,winning_outcome\nrace.csv,m1,Yes|No,Yes\n")
    return trades, resolutions


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('"2",2022-11-08 10:00:00,"0xB","Foo","Yes",4,10,0.4\n', "Type Foo is not buy or sell"),
        ('"2",2022-11-08 10:00:00,"0xB","Sell","Yes",abc,10,0.4\n', "Amount abc is not a number"),
        ('"2",2022-11-08 10:00:00,"0xB","Sell","Yes",,10,0.4\n', "Amount is empty"),
        ('"2",2022-11-08 10:00:00,"0xB","Buy","Yes",4,-10,0.4\n', "Shares -10 is negative"),
        ('"2",2022-11-08 10:00:00,"0xB","Buy","Yes",4,10,1.4\n', "Price 1.4 is outside [0, 1]"),
        ('"2",yesterday,"0xB","Buy","Yes",4,10,0.4\n', "Timestamp yesterday is not YYYY-MM-DD HH:MM:SS"),
    ],
)
def test_a_bad_trade_row_is_rejected_with_file_line_and_problem(
    tmp_path: Path, row: str, problem: str
) -> None:
    trades, resolutions = _midterms(tmp_path, row)
    _, market_of_file = w.read_resolutions_csv(resolutions)
    checked = w.read_trades_checked([trades], market_of_file)
    assert checked.trades[w.WHERE].to_list() == [f"{trades}:2"]  # the good row only
    assert [(r.where, r.reason) for r in checked.rejected] == [(f"{trades}:3", problem)]
    assert checked.rejected[0].record[""] == "2"  # the row as read, for the dead letter
    with pytest.raises(w.TradeInputError, match=re.escape(f"race.csv:3: {problem}")):
        w.read_trade_files([trades], market_of_file)


def test_a_missing_price_is_kept_missing(tmp_path: Path) -> None:
    """The midterms data set writes NA for the price of its zero-share fills."""
    trades, resolutions = _midterms(tmp_path, '"2",2022-11-08 10:00:00,"0xB","Buy","Yes",0,0,NA\n')
    frame = w.read_trade_files([trades], w.read_resolutions_csv(resolutions)[1])
    assert frame["price"].to_list() == [D("0.4"), None]


def test_data_api_export_rows_are_parsed_strictly(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "market_id,trade_id,trade_date,user_id,side,outcome,amount,price\n"
        "7,t1,2025-01-01T00:00:00Z,0xA,BUY,Yes,10,0.5\n"
        "7,t2,2025-01-01T00:00:00Z,0xA,HOLD,Yes,10,0.5\n"
        "7,t3,2025-01-01T00:00:00Z,0xA,SELL,Yes,-1,0.5\n"
    )
    checked = w.read_trades_checked([path], {})
    assert checked.trades["trade_id"].to_list() == ["t1"]
    assert [(r.where, r.reason) for r in checked.rejected] == [
        (f"{path}:3", "side HOLD is not buy or sell"),
        (f"{path}:4", "amount -1 is negative"),
    ]


def test_an_outcome_missing_from_the_resolution_is_rejected_not_paid_zero() -> None:
    trades = _trades([("0xa", "m1", "Maybe", "BUY", "1", "1"), ("0xa", "m1", "Yes", "BUY", "1", "1")])
    with pytest.raises(w.TradeInputError, match=r"'Maybe' of market m1"):
        w.rank_wallets(trades, YES_WINS, min_trades=1)
    known, rejected = w.split_unknown_outcomes(trades, YES_WINS)
    assert known["outcome"].to_list() == ["Yes"]
    assert [(r.where, r.reason) for r in rejected] == [
        ("test:0", "outcome 'Maybe' of market m1 is not in its resolution")
    ]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('"2",2022-11-08 10:00:00,"0xB","Foo","Yes",4,10,0.4\n', "race.csv:3: Type Foo is not buy or sell"),
        (
            '"2",2022-11-08 10:00:00,"0xB","Buy","Maybe",4,10,0.4\n',
            "race.csv:3: outcome 'Maybe' of market m1",
        ),
    ],
)
def test_cli_rank_fails_on_a_bad_row_naming_file_line_and_problem(
    tmp_path: Path, row: str, problem: str
) -> None:
    trades, resolutions = _midterms(tmp_path, row)
    result = CliRunner().invoke(
        main, ["whales", "rank", "--trades", str(trades), "--resolutions", str(resolutions)]
    )
    assert result.exit_code == 1
    assert problem in result.output


def test_bench_rankings_finds_shared_data_through_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_SHARED_DATA", str(tmp_path / "nothing-here"))
    result = CliRunner().invoke(main, ["bench", "rankings", "--replicate", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["source"].endswith(
        str(tmp_path / "nothing-here" / "trades" / "midterms2022")
    )
