"""`pets flow run NAME`: one flow as its own process against Kafka and TimescaleDB (production shape)."""

from __future__ import annotations

import gc
import importlib
from datetime import timedelta
from typing import Any

import click

from pets.cli import settings_from_env

# name -> module; a module exposes `build_flow(settings)` (a Bytewax dataflow) or `run(settings)`
# (a plain long-running service such as the WebSocket ingestion).
FLOWS: dict[str, str] = {
    "market_ingest": "pets.flows.market_ingest",
    "market_state": "pets.flows.market_state",
    "bots": "pets.flows.bots",
    "risk": "pets.flows.risk",
    "executor": "pets.flows.executor",
}


def load_flow_module(name: str) -> Any:
    if name not in FLOWS:
        raise click.ClickException(f"unknown flow {name!r}; known: {', '.join(FLOWS)}")
    return importlib.import_module(FLOWS[name])


@click.group()
def flow() -> None:
    """Run PETS flows as separate processes (Kafka + TimescaleDB)."""


@flow.command("list")
def list_flows() -> None:
    """List the flows `pets flow run` knows."""
    for name, module in FLOWS.items():
        click.echo(f"{name:15s} {module}")


@flow.command("run")
@click.argument("name")
@click.option("--workers", default=1, show_default=True, help="Bytewax worker threads in this process.")
@click.option(
    "--epoch-ms",
    default=5000,
    show_default=True,
    help="Recovery snapshot interval: shorter replays less after a crash, but every snapshot stalls the "
    "flow (1000 ms tripled the md.book->order.exec p50, docs/running.md).",
)
@click.option("--no-recovery", is_flag=True, help="Run without the recovery store (state starts empty).")
@click.option("--metrics-port", type=int, default=None, help="Expose Prometheus metrics on this port.")
@click.option(
    "--live",
    is_flag=True,
    help="executor only: trade on Polymarket (also needs PETS_LIVE=true, trading.mode: live and a wallet).",
)
def run_flow(
    name: str, workers: int, epoch_ms: int, no_recovery: bool, metrics_port: int | None, live: bool
) -> None:
    """Run flow NAME until interrupted; resumes from its recovery state after a crash."""
    settings = settings_from_env()
    module = load_flow_module(name)
    if live and name != "executor":
        raise click.ClickException("--live applies to the executor flow only")
    flow_options: dict[str, bool] = {"live": True} if live else {}
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    if hasattr(module, "build_flow"):
        from bytewax.run import cli_main

        from pets.flows.recovery import recovery_store

        recovery = None if no_recovery else recovery_store(settings.recovery_dir / name, workers)
        from pets.execution.live import LiveRefusedError

        try:
            dataflow = module.build_flow(settings, **flow_options)
        except LiveRefusedError as exc:
            raise click.ClickException(str(exc)) from None
        # what is loaded by now lives as long as the process: leave it out of every collection, so
        # a full collection walks the flow's own state only (it took 7-10 ms with it, per pause)
        gc.freeze()
        cli_main(
            dataflow,
            workers_per_process=workers,
            epoch_interval=timedelta(milliseconds=epoch_ms),
            recovery_config=recovery,
        )
    else:
        module.run(settings)


commands = [flow]
