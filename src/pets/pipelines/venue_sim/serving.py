"""The lifecycle shared by the local stand-in servers: a threaded HTTP server on a free loopback port
(`HttpServer`), and for the venue a WebSocket server on its own asyncio thread beside one, started and
stopped together (`LoopbackServer`)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from websockets.asyncio.server import Server


def json_body(request: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body; {} when it is empty or not JSON."""
    length = int(request.headers.get("Content-Length") or 0)
    try:
        return json.loads(request.rfile.read(length) or b"{}")
    except ValueError:
        return {}


def send_json(
    request: BaseHTTPRequestHandler, status: int, answer: Any, headers: Mapping[str, str] | None = None
) -> None:
    """`answer` as the JSON response (no body when None), after any extra `headers`."""
    payload = b"" if answer is None else json.dumps(answer).encode()
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    request.wfile.write(payload)


class HttpServer:
    """Subclasses build their handler class and pass it to `__init__`; a context manager."""

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer((host, 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackServer:
    """Subclasses set `ws_path`, build their HTTP handler class and open `self._ws` in `_open()`."""

    ws_path = "/"

    def __init__(self, host: str, name: str, handler: type[BaseHTTPRequestHandler]) -> None:
        self._host = host
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._ws: Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, name=f"{name}-ws", daemon=True)
        self._httpd = ThreadingHTTPServer((host, 0), handler)
        self._httpd.daemon_threads = True
        self._rest_thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"{name}-rest", daemon=True
        )

    @property
    def ws_url(self) -> str:
        assert self._ws is not None, "server not started"
        port = next(iter(self._ws.sockets)).getsockname()[1]
        return f"ws://{self._host}:{port}{self.ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        self._rest_thread.start()
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self._name} did not start")
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._rest_thread.join(timeout=5)

    async def _open(self) -> None:
        raise NotImplementedError

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        self._loop.run_forever()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        if self._ws is not None:
            self._ws.close()
            self._loop.run_until_complete(asyncio.gather(self._ws.wait_closed(), return_exceptions=True))
        self._loop.close()
