"""The `pets` command line.

Every module in this package contributes commands: a module-level ``commands`` list of click
commands/groups is added to the root group. Heavy imports stay inside the command functions so
`pets --help` is fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from pets.settings import Settings, SettingsError, load_settings


class _PetsGroup(click.Group):
    """Turns a bad setting or topic registry into a one-line error naming the file/variable, and a
    Kafka or PostgreSQL that does not answer into one line naming the service (not a traceback)."""

    def invoke(self, ctx: click.Context) -> object:
        from pets.schemas.topics import TopicRegistryError

        try:
            return super().invoke(ctx)
        except (SettingsError, TopicRegistryError) as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            service = _service_of(exc)
            if service is None:
                raise
            name = type(exc).__name__
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else name
            detail = detail if detail.startswith(name) else f"{name}: {detail}"
            message = f"{service} not answering ({detail}): is it up? `pets infra status`"
            raise click.ClickException(message) from None


def _service_of(exc: Exception) -> str | None:
    """Which service a client library's error comes from (by module: the libraries load lazily)."""
    module = type(exc).__module__
    if module.startswith(("kafka", "confluent_kafka", "cimpl")):
        return "Kafka"
    if module.startswith("psycopg") and type(exc).__name__ == "OperationalError":
        return "PostgreSQL"
    return None


@click.group(cls=_PetsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pets")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    envvar="PETS_LOG_FORMAT",
    help="Logs on stderr: readable lines, or one JSON object per line (time, level, flow, bot, market, "
    "message, fields). Secrets never appear in either.",
)
@click.pass_context
def main(ctx: click.Context, log_format: str) -> None:
    """PETS - Polymarket Elite Trading System."""
    from pets.observability.logs import configure

    ctx.ensure_object(dict)
    configure("json" if log_format == "json" else "console")


def settings_from_env() -> Settings:
    """Settings for a command; a bad setting is a clean CLI error naming the variable."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "commands", []):
            main.add_command(command)


_register()
