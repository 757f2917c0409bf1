"""`pets chain decode|follow` and `pets bench chain-decode`: whale-wallet fills from Polygon logs."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from pets.cli._output import echo_json, echo_result, peak_rss_mb
from pets.cli.bench import bench


@click.group()
def chain() -> None:
    """Polymarket exchange fills on Polygon (chain.fill)."""


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def fill_record(fill: Any) -> dict[str, Any]:
    """The `pets chain decode --json` shape of a WalletFill."""
    return {
        "tx_hash": fill.tx_hash,
        "log_index": fill.log_index,
        "exchange": fill.exchange,
        "wallet": fill.wallet,
        "counterparty": fill.counterparty,
        "token_id": fill.asset_id,
        "side": fill.side,
        "price": _plain(fill.price),
        "shares": _plain(fill.shares),
        "usdc": _plain(fill.usdc),
        "fee": _plain(fill.fee),
    }


@chain.command("decode")
@click.option(
    "--logs", "logs_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON list of eth_getLogs log objects.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of fills.")
def decode(logs_path: Path, as_json: bool) -> None:
    """Decode the OrderFilled logs of the Polymarket exchanges: one fill per OrderFilled (of its maker),
    none for OrdersMatched; any other log is reported on stderr with the reason."""
    from pets.pipelines.chain.decode import Undecodable, decode_log

    try:
        logs = json.loads(logs_path.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{logs_path}: not a JSON list of logs ({exc})") from None
    if not isinstance(logs, list):
        raise click.ClickException(f"{logs_path}: not a JSON list of logs")
    fills = []
    for i, log in enumerate(logs):
        if not isinstance(log, dict):
            click.echo(f"log {i}: not a log object", err=True)
            continue
        out = decode_log(log)
        if isinstance(out, Undecodable):
            where = f"{log.get('transactionHash')}:{log.get('logIndex')}"
            click.echo(f"log {i} ({where}): {out.reason}", err=True)
        elif out is not None:
            fills.append(fill_record(out))
    if as_json:
        echo_json(fills)
        return
    for f in fills:
        click.echo(
            f"{f['tx_hash'][:12]}:{f['log_index']:<5} {f['exchange']:<10} {f['wallet']} {f['side']:<4} "
            f"{f['shares']:>12} @ {f['price']:<8} usdc {f['usdc']:<12} fee {f['fee']}"
        )


@chain.command("follow")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="First block to read when no watermark is stored yet (default: the finalized head).",
)
@click.option(
    "--confirmations",
    type=click.Choice(["finalized", "latest"]),
    default="finalized",
    show_default=True,
    help="latest: also publish fills of unfinalized blocks (confirmed=false), retracted after a reorg.",
)
@click.option(
    "--data-api",
    is_flag=True,
    help="Also poll the Data API for the wallets Bot 3 follows (merged: each fill once).",
)
def follow(from_block: int | None, confirmations: str, data_api: bool) -> None:
    """Follow the Polymarket exchanges on Polygon into chain.fill (resumes from its watermark)."""
    from pets.cli import settings_from_env
    from pets.flows import chain as chain_flow
    from pets.observability.logs import set_flow
    from pets.pipelines.chain.follower import Confirmations

    set_flow("chain")
    mode: Confirmations = "latest" if confirmations == "latest" else "finalized"
    stats = chain_flow.run(settings_from_env(), from_block=from_block, confirmations=mode, data_api=data_api)
    done = f"published {stats.published} fill(s), {stats.dead_letters} dead letter(s)"
    click.echo(f"{done}; watermark {stats.watermark}")


def _bench_logs(data_dir: Path) -> list[dict[str, Any]]:
    """The real logs plus one V1 `OrderFilled` per real CLOB-era trade of the jamesbayly tape (wallet,
    side, shares, price and transaction hash real; the token id made up from market and outcome, which
    the tape does not carry), encoded with the ABI layout by eth_abi."""
    import csv
    import hashlib

    from pets.pipelines.venue_sim.chain_node import trade_log

    logs: list[dict[str, Any]] = []
    for path in sorted((data_dir / "chain" / "logs").glob("*.json")):
        logs += json.loads(path.read_text())
    tape = data_dir / "trades" / "jamesbayly_polymarket_trades.csv"
    if tape.is_file():
        with tape.open(newline="") as rows:
            for i, row in enumerate(csv.DictReader(rows)):
                token = int(hashlib.blake2b(f"{row['market_id']}|{row['outcome']}".encode()).hexdigest(), 16)
                trade = {"wallet": row["user_id"], "side": row["side"], "size": row["amount"],
                         "price": row["price"], "tx": row["transaction_hash"]}  # fmt: skip
                logs.append(trade_log(trade, block=80_000_000 + i, log_index=i % 500,
                                      exchange="0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e",
                                      token_id=token % 2**256, counterparty="0x" + "cd" * 20))  # fmt: skip
    return logs


@bench.command("chain-decode")
@click.option("--count", default=200_000, show_default=True, help="Logs to decode (the set, repeated).")
@click.option(
    "--latency/--no-latency",
    default=True,
    show_default=True,
    help="Also time a finalized block at a local node -> the copy intent (needs Kafka).",
)
@click.option("--rounds", default=20, show_default=True, help="Whale fills timed for the latency.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The shared data folder (default: the settings' shared_data_dir).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_chain_decode(count: int, latency: bool, rounds: int, data_dir: Path | None, as_json: bool) -> None:
    """Logs decoded per second on one core (real logs and real trades encoded as logs), and the latency
    from a block finalized at a local Polygon node to Bot 3's copy intent: the chain follower (web3.py)
    -> chain.fill on the real broker -> consumed -> Bot 3, in one process, polling back to back."""
    from pets.cli import settings_from_env
    from pets.pipelines.chain.decode import decode_log

    settings = settings_from_env()
    data_dir = data_dir or settings.shared_data_dir
    logs = _bench_logs(data_dir)
    if not logs:
        raise click.ClickException(f"no logs under {data_dir}: point --data at the shared data")
    batch = (logs * (count // len(logs) + 1))[:count]
    started = time.perf_counter()
    fills = sum(1 for log in batch if decode_log(log) is not None)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "logs": count, "distinct_logs": len(logs), "fills": fills, "seconds": round(seconds, 3),
        "logs_per_s": round(count / seconds),
    }  # fmt: skip
    if latency:
        if not settings.kafka_bootstrap:
            raise click.ClickException("the latency needs Kafka: set PETS_KAFKA_BOOTSTRAP (or --no-latency)")
        ms = _finalized_to_intent_ms(settings, rounds)
        ms.sort()
        result |= {"rounds": rounds, "finalized_to_intent_p50_ms": round(ms[len(ms) // 2], 1),
                   "finalized_to_intent_max_ms": round(ms[-1], 1)}  # fmt: skip
    result["peak_rss_mb"] = peak_rss_mb()
    echo_result(result, as_json)


def _finalized_to_intent_ms(settings: Any, rounds: int) -> list[float]:
    import dataclasses
    import tempfile
    import uuid
    from decimal import Decimal as D

    from kafka import TopicPartition

    from pets.bots.copy_trading import CopyTrader
    from pets.pipelines import kafka_io
    from pets.pipelines.chain.decode import as_int
    from pets.pipelines.chain.follower import ChainFollower, WatermarkStore, Web3LogSource
    from pets.pipelines.chain.kafka_sink import KafkaFillSink
    from pets.pipelines.venue_sim.chain_node import ChainNode, block_time, order_filled_log
    from pets.schemas.codec import decoder_for
    from pets.schemas.config import load_config
    from pets.schemas.market_data import MarketInfo, TopOfBook
    from pets.schemas.signals import WhaleRanking
    from pets.schemas.topics import load_topic_registry

    settings = dataclasses.replace(settings, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    config = load_config(settings.config_dir)
    bot = CopyTrader(config.bot("bot_03"), config.system.venue)
    bot.use_zones(config.zones)
    whale, token, first = "0x" + "ab" * 20, "1234567", 91_000_000
    bot.on_market(MarketInfo(
        condition_id="0xbench", market_id="bench", question="bench", slug="bench", category="sports",
        token_ids=(token, "7654321"), outcomes=("Yes", "No"), neg_risk=False, tick_size=D("0.01"),
        min_order_size=D(5), active=True, closed=False, accepting_orders=True,
    ))  # fmt: skip
    bot.on_whale_ranking(WhaleRanking(
        ranking_date="2026-06-01", rank=1, wallet=whale, pnl=D(1), volume=D(1), trades=100, markets=10,
        win_rate=D("0.6"), roi=D("0.1"),
    ))  # fmt: skip
    registry = load_topic_registry(settings.config_dir)
    topic = registry.get("chain.fill").full_name(settings.topic_prefix)
    decode = decoder_for(registry.get("chain.fill"))
    sink = KafkaFillSink(settings)
    tail = kafka_io.consumer(settings)
    out: list[float] = []
    try:
        parts = [TopicPartition(topic, p) for p in tail.partitions_for_topic(topic) or ()]
        tail.assign(parts)
        with tempfile.TemporaryDirectory() as tmp, ChainNode([], head=first, finalized=first) as node:
            chain = ChainFollower(Web3LogSource(node.url), sink, WatermarkStore(Path(tmp) / "w.json"),
                                  start_block=first + 1)  # fmt: skip
            chain.poll()
            for n in range(rounds):
                block = first + 1 + n
                ts = block_time(block) * 1000
                bot.on_top_of_book(TopOfBook(
                    asset_id=token, market="0xbench", ts_ms=ts, best_bid=D("0.30"), best_ask=D("0.31"),
                    best_bid_size=D(1000), best_ask_size=D(1000), mid=D("0.305"), microprice=D("0.305"),
                    spread=D("0.01"), imbalance=D(0), tick_size=D("0.01"), stale=False, paired_asset_id=None,
                    ask_sum=None, bid_sum=None, seq=n + 1,
                ))  # fmt: skip
                node.add_logs([order_filled_log(
                    "0xe111180000d2663c0091e4f400237545b87b996b", maker=whale, taker="0x" + "cd" * 20,
                    side="BUY", token_id=int(token), shares_units=1000 * 10**6, usdc_units=300 * 10**6,
                    fee_units=0, tx_hash="0x" + format(n, "064x"), log_index=0, block=block,
                )])  # fmt: skip
                node.advance(block, finalized=block)
                started = time.perf_counter()
                chain.poll()
                intents: list[Any] = []
                while not intents:
                    for records in tail.poll(timeout_ms=50).values():
                        for record in records:
                            intents += bot.on_wallet_fill(decode.decode(record.value))
                out.append((time.perf_counter() - started) * 1000)
                assert as_int(hex(block)) == block and intents[0].bot_id == "bot_03"
    finally:
        tail.close()
        sink.close()
        kafka_io.delete_topics(
            settings, [n for n in kafka_io.existing_topics(settings) if n.startswith(settings.topic_prefix)]
        )
    return out


commands = [chain]
