"""The chain pipeline against a local JSON-RPC node (web3.py over HTTP) and the real Kafka broker:
finalized watermark, idempotence across a restart in the middle of a range, range limits, 429s and
timeouts, a reorg retracting an unconfirmed fill, tokens waiting for the universe."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chain_factories import FIRST_BLOCK, key, ledger_logs, real_v2_logs

from pets.flows.trading_io import read_topics
from pets.pipelines.chain.follower import ChainFollower, WatermarkStore, Web3LogSource
from pets.pipelines.chain.kafka_sink import KafkaFillSink
from pets.pipelines.venue_sim.chain_node import ChainNode
from pets.schemas.control import DeadLetter
from pets.schemas.signals import WalletFill
from pets.settings import Settings

pytestmark = pytest.mark.integration


def fills(settings: Settings) -> list[WalletFill]:
    return [m for m in read_topics(settings, ["chain.fill"]) if isinstance(m, WalletFill)]


def follower(node: ChainNode, settings: Settings, tmp_path: Path, **kwargs: Any) -> ChainFollower:
    kwargs.setdefault("start_block", FIRST_BLOCK)
    kwargs.setdefault("sleep", lambda s: None)
    return ChainFollower(
        Web3LogSource(node.url, timeout_s=kwargs.pop("timeout_s", 5.0)), kwargs.pop("sink", None)
        or KafkaFillSink(settings), WatermarkStore(tmp_path / "watermark.json"), **kwargs,
    )  # fmt: skip


class CrashingSink(KafkaFillSink):
    """The process dies after `after` fills of a range went to the broker (the rest never leave)."""

    def __init__(self, settings: Settings, after: int) -> None:
        super().__init__(settings)
        self.after = after

    def send(self, fill: WalletFill) -> None:
        if self.sent == self.after:
            self.flush()
            raise RuntimeError("crash")
        super().send(fill)


def test_finalized_fills_once_across_a_restart_in_the_middle_of_a_range(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    logs = ledger_logs(shared_data, 30) + real_v2_logs(shared_data)  # blocks 91,660,000 .. 91,660,624
    finalized = FIRST_BLOCK + 200  # ledger fills 0..20 are final, the others and the real logs are not
    with ChainNode(logs, head=FIRST_BLOCK + 700, finalized=finalized) as node:
        crashing = follower(node, prefixed_settings, tmp_path, sink=CrashingSink(prefixed_settings, after=8))
        with pytest.raises(RuntimeError, match="crash"):
            crashing.poll()
        assert len(fills(prefixed_settings)) == 8
        assert (
            WatermarkStore(tmp_path / "watermark.json").load() == FIRST_BLOCK - 1
        )  # the range never finished

        restarted = follower(node, prefixed_settings, tmp_path)
        restarted.poll()
        assert restarted.stats.duplicates == 8  # read back from the topic, not sent again
        published = fills(prefixed_settings)
        expected = {key(log) for log in logs if int(log["blockNumber"], 16) <= finalized}
        assert len(expected) == 21
        assert Counter(f"{f.tx_hash}:{f.log_index}" for f in published) == dict.fromkeys(expected, 1)
        assert all(
            f.confirmed and f.wallet == "0xe29aff6a6ae1e1d6a3a1c4c904f2957afa98cda0" for f in published
        )
        assert restarted.watermark == finalized

        node.advance(FIRST_BLOCK + 800, finalized=FIRST_BLOCK + 700)  # everything final now
        restarted.poll()
        restarted.poll()  # nothing new: publishes nothing
        published = fills(prefixed_settings)
        assert len(published) == len(logs) == len({f"{f.tx_hash}:{f.log_index}" for f in published})
        real = [f for f in published if f.tx_hash == logs[-1]["transactionHash"]]
        assert [(f.side, str(f.shares), str(f.price)) for f in real] == [("SELL", "6.000000", "0.480000")]
        assert real[0].ts_ms == (1_777_377_600 + (0x576A150 - 86_126_998) * 2) * 1000  # the node's block time


def test_range_limits_429s_and_timeouts_halve_the_range_and_resume(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    logs = ledger_logs(shared_data, 40, every=5)  # 40 fills in blocks 91,660,000 .. 91,660,195
    pauses: list[float] = []
    with ChainNode(logs, head=FIRST_BLOCK + 400, finalized=FIRST_BLOCK + 300, max_results=6) as node:
        chain = follower(node, prefixed_settings, tmp_path, max_range=256, sleep=pauses.append, timeout_s=0.5)
        node.inject(429, 2)
        assert chain.poll() == 0 and chain.poll() == 0  # 429 twice: back off 1 s, then 2 s
        node.delay(1.5)
        assert chain.poll() == 0  # the node stalls beyond the client's timeout
        assert pauses == [1.0, 2.0, 4.0] and chain.range == 32 and chain.stats.throttled == 3
        for _ in range(40):
            chain.poll()
            if chain.watermark == FIRST_BLOCK + 300:
                break
        assert chain.stats.range_errors > 0  # 32 blocks hold 7 fills > 6: refused, halved
        published = fills(prefixed_settings)
        assert sorted(f.log_index for f in published) == list(range(40))


def test_a_reorg_retracts_an_unconfirmed_fill(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    logs = ledger_logs(shared_data, 6, every=10)  # blocks +0 .. +50
    with ChainNode(logs, head=FIRST_BLOCK + 60, finalized=FIRST_BLOCK + 15) as node:
        fast = follower(node, prefixed_settings, tmp_path, confirmations="latest")
        assert fast.poll() == 6
        by_index = sorted(fills(prefixed_settings), key=lambda f: f.log_index)
        assert [f.confirmed for f in by_index] == [True, True, False, False, False, False]
        node.reorg(FIRST_BLOCK + 30, drop=[(logs[4]["transactionHash"], 4)])  # block +40's fill is gone
        assert fast.poll() == 1
        [retraction] = [f for f in fills(prefixed_settings) if f.retracted]
        assert retraction.retracted and (retraction.tx_hash, retraction.log_index) == (
            logs[4]["transactionHash"],
            4,
        )
        node.advance(FIRST_BLOCK + 70, finalized=FIRST_BLOCK + 60)
        assert fast.poll() == 0  # the survivors became final: nothing more to say
        assert len(fills(prefixed_settings)) == 7 and fast.watermark == FIRST_BLOCK + 60


def test_a_token_waits_for_the_universe_then_dead_letters(
    prefixed_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    logs = ledger_logs(shared_data, 3)
    tokens = [str(int(log["data"][66:130], 16)) for log in logs]
    universe = {tokens[0]}
    now = [0.0]
    with ChainNode(logs, head=FIRST_BLOCK + 100, finalized=FIRST_BLOCK + 100) as node:
        chain = follower(
            node, prefixed_settings, tmp_path, known_token=universe.__contains__, universe_wait_s=60,
            clock=lambda: now[0],
        )  # fmt: skip
        assert chain.poll() == 1 and chain.stats.waiting == 2
        assert chain.watermark == FIRST_BLOCK + 9  # not past the first waiting fill's block
        universe.add(tokens[1])
        now[0] = 30.0
        assert chain.poll() == 1  # the market arrived: published
        now[0] = 61.0
        assert chain.poll() == 0 and chain.stats.dead_letters == 1
        assert chain.watermark == FIRST_BLOCK + 100
    [letter] = [m for m in read_topics(prefixed_settings, ["dlq.signals"]) if isinstance(m, DeadLetter)]
    assert (
        letter.reason == f"token {tokens[2]} not in the market universe after 60 s"
        and letter.source == "chain"
    )
    assert [f.asset_id for f in fills(prefixed_settings)] == tokens[:2]
