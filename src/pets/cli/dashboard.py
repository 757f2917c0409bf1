"""`pets dashboard`: the Streamlit dashboard over the control API."""

from __future__ import annotations

import click


def streamlit_command(api: str, host: str, port: int) -> list[str]:
    """The command line that serves the dashboard (headless: the user opens the URL)."""
    import sys
    from pathlib import Path

    import pets.dashboard

    script = Path(pets.dashboard.__file__).with_name("app.py")
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--", "--api", api,
    ]  # fmt: skip


@click.command("dashboard")
@click.option("--api", default="http://127.0.0.1:8000", show_default=True, help="The control API's URL.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the dashboard listens on.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
def dashboard(api: str, host: str, port: int) -> None:
    """The operator's dashboard (Streamlit): Overview, P&L, Positions, Bot control, Risk monitor.

    It talks only to the control API (`pets api serve`, or `pets run --api-port`); its control buttons
    use PETS_API_TOKEN from the environment."""
    import os

    click.echo(f"pets dashboard: http://{host}:{port} over {api}", err=True)
    command = streamlit_command(api, host, port)
    os.execv(command[0], command)  # Streamlit in this process: signals reach it directly


commands = [dashboard]
