"""`pets config ...`: check the YAML configuration before anything runs on it."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("config")
def config_group() -> None:
    """Inspect and validate the configuration (config/*.yaml)."""


@config_group.command("validate")
@click.option(
    "--config-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Config directory [default: the settings' config_dir, PETS_CONFIG_DIR].",
)
def validate(config_dir: Path | None) -> None:
    """Load every config file; print each problem (file: key: what is wrong) or a summary."""
    from pets.cli import settings_from_env
    from pets.schemas.config import (
        InvalidConfigError,
        load_alerts_config,
        load_config,
        pending_schema_modules,
    )

    directory = config_dir if config_dir is not None else settings_from_env().config_dir
    try:
        config = load_config(directory)
        if (directory / "alerts.yaml").is_file():  # only the alert flow needs it
            load_alerts_config(directory)
        if (directory / "deploy.yaml").is_file():  # only `pets deploy` needs it
            from pets.deploy.description import load_deploy

            load_deploy(directory)
    except InvalidConfigError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} config error(s) in {directory}", err=True)
        raise SystemExit(1) from None

    enabled = [bot.id for bot in config.bots if bot.enabled]
    allocated = sum(bot.capital_allocation for bot in config.bots)
    trading = config.system.trading
    pending = pending_schema_modules(config.topics)
    schemas = f"; schema modules not written yet: {', '.join(pending)}" if pending else ""
    click.echo(
        f"config OK: {len(config.bots)} bots ({len(enabled)} enabled: {', '.join(enabled) or 'none'}), "
        f"{allocated} of {trading.starting_capital} {trading.base_currency} allocated, "
        f"{len(config.zones.zones)} zones, {len(config.topics.topics)} topics{schemas}; "
        f"mode {trading.mode.value} ({directory})"
    )


commands = [config_group]
