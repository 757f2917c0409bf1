"""End to end on the real broker and database, every flow its own process: a whale's real V2 fill on the
local Polygon node -> `pets flow run chain` (web3.py) -> chain.fill -> Bot 3 in the bots flow -> risk
-> the paper executor's fill. Also measures the latency from the block being finalized at the node to
the copy intent on order.intent (the producer's record timestamp)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from e2e_harness import Flows, Frame, publish, topic_messages, wait_for
from kafka import TopicPartition

from pets.pipelines.chain.decode import decode_log
from pets.pipelines.chain.exchanges import V2_FROM_BLOCK
from pets.pipelines.kafka_io import consumer, ensure_topics, producer
from pets.pipelines.migrations import migrate
from pets.pipelines.polymarket.universe import Discovery, UniversePublisher
from pets.pipelines.timescale import TimescaleWriter
from pets.pipelines.venue_sim.chain_node import ChainNode, block_time
from pets.schemas.codec import encode
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent
from pets.schemas.signals import WalletFill, WhaleRanking
from pets.schemas.topics import load_topic_registry
from pets.settings import Mode, Settings, project_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines" / "chain"))
from chain_factories import real_v2_logs

from venue_factories import market

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def e2e_settings(prefixed_settings: Settings, fresh_db: str, tmp_path: Path) -> Settings:
    migrate(fresh_db)
    settings = replace(
        prefixed_settings, mode=Mode.PRODUCTION, config_dir=project_root() / "config",
        state_dir=tmp_path / "state", postgres_dsn=fresh_db,
    )  # fmt: skip
    ensure_topics(settings)
    return settings


def book_frame(condition_id: str, token: str, ts_ms: int, bid: str, ask: str) -> Frame:
    payload = {
        "event_type": "book", "asset_id": token, "market": condition_id, "timestamp": str(ts_ms), "hash": "h",
        "bids": [{"price": bid, "size": "1000"}], "asks": [{"price": ask, "size": "1000"}],
    }  # fmt: skip
    return Frame(condition_id, ts_ms, json.dumps(payload).encode())


def test_a_whale_fill_on_chain_is_copied_risk_checked_and_paper_filled(
    e2e_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    settings = e2e_settings
    buy = real_v2_logs(shared_data)[0]  # the real BUY: 2.56 shares at 0.92 by 0x335a...
    real = decode_log(buy)
    assert isinstance(real, WalletFill)
    # the whale's size and price scaled into copy-trading territory (zone 2, above the dust filter):
    # the same wallet, token, exchange and transaction, 1,000 shares at 0.30
    data = buy["data"][2:]
    words = [data[i : i + 64] for i in range(0, len(data), 64)]
    words[2], words[3] = format(300 * 10**6, "064x"), format(1000 * 10**6, "064x")
    log = {**buy, "data": "0x" + "".join(words)}
    block = int(buy["blockNumber"], 16)
    wallet, token = real.wallet, real.asset_id
    info = market("0xcopycondition", (token, "other-" + token[:8]), category="sports")
    registry = load_topic_registry(settings.config_dir)

    t_v2 = int(time.time()) - 120 - (block - V2_FROM_BLOCK) * 2  # the whale's block two minutes ago
    with ChainNode([], head=block - 1, finalized=block - 1, t_v2=t_v2) as node:
        flows = Flows(settings, tmp_path)
        flows.env["PETS_POLYGON_RPC_URL"] = node.url
        try:
            for name in ("market_state", "bots", "risk", "executor", "chain"):
                flows.start(name)
            client = producer(settings)
            UniversePublisher(
                client,
                registry.get("md.markets").full_name(settings.topic_prefix),
                registry.get("dlq.market_data").full_name(settings.topic_prefix),
                TimescaleWriter(settings.require_postgres()),
            ).publish(Discovery((info,), ()), time.time_ns())  # md.markets and the `markets` table
            ranking = WhaleRanking(
                ranking_date="2026-06-01", rank=1, wallet=wallet, pnl=Decimal(50_000), volume=Decimal(10**6),
                trades=400, markets=60, win_rate=Decimal("0.62"), roi=Decimal("0.08"),
            )  # fmt: skip
            client.send(registry.get("whale.rankings").full_name(settings.topic_prefix),
                        key=wallet.encode(), value=encode(ranking))  # fmt: skip
            client.flush()
            client.close()
            # books from a second after the whale's block (a binary market's top of book needs both),
            # again until the market makers quote them: the bots flow then holds the market and a book
            # (it reads its topics in no fixed order: a book read before its market is ignored)
            ts = block_time(block, t_v2) * 1000 + 1000
            for step in range(90):
                publish(settings, [], [
                    book_frame(info.condition_id, token, ts + step * 100, "0.30", "0.31"),
                    book_frame(info.condition_id, info.token_ids[1], ts + step * 100, "0.69", "0.70"),
                ])  # fmt: skip
                if topic_messages(settings, "order.intent"):
                    break
                time.sleep(1)
            wait_for("a quote", lambda: topic_messages(settings, "order.intent"), 10, flows)
            wait_for("the chain flow at the head", lambda: "eth_getBlockByNumber" in node.requests, 60, flows)

            node.add_logs([log])
            node.advance(block + 5, finalized=block + 5)
            finalized_at = time.time()
            intent = wait_for("Bot 3's copy", lambda: [
                i for i in topic_messages(settings, "order.intent")
                if isinstance(i, OrderIntent) and i.bot_id == "bot_03"
            ], 60, flows)[0]  # fmt: skip
            reports = wait_for("the paper fill", lambda: [
                r for r in topic_messages(settings, "exec.report")
                if isinstance(r, ExecutionReport) and r.client_order_id == intent.client_order_id
                and r.last_qty > 0
            ], 60, flows)  # fmt: skip
        finally:
            flows.stop_all()

    [fill] = [f for f in topic_messages(settings, "chain.fill") if isinstance(f, WalletFill)]
    assert (fill.wallet, fill.side, fill.shares, fill.price) == (wallet, "BUY", Decimal(1000), Decimal("0.3"))
    # 0.10 x 1,000 shares at the ask 0.31, a FAK naming the wallet and the fill it copies
    assert (intent.side, intent.price, intent.size, intent.order_type) == (
        "BUY",
        Decimal("0.31"),
        Decimal(100),
        "FAK",
    )
    assert intent.cause is not None and intent.cause.signal_id == f"{fill.tx_hash}:{fill.log_index}"
    assert wallet in intent.cause.note
    # Bot 3's orders only: the shipped market makers may quote the same book
    approved = [
        d
        for d in topic_messages(settings, "order.exec")
        if isinstance(d, ApprovedOrder) and d.intent.bot_id == "bot_03"
    ]
    assert [a.intent.client_order_id for a in approved] == [intent.client_order_id]
    assert sum(r.last_qty for r in reports) == Decimal(100) and reports[0].last_px == Decimal("0.31")

    latency = _intent_record_time(settings, intent.client_order_id) - finalized_at
    print(f"\nfinalized at the node -> copy intent on order.intent: {latency * 1000:.0f} ms")
    assert latency < 10


def _intent_record_time(settings: Settings, client_order_id: str) -> float:
    topic = load_topic_registry(settings.config_dir).get("order.intent").full_name(settings.topic_prefix)
    tail = consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in tail.partitions_for_topic(topic) or ()]
        tail.assign(parts)
        tail.seek_to_beginning(*parts)
        for _ in range(20):
            for records in tail.poll(timeout_ms=500).values():
                for record in records:
                    if client_order_id.encode() in record.value:
                        return float(record.timestamp) / 1000
    finally:
        tail.close()
    raise AssertionError("intent not found")
