"""`pets schemas ...`: publish the wire schemas of every topic for consumers in any language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json, peak_rss_mb
from pets.cli.bench import bench

if TYPE_CHECKING:
    from pets.schemas.topics import TopicRegistry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
WIRE_ENCODING = (
    'UTF-8 JSON objects; Decimal money/prices/sizes are JSON strings (e.g. "0.45"); '
    "*_ns fields are integer nanoseconds since the epoch (our clock), "
    "*_ms integer milliseconds (venue clock)."
)


def topic_documents(registry: TopicRegistry, prefix: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """One JSON Schema per topic (by file name) and the index; a missing schema is a ClickException."""
    import msgspec

    from pets.schemas.codec import SchemaUnavailableError, schema_type_of

    documents: dict[str, dict[str, Any]] = {}
    topics: dict[str, Any] = {}
    missing: list[str] = []
    for spec in registry.topics:
        try:
            schema_type = schema_type_of(spec)
        except SchemaUnavailableError as exc:
            missing.append(str(exc))
            continue
        file_name = f"{spec.name}.schema.json"
        documents[file_name] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": file_name,
            "title": spec.name,
            "description": f"{spec.description} Message type {spec.schema}; Kafka key: {spec.key}.",
            **msgspec.json.schema(schema_type),
        }
        topics[spec.name] = {
            "file": file_name,
            "kafka_topic": spec.full_name(prefix),
            "key": spec.key,
            "partitions": spec.partitions,
            "schema": spec.schema,
            "cleanup_policy": spec.cleanup_policy,
            "retention_ms": spec.retention_ms,
            "description": spec.description,
        }
    if missing:
        raise click.ClickException("cannot export schemas:\n  " + "\n  ".join(missing))
    return documents, {"encoding": WIRE_ENCODING, "topics": topics}


@click.group()
def schemas() -> None:
    """Wire schemas of the Kafka topics."""


@schemas.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def export(out_dir: Path) -> None:
    """Write <topic>.schema.json (JSON Schema 2020-12) per topic and index.json into OUT_DIR."""
    from pets.schemas.topics import load_topic_registry

    settings = settings_from_env()
    try:
        registry = load_topic_registry(settings.config_dir)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    documents, index = topic_documents(registry, settings.topic_prefix)
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, document in documents.items():
        (out_dir / file_name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    (out_dir / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {len(documents)} topic schemas and index.json to {out_dir}")


@bench.command("codec")
@click.option("--messages", default=200_000, show_default=True, help="Messages per type.")
def bench_codec(messages: int) -> None:
    """Encode and decode order intents and execution reports (the hot trading path)."""
    import time
    from decimal import Decimal

    from pets.schemas.codec import decoder_for, encode
    from pets.schemas.orders import ExecutionReport, OrderIntent, make_client_order_id, report_id

    cid = make_client_order_id("b05", "0xmarket", "123456789", "BUY", 1)
    samples: dict[str, Any] = {
        "order.intent": OrderIntent(
            client_order_id=cid,
            bot_id="b05",
            strategy_type="market_making",
            action="place",
            market="0xmarket",
            asset_id="123456789",
            side="BUY",
            price=Decimal("0.45"),
            size=Decimal("25.00"),
            post_only=True,
            probability=Decimal("0.52"),
            source_ts_ms=1_700_000_000_000,
            created_ns=1_700_000_000_000_000_000,
        ),
        "exec.report": ExecutionReport(
            report_id=report_id(cid, "partial_fill", 1),
            client_order_id=cid,
            venue_order_id="0xabc",
            bot_id="b05",
            market="0xmarket",
            asset_id="123456789",
            side="BUY",
            kind="partial_fill",
            order_price=Decimal("0.45"),
            order_size=Decimal("25.00"),
            last_qty=Decimal("10.00"),
            last_px=Decimal("0.45"),
            cum_qty=Decimal("10.00"),
            leaves_qty=Decimal("15.00"),
            rebate=Decimal("0.0009"),
            liquidity="maker",
            ts_ns=1_700_000_000_000_000_000,
            source_ts_ms=1_700_000_000_000,
        ),
    }
    result: dict[str, Any] = {"messages": messages}
    for topic, sample in samples.items():
        decoder = decoder_for(topic)
        start = time.perf_counter()
        payloads = [encode(sample) for _ in range(messages)]
        encoded = time.perf_counter()
        for payload in payloads:
            decoder.decode(payload)
        decoded = time.perf_counter()
        result[topic] = {
            "bytes": len(payloads[0]),
            "encode_per_s": round(messages / (encoded - start)),
            "decode_per_s": round(messages / (decoded - encoded)),
        }
    result["peak_rss_mb"] = peak_rss_mb()
    echo_json(result)


commands = [schemas]
