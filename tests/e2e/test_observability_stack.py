"""The trading flows as processes with their metrics ports, scraped by a real Prometheus (Debian's
`prometheus`, started here like Kafka) loaded with the PETS alert rules: the PETS families are read
back through Prometheus's HTTP API, and every panel query of the Grafana dashboards returns data
(Prometheus panels from that Prometheus, SQL panels from the flows' PostgreSQL)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from e2e_harness import Flows, publish, retimed, wait_for

from pets.pipelines.kafka_io import ensure_topics
from pets.pipelines.migrations import migrate
from pets.runtime import sources
from pets.schemas.config import load_config
from pets.settings import Mode, Settings, project_root

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
ROOT = project_root()
FLOWS = ("market_state", "bots", "risk", "executor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (scripts/system-deps.sh installs Debian's package)")
    ports = {name: free_port() for name in FLOWS}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "ops/prometheus/rules/pets.yml")],
        "scrape_configs": [{
            "job_name": "pets-flows",
            "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports.values()]}],
        }],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    url = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address={url}"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready(f"http://{url}") and time.monotonic() < deadline:
            time.sleep(0.2)
        yield f"http://{url}", ports
    finally:
        proc.terminate()
        proc.wait(10)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def panels() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted((ROOT / "ops/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(path.stem, panel["title"], target) for target in panel["targets"]]
    return found


def test_prometheus_scrapes_the_flows_and_every_dashboard_query_returns_data(
    prometheus: tuple[str, dict[str, int]], prefixed_settings: Settings, fresh_db: str, tmp_path: Path
) -> None:
    url, ports = prometheus
    migrate(fresh_db)
    settings = replace(
        prefixed_settings, mode=Mode.PRODUCTION, config_dir=ROOT / "config", state_dir=tmp_path / "state",
        postgres_dsn=fresh_db,
    )  # fmt: skip
    ensure_topics(settings)
    source = sources.simulated(load_config(settings.config_dir), seed=5, duration_s=90)
    flows = Flows(settings, tmp_path)
    try:
        for name in FLOWS:
            flows.start(name, "--metrics-port", str(ports[name]))
        wait_for(
            "every flow scraped",
            lambda: len([r for r in query(url, 'up{job="pets-flows"} == 1')]) == len(FLOWS),
            90,
            flows,
        )
        publish(settings, source.markets, retimed(source.frames))
        wait_for("fills counted", lambda: query(url, "sum(pets_trades_total) > 0"), 60, flows)
        time.sleep(3)  # a few more scrapes: rates over [1m] need two samples of every series
        families = {r["metric"]["__name__"] for r in query(url, '{__name__=~"pets_.+"}')}
        empty: list[str] = []
        for board, title, target in panels():
            if "expr" in target:
                if not query(url, target["expr"]):
                    empty.append(f"{board}: {title}: {target['expr']}")
            else:
                with psycopg.connect(fresh_db) as conn:
                    if not conn.execute(target["rawSql"]).fetchall():
                        empty.append(f"{board}: {title}: {target['rawSql']}")
        rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    finally:
        flows.stop_all()
    assert empty == [], "\n".join(empty)
    assert (
        len({f.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for f in families}) >= 20
    ), families
    assert {
        "pets_trades_total", "pets_equity_dollars", "pets_frame_to_order_latency_seconds_bucket",
        "pets_consumer_lag_messages", "pets_market_message_latency_seconds_bucket",
    } <= families  # fmt: skip
    assert sorted(r["name"] for g in rules for r in g["rules"]) == sorted([
        "PetsFlowDown", "PetsFeedStalled", "PetsConsumerLag", "PetsDeadLettersGrowing",
        "PetsBotDrawdownNearLimit", "PetsPortfolioDrawdownNearLimit",
    ])  # fmt: skip
