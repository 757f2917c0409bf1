"""Both local services together: what `pets infra up|down|status` do, and the state file they keep.

``up`` writes ``settings.infra_state_file`` (``kafka_bootstrap``, ``postgres_dsn``), which
``load_settings()`` reads in local mode so every command finds the services; ``down`` removes it.
Two state dirs give two independent stacks side by side (each picks free ports).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pets.infra import InfraError, Started
from pets.infra.kafka_broker import KafkaBroker, java_binary
from pets.infra.postgres_cluster import PostgresCluster, server_bin_dir
from pets.settings import Settings, project_root


@dataclass(frozen=True, slots=True)
class Stack:
    kafka: KafkaBroker
    postgres: PostgresCluster


def stack_for(settings: Settings) -> Stack:
    return Stack(
        kafka=KafkaBroker(settings.state_dir, settings.cache_dir, project_root() / "infra" / "kafka"),
        postgres=PostgresCluster(settings.state_dir),
    )


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """One up/down at a time per state dir."""
    lock_path = settings.infra_state_file.parent / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def missing_system_tools() -> list[str]:
    missing = [] if java_binary() else ["java"]
    if shutil.which("mvn") is None:
        missing.append("mvn")
    if server_bin_dir() is None:
        missing.append("initdb")
    return missing


def install_system_deps() -> None:
    """Run scripts/system-deps.sh (Debian packages) when java, mvn or initdb is missing."""
    missing = missing_system_tools()
    if not missing:
        return
    script = project_root() / "scripts" / "system-deps.sh"
    if not script.exists():
        raise InfraError(f"missing {', '.join(missing)}: install Java 17, Maven and the PostgreSQL server")
    # Chromium is for the UI tests, not for these services.
    result = subprocess.run(["bash", str(script)], check=False, env={**os.environ, "PETS_SKIP_CHROMIUM": "1"})
    if result.returncode != 0:
        raise InfraError(f"{script} failed (exit {result.returncode}) installing {', '.join(missing)}")
    still = missing_system_tools()
    if still:
        raise InfraError(f"{script} ran but {', '.join(still)} is still missing")


def up(settings: Settings) -> dict[str, Started]:
    """Start PostgreSQL and Kafka (each only if not already answering) and write the state file."""
    install_system_deps()
    stack = stack_for(settings)
    with _locked(settings):
        started = {"postgres": stack.postgres.start(), "kafka": stack.kafka.start()}
        state = {"kafka_bootstrap": started["kafka"].address, "postgres_dsn": started["postgres"].address}
        partial = settings.infra_state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        partial.replace(settings.infra_state_file)
    return started


def down(settings: Settings) -> dict[str, bool]:
    """Stop both services and remove the state file; ``{service: was running}``."""
    stack = stack_for(settings)
    with _locked(settings):
        settings.infra_state_file.unlink(missing_ok=True)
        return {"kafka": stack.kafka.stop(), "postgres": stack.postgres.stop()}


def status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Whether each service runs AND answers, with its address (None when down)."""
    stack = stack_for(settings)
    bootstrap = stack.kafka.status()
    dsn = stack.postgres.status()
    return {
        "kafka": {"up": bootstrap is not None, "bootstrap": bootstrap},
        "postgres": {"up": dsn is not None, "dsn": dsn},
    }


def describe(state_file: Path, started: dict[str, Started]) -> list[str]:
    """Human lines for `pets infra up`: per service what happened and how long it took."""
    lines = []
    for name, result in started.items():
        if result.already_running:
            lines.append(f"{name}: already up at {result.address}")
            continue
        cold = any(s.startswith(("maven", "initdb", "storage formatted")) for s in result.steps)
        lines.append(
            f"{name}: {'cold' if cold else 'warm'} start in {result.seconds:.1f} s at {result.address}"
            f" ({', '.join(result.steps)})"
        )
    lines.append(f"addresses written to {state_file}")
    return lines
