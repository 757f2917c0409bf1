"""`pets record` and `pets replay`: market-channel recordings in, the live path out."""

from __future__ import annotations

from pathlib import Path

import click
import msgspec

from pets.cli import settings_from_env
from pets.cli._output import echo_json


def _speed(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a multiple of real time (e.g. 10) or 'max'") from None
    if speed <= 0:
        raise click.BadParameter(f"{value!r}: must be positive")
    return speed


def _split(values: tuple[str, ...]) -> list[str]:
    return [part for value in values for part in value.replace(",", " ").split() if part]


@click.command("record")
@click.option("--tokens", multiple=True, help="Token (asset) ids; repeat or comma-separate.")
@click.option(
    "--markets", multiple=True, help="Markets by condition id (0x...), Gamma id or slug; all their tokens."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="FILE.jsonl[.gz]")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds; default until Ctrl-C."
)
@click.option("--shard-size", default=200, show_default=True, type=click.IntRange(1, 500))
@click.option(
    "--silence-timeout", default=60.0, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def record(
    tokens: tuple[str, ...],
    markets: tuple[str, ...],
    out: Path,
    duration: float | None,
    shard_size: int,
    silence_timeout: float,
    as_json: bool,
) -> None:
    """Record the market channel (with receive times, gaps and resyncs) to a replayable file."""
    from pets.cli._progress import Progress
    from pets.pipelines.polymarket.gamma import GammaClient, MarketParseError, parse_market
    from pets.pipelines.polymarket.http import VenueHttpError
    from pets.pipelines.polymarket.market_ws import MarketWsConfig
    from pets.pipelines.polymarket.recorder import record as record_channel

    settings = settings_from_env()
    asset_ids = _split(tokens)
    wanted = _split(markets)
    if wanted:
        filters = {
            "condition_ids": [m for m in wanted if m.startswith("0x")] or None,
            "id": [m for m in wanted if m.isdigit()] or None,
            "slug": [m for m in wanted if not m.startswith("0x") and not m.isdigit()] or None,
        }
        gamma = GammaClient(settings.venue.gamma_url)
        found: list[str] = []
        try:
            for name, values in filters.items():
                if values:
                    for raw in gamma.iter_markets(**{name: values}):
                        info = parse_market(raw)
                        found.append(info.condition_id)
                        asset_ids.extend(info.token_ids)
        except (VenueHttpError, MarketParseError) as exc:
            raise click.ClickException(f"resolving --markets on {settings.venue.gamma_url}: {exc}") from None
        if not found:
            raise click.ClickException(f"no market on {settings.venue.gamma_url} matches {', '.join(wanted)}")
    if not asset_ids:
        raise click.UsageError("give --tokens and/or --markets")
    config = MarketWsConfig.from_settings(settings, shard_size=shard_size, silence_timeout_s=silence_timeout)
    progress = Progress("record", unit="frames", enabled=not as_json)
    try:
        summary = record_channel(config, asset_ids, out, duration_s=duration, on_frame=progress.advance)
    finally:
        progress.close()
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"recorded {summary.frames} frames of {summary.assets} tokens to {summary.out} "
            f"({summary.reconnects} reconnects, {summary.resyncs} resyncs, "
            f"{summary.dead_lettered} dead letters)"
        )


@click.command("replay")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--speed", default="max", show_default=True, callback=_speed, help="Multiple of real time, or 'max'."
)
@click.option(
    "--to", "target", type=click.Choice(["embedded", "kafka"]), default="embedded", show_default=True
)
@click.option(
    "--dead-letters",
    type=click.Path(dir_okay=False, path_type=Path),
    help="(embedded) write dead letters to this JSON-lines file.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary as JSON. Counts are per frame (recording line): frames = parsed + "
    "dead_lettered; a frame with any bad event is dead-lettered once, with the reason. embedded: "
    "best_bid/best_ask per asset, stale=true when its book never had a snapshot (or lost continuity "
    "since); kafka: produced = events sent. truncated: files cut short (dead-lettered too).",
)
def replay(
    files: tuple[Path, ...], speed: float | None, target: str, dead_letters: Path | None, as_json: bool
) -> None:
    """Play recordings through the live path: md.markets then md.book on Kafka, or the embedded
    market-state pipeline; several files are merged by venue time, as `pets run --replay` does."""
    from pets.cli._progress import Progress, tracked
    from pets.pipelines.polymarket.recording import TruncatedRecording
    from pets.pipelines.polymarket.replayer import paced, recordings, replay_to_sink

    paths = list(files)
    if target == "kafka":
        from pets.pipelines.polymarket.kafka_sink import KafkaFrameSink
        from pets.settings import SettingsError

        settings = settings_from_env()
        try:
            settings.require_kafka()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        sink = KafkaFrameSink.from_settings(settings, source="replay")
        progress = Progress("replay", unit="frames", enabled=not as_json)
        try:
            stats = replay_to_sink(
                paths, sink, speed=speed, markets=sink, max_bytes=settings.max_message_bytes,
                on_frame=progress.advance,
            )  # fmt: skip
        finally:
            progress.close()
            sink.close()
        if as_json:
            echo_json({**msgspec.structs.asdict(stats), "topic": sink.book_topic})
        else:
            click.echo(
                f"frames {stats.frames}  parsed {stats.parsed}  dead-lettered {stats.dead_lettered}  "
                f"({stats.produced} events to {sink.book_topic})"
            )
            _echo_truncated(stats.truncated)
        return

    import time

    from pets.pipelines.market_data.embedded import run_embedded
    from pets.schemas.codec import encode
    from pets.schemas.control import DeadLetter

    truncated: list[str] = []
    handle = dead_letters.open("wb") if dead_letters else None

    def on_truncated(exc: TruncatedRecording) -> None:
        truncated.append(str(exc))
        if handle:
            handle.write(encode(DeadLetter.from_bytes("replay", str(exc), b"", ts_ns=time.time_ns())) + b"\n")

    try:
        replayed = recordings(paths)
        progress = Progress("replay", unit="frames", enabled=not as_json)
        summary = run_embedded(
            (frame.payload for frame in tracked(paced(replayed.frames(on_truncated), speed), progress)),
            market_infos=replayed.markets,
            dlq=(lambda letter: handle.write(encode(letter) + b"\n")) if handle else None,
        )
    finally:
        if handle:
            handle.close()
    if as_json:
        echo_json({**msgspec.structs.asdict(summary), "truncated": truncated})
        return
    click.echo(f"frames {summary.frames}  parsed {summary.parsed}  dead-lettered {summary.dead_lettered}")
    for asset_id, quote in sorted(summary.assets.items()):
        stale = "  (stale: no snapshot since it started or lost continuity)" if quote.stale else ""
        click.echo(f"  {asset_id}  bid {quote.best_bid}  ask {quote.best_ask}{stale}")
    _echo_truncated(truncated)


def _echo_truncated(truncated: list[str]) -> None:
    for reason in truncated:
        click.echo(f"dead-lettered: {reason}", err=True)


commands = [record, replay]
