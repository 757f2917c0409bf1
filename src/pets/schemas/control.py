"""Control-plane wire messages: bot commands, risk alerts, batch requests and dead letters."""

from __future__ import annotations

import base64
import hashlib
from typing import Literal

import msgspec

ALL_BOTS = "*"
OPERATOR_HALT_RULE = "operator_halt"  # risk's alert when it carried out `pets halt`
EXECUTOR_HALT_RULE = "executor_halt"  # the executor's alert when it cancelled its orders on a halt

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


# A dead letter keeps at most this much of its input (raw bytes, before JSON escaping or base64) and
# of its reason and key: escaping can grow text up to 6x, and a dead letter must always fit the
# broker's 1 MB message limit, or writing it fails and the flow that wrote it crash-loops on it.
DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024
DEAD_LETTER_TEXT_CHARS = 2_000


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
    payload_size: int | None = None  # bytes of the original input (payload may hold only its start)
    payload_sha256: str | None = None  # hex digest of the whole original input
    truncated: bool = False  # payload is the first DEAD_LETTER_PAYLOAD_BYTES of the input only

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
        """Wrap raw input: text stays readable, anything not valid UTF-8 goes base64. Input longer
        than DEAD_LETTER_PAYLOAD_BYTES keeps its start, its size and its sha256 (`truncated`)."""
        data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        truncated = len(data) > DEAD_LETTER_PAYLOAD_BYTES
        kept = data[:DEAD_LETTER_PAYLOAD_BYTES] if truncated else data
        encoding: PayloadEncoding = "utf-8"
        text = _utf8(kept, cut=truncated)
        if text is None:
            payload, encoding = base64.b64encode(kept).decode("ascii"), "base64"
        else:
            payload = text
        if isinstance(key, bytes):
            key = key.decode("utf-8", errors="backslashreplace")
        return cls(
            source=source,
            reason=_clip(reason),
            payload=payload,
            payload_encoding=encoding,
            topic=topic,
            key=None if key is None else _clip(key),
            partition=partition,
            offset=offset,
            ts_ns=ts_ns,
            payload_size=len(data),
            payload_sha256=hashlib.sha256(data).hexdigest(),
            truncated=truncated,
        )

    def raw_bytes(self) -> bytes:
        """The input bytes kept (the whole input unless `truncated`), for replaying a dead letter
        once the cause is fixed."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")


def _utf8(data: bytes, *, cut: bool) -> str | None:
    """The text of `data`, None when it is not UTF-8; a cut may split the last character (up to 3
    of its bytes are left out then)."""
    for end in range(len(data), len(data) - (4 if cut else 1), -1):
        try:
            return data[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _clip(text: str) -> str:
    if len(text) <= DEAD_LETTER_TEXT_CHARS:
        return text
    return f"{text[:DEAD_LETTER_TEXT_CHARS]}... ({len(text)} characters, cut)"
