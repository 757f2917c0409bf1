"""`pets infra up|down|status`: the JSON contract, and a whole second stack started and stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.infra.postgres_cluster import PostgresCluster
from pets.infra.stack import down, missing_system_tools, status, up
from pets.pipelines.kafka_io import broker_unready
from pets.settings import Settings, read_infra_state


def _status_json(env: dict[str, str]) -> dict[str, object]:
    result = CliRunner().invoke(main, ["infra", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    parsed: dict[str, object] = json.loads(lines[0])
    return parsed


def test_status_json_when_nothing_runs(tmp_path: Path) -> None:
    assert _status_json({"PETS_STATE_DIR": str(tmp_path)}) == {
        "kafka": {"up": False, "bootstrap": None},
        "postgres": {"up": False, "dsn": None},
    }


@pytest.mark.integration
def test_status_json_of_the_running_services(
    settings: Settings, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    state = read_infra_state(settings.infra_state_file)
    if state.get("kafka_bootstrap") != kafka_bootstrap:
        pytest.skip("the services in use were not started by `pets infra up` in this state dir")
    assert _status_json({"PETS_STATE_DIR": str(settings.state_dir)}) == {
        "kafka": {"up": True, "bootstrap": kafka_bootstrap},
        "postgres": {"up": True, "dsn": postgres_dsn},
    }


def test_status_through_the_installed_entry_point(tmp_path: Path) -> None:
    pets = Path(sys.executable).with_name("pets")
    result = subprocess.run(
        [str(pets), "infra", "status", "--json"],
        env={**os.environ, "PETS_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == (
        '{"kafka": {"up": false, "bootstrap": null}, "postgres": {"up": false, "dsn": null}}\n'
    )


@pytest.fixture
def reachable_state_dir() -> Iterator[Path]:
    """A state dir the `postgres` system user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="pets-infra-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to the postgres user")
def test_cluster_of_a_state_dir_the_postgres_user_cannot_reach_goes_to_tmp(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    cluster = PostgresCluster(private / "state")
    try:
        started = cluster.start()
        assert cluster.link.is_symlink()
        assert cluster.dir.parent == Path(tempfile.gettempdir())
        with psycopg.connect(started.address) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("pets",)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.dir, ignore_errors=True)
    assert cluster.status() is None


@pytest.mark.integration
@pytest.mark.slow
def test_second_stack_up_status_down(settings: Settings, reachable_state_dir: Path) -> None:
    """A second, independent stack beside the shared one: own ports, own state file, clean stop."""
    missing = missing_system_tools()
    if missing and os.environ.get("PETS_REQUIRE_INFRA") != "1":
        pytest.skip(f"missing {', '.join(missing)}: run scripts/system-deps.sh")
    mine = replace(settings, state_dir=reachable_state_dir, kafka_bootstrap=None, postgres_dsn=None)
    try:
        started = up(mine)
        assert not any(s.already_running for s in started.values())
        bootstrap, dsn = started["kafka"].address, started["postgres"].address
        assert bootstrap != settings.kafka_bootstrap and dsn != settings.postgres_dsn
        assert read_infra_state(mine.infra_state_file) == {"kafka_bootstrap": bootstrap, "postgres_dsn": dsn}
        assert status(mine) == {
            "kafka": {"up": True, "bootstrap": bootstrap},
            "postgres": {"up": True, "dsn": dsn},
        }
        assert broker_unready(bootstrap) is None
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("pets",)

        again = up(mine)
        assert all(s.already_running for s in again.values())
        assert {k: s.address for k, s in again.items()} == {"kafka": bootstrap, "postgres": dsn}
    finally:
        stopped = down(mine)
    assert stopped == {"kafka": True, "postgres": True}
    assert not mine.infra_state_file.exists()
    assert status(mine)["kafka"] == {"up": False, "bootstrap": None}
    assert status(mine)["postgres"] == {"up": False, "dsn": None}
    assert broker_unready(bootstrap, timeout_ms=500) is not None
    assert down(mine) == {"kafka": False, "postgres": False}
