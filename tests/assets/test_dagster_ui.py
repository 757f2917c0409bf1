"""The Dagster UI over the PETS code location: `pets dagster dev` started here, its asset graph page
loaded in headless Chromium, a screenshot kept under artifacts/, the assets shown by name."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pets.settings import project_root

ARTIFACTS = project_root() / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--virtual-time-budget=15000",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _location_loaded(url: str) -> bool:
    query = b'{"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"}'
    request = urllib.request.Request(
        f"{url}/graphql", data=query, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return bool(body.get("data", {}).get("repositoriesOrError", {}).get("nodes"))


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[str]:
    """`pets dagster dev` on a free port with DAGSTER_HOME under tmp; stopped (its process group) after."""
    port = _free_port()
    log = (tmp_path / "dagster.log").open("wb")
    pets = Path(sys.executable).with_name("pets")
    process = subprocess.Popen(
        [str(pets), "dagster", "dev", "--port", str(port)],
        env={**os.environ, "PETS_STATE_DIR": str(tmp_path / "state")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while not _location_loaded(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"dagster dev did not come up: {(tmp_path / 'dagster.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        assert (tmp_path / "state" / "dagster" / "dagster.yaml").exists()
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    profile = tmp_path / f"chrome-{time.monotonic_ns()}"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.slow
def test_asset_graph_pages_show_the_assets(dagster_ui: str, tmp_path: Path) -> None:
    whales = f"{dagster_ui}/locations/pets.assets.definitions/asset-groups/whales"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dagster_asset_graph_whales.png"
    screenshot.unlink(missing_ok=True)
    _chromium(tmp_path, f"--screenshot={screenshot}", whales)
    assert screenshot.stat().st_size > 20_000
    text = _page_text(tmp_path, whales)
    for name in ("market_universe", "wallet_trades", "whale_rankings"):
        assert name in text, f"{name} not on the whales asset graph"
    lineage = _page_text(tmp_path, f"{dagster_ui}/asset-groups")
    assert "Cycle detected" not in lineage
    for group in ("markets", "whales", "models", "reports", "streams", "tables"):
        assert f" {group} " in lineage, f"group {group} not on the global lineage page"


def _page_text(tmp_path: Path, url: str) -> str:
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
