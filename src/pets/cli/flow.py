"""`pets flow run NAME`: one flow as its own process against Kafka and TimescaleDB (production shape)."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
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
    "--process-id",
    type=int,
    envvar="BYTEWAX_PROCESS_ID",
    default=None,
    help="This process's index in a flow cluster (with --addresses); on Kubernetes the pod's ordinal "
    "(BYTEWAX_POD_NAME minus BYTEWAX_STATEFULSET_NAME-).",
)
@click.option(
    "--addresses",
    envvar="BYTEWAX_ADDRESSES",
    default=None,
    help='Every process of the cluster, host:port separated by ";", in process-id order.',
)
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
    name: str,
    workers: int,
    process_id: int | None,
    addresses: str | None,
    epoch_ms: int,
    no_recovery: bool,
    metrics_port: int | None,
    live: bool,
) -> None:
    """Run flow NAME until interrupted (Ctrl-C: exit 130); resumes from its recovery state after a
    crash. What stops it from starting (configuration, Kafka, PostgreSQL, the live wallet, a cluster
    the flow cannot use) is one line on stderr and exit 1, before anything is created. A cluster
    (docs/deploy.md): the same command in every process, each with its --process-id and the same
    --addresses."""
    try:
        cluster = Cluster.of(workers, process_id, addresses)
        _run_flow(name, cluster, epoch_ms, no_recovery, metrics_port, live)
    except KeyboardInterrupt:  # before the dataflow runs, or in a plain service (its finally ran)
        raise click.exceptions.Exit(130) from None


@dataclass(frozen=True, slots=True)
class Cluster:
    """The Bytewax cluster one `pets flow run` process belongs to: `addresses` of every process
    (empty: a single process) and this process's index among them."""

    workers: int
    process_id: int = 0
    addresses: tuple[str, ...] = ()

    @staticmethod
    def of(workers: int, process_id: int | None, addresses: str | None) -> Cluster:
        if workers < 1:
            raise click.ClickException(f"--workers {workers}: at least 1")
        if process_id is None:
            process_id = _pod_ordinal()
        listed = tuple(a.strip() for a in (addresses or "").split(";") if a.strip())
        if process_id is None and not listed:
            return Cluster(workers)
        if process_id is None or not listed:
            raise click.ClickException("a cluster needs both --process-id and --addresses")
        if not 0 <= process_id < len(listed):
            last = len(listed) - 1
            raise click.ClickException(f"--process-id {process_id}: --addresses names processes 0 .. {last}")
        return Cluster(workers, process_id, listed)

    @property
    def processes(self) -> int:
        return max(1, len(self.addresses))

    @property
    def total(self) -> int:
        return self.processes * self.workers

    def __str__(self) -> str:
        if not self.addresses:
            return f"{self.workers} worker(s)"
        return f"process {self.process_id} of {self.processes} x {self.workers} worker(s)"


def _pod_ordinal() -> int | None:
    """On Kubernetes, the StatefulSet pod's ordinal (Bytewax's own convention: BYTEWAX_POD_NAME
    "market-state-2" of BYTEWAX_STATEFULSET_NAME "market-state" is process 2)."""
    pod, statefulset = os.environ.get("BYTEWAX_POD_NAME"), os.environ.get("BYTEWAX_STATEFULSET_NAME")
    if not pod or not statefulset:
        return None
    ordinal = pod.removeprefix(f"{statefulset}-")
    return int(ordinal) if ordinal.isdigit() else None


