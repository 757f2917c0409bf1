"""Logging for every `pets` command, configured once by the root group (`pets --log-format json|console`).

json: one object per line on stderr: `time` (UTC, ISO 8601), `level`, `flow` (the flow or command
running), `bot`, `market` (from the record's `extra`, null when none), `logger`, `message` and
`fields` (every other `extra` key; `exception` holds a traceback). console: one readable line.
Secrets never appear: every line is scrubbed of the values of the secret settings (the environment
and secrets.env: private key, CLOB API credentials, bot tokens, webhooks, passwords in DSNs) before
it is written, whatever logged them (ours or a library's).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

LogFormat = Literal["json", "console"]
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSPHRASE|TOKEN|PASSWORD|WEBHOOK|FUNDER)", re.IGNORECASE)
DSN_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")
REDACTED = "[REDACTED]"
HANDLER_NAME = "pets"
MIN_SECRET_LEN = 6  # shorter values ("0", "true") would scrub ordinary words
QUIET = ("httpx", "httpcore", "urllib3", "web3", "websockets", "asyncio")  # URLs and chatter: WARNING up
KAFKA = "kafka"  # kafka-python: silent, a broker that does not answer is our one-line error (flows: WARNING)
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "bot", "market", "flow"}

_flow = ["pets"]


def set_flow(name: str) -> None:
    """What this process runs (`pets flow run NAME` sets NAME): the `flow` of every line. A service
    runs for long: its INFO lines (start, recovery, resyncs, halts) and kafka-python's warnings
    (reconnects) are worth a line there; a one-shot command shows warnings only."""
    _flow[0] = name
    logging.getLogger(KAFKA).setLevel(logging.WARNING)
    set_level(logging.INFO)


def set_level(level: int) -> None:
    """The least level shown: the root logger's and our handler's (a library that sets its own
    logger to DEBUG does not reach the output below it)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if handler.get_name() == HANDLER_NAME:
            handler.setLevel(level)


def secret_values(environ: Mapping[str, str], secrets_file: Path | None = None) -> list[str]:
    """The values to scrub: PETS_* settings named like secrets, passwords inside DSNs, and every
    value of secrets.env; longest first (a secret containing another is scrubbed whole)."""
    from pets.settings import _read_env_file

    values = _read_env_file(secrets_file) if secrets_file is not None else {}
    values.update({k: v for k, v in environ.items() if k.startswith("PETS_") and SECRET_NAME.search(k)})
    found = set(values.values())
    for key, value in environ.items():
        if key.startswith("PETS_") and "DSN" in key:
            found.update(m.group(1) for m in DSN_PASSWORD.finditer(value))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)


class Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        values = list(secrets)
        self.pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str) -> str:
        return text if self.pattern is None else self.pattern.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "flow": getattr(record, "flow", None) or _flow[0],
            "bot": getattr(record, "bot", None),
            "market": getattr(record, "market", None),
            "logger": record.name,
            "message": record.getMessage(),
            "fields": fields,
        }
        return self.scrub(json.dumps(line, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in ("bot", "market") if getattr(record, k, None))
        return self.scrub(f"{text} [{context}]" if context else text)


def configure(log_format: LogFormat = "console", level: int = logging.WARNING, stream: Any = None) -> None:
    """Our handler on the root logger (stderr, in the chosen format), replacing an earlier one of
    ours; warnings and up unless a service raises it (`set_flow`)."""
    from pets.settings import project_root

    root_dir = Path(os.environ.get("PETS_ROOT") or project_root())
    scrub = Scrubber(secret_values(os.environ, root_dir / "secrets.env"))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(scrub) if log_format == "json" else ConsoleFormatter(scrub))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in root.handlers[:]:
        if old.get_name() == HANDLER_NAME:  # ours from an earlier call; others' (pytest's) stay
            root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(KAFKA).setLevel(logging.CRITICAL)
