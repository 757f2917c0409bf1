"""`pets models retrain`: ask the batch layer for a retrain (a BatchCommand on batch.control)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_json


@click.group()
def models() -> None:
    """Forecasting models of the batch layer (Dagster)."""


@models.command()
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Calibration files to train on (default: the batch layer's own choice).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the command sent as JSON.")
def retrain(data_dir: Path | None, as_json: bool) -> None:
    """Send a retrain_model command; Dagster's batch_control_sensor starts the retrain run."""
    from kafka.errors import KafkaError

    from pets.pipelines.kafka_io import ensure_topics, producer
    from pets.schemas.codec import encode
    from pets.schemas.control import BatchCommand
    from pets.settings import SettingsError

    settings = settings_from_env()
    command = BatchCommand(
        command_id=uuid.uuid4().hex,
        command="retrain_model",
        args={"data_dir": str(data_dir.resolve())} if data_dir else {},
        ts_ns=time.time_ns(),
    )
    topic = f"{settings.topic_prefix}batch.control"
    try:
        ensure_topics(settings, ["batch.control"])
        out = producer(settings)
        try:
            out.send(topic, key=command.command.encode(), value=encode(command)).get(timeout=30)
        finally:
            out.close()
    except (KafkaError, SettingsError) as exc:
        raise click.ClickException(f"{exc} (is the broker up? `pets infra status`)") from None
    if as_json:
        echo_json(command)
    else:
        click.echo(f"sent retrain_model {command.command_id} to {topic}")


commands = [models]
