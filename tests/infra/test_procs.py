"""Process plumbing of the local services, on real processes and sockets."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pets.infra.kafka_broker import KafkaBroker, kafka_cluster_id
from pets.infra.procs import free_port, log_tail, pid_alive, port_is_free, stop_process
from pets.settings import project_root


def test_free_port_keeps_the_preferred_port_while_it_is_free() -> None:
    port = free_port()
    assert free_port(preferred=port) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert not port_is_free(port)
        other = free_port(preferred=port)
    assert other != port


def test_free_port_honours_exclusions() -> None:
    port = free_port()
    assert free_port(preferred=port, exclude={port}) != port


# The process under test runs under a Python parent that reports how it ended: stop_process reaps
# children of its own caller (and so swallows their exit status), not grandchildren.
_PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "print(child.wait(), flush=True)\n"
)


def _grandchild(code: str) -> tuple[subprocess.Popen[str], int]:
    """A process running `code` (which prints a line once its signal handlers are set) and its parent."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def _exit_status(parent: subprocess.Popen[str]) -> int:
    assert parent.stdout is not None
    status = int(parent.stdout.readline())
    parent.wait(timeout=10)
    return status


def test_stop_process_terminates_politely_first() -> None:
    parent, pid = _grandchild("import time; print('ready', flush=True); time.sleep(60)")
    assert stop_process(pid, timeout_s=10) is False  # False: no SIGKILL was needed
    assert not pid_alive(pid)
    assert _exit_status(parent) == -signal.SIGTERM


def test_stop_process_kills_what_ignores_sigterm() -> None:
    parent, pid = _grandchild(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    assert stop_process(pid, timeout_s=0.5) is True
    assert not pid_alive(pid)
    assert _exit_status(parent) == -signal.SIGKILL


def test_log_tail_shows_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = log_tail(log, lines=3)
    assert tail.splitlines()[1:] == ["line 97", "line 98", "line 99"]
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_cluster_id_has_kafkas_format() -> None:
    ids = {kafka_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


def test_broker_config_renders_every_placeholder(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "state", tmp_path / "cache", project_root() / "infra" / "kafka")
    broker.dir.mkdir(parents=True)
    broker._render_properties(port=19092, controller_port=19093)
    props = dict(
        line.split("=", 1)
        for line in broker.properties.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str(broker.data_dir)
    assert props["auto.create.topics.enable"] == "false"
    assert broker.bootstrap() == "127.0.0.1:19092"
