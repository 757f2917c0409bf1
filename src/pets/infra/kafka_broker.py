"""The local Apache Kafka broker: one KRaft node (broker + controller) run with plain ``java``.

The jars come from Maven Central through ``infra/kafka/pom.xml``: Maven runs once per version of
that file to write a classpath file into the cache, later starts only read it. State (data, logs,
pid, rendered config) lives in ``<state_dir>/infra/kafka``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import string
import subprocess
import time
import uuid
from pathlib import Path

from pets.infra import InfraError, Started
from pets.infra.procs import LOOPBACK, cmdline, free_port, log_tail, pid_alive, read_pid, stop_process
from pets.pipelines.kafka_io import broker_unready

KAFKA_MAIN = "kafka.Kafka"
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def kafka_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes, not starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaBroker:
    def __init__(self, state_dir: Path, cache_dir: Path, home: Path) -> None:
        self.home = home.resolve()  # infra/kafka: pom.xml, server.properties template, log4j.properties
        self.cache_dir = cache_dir.resolve()
        self.dir = state_dir.resolve() / "infra" / "kafka"
        self.data_dir = self.dir / "data"
        self.logs_dir = self.dir / "logs"
        self.properties = self.dir / "server.properties"
        self.pid_file = self.dir / "kafka.pid"
        self.ports_file = self.dir / "ports.json"
        self.console_log = self.dir / "kafka.out"

    # --- status -------------------------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        try:
            data = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}
        return {k: int(v) for k, v in data.items()}

    def bootstrap(self) -> str | None:
        port = self._ports().get("port")
        return f"{LOOPBACK}:{port}" if port else None

    def running_pid(self) -> int | None:
        """The pid of OUR broker (checked against its command line), None when it is not running."""
        pid = read_pid(self.pid_file)
        if pid is None or not pid_alive(pid):
            return None
        line = cmdline(pid)
        return pid if KAFKA_MAIN in line and str(self.properties) in line else None

    def status(self, timeout_ms: int = 2_000) -> str | None:
        """The bootstrap address when our broker runs and answers, else None."""
        bootstrap = self.bootstrap()
        if bootstrap is None or self.running_pid() is None:
            return None
        return bootstrap if broker_unready(bootstrap, timeout_ms) is None else None

    # --- start --------------------------------------------------------------------------------
    def classpath(self) -> tuple[str, str]:
        """The broker classpath and how it was obtained; runs Maven only when the pom changed."""
        pom = self.home / "pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
        cached = self.cache_dir / f"kafka-classpath-{digest}.txt"
        if cached.exists():
            text = cached.read_text().strip()
            if text and all(Path(jar).exists() for jar in text.split(os.pathsep)):
                return text, "classpath cached"
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError("Maven (mvn) is not installed: run scripts/system-deps.sh")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        began = time.monotonic()
        result = subprocess.run(
            [
                mvn, "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={self.cache_dir / 'm2'}",
                "dependency:build-classpath", f"-Dmdep.outputFile={partial}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not partial.exists():
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise InfraError(f"Maven could not resolve the Kafka broker from {pom}:\n{output}")
        partial.replace(cached)
        return cached.read_text().strip(), f"maven {time.monotonic() - began:.1f} s"

    def _render_properties(self, port: int, controller_port: int) -> None:
        template = string.Template((self.home / "server.properties").read_text())
        self.properties.write_text(
            template.substitute(port=port, controller_port=controller_port, data_dir=self.data_dir)
        )
        self.ports_file.write_text(json.dumps({"port": port, "controller_port": controller_port}))

    def _java(self, java: str, classpath: str, *args: str) -> list[str]:
        return [
            java, *JVM_OPTIONS, f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}", "-cp", classpath, *args,
        ]

    def _format_storage(self, java: str, classpath: str) -> str | None:
        """Format the KRaft log directory on first start; returns the step for the timings."""
        if (self.data_dir / "meta.properties").exists():
            return None
        began = time.monotonic()
        cluster_id = kafka_cluster_id()
        result = subprocess.run(
            self._java(java, classpath, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                       "-t", cluster_id, "-c", str(self.properties)),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise InfraError(f"formatting Kafka storage in {self.data_dir} failed:\n{output}")
        return f"storage formatted {time.monotonic() - began:.1f} s"

    def start(self, timeout_s: float = 120.0) -> Started:
        began = time.monotonic()
        current = self.status()
        if current is not None:
            return Started(current, time.monotonic() - began, already_running=True)
        stale = self.running_pid()
        if stale is not None:  # running but not answering: restart it
            stop_process(stale, timeout_s=30)
        java = java_binary()
        if java is None:
            raise InfraError("Java is not installed: run scripts/system-deps.sh (needs Java 17)")
        for folder in (self.dir, self.data_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        classpath, how = self.classpath()
        steps = [how]
        previous = self._ports()
        port = free_port(previous.get("port"))
        controller_port = free_port(previous.get("controller_port"), exclude={port})
        self._render_properties(port, controller_port)
        formatted = self._format_storage(java, classpath)
        if formatted:
            steps.append(formatted)
        with self.console_log.open("ab") as console:
            process = subprocess.Popen(
                self._java(java, classpath, KAFKA_MAIN, str(self.properties)),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,  # outlives `pets infra up`; Ctrl-C in the shell does not reach it
            )
        self.pid_file.write_text(f"{process.pid}\n")
        bootstrap = f"{LOOPBACK}:{port}"
        launched = time.monotonic()
        reason = "not started"
        while time.monotonic() - launched < timeout_s:
            code = process.poll()
            if code is not None:
                raise InfraError(f"the Kafka broker exited with code {code} while starting\n{self._logs()}")
            reason = broker_unready(bootstrap) or ""
            if not reason:
                steps.append(f"broker answered {time.monotonic() - launched:.1f} s after launch")
                return Started(bootstrap, time.monotonic() - began, already_running=False, steps=tuple(steps))
            time.sleep(0.2)
        stop_process(process.pid, timeout_s=10)
        raise InfraError(f"the Kafka broker did not answer in {timeout_s:.0f} s ({reason})\n{self._logs()}")

    def _logs(self) -> str:
        return f"{log_tail(self.logs_dir / 'server.log')}\n{log_tail(self.console_log, 10)}"

    # --- stop ---------------------------------------------------------------------------------
    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop our broker (SIGTERM, then SIGKILL after ``timeout_s``); False when it was not running."""
        pid = self.running_pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_process(pid, timeout_s)
        return True
