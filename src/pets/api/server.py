"""Serving the control API with uvicorn: in the foreground (`pets api serve`) or on a background
thread beside an in-process run (`pets run --api-port`)."""

from __future__ import annotations

import os
import threading
from typing import Any

LOCALHOST = "127.0.0.1"
TOKEN_ENV = "PETS_API_TOKEN"


def api_token() -> str | None:
    """The bearer token for control actions (the environment only, like every secret)."""
    return os.environ.get(TOKEN_ENV) or None


def bind_host(host: str, token: str | None) -> tuple[str, str | None]:
    """Where to listen: without a token, localhost whatever was asked (and a note saying so)."""
    if token or host in (LOCALHOST, "localhost", "::1"):
        return host, None
    return LOCALHOST, f"no {TOKEN_ENV}: bound to {LOCALHOST} instead of {host}, control actions refused"


def server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve_in_thread(app: Any, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Start serving on a daemon thread; returns once the socket listens (or the server failed)."""
    srv = server(app, host, port)
    srv.install_signal_handlers = lambda: None  # the main thread keeps Ctrl-C
    thread = threading.Thread(target=srv.run, name="pets-api", daemon=True)
    thread.start()
    while not srv.started and thread.is_alive():
        thread.join(0.05)
    if not srv.started:
        raise OSError(f"the control API could not listen on {host}:{port}")
    return srv, thread
