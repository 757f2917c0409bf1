"""Process plumbing of the local services, on real processes and sockets."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
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


def _child(code: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.readline()  # the child says when its signal handlers are in place
    return child


def test_stop_process_terminates_politely_first() -> None:
    child = _child("import time; print('ready', flush=True); time.sleep(60)")
    began = time.monotonic()
    assert stop_process(child.pid, timeout_s=10) is False
    assert time.monotonic() - began < 5
    assert not pid_alive(child.pid)


def test_stop_process_kills_what_ignores_sigterm() -> None:
    child = _child(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    assert stop_process(child.pid, timeout_s=0.5) is True
    assert not pid_alive(child.pid)


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
