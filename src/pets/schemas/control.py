"""Control-plane wire messages: bot commands, risk alerts, batch requests and dead letters."""

from __future__ import annotations

import base64
from typing import Literal

import msgspec

ALL_BOTS = "*"

BotCommand = Literal["start", "stop", "pause", "resume", "halt", "resume_trading"]
AlertKind = Literal[
    "circuit_breaker", "daily_loss_halt", "bot_drawdown_halt", "emergency_halt", "limit_breach", "resumed"
]
Severity = Literal["info", "warning", "critical"]
BatchCommandName = Literal["retrain_model", "rank_whales", "refresh_universe"]
PayloadEncoding = Literal["utf-8", "base64"]


class ControlCommand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    command_id: str
    command: BotCommand
    bot_id: str
    reason: str = ""
    issued_by: str = "cli"
    ts_ns: int
    until_ns: int | None = None

    def applies_to(self, bot_id: str) -> bool:
        """True when this command targets `bot_id` directly or all bots ("*")."""
        return self.bot_id in (ALL_BOTS, bot_id)


class RiskAlert(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    alert_id: str
    kind: AlertKind
    bot_id: str
    rule: str
    message: str
    severity: Severity
    ts_ns: int
    until_ns: int | None = None


class BatchCommand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    command_id: str
    command: BatchCommandName
    args: dict[str, str] = {}
    ts_ns: int


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: str
    reason: str
    payload: str
    payload_encoding: PayloadEncoding = "utf-8"
    topic: str | None = None
    key: str | None = None
    partition: int | None = None
    offset: int | None = None
    ts_ns: int

    @classmethod
    def from_bytes(
        cls,
        source: str,
        reason: str,
        raw: bytes | str,
        *,
        ts_ns: int,
        topic: str | None = None,
        key: bytes | str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DeadLetter:
        """Wrap raw input losslessly: text stays readable, anything not valid UTF-8 goes base64."""
        encoding: PayloadEncoding = "utf-8"
        if isinstance(raw, str):
            payload = raw
        else:
            try:
                payload = raw.decode("utf-8")
            except UnicodeDecodeError:
                payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
        if isinstance(key, bytes):
            key = key.decode("utf-8", errors="backslashreplace")
        return cls(
            source=source,
            reason=reason,
            payload=payload,
            payload_encoding=encoding,
            topic=topic,
            key=key,
            partition=partition,
            offset=offset,
            ts_ns=ts_ns,
        )

    def raw_bytes(self) -> bytes:
        """The original input bytes (for replaying a dead letter once the cause is fixed)."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")
