"""`pets api serve`: the control API over the database the flows write, commands on bot.control."""

from __future__ import annotations

import click

from pets.cli import settings_from_env


@click.group()
def api() -> None:
    """The control API (FastAPI): bots, positions, orders, fills, P&L, risk; control with a token."""


@api.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address (localhost without a token).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allow this browser origin (CORS is closed by default).",
)
def serve(host: str, port: int, cors_origins: tuple[str, ...]) -> None:
    """Serve the API over PostgreSQL/TimescaleDB and Kafka (it never sits in the trading path).

    Control actions need `Authorization: Bearer $PETS_API_TOKEN`; without PETS_API_TOKEN the server
    binds to localhost and refuses them (401). Every control action is written to `api_audit`."""
    from pets.api.app import create_app
    from pets.api.control import AuditLog
    from pets.api.database import DatabaseDesk
    from pets.api.server import api_token, bind_host, server
    from pets.cli.run import _load_config

    settings = settings_from_env()
    config = _load_config(settings.config_dir)
    token = api_token()
    host, note = bind_host(host, token)
    if note:
        click.echo(note, err=True)
    app = create_app(DatabaseDesk(settings, config), config, token, AuditLog(dsn=settings.postgres_dsn),
                     cors_origins)  # fmt: skip
    click.echo(f"pets api: http://{host}:{port} (OpenAPI at /docs)", err=True)
    server(app, host, port).run()


@api.command("health")
@click.option(
    "--api", "url", default="http://127.0.0.1:8000", show_default=True, help="The control API's URL."
)
def health(url: str) -> None:
    """GET /health: prints it; exits 0 when "ok", 1 when degraded or not answering."""
    import json

    import httpx

    try:
        answer = httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"the control API at {url} does not answer: {exc}") from None
    body = answer.json() if answer.status_code == 200 else {"status": f"HTTP {answer.status_code}"}
    click.echo(json.dumps(body, indent=2))
    if body.get("status") != "ok":
        raise SystemExit(1)


@api.command("events")
@click.option(
    "--api", "url", default="http://127.0.0.1:8000", show_default=True, help="The control API's URL."
)
@click.option(
    "--after", type=int, default=0, show_default=True, help="Events after this sequence (0: all kept)."
)
def events(url: str, after: int) -> None:
    """Follow /events: fills, denials, alerts and bot state changes, one JSON object a line (Ctrl-C)."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    ws_url = url.rstrip("/").replace("http", "ws", 1) + f"/events?after={after}"
    try:
        with connect(ws_url, open_timeout=10) as socket:
            for message in socket:
                click.echo(message)
    except KeyboardInterrupt:
        return
    except (OSError, WebSocketException) as exc:
        raise click.ClickException(f"{ws_url}: {exc}") from None


commands = [api]
