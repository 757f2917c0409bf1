"""config/deploy.yaml as typed frozen objects: the one description every deployment target renders.

    description = load_deploy(config_dir)   # raises InvalidConfigError naming the file and the key

Flow names are checked against `pets flow run`'s registry, `partitioned_by` against config/topics.yaml,
and every flow's workers against its partitions and its `max_workers` (`worker_errors`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from pets.schemas.config import ConfigError, InvalidConfigError, PositiveInt, _Config, _display, _load
from pets.schemas.topics import TopicRegistry, TopicRegistryError, load_topic_registry

DEPLOY_FILE = "deploy.yaml"
Quantity = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")]  # Kubernetes quantity
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Overlay = Literal["dev", "prod"]


class Resources(_Config, frozen=True, kw_only=True):
    cpu: Quantity
    memory: Quantity
    cpu_limit: Quantity
    memory_limit: Quantity


class FlowSpec(_Config, frozen=True, kw_only=True):
    workers: PositiveInt = 1  # Bytewax worker threads per process
    processes: PositiveInt = 1  # the flow's Bytewax cluster: pods (StatefulSet replicas), compose services
    max_workers: PositiveInt | None = None  # 1 for a flow whose state must stay in one worker (risk)
    partitioned_by: str | None = None  # the keyed input topic whose partitions bound the workers
    resources: Resources
    storage: Quantity = "1Gi"  # the Bytewax recovery store's volume


class ServiceSpec(_Config, frozen=True, kw_only=True):
    port: Port | None = None
    resources: Resources


class Services(_Config, frozen=True, kw_only=True):
    api: ServiceSpec
    dashboard: ServiceSpec
    dagster_webserver: ServiceSpec
    dagster_daemon: ServiceSpec


class Dependencies(_Config, frozen=True, kw_only=True):
    kafka: str
    timescaledb: str
    metabase: str
    metabase_db: str
    prometheus: str
    grafana: str


class OverlaySpec(_Config, frozen=True, kw_only=True):
    image_tag: str
    kafka_bootstrap: str


class Overlays(_Config, frozen=True, kw_only=True):
    dev: OverlaySpec
    prod: OverlaySpec


class DeployDescription(_Config, frozen=True, kw_only=True):
    image: str
    namespace: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    metrics_port: Port
    flows: dict[str, FlowSpec]
    services: Services
    dependencies: Dependencies
    overlays: Overlays

    def overlay(self, name: Overlay) -> OverlaySpec:
        return self.overlays.dev if name == "dev" else self.overlays.prod


def service_name(name: str) -> str:
    """A flow or service as a DNS-1123 name (market_state -> market-state)."""
    return name.replace("_", "-")


def load_deploy(config_dir: Path) -> DeployDescription:
    """config/deploy.yaml, checked against the flow registry and config/topics.yaml."""
    from pets.cli.flow import FLOWS

    path = config_dir / DEPLOY_FILE
    file = _display(path)
    errors: list[ConfigError] = []
    description = _load(path, DeployDescription, errors)
    if description is None:
        raise InvalidConfigError(errors)
    try:
        registry = load_topic_registry(config_dir)
    except TopicRegistryError as exc:
        raise InvalidConfigError([ConfigError(file, "", str(exc))]) from None
    for name in description.flows:
        if name not in FLOWS:
            errors.append(ConfigError(file, f"flows.{name}", f"unknown flow; known: {', '.join(FLOWS)}"))
    for name, flow in description.flows.items():
        errors += (
            ConfigError(file, f"flows.{name}.{key}", message)
            for key, message in worker_errors(name, flow, flow.workers, registry)
        )
    if errors:
        raise InvalidConfigError(errors)
    return description


def worker_errors(
    name: str, flow: FlowSpec, workers: int, registry: TopicRegistry, processes: int | None = None
) -> list[tuple[str, str]]:
    """(key, problem) for `workers` workers per process of a flow in `processes` processes (default:
    the flow's): above its max_workers in all, or more workers in all than the partitions of its keyed
    input (a worker beyond them would own no partition and sit idle)."""
    problems: list[tuple[str, str]] = []
    count = processes or flow.processes
    total = count * workers
    shape = f"{total} workers" if count == 1 else f"{count} processes x {workers} workers = {total} workers"
    if flow.max_workers is not None and total > flow.max_workers:
        problems.append(("workers", f"{shape}: {name} runs at most {flow.max_workers}"))
    if flow.partitioned_by is not None:
        topic = next((t for t in registry.topics if t.name == flow.partitioned_by), None)
        if topic is None:
            problems.append(("partitioned_by", f"unknown topic {flow.partitioned_by!r} (config/topics.yaml)"))
        elif total > topic.partitions:
            problems.append(
                (
                    "workers",
                    f"{shape} but {topic.name} has {topic.partitions} "
                    f"partition(s): raise its partitions in config/topics.yaml first",
                )
            )
    return problems


_WORKERS_LINE = re.compile(r"^(?P<indent>\s+)workers:\s*\d+(?P<rest>.*)$")
_PROCESSES_LINE = re.compile(r"^(?P<indent>\s+)processes:\s*\d+(?P<rest>.*)$")


def set_workers(text: str, flow: str, workers: int) -> str:
    """deploy.yaml's text with `flows.<flow>.workers` set, comments and layout kept."""
    lines = text.splitlines(keepends=True)
    at, match = _workers_line(lines, flow)
    lines[at] = f"{match['indent']}workers: {workers}{match['rest']}\n"
    return "".join(lines)


def set_processes(text: str, flow: str, processes: int) -> str:
    """deploy.yaml's text with `flows.<flow>.processes` set: the line after `workers`, added when the
    flow has none."""
    lines = text.splitlines(keepends=True)
    at, match = _workers_line(lines, flow)
    following = lines[at + 1].rstrip("\n") if at + 1 < len(lines) else ""
    if (old := _PROCESSES_LINE.match(following)) is not None:
        lines[at + 1] = f"{old['indent']}processes: {processes}{old['rest']}\n"
    else:
        lines.insert(at + 1, f"{match['indent']}processes: {processes}\n")
    return "".join(lines)


def _workers_line(lines: list[str], flow: str) -> tuple[int, re.Match[str]]:
    in_flows = in_flow = False
    for i, line in enumerate(lines):
        stripped = line.rstrip("\n")
        if not stripped.strip() or stripped.lstrip().startswith("#"):
            continue
        indent = len(stripped) - len(stripped.lstrip())
        if indent == 0:
            in_flows, in_flow = stripped.startswith("flows:"), False
        elif in_flows and indent == 2:
            in_flow = stripped.strip().split(":")[0] == flow
        elif in_flow and (match := _WORKERS_LINE.match(stripped)):
            return i, match
    raise KeyError(f"flows.{flow}.workers not found in {DEPLOY_FILE}")
