"""The Data-API follower against a local Data API serving one real wallet's 153 trades (20 of them maker
fills) in the venue's /trades and /activity shapes, merged with the chain follower's fills on the real
broker: each fill published once, each source's latency recorded."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chain_factories import V2_CTF

from pets.flows.trading_io import read_topics
from pets.pipelines.chain.data_api import DataApiFollower, FillMerger, MergingSink, RateLimit
from pets.pipelines.chain.follower import ChainFollower, WatermarkStore, Web3LogSource
from pets.pipelines.chain.kafka_sink import KafkaFillSink
from pets.pipelines.polymarket.http import JsonHttpClient
from pets.pipelines.venue_sim.chain_node import ChainNode, block_at, trade_log
from pets.pipelines.venue_sim.data_api_server import DataApiServer
from pets.schemas.signals import WalletFill
from pets.settings import Settings


def ledger(shared_data: Path) -> tuple[str, list[dict[str, Any]]]:
    data = json.loads((shared_data / "trades" / "beffer45_wallet_ledger.json").read_text())
    return data["BEFFER45_WALLET"], data["BEFFER45_LEDGER_TRADES"]


def api_rows(wallet: str, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger's trades as Data-API /trades rows (numbers as the API sends them: JSON floats)."""
    return [
        {
            "proxyWallet": wallet,
            "asset": t["asset"],
            "side": t["side"],
            "size": float(t["size"]),
            "price": float(t["price"]),
            "timestamp": t["ts"],
            "transactionHash": t["tx"],
            "taker": t["taker"],
            "conditionId": "0x" + "00" * 32,
            "title": t["slug"],
            "slug": t["slug"],
        }
        for t in trades
    ]


def fills(settings: Settings) -> list[WalletFill]:
    return [m for m in read_topics(settings, ["chain.fill"]) if isinstance(m, WalletFill)]


def test_rate_limit_waits_out_the_window() -> None:
    now, pauses = [0.0], []

    def sleep(s: float) -> None:
        pauses.append(s)
        now[0] += s

    limit = RateLimit(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for at in (0.0, 1.0, 2.0, 3.0, 3.5):
        now[0] = max(now[0], at)
        limit.wait()
    # the 4th call (t=3) waits until the 1st leaves the window (t=10); the 5th until the 2nd does (t=11)
    assert pauses == [7.0, 1.0]


@pytest.mark.integration
def test_maker_fills_need_taker_only_false_and_a_fill_seen_twice_is_published_once(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    wallet, trades = ledger(shared_data)
    rows = api_rows(wallet, trades)
    redeem = {"proxyWallet": wallet, "type": "REDEEM", "timestamp": trades[-1]["ts"] + 60, "size": 10.0,
              "transactionHash": "0x" + "ee" * 32, "price": 1.0, "asset": trades[0]["asset"]}  # fmt: skip
    merger = FillMerger()
    # the chain saw the first 10 trades first (as V2 logs in made-up blocks of the local node)
    logs = [
        trade_log(
            {**t, "wallet": wallet},
            block=block_at(t["ts"]) + 10_000_000,
            log_index=i,
            exchange=V2_CTF,
            token_id=int(t["asset"]),
            counterparty="0x" + "cd" * 20,
        )
        for i, t in enumerate(trades[:10])
    ]
    first = min(int(log["blockNumber"], 16) for log in logs)
    last = max(int(log["blockNumber"], 16) for log in logs)
    with ChainNode(logs, head=last, finalized=last) as node, DataApiServer(rows, [redeem]) as api:
        chain_sink = MergingSink(KafkaFillSink(prefixed_settings), merger, "chain")
        chain = ChainFollower(Web3LogSource(node.url), chain_sink, WatermarkStore(tmp_path / "w.json"),
                              start_block=first, max_range=10**9)  # fmt: skip
        chain.poll()
        assert chain.stats.published == 10

        sink = MergingSink(KafkaFillSink(prefixed_settings), merger, "data_api")
        follower = DataApiFollower(JsonHttpClient(api.url, backoff_s=0.01), sink, lambda: [wallet], page=500)
        api.inject(429, 1)  # the client retries after Retry-After
        assert follower.poll() == 153 - 10
        assert follower.poll() == 0  # the same rows again: nothing new
        assert any("takerOnly=false" in r for r in api.requests)
        assert all("takerOnly" not in r for r in api.requests if r.startswith("/activity"))

    published = fills(prefixed_settings)
    assert len(published) == 153 == len({(f.tx_hash, f.asset_id, f.side) for f in published})
    makers = {t["tx"] for t in trades if not t["taker"]}
    assert len(makers) == 20 and makers <= {f.tx_hash for f in published}
    by_tx = {f.tx_hash: f for f in published}
    t = trades[20]
    f = by_tx[t["tx"]]
    assert (f.exchange, f.side, f.shares, f.price) == (
        "data_api",
        t["side"],
        Decimal(t["size"]),
        Decimal(t["price"]),
    )
    assert f.ts_ms == t["ts"] * 1000 and f.wallet == wallet
    # both sources saw the first 10 fills; the chain was first for those, the Data API for the rest
    chain_lat, api_lat = merger.latency["chain"], merger.latency["data_api"]
    assert (chain_lat.fills, chain_lat.first) == (10, 10)
    assert (api_lat.fills, api_lat.first) == (153, 143)
    assert api_lat.mean_ms is not None and api_lat.mean_ms > 0
