"""`pets metabase provision`: the PETS connection, questions and dashboard in a running Metabase."""

from __future__ import annotations

import click

from pets.cli._output import echo_json


@click.group()
def metabase() -> None:
    """Metabase over the trading database (the views of migration 0041, docs/operations.md)."""


@metabase.command("provision")
@click.option("--url", envvar="PETS_METABASE_URL", default="http://localhost:3001", show_default=True)
@click.option(
    "--user", "username", envvar="PETS_METABASE_USER", required=True, help="A Metabase admin's email."
)
@click.option(
    "--password", envvar="PETS_METABASE_PASSWORD", required=True, help="Better: PETS_METABASE_PASSWORD."
)
@click.option(
    "--db-host", default=None, help="The database host as Metabase sees it [default: PETS_POSTGRES_DSN's]."
)
@click.option("--db-port", type=int, default=None, help="[default: PETS_POSTGRES_DSN's]")
def provision(url: str, username: str, password: str, db_host: str | None, db_port: int | None) -> None:
    """Migrate the trading database (views, the price zones of zone_framework.yaml), then create or update
    in Metabase the connection to it, one question per view and the "PETS desk" dashboard."""
    from psycopg.conninfo import conninfo_to_dict

    from pets.cli import settings_from_env
    from pets.cli.db import _db_errors, _postgres_dsn
    from pets.pipelines.metabase.provision import Connection, MetabaseClient, MetabaseError, write_price_zones
    from pets.pipelines.migrations import migrate
    from pets.schemas.config import load_config

    dsn = _postgres_dsn()
    with _db_errors(dsn):
        migrate(dsn)
        write_price_zones(dsn, load_config(settings_from_env().config_dir).zones.zones)
    params = conninfo_to_dict(dsn)
    connection = Connection(
        host=db_host or str(params.get("host") or "localhost"),
        port=db_port or int(params.get("port") or 5432),
        dbname=str(params.get("dbname") or "pets"),
        user=str(params.get("user") or "postgres"),
        password=str(params.get("password") or ""),
    )
    client = MetabaseClient(url)
    try:
        client.login(username, password)
        done = client.provision(connection)
    except MetabaseError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"Metabase at {url} not answering ({type(exc).__name__})") from None
    echo_json({
        "database_id": done.database_id, "cards": done.card_ids, "dashboard_id": done.dashboard_id,
        "dashboard_url": f"{url.rstrip('/')}/dashboard/{done.dashboard_id}",
    })  # fmt: skip


commands = [metabase]
