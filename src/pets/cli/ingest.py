"""`pets bench market-ws`: events/s through the market-channel client, served by the local CLOB."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_result, peak_rss_mb
from pets.cli.bench import bench


class _CountingSink:
    """Counts events: measures the client alone."""

    def __init__(self) -> None:
        self.events = 0

    def on_event(self, event: object, recv_ns: int, origin: str) -> None:
        self.events += 1

    def on_dead_letter(self, reason: str, payload: bytes, recv_ns: int) -> None:
        raise RuntimeError(f"unexpected dead letter in the benchmark: {reason}")

    def flush(self) -> None:
        return


@bench.command("market-ws")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Shared data folder with polymarket/l2 recordings (default: PETS_SHARED_DATA, else "
    "../shared/data); a simulated tape when it has none.",
)
@click.option("--sink", type=click.Choice(["count", "file", "kafka"]), default="count", show_default=True)
@click.option("--shard-size", default=200, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_market_ws(data_dir: Path | None, sink: str, shard_size: int, as_json: bool) -> None:
    """Every recorded frame through the local CLOB's WebSocket into the client and a sink, at max speed.

    Server and client share this process (and its GIL), so the rate is a lower bound for the client.
    """
    from pets.pipelines import kafka_io
    from pets.pipelines.polymarket.frames import FrameSink
    from pets.pipelines.polymarket.kafka_sink import KafkaFrameSink
    from pets.pipelines.polymarket.market_ws import MarketChannel, MarketWsConfig
    from pets.pipelines.polymarket.recorder import RecordingSink
    from pets.pipelines.venue_sim.clob_server import ClobServer, load_tape, serve_clob, simulated_tape

    settings = settings_from_env()
    data_dir = data_dir or settings.shared_data_dir
    paths = sorted((data_dir / "polymarket" / "l2").glob("*.jsonl.gz"))
    tape = load_tape(paths) if paths else simulated_tape(60_000, markets=20)
    source = f"{len(paths)} recordings in {data_dir / 'polymarket' / 'l2'}" if paths else "simulated (seed 7)"
    assets = sorted({a for frame in tape for a in frame.asset_ids})
    settings = replace(settings, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    scratch = tempfile.TemporaryDirectory()
    target: FrameSink
    if sink == "kafka":
        target = KafkaFrameSink.from_settings(settings, source="bench")
    elif sink == "file":
        target = RecordingSink(Path(scratch.name) / "bench.jsonl.gz")
    else:
        target = _CountingSink()

    async def run(server: ClobServer) -> tuple[float, int]:
        channel = MarketChannel(MarketWsConfig(server.ws_url, server.rest_url, shard_size=shard_size), target)
        started = time.perf_counter()
        task = asyncio.create_task(channel.run(assets))
        while not (server.tape_done.is_set() and channel.stats.events >= len(server.served)):
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        channel.stop()
        await task
        return seconds, channel.stats.events

    try:
        with serve_clob(tape) as server:
            seconds, events = asyncio.run(run(server))
    finally:
        if isinstance(target, KafkaFrameSink):
            target.close()
            kafka_io.delete_topics(settings, [target.book_topic, target.dlq_topic])
        elif isinstance(target, RecordingSink):
            target.close()
        scratch.cleanup()
    result = {
        "input": source,
        "tokens": len(assets),
        "connections": -(-len(assets) // shard_size),
        "sink": sink,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if seconds else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    echo_result(result, as_json)


commands: list[click.Command] = []  # the subcommand above lives on `pets bench`
