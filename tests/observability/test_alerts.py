"""The alert flow: Telegram and Discord through a local server speaking their protocols, the rules,
per-type settings, deduplication, 429 retry_after, and the flow over the real broker."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pets.flows import alerts as alert_flow
from pets.observability.alerts import AlertRules, Notification, Notifier
from pets.pipelines.alerts.local_server import NotifyServer
from pets.pipelines.alerts.senders import DeliveryError, DiscordSender, Retry, TelegramSender
from pets.schemas.codec import encode
from pets.schemas.config import AlertsConfig, load_alerts_config, load_config
from pets.schemas.control import RiskAlert
from pets.schemas.market_data import Continuity
from pets.schemas.orders import ExecutionReport, PnlSnapshot
from pets.settings import Settings

TOKEN = "123456:SECRET-telegram-token"


def waits() -> tuple[list[float], Retry]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    return slept, Retry(retries=3, backoff_s=1.0, backoff_max_s=30, sleep=sleep)


def test_telegram_429_waits_the_retry_after_it_names_then_delivers() -> None:
    slept, retry = waits()
    with NotifyServer(TOKEN) as server:
        server.throttle(2, retry_after=0.05)
        TelegramSender(TOKEN, "42", server.url, retry).send("hello", silent=True)
    assert slept == [0.05, 0.05]  # what the 429 asked for, not the 1 s backoff
    assert [(m.service, m.text, m.silent, m.target) for m in server.messages] == [
        ("telegram", "hello", True, "42")
    ]
    assert server.requests == 3


def test_discord_429_retry_after_then_delivers_and_gives_up_after_the_retries() -> None:
    slept, retry = waits()
    with NotifyServer(TOKEN) as server:
        server.throttle(1, retry_after=0.02)
        DiscordSender(server.webhook_url, retry).send("drawdown", silent=False)
        assert slept == [0.02]
        assert [(m.service, m.text, m.silent) for m in server.messages] == [("discord", "drawdown", False)]
        server.throttle(10, retry_after=0.01)
        with pytest.raises(DeliveryError, match="gave up after 4 attempts"):
            DiscordSender(server.webhook_url, retry).send("never", silent=False)


def test_a_refused_token_is_not_retried_and_the_error_never_names_it() -> None:
    slept, retry = waits()
    with NotifyServer(TOKEN) as server, pytest.raises(DeliveryError) as refused:
        TelegramSender("999:WRONG-token", "42", server.url, retry).send("x", silent=False)
    assert slept == [] and "401" in str(refused.value) and "WRONG" not in str(refused.value)


class Channel:
    name = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []

    def send(self, text: str, silent: bool) -> None:
        self.sent.append((text, silent))


def test_per_type_settings_deduplication_and_critical_always_through() -> None:
    config = AlertsConfig(types={"drawdown": "off", "feed": "silent"}, min_interval_s=60)
    channel, now = Channel(), [1000.0]
    notifier = Notifier(config, [channel], clock=lambda: now[0])
    assert not notifier.notify(Notification("drawdown", "bot_01", "dd"))  # off
    assert notifier.notify(
        Notification("drawdown", "bot_01", "dd critical", critical=True)
    )  # off, but critical
    assert notifier.notify(Notification("feed", "ws", "lost"))
    assert not notifier.notify(Notification("feed", "ws", "lost again"))  # within 60 s of the same key
    assert notifier.notify(Notification("feed", "stall", "stalled"))  # another key
    assert notifier.notify(Notification("circuit_breaker", "b", "trip", critical=True))
    assert notifier.notify(Notification("circuit_breaker", "b", "trip again", critical=True))  # no dedup
    now[0] += 61
    assert notifier.notify(Notification("feed", "ws", "lost later"))
    assert channel.sent == [
        ("dd critical", False), ("lost", True), ("stalled", True), ("trip", False), ("trip again", False),
        ("lost later", True),
    ]  # fmt: skip


def snapshot(bot_id: str, equity: str) -> PnlSnapshot:
    return PnlSnapshot(
        bot_id=bot_id, ts_ns=1, cash=D(equity), equity=D(equity), realized_pnl=D(0), unrealized_pnl=D(0),
        fees=D(0), rebates=D(0), exposure=D(0), open_orders=0, trades=3, wins=1, losses=1, max_drawdown=D(0),
    )  # fmt: skip


def fill(n: int, side: str, qty: str, px: str, fee: str = "0") -> ExecutionReport:
    return ExecutionReport(
        report_id=f"r{n}", client_order_id=f"o{n}", venue_order_id=None, bot_id="bot_05", market="m1",
        asset_id="yes1", side=side, kind="fill", order_price=D(px), order_size=D(qty),  # type: ignore[arg-type]
        last_qty=D(qty), last_px=D(px), cum_qty=D(qty), fee=D(fee), ts_ns=n, source_ts_ms=n,
    )  # fmt: skip


def test_drawdown_warnings_at_20_percent_for_a_bot_and_35_for_the_portfolio(settings: Settings) -> None:
    rules = AlertRules(AlertsConfig(), load_config(settings.config_dir))
    assert rules.on_pnl(snapshot("bot_01", "1000"), 0) == []
    assert rules.on_pnl(snapshot("bot_01", "801"), 0) == []  # 19.9 %
    assert [n.type for n in rules.on_pnl(snapshot("bot_01", "800"), 0)] == ["drawdown"]  # 20 %
    assert rules.on_pnl(snapshot("portfolio", "10000"), 0) == []
    assert rules.on_pnl(snapshot("portfolio", "7000"), 0) == []  # 30 %: a bot would warn, the portfolio not
    assert "35.0%" in rules.on_pnl(snapshot("portfolio", "6500"), 0)[0].text


def test_a_major_win_is_one_trade_above_the_amount_net_of_its_fee(settings: Settings) -> None:
    rules = AlertRules(AlertsConfig(major_win_usd=D(1000)), load_config(settings.config_dir))
    assert rules.on_report(fill(1, "BUY", "2000", "0.40")) == []
    # sold 2000 bought at 0.40 for 0.95: 2000 x 0.55 = 1100 realized, minus a 50 fee = 1050 > 1000
    notes = rules.on_report(fill(2, "SELL", "2000", "0.95", fee="50"))
    assert [n.type for n in notes] == ["major_win"] and "$1,050.00" in notes[0].text
    assert rules.on_report(fill(3, "BUY", "2000", "0.40")) == []
    assert rules.on_report(fill(4, "SELL", "2000", "0.95", fee="150")) == []  # 1100 - 150 = 950


def test_the_daily_summary_goes_once_at_the_configured_time_and_a_silent_feed_is_a_stall(
    settings: Settings,
) -> None:
    rules = AlertRules(
        AlertsConfig(daily_summary_utc="20:00", feed_stall_s=60), load_config(settings.config_dir)
    )
    day = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
    bot_01 = load_config(settings.config_dir).bot("bot_01")
    allocation = bot_01.capital_allocation * load_config(settings.config_dir).system.trading.starting_capital
    rules.on_pnl(snapshot("bot_01", str(allocation)), day + 3600)
    rules.on_pnl(snapshot("bot_01", str(allocation + 25)), day + 7200)
    assert rules.tick(day + 19 * 3600 + 59 * 60) == []
    summary = rules.tick(day + 20 * 3600)
    assert [n.type for n in summary] == ["daily_summary"]
    assert "bot_01: P&L $25.00 (today $25.00), 3 trades, win rate 50%" in summary[0].text
    assert rules.tick(day + 21 * 3600) == []  # once a day
    rules.on_book(None, day + 22 * 3600)
    assert rules.tick(day + 22 * 3600 + 59) == []
    assert [n.key for n in rules.tick(day + 22 * 3600 + 61)] == ["stall"]
    assert rules.tick(day + 22 * 3600 + 120) == []  # reported once
    assert [n.text for n in rules.on_book(None, day + 22 * 3600 + 130)] == ["✅ market feed flowing again"]


def test_the_shipped_alerts_yaml_loads() -> None:
    config = load_alerts_config(Path(__file__).parents[2] / "config")
    assert config.major_win_usd == 1000 and config.bot_drawdown_warning == D("0.20")


@pytest.mark.integration
def test_the_alert_flow_sends_a_breaker_and_a_feed_loss_to_both_channels(
    prefixed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pets.pipelines.kafka_io import producer

    settings = prefixed_settings
    stop = threading.Event()
    with NotifyServer(TOKEN) as server:
        monkeypatch.setenv("PETS_TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("PETS_TELEGRAM_CHAT_ID", "42")
        monkeypatch.setenv("PETS_TELEGRAM_API_URL", server.url)
        monkeypatch.setenv("PETS_DISCORD_WEBHOOK_URL", server.webhook_url)
        flow = threading.Thread(target=alert_flow.run, args=(settings, stop, "earliest"))
        flow.start()
        try:
            send = producer(settings)
            breaker = RiskAlert(
                alert_id="a1", kind="circuit_breaker", bot_id="bot_01", rule="consecutive_losses",
                message="3 losing round trips in a row", severity="critical", ts_ns=1,
            )  # fmt: skip
            lost = Continuity(
                asset_ids=("yes1", "no1"), status="lost", reason="socket closed", recv_ns=1, market="m1"
            )
            prefix = settings.topic_prefix
            send.send(f"{prefix}risk.alert", key=b"bot_01", value=encode(breaker))
            send.send(f"{prefix}md.book", key=b"m1", value=msgspec.json.encode(lost))
            send.send(f"{prefix}exec.report", key=b"m1", value=b'{"bot_id": 7}')
            send.flush()
            deadline = time.monotonic() + 45
            while len(server.messages) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            flow.join(15)
    texts: dict[str, list[Any]] = {}
    for message in server.messages:
        texts.setdefault(message.service, []).append(message.text)
    for service in ("telegram", "discord"):
        assert any("circuit breaker (consecutive_losses) for bot_01" in t for t in texts.get(service, [])), (
            texts
        )
        assert any("lost continuity for 2 asset(s): socket closed" in t for t in texts.get(service, [])), (
            texts
        )


def test_pets_config_validate_checks_alerts_yaml(tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from pets.cli import main

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).parents[2] / "config", config)
    text = (config / "alerts.yaml").read_text().replace('major_win_usd: "1000"', 'major_win_usd: "-5"')
    (config / "alerts.yaml").write_text(text)
    result = CliRunner().invoke(main, ["config", "validate", "--config-dir", str(config)])
    assert result.exit_code == 1 and "alerts.yaml: major_win_usd: expected a decimal > 0" in result.output
