"""`pets dagster dev`: the Dagster UI and daemon over the PETS code location.

DAGSTER_HOME is ``<state_dir>/dagster`` with a dagster.yaml written for the mode: local runs keep
Dagster's run/event/schedule storage in SQLite files there; production keeps it in PostgreSQL
(dagster-postgres) at the address of PETS_POSTGRES_DSN, read from the environment by Dagster
itself so the password never lands in the file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pets.cli import settings_from_env
from pets.settings import Mode, Settings

CODE_LOCATION = "pets.assets.definitions"

LOCAL_YAML = """\
# Written by `pets dagster dev` (local mode): storage in SQLite files under this folder.
telemetry:
  enabled: false
nux:
  enabled: false
"""
PRODUCTION_YAML = """\
# Written by `pets dagster dev` (production mode): runs, events and schedules in PostgreSQL.
telemetry:
  enabled: false
nux:
  enabled: false
storage:
  postgres:
    postgres_url:
      env: PETS_POSTGRES_DSN
"""


def dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with the dagster.yaml of the settings' mode; returns it."""
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    production = settings.mode is Mode.PRODUCTION
    if production:
        settings.require_postgres()
    (home / "dagster.yaml").write_text(PRODUCTION_YAML if production else LOCAL_YAML)
    return home


def dev_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "dagster", "dev", "-m", CODE_LOCATION, "-h", host, "-p", str(port)]


@click.group()
def dagster() -> None:
    """The batch layer (Dagster): UI, schedules, sensors."""


@dagster.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
def dev(host: str, port: int) -> None:
    """Start `dagster dev` (UI + daemon) on the PETS assets; stops with Ctrl-C."""
    from pets.settings import SettingsError

    settings = settings_from_env()
    try:
        home = dagster_home(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"DAGSTER_HOME={home}; UI on http://{host}:{port}", err=True)
    command = dev_command(host, port)
    os.execvpe(command[0], command, {**os.environ, "DAGSTER_HOME": str(home)})


commands = [dagster]
