"""A local server speaking the Telegram Bot API's `sendMessage` and Discord's webhooks, for tests and
for trying the alert flow without a bot: `POST /bot<token>/sendMessage` (Telegram's answer shapes,
401 for another token) and `POST /api/webhooks/<id>/<token>` (204, Discord's `?wait=false` answer).
`throttle(n, retry_after)` answers the next n requests with each service's 429 and its retry_after.
`messages` holds every message delivered: (service, text, silent).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple

from pets.pipelines.venue_sim.serving import HttpServer, json_body, send_json

DISCORD_SILENT_FLAG = 4096


class Delivered(NamedTuple):
    service: str  # telegram | discord
    text: str
    silent: bool
    target: str  # the chat id or the webhook id


class NotifyServer(HttpServer):
    def __init__(self, telegram_token: str, discord_webhook: str = "1/hook", host: str = "127.0.0.1") -> None:
        self.telegram_token = telegram_token
        self.discord_webhook = discord_webhook  # "<id>/<token>"
        self.messages: list[Delivered] = []
        self.requests = 0
        self._throttled: list[float] = []
        self._lock = threading.Lock()
        super().__init__(host, self._handler())

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/webhooks/{self.discord_webhook}"

    def throttle(self, count: int, retry_after: float) -> None:
        with self._lock:
            self._throttled.extend([retry_after] * count)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests += 1
            retry_after = self._throttled.pop(0) if self._throttled else None
        if path.startswith("/bot"):
            if path != f"/bot{self.telegram_token}/sendMessage":
                return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            if retry_after is not None:
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after:g}",
                    "parameters": {"retry_after": retry_after},
                }
            if not body.get("chat_id") or not body.get("text"):
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                }
            self._deliver(
                Delivered(
                    "telegram", body["text"], bool(body.get("disable_notification")), str(body["chat_id"])
                )
            )
            return 200, {"ok": True, "result": {"message_id": len(self.messages), "text": body["text"]}}
        if path == f"/api/webhooks/{self.discord_webhook}":
            if retry_after is not None:
                return 429, {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                }
            if not body.get("content"):
                return 400, {"message": "Cannot send an empty message", "code": 50006}
            silent = bool(int(body.get("flags", 0)) & DISCORD_SILENT_FLAG)
            self._deliver(Delivered("discord", body["content"], silent, self.discord_webhook.split("/")[0]))
            return 204, None
        return 404, {"message": "404: Not Found", "code": 0}

    def _deliver(self, message: Delivered) -> None:
        with self._lock:
            self.messages.append(message)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json_body(self)
                status, answer = server.answer(
                    self.path.split("?")[0], body if isinstance(body, dict) else {}
                )
                headers = {}
                if status == 429 and answer is not None:
                    retry = answer.get("retry_after") or answer["parameters"]["retry_after"]
                    headers["Retry-After"] = f"{retry:g}"
                send_json(self, status, answer, headers)

        return Handler