def check_cluster(name: str, module: Any, cluster: Cluster, settings: Settings) -> None:
    """Refuses a cluster the flow cannot use: several workers of a plain service or of a flow whose
    state is one global key (MAX_WORKERS), or more workers than its input topics have partitions
    (a worker beyond them would own no partition: idle)."""
    if cluster.total == 1:
        return
    if not hasattr(module, "build_flow"):
        raise click.ClickException(f"{name} is a plain service, not a Bytewax flow: one process, one worker")
    limit = getattr(module, "MAX_WORKERS", None)
    if limit is not None and cluster.total > limit:
        raise click.ClickException(
            f"{name} runs on {limit} worker: {module.ONE_WORKER_REASON}; "
            f"{cluster.processes} process(es) x {cluster.workers} worker(s) refused"
        )
    from pets.schemas.topics import load_topic_registry

    registry = load_topic_registry(settings.config_dir)
    partitions = {topic: registry.get(topic).partitions for topic in module.INPUT_TOPICS}
    most = max(partitions.values())
    if cluster.total > most:
        widest = ", ".join(f"{t} {n}" for t, n in partitions.items() if n == most)
        raise click.ClickException(
            f"{name}: a cluster of {cluster.processes} process(es) x {cluster.workers} worker(s) = "
            f"{cluster.total} workers, but its input topics have at most {most} partition(s) ({widest}): "
            f"{cluster.total - most} worker(s) would own no partition; raise the partitions in "
            "config/topics.yaml (and on the broker) or run fewer workers"
        )


def _run_flow(
    name: str, cluster: Cluster, epoch_ms: int, no_recovery: bool, metrics_port: int | None, live: bool
) -> None:
    settings = settings_from_env()
    module = load_flow_module(name)
    if live and name != "executor":
        raise click.ClickException("--live applies to the executor flow only")
    if live and cluster.total > 1:
        raise click.ClickException(
            f"{module.LIVE_ONE_WORKER_REASON}; {cluster.processes} process(es) x {cluster.workers} "
            "worker(s) refused"
        )
    check_cluster(name, module, cluster, settings)
    settings = replace(
        settings,
        flow_workers=cluster.total,
        flow_process_id=cluster.process_id if cluster.addresses else None,
    )
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
    from pets.flows.recovery import (
        StoreShapeError,
        flow_store,
        prepare_snapshots,
        recovery_store,
        store_exists,
    )

    try:
        dataflow = module.build_flow(settings, **flow_options)
    except LiveRefusedError as exc:
        raise click.ClickException(str(exc)) from None
    store = flow_store(settings.recovery_dir, name, settings.flow_process_id)
    if no_recovery:
        recovery, resume = None, "recovery off: state starts empty"
    else:
        resume = f"resuming from {store}" if store_exists(store) else f"new recovery store {store}"
        try:
            recovery = recovery_store(store, cluster.workers, cluster.process_id, cluster.processes)
        except StoreShapeError as exc:
            raise click.ClickException(str(exc)) from None
    prepare_snapshots()
    wait_s = epoch_phase_wait_s(name, epoch_ms, time.time())
    if wait_s:
        log.info("flow %s waits %.2f s for its epoch phase (EPOCH_PHASES)", name, wait_s)
        time.sleep(wait_s)
    log.info("flow %s starting (%s; epoch %d ms, %s)", name, resume, epoch_ms, cluster)
    # what is loaded by now lives as long as the process: leave it out of every collection, so
    # a full collection walks the flow's own state only (it took 7-10 ms with it, per pause)
    gc.freeze()
    signal.signal(signal.SIGINT, _interrupted)
    cli_main(
        dataflow,
        workers_per_process=cluster.workers,
        process_id=cluster.process_id if cluster.addresses else None,
        addresses=list(cluster.addresses) or None,
        epoch_interval=timedelta(milliseconds=epoch_ms),
        recovery_config=recovery,
    )


# Where in the wall clock's epoch each flow of the trading path closes its epochs, as a fraction of
# the epoch: apart, so that a frame's way md.book -> md.tob -> order.intent -> order.exec meets one
# flow's snapshots at a time (started together, the four closed at once on 2 cores; docs/faults.md).
EPOCH_PHASES = {"market_state": 0.0, "bots": 0.25, "risk": 0.5, "executor": 0.75}


def epoch_phase_wait_s(name: str, epoch_ms: int, now_s: float) -> float:
    """How long flow `name` waits before its dataflow starts at `now_s` (wall clock, s) so that its
    epochs, which Bytewax times from the start, close at its EPOCH_PHASES fraction of the epoch of the
    wall clock; 0 for a flow without a phase."""
    phase = EPOCH_PHASES.get(name)
    if phase is None:
        return 0.0
    epoch_s = epoch_ms / 1000
    return (phase * epoch_s - now_s) % epoch_s


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
