"""Decoding the real Polygon logs of ../shared/data/chain/logs/ to the values their sources assert, or
(where a source asserts none) to amounts worked out by hand from the logs' hex words."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.chain.decode import Undecodable, counts_volume, decode_log, trade_volume
from pets.pipelines.chain.exchanges import EXCHANGES, ORDER_FILLED, active
from pets.schemas.signals import WalletFill

V2_EXCHANGE = "0xe111180000d2663c0091e4f400237545b87b996b"
V1_NEGRISK = "0xc5d563a36ae78145c45a50134d48a1215220f80a"


def logs(shared_data: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((shared_data / "chain" / "logs" / name).read_text())


def fill(log: dict[str, Any]) -> WalletFill:
    out = decode_log(log)
    assert isinstance(out, WalletFill), out
    return out


def test_topic0_of_the_abis_match_the_data_readme() -> None:
    # the first/last hex digits quoted in ../shared/data/README.md for each event
    assert ORDER_FILLED["v1"].startswith("0xd0a08e8c") and ORDER_FILLED["v1"].endswith("fec0f6")
    assert ORDER_FILLED["v2"].startswith("0xd543adfd") and ORDER_FILLED["v2"].endswith("84d8ee")


def test_sources_expected_values_v1_and_v2(shared_data: Path) -> None:
    for log in logs(shared_data, "rustcrate_v1_v2_ctf_orderfilled_logs.json"):
        f, expected = fill(log), log["expected"]
        assert f.side == expected["side"]
        assert f.shares == Decimal(str(expected["size"]))
        assert f.price == Decimal(str(expected["price"]))
        assert f.fee == Decimal(str(expected.get("fee", expected.get("fee_usdc"))))
        assert f.asset_id == expected["tokenId"]
        assert f.block_number == expected["block"]
        assert f.usdc == f.shares * f.price  # both fills are on the cent grid
        assert f.exchange == ("ctf_v2" if log["name"] == "ORDER_FILL_V2" else "ctf_v1")
        assert f.wallet == "0x" + log["topics"][2][-40:]
        assert f.ts_ms == int(log["blockTimestamp"], 16) * 1000


def test_v2_buy_taker_own_order_and_sell(shared_data: Path) -> None:
    buy, own, sell = (fill(log) for log in logs(shared_data, "polyprinter_v2_ctf_orderfilled_logs.json"))
    # BUY: side 0, maker pays 0x23f000 = 2,355,200 units of pUSD for 0x271000 = 2,560,000 units of shares
    assert (buy.side, buy.usdc, buy.shares, buy.price) == (
        "BUY",
        Decimal("2.3552"),
        Decimal("2.56"),
        Decimal("0.92"),
    )
    assert buy.wallet == "0x335ac48637a3bc37c2eac9e0c9799c32b3cda494" and counts_volume(buy)
    # the taker's own order of the same match: the taker wallet is the maker of this log, the
    # exchange its counterparty; the other side of the same 2.56 shares, with the taker's fee 0x337c
    assert own.wallet == "0x686024b5c1fcc10eb86b8d551fae78488b1b6279" == buy.counterparty
    assert own.counterparty == V2_EXCHANGE and not counts_volume(own)
    assert (own.side, own.shares, own.usdc, own.fee) == (
        "SELL",
        Decimal("2.56"),
        Decimal("2.3552"),
        Decimal("0.013180"),
    )
    assert trade_volume([buy, own]) == Decimal("2.3552")  # one trade, counted once
    # SELL: side 1, 0x5b8d80 = 6,000,000 units of shares for 0x2bf200 = 2,880,000 of pUSD
    assert (sell.side, sell.shares, sell.usdc, sell.price) == (
        "SELL",
        Decimal(6),
        Decimal("2.88"),
        Decimal("0.48"),
    )
    assert sell.fee == Decimal(0x1997E) / 10**6


def test_v1_negrisk_match_orders_counts_each_fill_once(shared_data: Path) -> None:
    out = [decode_log(log) for log in logs(shared_data, "blog_yzc_v1_negrisk_block51866068_logs.json")]
    maker, taker, matched = out
    assert matched is None  # OrdersMatched summarises the match: not a fill
    assert isinstance(maker, WalletFill) and isinstance(taker, WalletFill)
    assert maker.exchange == taker.exchange == "negrisk_v1"
    # the maker sold 0x989680 = 10 shares for 0x325aa0 = 3.3 pUSD; the taker bought the same
    assert (maker.wallet, maker.side, maker.shares, maker.usdc) == (
        "0x3cf3e8d5427aed066a7a5926980600f6c3cf87b3", "SELL", Decimal(10), Decimal("3.3"))  # fmt: skip
    assert (taker.wallet, taker.side, taker.shares, taker.usdc) == (
        "0xd42f6a1634a3707e27cbae14ca966068e5d1047d", "BUY", Decimal(10), Decimal("3.3"))  # fmt: skip
    assert taker.counterparty == V1_NEGRISK and maker.counterparty == taker.wallet
    assert (
        maker.asset_id
        == taker.asset_id
        == str(0x6F3DC129AE1B3A62BD59C83235F421BB772D0BCA3038A6F36DF840E6577AAB88)
    )
    assert (maker.price, maker.block_number, maker.log_index) == (Decimal("0.33"), 51866068, 25)
    assert trade_volume([maker, taker]) == Decimal("3.3")


def test_undecodable_logs_say_why(shared_data: Path) -> None:
    v2, v1 = logs(shared_data, "rustcrate_v1_v2_ctf_orderfilled_logs.json")
    stranger = {**v1, "address": "0x" + "ab" * 20}
    assert isinstance(out := decode_log(stranger), Undecodable) and "not a Polymarket exchange" in out.reason
    swapped = {**v1, "address": v2["address"]}  # a V1 layout on the V2 exchange
    assert isinstance(out := decode_log(swapped), Undecodable) and "other exchange version" in out.reason
    short = {**v2, "data": v2["data"][:-64]}
    assert isinstance(out := decode_log(short), Undecodable) and "malformed" in out.reason


def test_exchange_table_switches_at_the_v2_block() -> None:
    assert {e.name for e in active(86_126_990, 86_126_997)} == {"ctf_v1", "negrisk_v1"}
    assert {e.name for e in active(86_126_998, 86_127_000)} == {"ctf_v2", "negrisk_v2"}
    assert {e.name for e in active(86_126_990, 86_127_000)} == {e.name for e in EXCHANGES}


def test_cli_decode_json(shared_data: Path, tmp_path: Path) -> None:
    real = logs(shared_data, "blog_yzc_v1_negrisk_block51866068_logs.json")
    path = tmp_path / "logs.json"
    path.write_text(json.dumps([*real, {**real[0], "address": "0x" + "00" * 20}]))
    result = CliRunner().invoke(main, ["chain", "decode", "--logs", str(path), "--json"])
    assert result.exit_code == 0, result.output
    fills = json.loads(result.stdout)
    assert [(f["log_index"], f["side"], f["price"], f["shares"], f["usdc"]) for f in fills] == [
        (25, "SELL", "0.33", "10", "3.3"), (27, "BUY", "0.33", "10", "3.3")]  # fmt: skip
    assert set(fills[0]) == {"tx_hash", "log_index", "exchange", "wallet", "counterparty", "token_id", "side",
                             "price", "shares", "usdc", "fee"}  # fmt: skip
    assert "not a Polymarket exchange" in result.stderr


@pytest.mark.parametrize("bad", ["{}", "not json"])
def test_cli_decode_rejects_a_file_that_is_no_list(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "logs.json"
    path.write_text(bad)
    result = CliRunner().invoke(main, ["chain", "decode", "--logs", str(path), "--json"])
    assert result.exit_code != 0 and "not a JSON list of logs" in result.output


def test_bench_chain_decode_counts_every_log(shared_data: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "chain-decode", "--count", "5000", "--no-latency", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # 8 real logs (the third an OrdersMatched) + one fill per trade of the 4,802-trade tape; 5,000 logs
    # take the set once and its first 190 again, so the OrdersMatched twice
    assert out["distinct_logs"] == 8 + 4802 and out["logs"] == 5000 and out["fills"] == 5000 - 2
    assert out["logs_per_s"] > 0
