"""Telegram and Discord senders: one message each, retried with backoff, 429s waited out.

Telegram Bot API: `POST {api}/bot<token>/sendMessage` with `chat_id`, `text`, `disable_notification`;
a 429 answers `{"ok": false, "error_code": 429, "parameters": {"retry_after": S}}`.
Discord webhook: `POST <webhook url>` with `content` (`flags: 4096` suppresses the notification);
a 429 answers `{"retry_after": S, ...}` (seconds, a float) and a `Retry-After` header.
Both the token and the webhook URL are secrets: no error message or log line of ours carries a URL
(httpx logs its requests' URLs at INFO: pets.observability.logs keeps it at WARNING).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)
TELEGRAM_API = "https://api.telegram.org"
DISCORD_SILENT_FLAG = 4096  # SUPPRESS_NOTIFICATIONS


class DeliveryError(Exception):
    """A message that could not be delivered after the retries (or that the service refused)."""


class Sender(Protocol):
    name: str

    def send(self, text: str, silent: bool) -> None: ...


class Retry:
    """How a sender retries: `retries` more attempts after the first, waiting backoff_s, 2 x ...
    up to backoff_max_s (or what a 429 asks for)."""

    def __init__(
        self,
        retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.sleep = sleep

    def deliver(
        self,
        name: str,
        post: Callable[[], httpx.Response],
        retry_after: Callable[[httpx.Response], float | None],
    ) -> None:
        problem = ""
        for attempt in range(self.retries + 1):
            wait = min(self.backoff_s * 2**attempt, self.backoff_max_s)
            try:
                response = post()
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # never str(exc): it may name the URL
            else:
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = retry_after(response) or wait
                elif response.status_code < 500:
                    raise DeliveryError(f"{name}: refused ({problem})")
            if attempt < self.retries:
                log.warning("%s: %s; retrying in %.1f s", name, problem, wait)
                self.sleep(wait)
        raise DeliveryError(f"{name}: gave up after {self.retries + 1} attempts ({problem})")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class TelegramSender:
    name = "telegram"

    def __init__(
        self,
        token: str,
        chat_id: str,
        api_url: str = TELEGRAM_API,
        retry: Retry | None = None,
        timeout_s: float = 10,
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self._chat_id = chat_id
        self._retry = retry or Retry()
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, text: str, silent: bool) -> None:
        body = {"chat_id": self._chat_id, "text": text, "disable_notification": silent}
        self._retry.deliver(self.name, lambda: self._client.post(self._url, json=body), _telegram_retry_after)


def _telegram_retry_after(response: httpx.Response) -> float | None:
    value = _json(response).get("parameters", {}).get("retry_after")
    return float(value) if isinstance(value, int | float) else None


class DiscordSender:
    name = "discord"

    def __init__(self, webhook_url: str, retry: Retry | None = None, timeout_s: float = 10) -> None:
        self._url = webhook_url
        self._retry = retry or Retry()
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, text: str, silent: bool) -> None:
        body: dict[str, Any] = {"content": text[:2000]}  # Discord's limit per message
        if silent:
            body["flags"] = DISCORD_SILENT_FLAG
        self._retry.deliver(self.name, lambda: self._client.post(self._url, json=body), _discord_retry_after)


def _discord_retry_after(response: httpx.Response) -> float | None:
    value = _json(response).get("retry_after")
    if isinstance(value, int | float):
        return float(value)
    header = response.headers.get("Retry-After")
    return float(header) if header else None


def senders_from_env(retry: Retry, environ: dict[str, str] | None = None) -> list[Sender]:
    """The channels whose secrets are set: Telegram (PETS_TELEGRAM_BOT_TOKEN and
    PETS_TELEGRAM_CHAT_ID; PETS_TELEGRAM_API_URL for another Bot API server) and Discord
    (PETS_DISCORD_WEBHOOK_URL)."""
    env = os.environ if environ is None else environ
    senders: list[Sender] = []
    token, chat = env.get("PETS_TELEGRAM_BOT_TOKEN"), env.get("PETS_TELEGRAM_CHAT_ID")
    if token and chat:
        senders.append(TelegramSender(token, chat, env.get("PETS_TELEGRAM_API_URL") or TELEGRAM_API, retry))
    webhook = env.get("PETS_DISCORD_WEBHOOK_URL")
    if webhook:
        senders.append(DiscordSender(webhook, retry))
    return senders
