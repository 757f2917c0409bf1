"""`pets infra up|down|status`: the Kafka broker and PostgreSQL the project starts for itself."""

from __future__ import annotations

import json
import time

import click

from pets.cli import settings_from_env


@click.group()
def infra() -> None:
    """Local Kafka broker (KRaft) and PostgreSQL, state under $PETS_STATE_DIR/infra."""


@infra.command()
def up() -> None:
    """Start both services (no-op for those already up) and write the state file."""
    from pets.infra import InfraError
    from pets.infra.stack import describe
    from pets.infra.stack import up as start_stack

    settings = settings_from_env()
    began = time.monotonic()
    try:
        started = start_stack(settings)
    except InfraError as exc:
        raise click.ClickException(str(exc)) from None
    for line in describe(settings.infra_state_file, started):
        click.echo(line)
    if not all(s.already_running for s in started.values()):
        click.echo(f"infra up in {time.monotonic() - began:.1f} s")


@infra.command()
def down() -> None:
    """Stop both services and remove the state file (data stays for the next `up`). Warns about
    running `pets flow run` processes: they lose their broker and database."""
    from pets.infra.procs import running_flows
    from pets.infra.stack import down as stop_stack

    flows = running_flows()
    if flows:
        listed = ", ".join(f"{name} (pid {pid})" for pid, name in flows)
        click.echo(f"warning: flows still running, they lose Kafka and PostgreSQL: {listed}", err=True)
    for name, was_running in stop_stack(settings_from_env()).items():
        click.echo(f"{name}: {'stopped' if was_running else 'was not running'}")


@infra.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {service: {up, address}}.")
def status(as_json: bool) -> None:
    """Whether each service runs and answers, and its address."""
    from pets.infra.stack import status as stack_status

    current = stack_status(settings_from_env())
    if as_json:
        click.echo(json.dumps(current))
        return
    kafka, postgres = current["kafka"], current["postgres"]
    click.echo(f"kafka: {'up at ' + kafka['bootstrap'] if kafka['up'] else 'down'}")
    click.echo(f"postgres: {'up at ' + postgres['dsn'] if postgres['up'] else 'down'}")


commands = [infra]
