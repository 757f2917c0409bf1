"""A finished paper run served by the control API on a local port, for the dashboard's tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from desk_support import TOKEN, ServedRun, free_port


@pytest.fixture(scope="module")
def served_run() -> Iterator[ServedRun]:
    """`pets run --api-port` in miniature: a 10-minute simulated run, then its final state served
    (commands still applied) until the module's tests are done."""
    from pets.api.app import create_app
    from pets.api.control import AuditLog
    from pets.api.run_desk import RunDesk
    from pets.api.server import serve_in_thread
    from pets.runtime import sources
    from pets.runtime.journal import Journal
    from pets.runtime.loop import TradingLoop
    from pets.schemas.config import load_config
    from pets.settings import load_settings

    config = load_config(load_settings().config_dir)
    source = sources.simulated(config, duration_s=600)
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    desk = RunDesk(loop, journal)
    loop.run(desk.feed(source.events() if source.events is not None else source.frames))
    port = free_port()
    server, thread = serve_in_thread(create_app(desk, config, TOKEN, AuditLog()), "127.0.0.1", port)
    stop = threading.Event()
    serving = threading.Thread(target=desk.serve_final, args=(stop,), daemon=True)
    serving.start()
    yield ServedRun(f"http://127.0.0.1:{port}", desk)
    stop.set()
    server.should_exit = True
    thread.join(5)
    serving.join(5)
