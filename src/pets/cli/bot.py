"""Bot control: `pets bot list|start|stop|pause|resume ID`, `pets halt`, `pets resume-trading`.

Commands are ControlCommand messages on the bot.control topic (key = bot id, "*" for all), so they
reach the running flows: the risk flow changes the trading state (a halt cancels every open order
through order.exec) and the bots stop or resume proposing. The state the risk flow decided is in
the database table `bot_status`, which `pets bot list` shows next to the configuration.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

import click

from pets.cli import settings_from_env
from pets.schemas.control import ALL_BOTS, BotCommand, ControlCommand


def send_command(
    command: BotCommand, bot_id: str, reason: str, until_ns: int | None = None
) -> ControlCommand:
    """Produce one ControlCommand on bot.control and wait until the broker has it."""
    from kafka.errors import KafkaError

    from pets.api.control import new_command, publish_command
    from pets.settings import SettingsError

    settings = settings_from_env()
    try:
        return publish_command(
            settings, lambda: new_command(command, bot_id, reason, f"cli:{getpass.getuser()}", until_ns)
        )
    except (KafkaError, SettingsError) as exc:
        raise click.ClickException(f"could not send {command} to bot.control: {exc}") from None


def _known_bot(bot_id: str) -> str:
    from pets.schemas.config import InvalidConfigError, load_config

    settings = settings_from_env()
    try:
        config = load_config(settings.config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from None
    known = [bot.id for bot in config.bots]
    if bot_id != ALL_BOTS and bot_id not in known:
        raise click.BadParameter(f"unknown bot {bot_id!r}; known: {', '.join(known)} or '*'", param_hint="ID")
    return bot_id


def _sent(cmd: ControlCommand) -> None:
    click.echo(f"sent {cmd.command} {cmd.bot_id} (command {cmd.command_id})")


@click.group()
def bot() -> None:
    """List the bots and their state; start, stop, pause or resume one (or '*')."""


@bot.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per bot.")
def list_bots(as_json: bool) -> None:
    """The configured bots with the state the risk flow last stored (database `bot_status`)."""
    from pets.schemas.config import load_config

    settings = settings_from_env()
    config = load_config(settings.config_dir)
    stored, note = _stored_status(settings.postgres_dsn)
    rows = []
    for b in config.bots:
        state, reason, ts = stored.get(b.id, ("-" if b.enabled else "DISABLED", "", None))
        rows.append(
            {
                "bot_id": b.id,
                "name": b.name,
                "strategy": b.strategy,
                "enabled": b.enabled,
                "state": state,
                "reason": reason,
                "since": ts,
            }
        )
    if ALL_BOTS in stored:
        state, reason, ts = stored[ALL_BOTS]
        rows.append(
            {
                "bot_id": ALL_BOTS,
                "name": "portfolio",
                "strategy": "",
                "enabled": True,
                "state": state,
                "reason": reason,
                "since": ts,
            }
        )
    if as_json:
        from pets.cli._output import echo_json

        for row in rows:
            echo_json(row)
        return
    click.echo(f"{'bot':<7} {'name':<24} {'enabled':<8} {'state':<9} reason")
    for row in rows:
        click.echo(
            f"{row['bot_id']:<7} {row['name']:<24} {'yes' if row['enabled'] else 'no':<8} "
            f"{row['state']:<9} {row['reason']}"
        )
    if note:
        click.echo(note, err=True)


def _stored_status(dsn: str | None) -> tuple[dict[str, tuple[str, str, Any]], str]:
    if not dsn:
        return {}, "no database configured: states unknown (set PETS_POSTGRES_DSN or run `pets infra up`)"
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            rows = conn.execute("SELECT bot_id, state, reason, ts FROM bot_status").fetchall()
    except psycopg.Error as exc:
        return {}, f"bot_status not readable: {str(exc).strip().splitlines()[0]}"
    return {b: (s, r, ts.isoformat()) for b, s, r, ts in rows}, ""


def _simple(command: BotCommand, help_text: str) -> click.Command:
    @click.argument("bot_id", metavar="ID")
    @click.option("--reason", default="", help="Why (stored with the state).")
    def action(bot_id: str, reason: str) -> None:
        _sent(send_command(command, _known_bot(bot_id), reason))

    action.__doc__ = help_text
    return bot.command(command)(action)


_simple("start", "Start bot ID (or '*'): it proposes orders again.")
_simple("stop", "Stop bot ID (or '*'): its open orders are cancelled; it stays stopped until `start`.")
_simple("resume", "Resume a paused or halted bot ID (or '*').")


@bot.command("pause")
@click.argument("bot_id", metavar="ID")
@click.option(
    "--for",
    "for_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds (positive); without it until `resume`.",
)
@click.option("--reason", default="", help="Why (stored with the state).")
def pause(bot_id: str, for_s: float | None, reason: str) -> None:
    """Pause bot ID (or '*'): its open orders are cancelled; it may still reduce positions."""
    until = None if for_s is None else time.time_ns() + int(for_s * 1e9)
    _sent(send_command("pause", _known_bot(bot_id), reason, until))


@click.command("halt")
@click.option("--reason", default="", help="Why (stored with the alert).")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the acknowledgements: the risk flow's halt alert and the executor's cancels.",
)
def halt(reason: str, timeout_s: float) -> None:
    """Emergency halt: cancel every open order of every bot; nothing trades until `pets resume-trading`.

    Exits 0 once both the risk flow and the executor acknowledged the halt on risk.alert; exits 1
    naming the flow that did not answer within --timeout (the executor cancels its orders by itself
    when it reads the halt, so a risk flow that is down does not leave orders open)."""
    from pets.pipelines.kafka_io import ensure_topics

    settings = settings_from_env()
    ensure_topics(settings, ["risk.alert"])
    with _AlertWatch(settings) as watch:
        cmd = send_command("halt", ALL_BOTS, reason)
        _sent(cmd)
        answered = watch.halt_acks(cmd, timeout_s)
    for flow_name, message in answered.items():
        click.echo(f"{flow_name}: {message}")
    missing = [name for name in ("risk", "executor") if name not in answered]
    if missing:
        raise click.ClickException(
            f"halt {cmd.command_id} not acknowledged within {timeout_s:g} s by: {', '.join(missing)} "
            "(is its flow running? `pets flow run NAME`)"
        )


class _AlertWatch:
    """risk.alert from its end offsets now: what arrives after a command was sent answers it."""

    def __init__(self, settings: Any) -> None:
        from kafka import TopicPartition

        from pets.pipelines.kafka_io import consumer
        from pets.schemas.topics import load_topic_registry

        topic = load_topic_registry(settings.config_dir).get("risk.alert").full_name(settings.topic_prefix)
        self.client = consumer(settings)
        parts = [TopicPartition(topic, p) for p in self.client.partitions_for_topic(topic) or ()]
        self.client.assign(parts)
        self.client.seek_to_end(*parts)
        for part in parts:
            self.client.position(part)  # resolve the end offsets before the command is sent

    def __enter__(self) -> _AlertWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def halt_acks(self, cmd: ControlCommand, timeout_s: float) -> dict[str, str]:
        """flow -> its acknowledgement of halt `cmd`, for those that answered within the timeout."""
        import msgspec

        from pets.schemas.codec import decode
        from pets.schemas.control import EXECUTOR_HALT_RULE, OPERATOR_HALT_RULE, RiskAlert

        answered: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while len(answered) < 2 and (left := deadline - time.monotonic()) > 0:
            for records in self.client.poll(timeout_ms=int(min(left, 0.2) * 1000) + 1).values():
                for record in records:
                    try:
                        alert: RiskAlert = decode("risk.alert", record.value)
                    except msgspec.DecodeError:
                        continue
                    if alert.kind == "emergency_halt" and alert.rule == OPERATOR_HALT_RULE:
                        answered["risk"] = f"halted ({alert.message})"
                    elif alert.rule == EXECUTOR_HALT_RULE and alert.alert_id.endswith(cmd.command_id):
                        answered["executor"] = alert.message
        return answered


@click.command("resume-trading")
@click.option("--reason", default="", help="Why (stored with the alert).")
def resume_trading(reason: str) -> None:
    """Lift an emergency halt."""
    _sent(send_command("resume_trading", ALL_BOTS, reason))


commands = [bot, halt, resume_trading]
