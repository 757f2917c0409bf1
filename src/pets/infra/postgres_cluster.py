"""The local PostgreSQL: a throwaway cluster from Debian's server binaries (initdb + pg_ctl).

It lives in ``<state_dir>/infra/postgres`` on a free loopback port, with trust authentication
(listening on 127.0.0.1 and a socket inside the state dir only) and durability switched off
(fsync, synchronous_commit, full_page_writes): fast for tests, NOT a place for data you want to keep.
PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres``
system user, which owns the cluster's folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pets.infra import InfraError, Started
from pets.infra.procs import LOOPBACK, cmdline, free_port, log_tail, pid_alive, stop_process

DATABASE = "pets"
SUPERUSER = "postgres"
SERVICE_USER = "postgres"  # the system user the server runs as when we are root


def server_bin_dir() -> Path | None:
    """Where initdb/pg_ctl live: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    return Path(candidates[-1]).parent if candidates else None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PostgresCluster:
    def __init__(self, state_dir: Path) -> None:
        self.link = state_dir.resolve() / "infra" / "postgres"
        self.as_root = os.geteuid() == 0

    @property
    def dir(self) -> Path:
        """``<state_dir>/infra/postgres``, or the folder it links to (see :meth:`_prepare_folder`)."""
        return self.link.resolve()

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_file(self) -> Path:
        return self.dir / "postgres.log"

    @property
    def port_file(self) -> Path:
        return self.dir / "port.json"

    def dsn(self, port: int, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{port}/{database}"

    # --- status -------------------------------------------------------------------------------
    def running(self) -> tuple[int, int] | None:
        """(postmaster pid, port) of OUR server from its postmaster.pid, None when it is not running."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid) or str(self.data_dir) not in cmdline(pid):
            return None
        return pid, port

    def status(self, timeout_s: int = 2) -> str | None:
        """The DSN of the ``pets`` database when our server runs and answers, else None."""
        running = self.running()
        if running is None:
            return None
        dsn = self.dsn(running[1])
        return dsn if self._answers(dsn, timeout_s) else None

    @staticmethod
    def _answers(dsn: str, timeout_s: int) -> bool:
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=timeout_s) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    # --- start --------------------------------------------------------------------------------
    def _run(self, bin_dir: Path, tool: str, *args: str, timeout_s: float = 120) -> None:
        prefix = ["runuser", "-u", SERVICE_USER, "--"] if self.as_root else []
        result = subprocess.run(
            [*prefix, str(bin_dir / tool), *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(
                f"PostgreSQL {tool} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"{log_tail(self.log_file)}"
            )

    @staticmethod
    def _service_user() -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 SERVICE_USER],
                check=True,
            )
            return pwd.getpwnam(SERVICE_USER)

    @staticmethod
    def _service_user_can(test: str, path: Path) -> bool:
        probe = subprocess.run(["runuser", "-u", SERVICE_USER, "--", "test", test, str(path)], check=False)
        return probe.returncode == 0

    def _prepare_folder(self) -> None:
        """Create the cluster folder; as root hand it to the service user, who must be able to reach it.

        When the state dir is out of that user's reach (a checkout under /root, say), the cluster goes
        to a folder in /tmp named after the state dir and ``<state_dir>/infra/postgres`` links to it.
        """
        if not self.as_root:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            return
        user = self._service_user()
        if not self.link.exists() and not self.link.is_symlink():
            self.link.parent.mkdir(parents=True, exist_ok=True)
            if not self._service_user_can("-x", self.link.parent):
                digest = hashlib.sha256(str(self.link).encode()).hexdigest()[:12]
                target = Path(tempfile.gettempdir()) / f"pets-postgres-{digest}"
                shutil.rmtree(target, ignore_errors=True)  # left by a state dir deleted since
                target.mkdir(mode=0o755)
                self.link.symlink_to(target)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.dir, self.socket_dir):
            os.chown(folder, user.pw_uid, user.pw_gid)
        if not self._service_user_can("-w", self.dir):
            raise InfraError(f"PostgreSQL runs as the user {SERVICE_USER!r}, which cannot write {self.dir}")

    def _write_config(self, port: int) -> None:
        config = self.data_dir / "pets.conf"
        config.write_text(
            "# Written by `pets infra up` on every start. A THROWAWAY cluster tuned for tests:\n"
            "# fsync/synchronous_commit/full_page_writes off means a crash can lose or corrupt data.\n"
            f"port = {port}\n"
            f"listen_addresses = {_quote(LOOPBACK)}\n"
            f"unix_socket_directories = {_quote(str(self.socket_dir))}\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 200\n"
            "shared_buffers = 128MB\n"
        )
        if self.as_root:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(config, user.pw_uid, user.pw_gid)

    def _initdb(self, bin_dir: Path) -> str | None:
        if (self.data_dir / "PG_VERSION").exists():
            return None
        began = time.monotonic()
        self._run(bin_dir, "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'pets.conf'\n")
        return f"initdb {time.monotonic() - began:.1f} s"

    def _create_database(self, port: int) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(port, "postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))

    def start(self, timeout_s: float = 60.0) -> Started:
        began = time.monotonic()
        current = self.status()
        if current is not None:
            return Started(current, time.monotonic() - began, already_running=True)
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise InfraError("PostgreSQL server (initdb, pg_ctl) not found: run scripts/system-deps.sh")
        self._prepare_folder()
        steps = [step] if (step := self._initdb(bin_dir)) else []
        if self.running() is not None:  # running but not answering: restart it
            self._stop(bin_dir, timeout_s=30)
        try:
            previous = json.loads(self.port_file.read_text()).get("port")
        except (OSError, ValueError):
            previous = None
        port = free_port(previous)
        self._write_config(port)
        self.port_file.write_text(json.dumps({"port": port}))
        launched = time.monotonic()
        self._run(bin_dir, "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                  "-t", str(int(timeout_s)), "start", timeout_s=timeout_s + 10)
        self._create_database(port)
        steps.append(f"server answered {time.monotonic() - launched:.1f} s after launch")
        return Started(self.dsn(port), time.monotonic() - began, already_running=False, steps=tuple(steps))

    # --- stop ---------------------------------------------------------------------------------
    def _stop(self, bin_dir: Path | None, timeout_s: float) -> None:
        running = self.running()
        if running is None:
            return
        if bin_dir is not None:
            try:  # fast shutdown: disconnects clients, then a clean checkpoint
                self._run(bin_dir, "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w",
                          "-t", str(int(timeout_s)), "stop", timeout_s=timeout_s + 10)
                return
            except (InfraError, subprocess.TimeoutExpired):
                pass
        stop_process(running[0], timeout_s=10)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop our server; False when it was not running."""
        if self.running() is None:
            return False
        self._stop(server_bin_dir(), timeout_s)
        return True
