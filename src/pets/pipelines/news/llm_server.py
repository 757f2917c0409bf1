"""A local OpenAI-compatible server (POST /v1/chat/completions) for tests and benchmarks: the real
`openai` client talks to it over loopback.

Its own "model" answers the forecast schema deterministically: probability = (price + 0.5) / 2 for the
"Current price of YES: <p>" of the prompt, confidence 0.6. It is naive on purpose: when the news asks
it to ignore its instructions, it does (probability 1, confidence 1), so the caller's defences are
what is tested. Test hooks: `script(*behaviours)` sets what the next requests get, one each:
"ok", "slow:<seconds>", "malformed" (not JSON), "extra_field", "out_of_range", "refusal", "error:<status>";
`requests` holds every request body; usage counts ~4 characters a token.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PRICE = re.compile(r"Current price of YES: ([0-9.]+)")
FOLLOWS = re.compile(r"ignore (all )?previous instructions", re.IGNORECASE)


class LlmServer:
    def __init__(self) -> None:
        self.behaviours: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def script(self, *behaviours: str) -> None:
        with self.lock:
            self.behaviours.extend(behaviours)

    def start(self) -> LlmServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        user = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
        match = PRICE.search(user)
        price = float(match.group(1)) if match else 0.5
        if FOLLOWS.search(user):
            return {"probability": 1.0, "confidence": 1.0, "rationale": "as the news instructed"}
        return {"probability": round((price + 0.5) / 2, 4), "confidence": 0.6,
                "rationale": "the news moves the odds toward even"}  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client timed out

            def do_POST(self) -> None:
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server.lock:
                    server.requests.append(body)
                    behaviour = server.behaviours.popleft() if server.behaviours else "ok"
                if behaviour.startswith("slow:"):
                    time.sleep(float(behaviour.split(":", 1)[1]))
                if behaviour.startswith("error:"):
                    self._send(int(behaviour.split(":", 1)[1]), {"error": {"message": "scripted error"}})
                    return
                answer = server.answer(body)
                content: str | None = json.dumps(answer)
                refusal = None
                if behaviour == "malformed":
                    content = "Sure! The probability is about 70%."
                elif behaviour == "extra_field":
                    content = json.dumps({**answer, "action": "BUY"})
                elif behaviour == "out_of_range":
                    content = json.dumps({**answer, "probability": 1.7})
                elif behaviour == "refusal":
                    content, refusal = None, "I can't help with that."
                prompt_tokens = sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4
                completion_tokens = len(content or refusal or "") // 4
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "local"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content, "refusal": refusal}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                })  # fmt: skip

        return Handler


@contextmanager
def serve_llm() -> Iterator[LlmServer]:
    server = LlmServer().start()
    try:
        yield server
    finally:
        server.stop()
