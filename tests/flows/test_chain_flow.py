"""`pets flow run chain` with the Data API on (`run(settings, data_api=True)`): the chain node's logs and
the Data API's rows of the wallet Bot 3 follows (from whale.rankings) reach chain.fill once each."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines" / "chain"))
from chain_factories import FIRST_BLOCK, ledger_logs
from test_data_api import api_rows, ledger

from pets.flows import chain as chain_flow
from pets.flows.trading_io import read_topics
from pets.pipelines.kafka_io import ensure_topics, producer
from pets.pipelines.venue_sim.chain_node import ChainNode
from pets.pipelines.venue_sim.data_api_server import DataApiServer
from pets.schemas.codec import encode
from pets.schemas.signals import WalletFill, WhaleRanking
from pets.settings import Settings

pytestmark = pytest.mark.integration


def test_chain_and_data_api_publish_each_fill_once(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    wallet, trades = ledger(shared_data)
    logs = ledger_logs(shared_data, 5)  # the chain sees the first 5 trades (their tx hashes re-made)
    rows = api_rows(wallet, trades[:100])  # one page of the Data API (the follower reads the newest page)
    for row, log in zip(rows, logs, strict=False):
        row["transactionHash"] = log["transactionHash"]  # the same fills, seen by both sources
    ensure_topics(prefixed_settings, ["whale.rankings", "chain.fill"])
    ranking = WhaleRanking(
        ranking_date="2026-06-01", rank=1, wallet=wallet, pnl=Decimal(1), volume=Decimal(1), trades=153,
        markets=22, win_rate=Decimal("0.5"), roi=Decimal(0),
    )  # fmt: skip
    client = producer(prefixed_settings)
    client.send(f"{prefixed_settings.topic_prefix}whale.rankings", key=wallet.encode(), value=encode(ranking))
    client.flush()
    client.close()
    last = FIRST_BLOCK + 40
    with ChainNode(logs, head=last, finalized=last) as node, DataApiServer(rows) as api:
        venue = dataclasses.replace(prefixed_settings.venue, polygon_rpc_url=node.url, data_api_url=api.url)
        settings = dataclasses.replace(prefixed_settings, venue=venue, state_dir=tmp_path, postgres_dsn=None)
        stop = threading.Event()
        thread = threading.Thread(
            target=chain_flow.run, args=(settings,),
            kwargs={"from_block": FIRST_BLOCK, "data_api": True, "stop": stop, "data_api_poll_s": 0.2},
        )  # fmt: skip
        thread.start()
        try:
            deadline = time.monotonic() + 60
            published: list[WalletFill] = []
            while len(published) < 100 and time.monotonic() < deadline:
                time.sleep(0.5)
                published = [m for m in read_topics(settings, ["chain.fill"]) if isinstance(m, WalletFill)]
            time.sleep(1.5)  # a few more polls of both sources: still nothing twice
        finally:
            stop.set()
            thread.join(30)
    published = [m for m in read_topics(settings, ["chain.fill"]) if isinstance(m, WalletFill)]
    assert len(published) == 100 == len({(f.tx_hash, f.asset_id, f.side) for f in published})
    assert any("takerOnly=false" in r and wallet in r for r in api.requests)
    assert (tmp_path / "chain" / "watermark.json").is_file()
