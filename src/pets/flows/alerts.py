"""alerts: risk.alert, exec.report, pnl.snapshot and md.book (feed health) -> Telegram / Discord.

    alerts_in (consumer group "<prefix>pets-alerts": a restart resumes where it stopped; a first
               start begins at the topics' ends, alerts are about now)
        -> decode (undecodable -> dlq.trading with the reason)
        -> AlertRules (pets.observability.alerts) -> Notifier (per-type setting, dedup, critical
           always through) -> the channels whose secrets are in the environment

A plain service (`run`), not a Bytewax dataflow: it decides nothing the trading depends on, keeps no
state worth recovering beyond its consumer offsets, and must tick on the wall clock (a stalled feed
is the absence of messages; the daily summary is a time of day). md.book is read only for its
arrival times and its continuity events (the WebSocket client's "lost": a disconnect or a silent
subscription); other frames are not decoded.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage

from pets.flows.trading_io import TopicDecoder, log_dead_letter
from pets.observability.alerts import AlertRules, Notification, Notifier
from pets.pipelines import kafka_io
from pets.pipelines.alerts.senders import Retry, senders_from_env
from pets.schemas.codec import encode
from pets.schemas.config import load_alerts_config, load_config
from pets.schemas.control import DeadLetter, RiskAlert
from pets.schemas.market_data import Continuity
from pets.schemas.orders import ExecutionReport, PnlSnapshot
from pets.schemas.topics import load_topic_registry
from pets.settings import Settings

FLOW_NAME = "alerts"
INPUT_TOPICS = ("risk.alert", "exec.report", "pnl.snapshot", "md.book")
CONTINUITY_MARK = b'"continuity"'
log = logging.getLogger(__name__)


def run(settings: Settings, stop: threading.Event | None = None, offset_reset: str = "latest") -> None:
    """Until SIGINT/SIGTERM (or `stop` is set)."""
    alerts = load_alerts_config(settings.config_dir)
    rules = AlertRules(alerts, load_config(settings.config_dir))
    retry = Retry(alerts.retries, alerts.backoff_s, alerts.backoff_max_s)
    senders = senders_from_env(retry)
    if not senders:
        log.warning(
            "alerts: no channel configured (PETS_TELEGRAM_BOT_TOKEN/CHAT_ID, PETS_DISCORD_WEBHOOK_URL)"
        )
    notifier = Notifier(alerts, senders)
    registry = load_topic_registry(settings.config_dir)
    names = {registry.get(name).full_name(settings.topic_prefix): name for name in INPUT_TOPICS}
    decode = TopicDecoder(registry, settings.topic_prefix, INPUT_TOPICS, f"{FLOW_NAME}.decode")
    dlq = registry.get("dlq.trading").full_name(settings.topic_prefix)
    kafka_io.ensure_topics(settings, [*INPUT_TOPICS, "dlq.trading"])
    stop = stop or _stop_on_signals()
    client = kafka_io.consumer(
        settings,
        group_id=f"{settings.topic_prefix}pets-alerts",
        enable_auto_commit=True,
        auto_offset_reset=offset_reset,
    )
    producer = kafka_io.producer(settings)
    client.subscribe(list(names))
    log.info(
        "alert flow starting: %s to %s",
        ", ".join(INPUT_TOPICS),
        ", ".join(s.name for s in senders) or "nowhere",
    )
    try:
        while not stop.is_set():
            for records in client.poll(timeout_ms=500).values():
                for record in records:
                    now_s = time.time()
                    for note in _notifications(
                        rules, names[record.topic], record, decode, now_s, producer, dlq
                    ):
                        notifier.notify(note)
            for note in rules.tick(time.time()):
                notifier.notify(note)
    finally:
        client.close()
        producer.close()


def _notifications(
    rules: AlertRules, name: str, record: Any, decode: TopicDecoder, now_s: float, producer: Any, dlq: str
) -> list[Notification]:
    if name == "md.book" and CONTINUITY_MARK not in record.value:
        return rules.on_book(None, now_s)  # a frame: the feed is alive, nothing to decode
    message = decode(
        KafkaSourceMessage(
            key=record.key,
            value=record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
    )
    if isinstance(message, DeadLetter):
        log_dead_letter(FLOW_NAME, message)
        producer.send(dlq, key=message.source.encode(), value=encode(message))
        return []
    if isinstance(message, RiskAlert):
        return rules.on_risk_alert(message)
    if isinstance(message, ExecutionReport):
        return rules.on_report(message)
    if isinstance(message, PnlSnapshot):
        return rules.on_pnl(message, now_s)
    return rules.on_book(message if isinstance(message, Continuity) else None, now_s)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
