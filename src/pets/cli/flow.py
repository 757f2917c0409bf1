"""`pets flow run NAME`: one flow as its own process against Kafka and TimescaleDB (production shape)."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from pets.cli import settings_from_env
from pets.observability.logs import set_flow
from pets.settings import Settings, project_root

log = logging.getLogger("pets.flow")

# name -> module; a module exposes `build_flow(settings)` (a Bytewax dataflow) or `run(settings)`
# (a plain long-running service such as the WebSocket ingestion).
FLOWS: dict[str, str] = {
    "market_ingest": "pets.flows.market_ingest",
    "market_state": "pets.flows.market_state",
    "bots": "pets.flows.bots",
    "risk": "pets.flows.risk",
    "executor": "pets.flows.executor",
    "esports": "pets.flows.esports",
    "chain": "pets.flows.chain",
    "news": "pets.flows.news",
    "alerts": "pets.flows.alerts",
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
    """Run flow NAME until interrupted (Ctrl-C: exit 130); resumes from its recovery state after a
    crash. What stops it from starting (configuration, Kafka, PostgreSQL, the live wallet) is one line
    on stderr and exit 1, before anything is created."""
    try:
        _run_flow(name, workers, epoch_ms, no_recovery, metrics_port, live)
    except KeyboardInterrupt:  # before the dataflow runs, or in a plain service (its finally ran)
        raise click.exceptions.Exit(130) from None


def _run_flow(
    name: str, workers: int, epoch_ms: int, no_recovery: bool, metrics_port: int | None, live: bool
) -> None:
    settings = settings_from_env()
    module = load_flow_module(name)
    if live and name != "executor":
        raise click.ClickException("--live applies to the executor flow only")
    set_flow(name)
    if live:
        _check_live_opt_in(settings)  # what the operator left out comes first: no service is needed to say it
    _check_services(settings)
    flow_options: dict[str, bool] = {"live": True} if live else {}
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from pets.observability.metrics import FLOW_INFO

        FLOW_INFO.info({"flow": name})
        start_http_server(metrics_port)
    if not hasattr(module, "build_flow"):
        log.info("flow %s starting", name)
        module.run(settings)
        return
    from bytewax.run import cli_main

    from pets.execution.live import LiveRefusedError
    from pets.flows.recovery import prepare_snapshots, recovery_store, store_exists

    try:
        dataflow = module.build_flow(settings, **flow_options)
    except LiveRefusedError as exc:
        raise click.ClickException(str(exc)) from None
    store = settings.recovery_dir / name
    if no_recovery:
        recovery, resume = None, "recovery off: state starts empty"
    else:
        resume = f"resuming from {store}" if store_exists(store) else f"new recovery store {store}"
        recovery = recovery_store(store, workers)
    prepare_snapshots()
    log.info("flow %s starting (%s; epoch %d ms, %d worker(s))", name, resume, epoch_ms, workers)
    # what is loaded by now lives as long as the process: leave it out of every collection, so
    # a full collection walks the flow's own state only (it took 7-10 ms with it, per pause)
    gc.freeze()
    signal.signal(signal.SIGINT, _interrupted)
    cli_main(
        dataflow,
        workers_per_process=workers,
        epoch_interval=timedelta(milliseconds=epoch_ms),
        recovery_config=recovery,
    )


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C: leave at once and quietly. Inside Bytewax a KeyboardInterrupt becomes a Rust panic
    (~140 lines); nothing is lost by not unwinding: the recovery store is built for crashes."""
    sys.stderr.flush()
    os._exit(130)


def _check_live_opt_in(settings: Settings) -> None:
    from pets.execution.live import LiveRefusedError, live_environment, require_live
    from pets.schemas.config import InvalidConfigError, load_config

    try:
        config = load_config(settings.config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(f"invalid configuration: {'; '.join(map(str, exc.errors))}") from None
    root = Path(os.environ.get("PETS_ROOT") or project_root())
    try:
        require_live(True, live_environment(None, root / "secrets.env"), config)
    except LiveRefusedError as exc:
        raise click.ClickException(str(exc)) from None


def _check_services(settings: Settings) -> None:
    """The configuration, Kafka and PostgreSQL, each a one-line error when it is not usable."""
    from pets.pipelines.kafka_io import broker_unready
    from pets.schemas.config import InvalidConfigError, load_config

    try:
        load_config(settings.config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(f"invalid configuration: {'; '.join(map(str, exc.errors))}") from None
    bootstrap = settings.require_kafka()
    reason = broker_unready(bootstrap, timeout_ms=5_000)
    if reason is not None:
        raise click.ClickException(
            f"Kafka at {bootstrap} is not answering ({reason}): start it (`pets infra up`) "
            "or fix PETS_KAFKA_BOOTSTRAP"
        )
    if settings.postgres_dsn:
        import psycopg

        try:
            psycopg.connect(settings.postgres_dsn, connect_timeout=5).close()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"PostgreSQL not reachable ({first}): fix PETS_POSTGRES_DSN") from None


commands = [flow]
